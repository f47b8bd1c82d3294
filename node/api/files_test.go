package api_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/node/api"
)

func TestToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := api.ReadToken(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadToken before: %v", err)
	}
	tok, err := api.LoadOrCreateToken(dir)
	if err != nil || len(tok) != 64 {
		t.Fatalf("LoadOrCreateToken: %q %v", tok, err)
	}
	fi, err := os.Stat(filepath.Join(dir, api.TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
	again, err := api.LoadOrCreateToken(dir)
	if err != nil || again != tok {
		t.Errorf("second load: %q %v", again, err)
	}
	if got, err := api.ReadToken(dir); err != nil || got != tok {
		t.Errorf("ReadToken: %q %v", got, err)
	}
	other, _ := api.LoadOrCreateToken(t.TempDir())
	if other == tok {
		t.Error("two data directories have the same token")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	path := filepath.Join(dir, api.TokenFile)
	os.Chmod(path, 0o644)
	if _, err := api.LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("token readable by others: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, err := api.ReadToken(dir); err == nil {
		t.Error("a malformed token was read")
	}
}

func TestEndpoint(t *testing.T) {
	dir := t.TempDir()
	if _, err := api.ReadEndpoint(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadEndpoint before: %v", err)
	}
	if err := api.WriteEndpoint(dir, "127.0.0.1:4103"); err != nil {
		t.Fatal(err)
	}
	if got, err := api.ReadEndpoint(dir); err != nil || got != "127.0.0.1:4103" {
		t.Errorf("ReadEndpoint: %q %v", got, err)
	}
	if err := api.WriteEndpoint(dir, "[::1]:5000"); err != nil {
		t.Fatal(err)
	}
	if got, _ := api.ReadEndpoint(dir); got != "[::1]:5000" {
		t.Errorf("rewritten: %q", got)
	}
	if err := api.WriteEndpoint(dir, "no port"); err == nil {
		t.Error("WriteEndpoint took an address without a port")
	}
	if err := api.RemoveEndpoint(dir); err != nil {
		t.Fatal(err)
	}
	if err := api.RemoveEndpoint(dir); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if _, err := api.ReadEndpoint(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadEndpoint after remove: %v", err)
	}
}

func TestDialNotRunning(t *testing.T) {
	dir := t.TempDir()
	_, err := api.Dial(dir)
	if !errors.Is(err, api.ErrNotRunning) || !strings.Contains(err.Error(), "mycel daemon") {
		t.Errorf("Dial without api.addr: %v", err)
	}
	// A stale api.addr (the daemon was killed): nobody listens there.
	api.LoadOrCreateToken(dir)
	addr := freeAddr(t)
	api.WriteEndpoint(dir, addr)
	c, err := api.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(t.Context())
	want := "mycel daemon is not running (no API at " + addr + "); start it with `mycel daemon`"
	if !errors.Is(err, api.ErrNotRunning) || err.Error() != want {
		t.Errorf("Status of a stopped daemon: %v\nwant %s", err, want)
	}
}
