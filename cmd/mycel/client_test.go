package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

// cliEnv is a data directory whose api.addr and api.token lead to an API
// server over a fake Backend, as a running daemon's would.
type cliEnv struct {
	dir   string
	fake  *apitest.Fake
	srv   *httptest.Server
	space string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("MYCEL_HOME", "")
	t.Setenv("MYCEL_API", "")
	tok, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	fake := apitest.New()
	srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: fake, Token: tok, Version: "v-cli"}))
	t.Cleanup(srv.Close)
	if err := api.WriteEndpoint(dir, srv.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	return &cliEnv{dir: dir, fake: fake, srv: srv, space: fake.AddSpace("notes")}
}

// run runs the CLI in-process with --data e.dir, and stdin.
func (e *cliEnv) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLI(t, stdin, append(args, "--data", e.dir)...)
}

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if stdin != "" {
		// run reads os.Stdin; the tests that give input run nothing else
		// at the same time.
		f := filepath.Join(t.TempDir(), "stdin")
		os.WriteFile(f, []byte(stdin), 0o600)
		in, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		saved := os.Stdin
		os.Stdin = in
		defer func() { os.Stdin = saved }()
	}
	code = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// linePipe is a writer whose lines a test reads with a timeout.
type linePipe struct {
	w     *io.PipeWriter
	lines chan string
}

func newLinePipe() *linePipe {
	r, w := io.Pipe()
	p := &linePipe{w: w, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

func (p *linePipe) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *linePipe) Close()                      { p.w.Close() }

func (p *linePipe) ReadLine(timeout time.Duration) (string, error) {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", io.EOF
		}
		return l, nil
	case <-time.After(timeout):
		return "", errors.New("no line")
	}
}

func (e *cliEnv) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := e.run(t, "", args...)
	if code != 0 {
		t.Fatalf("mycel %v: exit %d\n%s", args, code, errOut)
	}
	return out
}

func TestCLINotRunning(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MYCEL_HOME", "")
	t.Setenv("MYCEL_API", "")
	for _, args := range [][]string{{"status"}, {"space", "list"}, {"get", "x", "k"}, {"sync", "--wait"}} {
		_, stderr, code := runCLI(t, "", append(args, "--data", dir)...)
		want := "mycel: mycel daemon is not running (no API at 127.0.0.1:4103); start it with `mycel daemon`\n"
		if code != exitNotRunning || stderr != want {
			t.Errorf("mycel %v without a daemon: exit %d, stderr %q", args, code, stderr)
		}
	}
	// A stale api.addr: the daemon was killed.
	api.LoadOrCreateToken(dir)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	api.WriteEndpoint(dir, addr)
	_, stderr, code := runCLI(t, "", "status", "--data", dir)
	if code != exitNotRunning || !strings.Contains(stderr, "no API at "+addr) {
		t.Errorf("stale api.addr: exit %d, stderr %q", code, stderr)
	}
	// The same through the real binary, for the process's exit status.
	_, stderr, code = mycel(t, "status", "--data", dir)
	if code != exitNotRunning || !strings.Contains(stderr, "mycel daemon is not running") {
		t.Errorf("binary: exit %d, stderr %q", code, stderr)
	}
}

func TestCLIStatus(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok(t, "status")
	for _, want := range []string{"mycel v-cli", "12D3KooWfake", "spaces:", "1", e.srv.Listener.Addr().String()} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	var st api.Status
	if err := json.Unmarshal([]byte(e.ok(t, "status", "--json")), &st); err != nil || st.PeerID != "12D3KooWfake" {
		t.Errorf("status --json: %+v %v", st, err)
	}
	// --api chooses the address; the token still comes from --data.
	os.Remove(filepath.Join(e.dir, api.EndpointFile))
	if _, _, code := e.run(t, "", "status"); code != exitNotRunning {
		t.Errorf("without api.addr: exit %d", code)
	}
	if out := e.ok(t, "status", "--api", e.srv.Listener.Addr().String()); !strings.Contains(out, "12D3KooWfake") {
		t.Errorf("status --api: %s", out)
	}
	if _, stderr, code := e.run(t, "", "status", "--api", "192.0.2.1:4103"); code == 0 || !strings.Contains(stderr, "loopback") {
		t.Errorf("status --api not loopback: exit %d %s", code, stderr)
	}
}

func TestCLISpaces(t *testing.T) {
	e := newCLIEnv(t)
	id := strings.TrimSpace(e.ok(t, "space", "create", "photos"))
	if !isID(id) {
		t.Fatalf("space create printed %q", id)
	}
	out := e.ok(t, "space", "list")
	if !strings.Contains(out, id) || !strings.Contains(out, "photos") || !strings.Contains(out, e.space) || !strings.Contains(out, "writer") {
		t.Errorf("space list:\n%s", out)
	}
	var list []api.SpaceInfo
	if err := json.Unmarshal([]byte(e.ok(t, "space", "list", "--json")), &list); err != nil || len(list) != 2 {
		t.Errorf("space list --json: %v %v", list, err)
	}
	// By ID, prefix or name.
	// The fake's IDs differ only at their end.
	for _, ref := range []string{id, id[:6], strings.ToUpper(id[:6]), "photos"} {
		if out := e.ok(t, "space", "info", ref); !strings.Contains(out, id) || !strings.Contains(out, "photos") {
			t.Errorf("space info %s:\n%s", ref, out)
		}
	}
	for _, ref := range []string{"nope", id[:3]} {
		if _, stderr, code := e.run(t, "", "space", "info", ref); code != 1 || !strings.Contains(stderr, "no space") {
			t.Errorf("space info %s: exit %d %s", ref, code, stderr)
		}
	}
	e.ok(t, "space", "create", "photos")
	if _, stderr, code := e.run(t, "", "space", "info", "ffff"); code != 1 || !strings.Contains(stderr, "no space") {
		t.Errorf("ambiguous prefix: exit %d %s", code, stderr)
	}
	if _, stderr, code := e.run(t, "", "space", "info", "photos"); code != 1 || !strings.Contains(stderr, "names 2 spaces") {
		t.Errorf("ambiguous name: exit %d %s", code, stderr)
	}

	// The manual token exchange is gone: each of its commands says what
	// to run instead, without calling the daemon.
	calls := e.fake.CallCount()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"space", "join", apitest.HexID(0xcafe), "--name", "laptop"}, "mycel join <invite>"},
		{[]string{"space", "accept", "welcome:" + e.space}, "mycel approve"},
		{[]string{"members", "add", "notes", "token"}, "mycel approve <request ID>"},
	} {
		if out, stderr, code := e.run(t, "", c.args...); code != exitUsage || out != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d %q %q", c.args, code, out, stderr)
		}
	}
	if got := e.fake.CallCount(); got != calls {
		t.Errorf("the removed commands made %d calls", got-calls)
	}
	// A member of the space (its approval is the fake's AddDevice here).
	if err := e.fake.AddDevice(e.space, api.Member{Feed: apitest.HexID(0xbeef), Name: "phone"}); err != nil {
		t.Fatal(err)
	}

	out = e.ok(t, "members", "notes")
	if !strings.Contains(out, "phone") || !strings.Contains(out, "(this device)") {
		t.Errorf("members:\n%s", out)
	}
	var ms []api.Member
	json.Unmarshal([]byte(e.ok(t, "members", e.space, "--json")), &ms)
	if len(ms) != 2 {
		t.Fatalf("members --json: %+v", ms)
	}
	e.ok(t, "members", "remove", "notes", "phone")
	json.Unmarshal([]byte(e.ok(t, "members", e.space, "--json")), &ms)
	if len(ms) != 1 {
		t.Errorf("after remove: %+v", ms)
	}
	if _, stderr, code := e.run(t, "", "members", "remove", "notes", "phone"); code != 1 || !strings.Contains(stderr, "no member") {
		t.Errorf("remove twice: exit %d %s", code, stderr)
	}
	if w := e.fake.Writes(); len(w) == 0 {
		t.Error("no writes reached the Backend")
	}
}

func TestCLIKeys(t *testing.T) {
	e := newCLIEnv(t)
	e.ok(t, "put", "notes", "greeting", "hello")
	if out := e.ok(t, "get", "notes", "greeting"); out != "hello" {
		t.Errorf("get: %q", out)
	}
	bin := []byte{0, 1, 2, 255, '\n'}
	if _, stderr, code := e.run(t, string(bin), "put", "notes", "dir/bin", "-"); code != 0 {
		t.Fatalf("put -: %d %s", code, stderr)
	}
	if out := e.ok(t, "get", "notes", "dir/bin"); out != string(bin) {
		t.Errorf("get binary: %q", out)
	}
	file := filepath.Join(t.TempDir(), "v")
	os.WriteFile(file, []byte("from a file"), 0o600)
	e.ok(t, "put", "notes", "dir/file", "--file", file)
	if out := e.ok(t, "get", "notes", "dir/file"); out != "from a file" {
		t.Errorf("get file: %q", out)
	}
	if _, _, code := e.run(t, "", "put", "notes", "k"); code != exitUsage {
		t.Errorf("put without a value: exit %d", code)
	}
	if _, _, code := e.run(t, "", "put", "notes", "k", "v", "--file", file); code != exitUsage {
		t.Errorf("put with value and file: exit %d", code)
	}
	var en api.Entry
	if err := json.Unmarshal([]byte(e.ok(t, "get", "notes", "greeting", "--json")), &en); err != nil || string(en.Versions[0].Value) != "hello" {
		t.Errorf("get --json: %+v %v", en, err)
	}
	if _, stderr, code := e.run(t, "", "get", "notes", "nope"); code != 1 || !strings.Contains(stderr, `no key "nope"`) {
		t.Errorf("get missing: exit %d %s", code, stderr)
	}
	e.ok(t, "del", "notes", "greeting")
	if out, stderr, code := e.run(t, "", "get", "notes", "greeting"); code != 1 || out != "" || !strings.Contains(stderr, "deleted") {
		t.Errorf("get deleted: exit %d %q %s", code, out, stderr)
	}
	e.fake.SetWriter(e.space, false)
	if _, stderr, code := e.run(t, "", "put", "notes", "k", "v"); code != 1 || !strings.Contains(stderr, "writer") {
		t.Errorf("put read-only: exit %d %s", code, stderr)
	}
	e.fake.SetWriter(e.space, true)

	out := e.ok(t, "ls", "notes", "dir/")
	if !strings.Contains(out, "dir/bin") || !strings.Contains(out, `"from a file"`) || strings.Contains(out, "greeting") {
		t.Errorf("ls dir/:\n%s", out)
	}
	for i := range 25 {
		e.ok(t, "put", "notes", fmt.Sprintf("n/%02d", i), "x")
	}
	out, stderr, _ := e.run(t, "", "ls", "notes", "n/", "--limit", "10")
	if strings.Count(out, "\n") != 10 || !strings.Contains(stderr, "--all") {
		t.Errorf("ls --limit 10: %q %q", out, stderr)
	}
	out, stderr, _ = e.run(t, "", "ls", "notes", "n/", "--limit", "10", "--after", "n/09")
	if strings.Count(out, "\n") != 10 || !strings.HasPrefix(out, "n/10") {
		t.Errorf("ls --after: %q %q", out, stderr)
	}
	out, stderr, _ = e.run(t, "", "ls", "notes", "--all", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 27 || stderr != "" { // 25 n/, 2 dir/; greeting deleted is not listed
		t.Errorf("ls --all --json: %d lines, %q", len(lines), stderr)
	}
	for _, l := range lines {
		var en api.Entry
		if err := json.Unmarshal([]byte(l), &en); err != nil || en.Key == "" {
			t.Errorf("ls --json line %q: %v", l, err)
		}
	}
}

func TestCLIWatch(t *testing.T) {
	e := newCLIEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr := newLinePipe()
	defer pr.Close()
	done := make(chan int, 1)
	go func() {
		var errOut bytes.Buffer
		done <- run(ctx, []string{"watch", "notes", "doc/", "--json", "--data", e.dir}, pr, &errOut)
	}()
	waitUntil(t, func() bool { return e.fake.ActiveWatchers() == 1 })
	e.ok(t, "put", "notes", "other", "x")
	e.ok(t, "put", "notes", "doc/1", "one")
	e.ok(t, "del", "notes", "doc/1")
	var got []string
	for len(got) < 2 {
		l, err := pr.ReadLine(10 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		var en api.Entry
		if err := json.Unmarshal([]byte(l), &en); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, fmt.Sprintf("%s=%s/%v", en.Key, en.Versions[0].Value, en.Versions[0].Deleted))
	}
	if got[0] != "doc/1=one/false" || got[1] != "doc/1=/true" {
		t.Errorf("changes: %v", got)
	}
	cancel() // as SIGINT does
	if code := <-done; code != 0 {
		t.Errorf("watch ended by its context: exit %d", code)
	}

	waitUntil(t, func() bool { return e.fake.ActiveWatchers() == 0 })

	// The daemon stopping ends the watch with an error.
	done2 := make(chan string, 1)
	go func() {
		out, stderr, code := e.run(t, "", "watch", "notes")
		done2 <- fmt.Sprintf("%d %q %q", code, out, stderr)
	}()
	waitUntil(t, func() bool { return e.fake.ActiveWatchers() == 1 })
	e.fake.CloseWatchers(fmt.Errorf("%w: shutting down", api.ErrClosed))
	if got := <-done2; !strings.HasPrefix(got, "1 ") || !strings.Contains(got, "shutting down") {
		t.Errorf("watch of a stopping daemon: %s", got)
	}
}

func TestCLIPeersAndSync(t *testing.T) {
	e := newCLIEnv(t)
	if _, stderr, code := e.run(t, "", "peers"); code != 0 || !strings.Contains(stderr, "no peers") {
		t.Errorf("peers, none: %d %s", code, stderr)
	}
	e.fake.SetPeers([]api.Peer{{ID: "12D3KooWpeerA", Spaces: []string{e.space},
		Conns: []api.Conn{{Addr: "/ip4/127.0.0.1/udp/4101/quic-v1", Transport: "quic", Direction: "inbound"}}}})
	out := e.ok(t, "peers")
	if !strings.Contains(out, "12D3KooWpeerA") || !strings.Contains(out, "quic") || !strings.Contains(out, "inbound") {
		t.Errorf("peers:\n%s", out)
	}
	var peers []api.Peer
	if json.Unmarshal([]byte(e.ok(t, "peers", "--json")), &peers); len(peers) != 1 {
		t.Errorf("peers --json: %+v", peers)
	}

	// No session with the peer yet: --wait waits for it.
	if _, stderr, code := e.run(t, "", "sync", "--wait", "--timeout", "300ms", "--interval", "20ms"); code != 1 || !strings.Contains(stderr, "timed out") || !strings.Contains(stderr, "1 starting") {
		t.Errorf("sync --wait without a session: exit %d %s", code, stderr)
	}
	e.fake.SetProgress([]api.Progress{
		{Space: e.space, Peer: "12D3KooWpeerA", Feed: apitest.HexID(1), Have: 10, Want: 40, BytesIn: 10240, Rate: 2048, ETA: 15},
		{Space: e.space, Peer: "12D3KooWpeerA", Feed: apitest.HexID(2), Have: 5, Want: 5, BytesIn: 500},
	})
	out = e.ok(t, "sync")
	if !strings.Contains(out, "HAVE") || !strings.Contains(out, "40") || !strings.Contains(out, "15s") || !strings.Contains(out, "done") {
		t.Errorf("sync:\n%s", out)
	}
	var prog []api.Progress
	if json.Unmarshal([]byte(e.ok(t, "sync", "--json")), &prog); len(prog) != 2 {
		t.Errorf("sync --json: %+v", prog)
	}
	// Catching up while sync --wait polls.
	polls := e.fake.Calls("Progress")
	done := make(chan string, 1)
	go func() {
		out, stderr, code := e.run(t, "", "sync", "--wait", "--interval", "20ms", "--timeout", "20s")
		done <- fmt.Sprintf("%d\n%s\n%s", code, out, stderr)
	}()
	waitUntil(t, func() bool { return e.fake.Calls("Progress") > polls }) // it polled, and shows the catch-up
	e.fake.SetProgress([]api.Progress{
		{Space: e.space, Peer: "12D3KooWpeerA", Feed: apitest.HexID(1), Have: 40, Want: 40, BytesIn: 40960},
		{Space: e.space, Peer: "12D3KooWpeerA", Feed: apitest.HexID(2), Have: 5, Want: 5, BytesIn: 500},
	})
	got := <-done
	if !strings.HasPrefix(got, "0\n") || !strings.Contains(got, "15/45 entries") || !strings.Contains(got, "45/45 entries") ||
		!strings.Contains(got, "100%") || !strings.Contains(got, "ETA 15s") {
		t.Errorf("sync --wait:\n%s", got)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 10 s")
}
