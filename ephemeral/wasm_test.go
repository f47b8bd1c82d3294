package ephemeral

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildsForWasm keeps the package fit for the browser node: it builds
// with GOOS=js GOARCH=wasm and depends on nothing but the standard library,
// golang.org/x/crypto and protobuf's protowire — no libp2p, no badger.
func TestBuildsForWasm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	env := append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	build := exec.Command(goTool, "build", "-o", os.DevNull, ".", "./ephemeralpb")
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go build: %v\n%s", err, out)
	}
	list := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
	list.Env = env
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "github.com/mycelsync/mycel/ephemeral",
			p == "github.com/mycelsync/mycel/ephemeral/ephemeralpb",
			strings.HasPrefix(p, "golang.org/x/crypto/"),
			strings.HasPrefix(p, "golang.org/x/sys/cpu"),
			p == "github.com/mycelsync/mycel/internal/pbwire",
			// protowire and what it imports; not protobuf's reflection.
			p == "google.golang.org/protobuf/encoding/protowire",
			p == "google.golang.org/protobuf/internal/errors",
			p == "google.golang.org/protobuf/internal/detrand":
		default:
			t.Errorf("ephemeral depends on %s", p)
		}
	}
}
