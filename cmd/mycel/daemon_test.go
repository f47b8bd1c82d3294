package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startDaemon starts `mycel daemon` on loopback, with extra arguments, and
// returns it with the addresses it printed.
func startDaemon(t testing.TB, dir string, extra ...string) (*exec.Cmd, []string, *syncBuffer) {
	t.Helper()
	return startDaemonIn(t, "", dir, extra...)
}

// startDaemonIn is startDaemon in network namespace netns (ip netns exec),
// or in the test's own when netns is "".
func startDaemonIn(t testing.TB, netns, dir string, extra ...string) (*exec.Cmd, []string, *syncBuffer) {
	t.Helper()
	args := append([]string{"daemon", "--data", dir, "--mdns=false",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--api", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(mycelBin, args...)
	if netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, mycelBin}, args...)...)
	}
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
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	var addrs []string
	timeout := time.After(20 * time.Second)
	for apiSeen := false; !apiSeen; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("daemon exited early; stderr:\n%s", stderr)
			}
			if a, found := strings.CutPrefix(l, "listening on "); found {
				addrs = append(addrs, a)
			}
			apiSeen = strings.HasPrefix(l, "API on ")
		case <-timeout:
			t.Fatalf("daemon did not print its addresses; stderr:\n%s", stderr)
		}
	}
	return cmd, addrs, stderr
}

// syncBuffer is a bytes.Buffer safe for a process to write while a test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestDaemonStartsAndStopsGracefully(t *testing.T) {
	dir := t.TempDir()
	cmd, addrs, stderr := startDaemon(t, dir)
	for _, a := range addrs {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/") || !strings.Contains(a, "/p2p/") {
			t.Errorf("listen address %q", a)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "node.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity: %v %v", fi, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("graceful shutdown: %v; stderr:\n%s", err, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop after SIGINT")
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown message; stderr:\n%s", stderr)
	}

	// Restarted on the same data directory, it keeps its peer ID.
	_, again, _ := startDaemon(t, dir)
	id := func(a string) string { return a[strings.LastIndex(a, "/p2p/"):] }
	if id(again[0]) != id(addrs[0]) {
		t.Fatalf("peer ID changed across restarts: %s vs %s", again[0], addrs[0])
	}
}

func TestDaemonBadSettings(t *testing.T) {
	_, stderr, code := mycel(t, "daemon", "--data", t.TempDir(), "--mdns=false", "--listen", "/ip4/127.0.0.1/tcp/0", "--peer", "/ip4/127.0.0.1/tcp/1")
	if code != 1 || !strings.Contains(stderr, "/p2p/") {
		t.Fatalf("bad peer: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = mycel(t, "daemon", "--log-level", "loud", "--data", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "log level") {
		t.Fatalf("bad log level: exit %d, stderr %q", code, stderr)
	}
}
