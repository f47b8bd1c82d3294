package main

import (
	"bufio"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startCLI starts a long-running CLI command (watch, listen…) against d
// and returns it with its stdout lines and its stderr.
func startCLI(t *testing.T, d *daemon, args ...string) (*exec.Cmd, <-chan string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(mycelBin, append(args, "--data", d.dir)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return cmd, lines, stderr
}

// TestE2EWatchEndsWhenDaemonStops: a watch running while the daemon shuts
// down gracefully ends with the documented error event (code unavailable),
// which the CLI reports as such, not with an unexpected EOF.
func TestE2EWatchEndsWhenDaemonStops(t *testing.T) {
	d := newDaemon(t)
	id := createSpace(t, d)
	watch, lines, stderr := startCLI(t, d, "watch", id)
	// The watch is in place once a change made now reaches it.
	deadline := time.After(20 * time.Second)
	for seen := false; !seen; {
		d.put(id, "k", []byte("v"))
		select {
		case l := <-lines:
			seen = strings.HasPrefix(l, "k\t")
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the watch printed no change; stderr:\n%s", stderr)
		}
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- watch.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the watch did not end when the daemon stopped; stderr:\n%s", stderr)
	}
	msg := stderr.String()
	if code := watch.ProcessState.ExitCode(); code != 1 || strings.Contains(msg, "EOF") || !strings.Contains(msg, "daemon is closing") {
		t.Fatalf("watch ended with exit %d, stderr %q; want exit 1 and the daemon stopping", code, msg)
	}
	d.cmd.Wait()
}

// TestE2ESpaceInfoCountsListedKeys: space info counts the keys ls --all
// lists; the space's own keys (an invite's record, the password's key)
// are not among them.
func TestE2ESpaceInfoCountsListedKeys(t *testing.T) {
	d := newDaemon(t)
	id := createSpace(t, d)
	for _, k := range []string{"a", "b", "c"} {
		d.put(id, k, []byte("v"))
	}
	if _, stderr, code := mycel(t, "invite", id, "--data", d.dir); code != 0 {
		t.Fatalf("invite: %d %s", code, stderr)
	}
	if code := d.request("PUT", "/v1/spaces/"+id+"/password", map[string]string{"password": "correct horse"}, nil); code != 204 {
		t.Fatalf("password: %d", code)
	}
	ls, stderr, code := mycel(t, "ls", "--all", id, "--data", d.dir)
	if code != 0 {
		t.Fatalf("ls: %d %s", code, stderr)
	}
	listed := strings.Count(ls, "\n")
	info, _, _ := mycel(t, "space", "info", id, "--data", d.dir)
	if listed != 3 || !regexp.MustCompile(`(?m)^keys:\s+3$`).MatchString(info) {
		t.Fatalf("ls --all lists %d keys:\n%s\nspace info says:\n%s", listed, ls, info)
	}
	if got := d.space(id).Keys; got != 3 {
		t.Fatalf("GET /v1/spaces/{space}: keys %d, want 3", got)
	}
}
