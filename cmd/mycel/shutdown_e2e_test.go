package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// TestE2ELeaveInFlightWhenDaemonStops: SIGTERM arrives while `mycel space
// leave` waits for a peer to be served the removal (there is none: up to
// 10 s). The daemon drains (node.Node.Shutdown): the leave finishes and
// its answer reaches the CLI, the daemon exits 0, and after a restart the
// space is gone — instead of the store closing under the leave.
func TestE2ELeaveInFlightWhenDaemonStops(t *testing.T) {
	d := newDaemon(t)
	id := createSpace(t, d)
	d.put(id, "k", []byte("v"))
	leave, lines, stderr := startCLI(t, d, "space", "leave", id, "--yes")
	// The leave wrote its removal (the device is no longer a writer) and
	// now waits for a peer.
	deadline := time.Now().Add(20 * time.Second)
	for d.space(id).Writer {
		if time.Now().After(deadline) {
			t.Fatalf("the leave did not write its removal; stderr:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	d.stop() // SIGTERM; fails unless the daemon exits 0 within 30 s
	took := time.Since(start)
	done := make(chan error, 1)
	go func() { done <- leave.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the leave did not end; stderr:\n%s", stderr)
	}
	var out []string
	for l := range lines {
		out = append(out, l)
	}
	if code := leave.ProcessState.ExitCode(); code != 0 || !strings.Contains(stderr.String(), "no peer was reachable") {
		t.Fatalf("leave: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if strings.Contains(d.stderr.String(), "level=ERROR") {
		t.Fatalf("the daemon logged an error while stopping:\n%s", d.stderr)
	}
	t.Logf("the daemon stopped %v after SIGTERM, the leave in flight finished", took.Round(time.Millisecond))
	d.start()
	var spaces []api.SpaceInfo
	if code := d.request("GET", "/v1/spaces", nil, &spaces); code != 200 || len(spaces) != 0 {
		t.Fatalf("after a restart: %d %+v, want no space", code, spaces)
	}
}
