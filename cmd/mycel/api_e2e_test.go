package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/api"
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

// TestE2EDaemonLogs: the daemon's log shows feed keys as the CLI prints
// them (hex) and peer IDs as 12D3Koo…, never Go byte arrays, and a device
// name quoted. A name holding escape sequences and bidi controls reaches
// no log: a daemon refuses it, as a member refuses a join request with
// one (auth.ValidateDeviceName); signing in is the only way a device
// names itself to others.
func TestE2EDaemonLogs(t *testing.T) {
	hostile := "evil\x1b[2K\r\u202eSafety code 000-000\u0085\u009b31m"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mycelBin, "daemon", "--data", t.TempDir(), "--mdns=false", "--api", "127.0.0.1:0",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--name", hostile).CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "device name") || len(rawControl(string(out))) > 0 {
		t.Fatalf("a daemon named with controls: %v %q", err, out)
	}

	a := newDaemon(t, "--log-level", "debug")
	// b's name would forge a field of a log line if it were not quoted.
	b := newDaemon(t, "--peer", a.peerAddr(), "--log-level", "debug", "--name", `evil" feed=00 \`)
	var info api.SpaceInfo
	a.request("POST", "/v1/spaces", map[string]string{"name": "logs"}, &info)
	approveOn(t, a, b, info.ID)
	bFeed := b.space(info.ID).Feed
	waitFor(t, 20*time.Second, func() error {
		if !strings.Contains(b.stderr.String(), "peer=12D3Koo") {
			return fmt.Errorf("b's log names no peer as 12D3Koo…:\n%s", b.stderr)
		}
		return nil
	})
	for who, d := range map[string]*daemon{"a": a, "b": b} {
		log := d.stderr.String()
		if bad := rawControl(log); len(bad) > 0 {
			t.Errorf("%s's log holds raw %v", who, bad)
		}
		if regexp.MustCompile(`=\"?\[[0-9]+ [0-9]+ `).MatchString(log) {
			t.Errorf("%s's log prints a byte array:\n%s", who, log)
		}
	}
	// The daemon's stderr reaches the buffer through a pipe: wait for it.
	waitFor(t, 20*time.Second, func() error {
		if l := a.stderr.String(); !strings.Contains(l, "feed="+bFeed) || !strings.Contains(l, `device="evil\" feed=00 \\"`) {
			return fmt.Errorf("a's log does not show the added writer's feed as hex and its name quoted:\n%s", l)
		}
		return nil
	})
}

// TestE2EPortInUse: a daemon whose TCP port another daemon (or any other
// process) holds fails to start, saying so, instead of sharing the port
// through SO_REUSEPORT.
func TestE2EPortInUse(t *testing.T) {
	a := newDaemon(t)
	ma := a.peerAddr() // /ip4/127.0.0.1/tcp/<port>/p2p/…
	port := strings.Split(ma, "/")[4]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	for who, p := range map[string]string{"another daemon": port, "another process": other} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		cmd := exec.CommandContext(ctx, mycelBin, "daemon", "--data", t.TempDir(), "--mdns=false",
			"--listen", "/ip4/127.0.0.1/tcp/"+p, "--api", "127.0.0.1:0")
		out, _ := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Errorf("%s holds TCP port %s: the daemon started anyway:\n%s", who, p, out)
			continue
		}
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "already in use") || !strings.Contains(string(out), "--listen") {
			t.Errorf("%s holds TCP port %s: exit %d, %q; want exit 1 saying the port is in use", who, p, code, out)
		}
	}
}

// TestMakeRunCtrlC: `make run` started from a terminal and stopped with
// Ctrl-C (SIGINT to its whole process group) ends without a make error.
func TestMakeRunCtrlC(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed")
	}
	cmd := exec.Command("make", "run", "ARGS=daemon --data "+t.TempDir()+" --mdns=false --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0")
	cmd.Dir = "../.."
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	waitFor(t, 120*time.Second, func() error {
		if !strings.Contains(out.String(), "API on ") {
			return fmt.Errorf("the daemon did not start:\n%s", out)
		}
		return nil
	})
	// The terminal sends SIGINT to the foreground process group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		// make passes the interrupt on by dying of it (the shell's $? is
		// 130), as a program stopped with Ctrl-C should; what it must not
		// do is report the recipe failed ("make: *** [run] Error 1").
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if (err != nil && !(ws.Signaled() && ws.Signal() == syscall.SIGINT)) || strings.Contains(out.String(), "make: ***") {
			t.Fatalf("make run after Ctrl-C: %v\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not end after Ctrl-C:\n%s", out)
	}
}

// TestE2EJoinByLinkAlone: a device that knows no peer (no mDNS, no --peer)
// joins with the invite link alone: the link says where to reach the
// inviting device, mycel join dials it, the request arrives and a member
// approves it.
func TestE2EJoinByLinkAlone(t *testing.T) {
	a := newDaemon(t)
	b := newDaemon(t)
	id := createSpace(t, a)
	out, stderr, code := mycel(t, "invite", id, "--json", "--data", a.dir)
	if code != 0 {
		t.Fatalf("invite: %d %s", code, stderr)
	}
	var inv api.Invite
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	parsed, err := auth.ParseInvite(inv.Link, time.Now())
	if err != nil || parsed.Hints.IsZero() {
		t.Fatalf("the link %q carries no hints: %v", inv.Link, err)
	}
	if _, stderr, code := mycel(t, "join", inv.Link, "--no-wait", "--data", b.dir); code != 0 {
		t.Fatalf("join: %d %s", code, stderr)
	}
	var reqs []api.Request
	waitFor(t, 30*time.Second, func() error {
		reqs = nil
		a.request("GET", "/v1/requests", nil, &reqs)
		if len(reqs) == 0 {
			return fmt.Errorf("no request reached the inviting device; b's log:\n%s", b.stderr)
		}
		return nil
	})
	if code := a.request("POST", "/v1/requests/"+reqs[0].ID+"/approve", map[string]string{"code": reqs[0].Code}, nil); code >= 300 {
		t.Fatalf("approve: %d", code)
	}
	waitFor(t, 30*time.Second, func() error {
		if !b.space(id).Approved {
			return errors.New("b is not approved")
		}
		return nil
	})
}

// TestE2EWatchesBounded: a real daemon takes api.DefaultMaxStreams watches
// and refuses the next one with too_many, which the CLI reports; a put
// still works with the streams open.
func TestE2EWatchesBounded(t *testing.T) {
	d := newDaemon(t)
	id := createSpace(t, d)
	c, err := api.DialAddr(d.dir, d.api)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for i := range api.DefaultMaxStreams {
		ch, _, err := c.Watch(ctx, id, "")
		if err != nil {
			t.Fatalf("watch %d: %v", i+1, err)
		}
		go func() {
			for range ch {
			}
		}()
	}
	if _, _, err := c.Watch(ctx, id, ""); !errors.Is(err, api.ErrTooMany) {
		t.Fatalf("watch %d: %v, want too_many", api.DefaultMaxStreams+1, err)
	}
	_, stderr, code := mycel(t, "watch", id, "--data", d.dir)
	if code != 1 || !strings.Contains(stderr, "the limit") {
		t.Fatalf("mycel watch past the bound: exit %d %q", code, stderr)
	}
	d.put(id, "k", []byte("v"))
}
