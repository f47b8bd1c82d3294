package archtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corePackages are compiled into the browser node: no sockets, no badger,
// no libp2p.
var corePackages = []string{
	"github.com/mycelsync/mycel/auth",
	"github.com/mycelsync/mycel/auth/authpb",
	"github.com/mycelsync/mycel/ephemeral",
	"github.com/mycelsync/mycel/ephemeral/ephemeralpb",
	"github.com/mycelsync/mycel/feed",
	"github.com/mycelsync/mycel/feed/feedpb",
	"github.com/mycelsync/mycel/feed/memstore",
	"github.com/mycelsync/mycel/node/space",
	"github.com/mycelsync/mycel/node/replication",
	"github.com/mycelsync/mycel/webui/wasm/core",
	"github.com/mycelsync/mycel/node/signin",
	"github.com/mycelsync/mycel/node/messages",
	"github.com/mycelsync/mycel/node/space/spacepb",
	"github.com/mycelsync/mycel/node/replication/syncpb",
	"github.com/mycelsync/mycel/internal/pbwire",
	"github.com/mycelsync/mycel/internal/flatjson",
}

// forbidden are import path prefixes the core must not depend on.
var forbidden = []string{
	"github.com/dgraph-io/badger",
	"github.com/libp2p/",
	"github.com/pion/",
	"net/http",
	// protobuf's reflection runtime, about 1.9 MB of gzipped wasm: the
	// message packages encode with protowire (internal/pbwire).
	"google.golang.org/protobuf/proto",
	"google.golang.org/protobuf/reflect/",
	"google.golang.org/protobuf/runtime/",
	"google.golang.org/protobuf/encoding/prototext",
	"google.golang.org/protobuf/encoding/protojson",
	// log/slog, with the encoding/json encoder it keeps alive, about
	// 140 KB of gzipped wasm: feed and node/space log to an interface
	// (feed.Logger, space.Logger) that a *slog.Logger satisfies.
	"log/slog",
}

// forbiddenBut are import paths the core must not depend on, but for the
// packages listed with each.
var forbiddenBut = map[string][]string{
	// encoding/json and its reflection, about 60 KB of gzipped wasm: the
	// envelopes' bodies are written and read by internal/flatjson. The
	// page's core parses its test vectors with it (ParseVectors), which
	// the page never calls, so the linker leaves it out of core.wasm.
	"encoding/json": {"github.com/mycelsync/mycel/webui/wasm/core"},
}

func goCmd(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCoreImports(t *testing.T) {
	for _, pkg := range corePackages {
		deps := goCmd(t, nil, "list", "-deps", pkg)
		for _, dep := range strings.Fields(deps) {
			for _, bad := range forbidden {
				if strings.HasPrefix(dep, bad) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
			if but, ok := forbiddenBut[dep]; ok && !slices.Contains(but, pkg) {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}

func TestCoreBuildsForWasm(t *testing.T) {
	args := append([]string{"build", "-o", os.DevNull}, corePackages...)
	goCmd(t, []string{"GOOS=js", "GOARCH=wasm"}, args...)
}
