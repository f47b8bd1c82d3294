package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// testVersion is linked into the binary under test, to check that -ldflags
// reaches main.version.
const testVersion = "v0.0.0-test"

// mycelBin is the real binary, built once by TestMain.
var mycelBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mycel-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mycel test:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	mycelBin = filepath.Join(dir, "mycel")
	build := exec.Command("go", "build", "-o", mycelBin,
		"-ldflags", "-X main.version="+testVersion, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "mycel test: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// mycel runs the binary and returns its stdout, stderr and exit status.
func mycel(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(mycelBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("mycel %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func TestVersion(t *testing.T) {
	stdout, stderr, code := mycel(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("mycel version: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{testVersion, "go1.", "go-libp2p", "badger", "merkle"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("mycel version output lacks %q:\n%s", want, stdout)
		}
	}
	if f := strings.Fields(stdout); len(f) < 2 || f[0] != "mycel" || f[1] != testVersion {
		t.Errorf("mycel version: first line should be %q, got:\n%s", "mycel "+testVersion, stdout)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {}} {
		stdout, stderr, code := mycel(t, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("mycel %v: exit %d, stderr %q", args, code, stderr)
		}
		for _, want := range []string{"Usage:", "version", "Exit status", "mycel relay runs"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("mycel %v output lacks %q:\n%s", args, want, stdout)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want []string // substrings of stderr
	}{
		{[]string{"bogus"}, []string{`mycel: unknown command "bogus" for "mycel"`, "mycel --help"}},
		{[]string{"verison"}, []string{`unknown command "verison"`, `did you mean "version"?`}},
		{[]string{"--bogus"}, []string{"mycel: unknown flag: --bogus"}},
		{[]string{"version", "extra"}, []string{`unknown command "extra" for "mycel version"`, "mycel version --help"}},
		{[]string{"version", "--bogus"}, []string{"unknown flag: --bogus"}},
	}
	for _, tt := range tests {
		stdout, stderr, code := mycel(t, tt.args...)
		if code != exitUsage {
			t.Errorf("mycel %v: exit %d, want %d (usage error)", tt.args, code, exitUsage)
		}
		if stdout != "" {
			t.Errorf("mycel %v: wrote to stdout on a usage error:\n%s", tt.args, stdout)
		}
		for _, want := range tt.want {
			if !strings.Contains(stderr, want) {
				t.Errorf("mycel %v: stderr lacks %q:\n%s", tt.args, want, stderr)
			}
		}
	}
}

func TestDepVersion(t *testing.T) {
	info := &debug.BuildInfo{Deps: []*debug.Module{
		{Path: "github.com/libp2p/go-libp2p", Version: "v0.51.0"},
		{Path: "github.com/dgraph-io/badger/v4", Version: "v4.9.6",
			Replace: &debug.Module{Path: "example.com/badger", Version: "v4.9.7"}},
		{Path: "github.com/transparency-dev/merkle", Version: "v0.0.2",
			Replace: &debug.Module{Path: "../merkle"}},
	}}
	tests := []struct {
		info *debug.BuildInfo
		path string
		want string
	}{
		{info, "github.com/libp2p/go-libp2p", "v0.51.0"},
		{info, "github.com/dgraph-io/badger/v4", "v4.9.7"},
		{info, "github.com/transparency-dev/merkle", "../merkle"},
		{info, "github.com/spf13/cobra", "unknown"},
		{nil, "github.com/libp2p/go-libp2p", "unknown"},
	}
	for _, tt := range tests {
		if got := depVersion(tt.info, tt.path); got != tt.want {
			t.Errorf("depVersion(%s) = %q, want %q", tt.path, got, tt.want)
		}
	}
}
