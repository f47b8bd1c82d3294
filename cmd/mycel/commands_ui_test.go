package main

import (
	"strings"
	"testing"
)

// TestUINoDaemon: mycel ui prints no link when no daemon answers (a link
// to nobody) and exits 3 like every command that needs one.
func TestUINoDaemon(t *testing.T) {
	out, errOut, code := mycel(t, "ui", "--data", t.TempDir())
	if code != exitNotRunning || strings.Contains(out, "http://") || !strings.Contains(errOut, "not running") {
		t.Fatalf("mycel ui without a daemon: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
