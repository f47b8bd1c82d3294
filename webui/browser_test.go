package webui_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/mycelsync/mycel/auth/inviteqr"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/webui"
)

// chromiumPath is Debian's chromium (make test installs it).
const chromiumPath = "/usr/bin/chromium"

var mycelBin string

// TestMain builds the real mycel binary, web UI included: the bundle must
// be in dist/ (make webui; make test does it).
func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mycel-webui-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	mycelBin = filepath.Join(dir, "mycel")
	out, err := exec.Command("go", "build", "-o", mycelBin, "../cmd/mycel").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "webui test: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// daemon is a real `mycel daemon` on loopback.
type daemon struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	addrs  []string
	api    string // host:port
	token  string
	login  string // the login link of its start-up line
	stderr *syncBuffer
}

func startDaemon(t *testing.T, name string, extra ...string) *daemon {
	t.Helper()
	return startDaemonIn(t, t.TempDir(), name, extra...)
}

// startDaemonIn starts a daemon on the data directory dir.
func startDaemonIn(t *testing.T, dir, name string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir, stderr: &syncBuffer{}}
	args := append([]string{"daemon", "--data", d.dir, "--mdns=false", "--name", name,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--log-level", "debug"}, extra...)
	d.cmd = exec.Command(mycelBin, args...)
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cmd.Process.Signal(syscall.SIGKILL); d.cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	timeout := time.After(30 * time.Second)
	for d.login == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("daemon exited early; stderr:\n%s", d.stderr)
			}
			if a, found := strings.CutPrefix(l, "listening on "); found {
				d.addrs = append(d.addrs, a)
			}
			if rest, found := strings.CutPrefix(l, "web UI: "); found {
				d.login, _, _ = strings.Cut(rest, " ")
			}
		case <-timeout:
			t.Fatalf("daemon printed no web UI line; stderr:\n%s", d.stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	addr, err := os.ReadFile(filepath.Join(d.dir, "api.addr"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(d.dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	d.api, d.token = strings.TrimSpace(string(addr)), strings.TrimSpace(string(tok))
	if !strings.HasPrefix(d.login, "http://"+d.api+"/login?k=") {
		t.Fatalf("start-up login link %q is not the API's (%s)", d.login, d.api)
	}
	return d
}

// call sends an API request with the token; out (if not nil) gets the
// JSON answer. It returns the status.
func (d *daemon) call(method, path string, body, out any) int {
	d.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+d.api+path, r)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if resp.StatusCode >= 300 {
			d.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
		if err := json.Unmarshal(data, out); err != nil {
			d.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// stop stops the daemon with SIGTERM and waits for it.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.t.Fatalf("daemon did not stop; stderr:\n%s", d.stderr)
	}
}

// uiLink is a new login link, as `mycel ui` prints it.
func (d *daemon) uiLink() string {
	d.t.Helper()
	out, err := exec.Command(mycelBin, "ui", "--data", d.dir).CombinedOutput()
	if err != nil {
		d.t.Fatalf("mycel ui: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "http://") {
			return strings.TrimSpace(l)
		}
	}
	d.t.Fatalf("mycel ui printed no link:\n%s", out)
	return ""
}

func (d *daemon) tcpAddr() string {
	for _, a := range d.addrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	d.t.Fatalf("no TCP address in %v", d.addrs)
	return ""
}

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

// eventually polls f every 50 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// browser is a headless chromium with a fresh profile.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artefacts string
	shots     int
	// timeout bounds each run or get (30 s when zero).
	timeout time.Duration
}

func newBrowser(t *testing.T, artefacts string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s: %v (make test installs it: apt-get install -y chromium)", chromiumPath, err)
	}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(420, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, artefacts: artefacts}
}

// tab opens another tab of the same browser (same cookie jar: the session
// cookies' names carry the API's port, so two daemons' do not clash).
func (b *browser) tab(artefacts string) *browser {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("new tab: %v", err)
	}
	return &browser{t: b.t, ctx: ctx, artefacts: artefacts}
}

// run runs actions with a deadline.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	get(b, what, chromedp.Steps(actions...))
}

// get runs an action that returns a value, with a deadline.
func get[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	timeout := b.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// shot saves a screenshot of the page as an artefact.
func (b *browser) shot(name string) {
	b.shots++
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.artefacts, fmt.Sprintf("%02d-%s.png", b.shots, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

func (b *browser) text(sel string) string {
	return get(b, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// textNow is the text of the first element sel matches now, "" if none:
// for polling an element the page may be redrawing (text waits for the
// node and fails if it is replaced meanwhile).
func (b *browser) textNow(sel string) string {
	q, _ := json.Marshal(sel)
	return get(b, "text of "+sel, chromedp.Evaluate[string](`document.querySelector(`+string(q)+`)?.textContent ?? ""`))
}

// clickNow clicks the first element sel matches now and reports whether
// there was one: for an element of a list the page redraws while it polls
// (chromedp's Click finds the node, then fails if it was replaced before
// the click).
func (b *browser) clickNow(sel string) bool {
	q, _ := json.Marshal(sel)
	return get(b, "click "+sel, chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+string(q)+`); if (!e) return false; e.click(); return true })()`))
}

func artefactDir(t *testing.T) string {
	dir := os.Getenv("MYCEL_ARTEFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "mycel-webui-artefacts-"); err != nil {
			t.Fatal(err)
		}
	} else {
		dir = filepath.Join(dir, "webui")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func requireBuilt(t *testing.T) {
	if !webui.Built() {
		t.Fatal("webui/dist holds no bundle: run `make webui` (make build and make test do) before go test")
	}
}

// TestBrowserInviteApproveEdit plays the story in a real browser on
// the first daemon's page: create a space, make an invite whose QR code
// holds the link, a second daemon asks to join with it, the prompt shows
// its safety code, Authorise makes it a writer, its write appears without
// a reload, and an edit in the page reaches it.
func TestBrowserInviteApproveEdit(t *testing.T) {
	requireBuilt(t)
	shots := artefactDir(t)
	a := startDaemon(t, "alpha")
	b := startDaemon(t, "Firefox on Ubuntu 64-bit")
	br := newBrowser(t, shots)

	// Sign in with the start-up line's link: the page loads, the link
	// leaves the address bar.
	br.run("sign in", chromedp.Navigate(a.login), chromedp.WaitVisible(chromedp.CSS("#create-name")))
	loc := get(br, "location", chromedp.Location())
	if loc != "http://"+a.api+"/" {
		t.Fatalf("after the login link the page is at %q", loc)
	}
	br.shot("signed-in")

	// Create a space in the page.
	br.run("create a space",
		chromedp.SendKeys(chromedp.CSS("#create-name"), "notes"),
		chromedp.Click(chromedp.CSS("#create-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`button.space.current`)))
	var spaces []api.SpaceInfo
	a.call("GET", "/v1/spaces", nil, &spaces)
	if len(spaces) != 1 || spaces[0].Name != "notes" {
		t.Fatalf("A's spaces after the page created one: %+v", spaces)
	}
	id := spaces[0].ID
	br.shot("space-created")

	// Make an invite: link, code and a QR code of the link.
	br.run("make an invite",
		chromedp.Click(chromedp.CSS("#invite-button")),
		chromedp.WaitVisible(chromedp.CSS("#invite-link")))
	link := br.text("#invite-link")
	attr := get(br, "QR modules", chromedp.AttributeValue(chromedp.CSS("svg.qr"), "data-modules"))
	modules, ok := attr.Value, attr.Exists
	br.shot("invite")
	if !strings.HasPrefix(link, "mycel://join/") || !ok {
		t.Fatalf("invite link %q, QR modules present %v", link, ok)
	}
	// The code drawn is the link's: the modules read back from the page
	// equal those of the link's QR code (inviteqr, the daemon's encoder).
	want, err := inviteqr.Bitmap(strings.ToUpper(link))
	if err != nil {
		t.Fatal(err)
	}
	var wantRows []string
	for _, row := range want {
		var s strings.Builder
		for _, m := range row {
			s.WriteByte("01"[b2i(m)])
		}
		wantRows = append(wantRows, s.String())
	}
	if modules != strings.Join(wantRows, "\n") {
		t.Fatalf("the page's QR code is not the link's:\npage:\n%s\nlink:\n%s", modules, strings.Join(wantRows, "\n"))
	}
	// The drawn SVG has one dark square per dark module.
	darkRects := get(br, "count QR modules", chromedp.Evaluate[int](`(document.querySelector("svg.qr path").getAttribute("d").match(/M/g)||[]).length`))
	if n := strings.Count(modules, "1"); darkRects != n || n < 100 {
		t.Fatalf("SVG draws %d modules, the matrix has %d dark", darkRects, n)
	}

	// B asks to join with the link, from its own page (another tab),
	// which shows the safety code while it waits; B's API reports the
	// same code. A's page shows the prompt, live.
	bt := br.tab(filepath.Join(shots, "b"))
	if err := os.MkdirAll(bt.artefacts, 0o755); err != nil {
		t.Fatal(err)
	}
	bt.run("B signs in", chromedp.Navigate(b.login), chromedp.WaitVisible(chromedp.CSS("#create-name")))
	bt.run("B asks to join",
		chromedp.Click(chromedp.CSS("#join-form-summary")),
		chromedp.SetValue(chromedp.CSS("#join-invite"), link),
		chromedp.SetValue(chromedp.CSS("#join-name"), "notes"),
		chromedp.Click(chromedp.CSS("#join-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#join-code")))
	bt.shot("join-waiting")
	var bInfo api.SpaceInfo
	b.call("GET", "/v1/spaces/"+id, nil, &bInfo)
	js := bInfo.Join
	if js == nil || js.State != api.JoinWaiting || js.Code == "" || bt.text("#join-code") != js.Code {
		t.Fatalf("B's join: %+v; B's page shows code %q", js, bt.text("#join-code"))
	}
	br.run("join prompt", chromedp.WaitVisible(chromedp.CSS(".request .approve")))
	title, code := br.text(".request-title"), br.text(".request .safety-code")
	br.shot("join-prompt")
	if title != "Authorise node Firefox on Ubuntu 64-bit?" || code != js.Code {
		t.Fatalf("prompt %q with code %q; B reports code %q", title, code, js.Code)
	}
	eventually(t, 30*time.Second, "authorise", func() bool { return br.clickNow(".request .approve") })
	eventually(t, 30*time.Second, "B becomes a writer after Authorise", func() bool {
		var info api.SpaceInfo
		return b.call("GET", "/v1/spaces/"+id, nil, &info) == 200 && info.Writer
	})
	br.shot("authorised")
	eventually(t, 30*time.Second, "B's page says it was approved", func() bool {
		return strings.Contains(bt.text("#join-state"), "approved")
	})
	bt.shot("join-approved")

	// A key B writes appears in A's page without a reload.
	b.call("PUT", "/v1/spaces/"+id+"/keys/from-b", api.PutRequest{Value: []byte("hello from B")}, nil)
	br.run("B's key shows", chromedp.WaitVisible(chromedp.CSS(`tr[data-key="from-b"]`)))
	if v := br.text(`tr[data-key="from-b"] .value.winner`); v != "hello from B" {
		t.Fatalf("the page shows from-b = %q", v)
	}
	br.shot("key-from-b")

	// Edit a key in the page: B's API returns the new value.
	br.run("edit a key",
		chromedp.Click(chromedp.CSS(`tr[data-key="from-b"] .actions button`)),
		chromedp.SetValue(chromedp.CSS("#put-value"), "edited in the page"),
		chromedp.Click(chromedp.CSS("#put-form button[type=submit]")))
	eventually(t, 30*time.Second, "B's API returns the page's edit", func() bool {
		var e api.Entry
		b.call("GET", "/v1/spaces/"+id+"/keys/from-b", nil, &e)
		return len(e.Versions) > 0 && string(e.Versions[0].Value) == "edited in the page"
	})
	eventually(t, 30*time.Second, "the page shows the edit", func() bool {
		return br.text(`tr[data-key="from-b"] .value.winner`) == "edited in the page"
	})
	br.shot("key-edited")

	// The time from a write on B to A's page showing it: the page notes
	// when each row appears (MutationObserver, Date.now()).
	get(br, "observe rows", chromedp.Evaluate[bool](`window.__seen = {}; new MutationObserver(() => {
		for (const tr of document.querySelectorAll("#keys tr")) { const k = tr.dataset.key; if (!(k in window.__seen)) window.__seen[k] = Date.now(); }
	}).observe(document.getElementById("keys"), {childList: true, subtree: true}); true`))
	const writes = 15
	var lat []time.Duration
	for i := range writes {
		key := fmt.Sprintf("lat-%02d", i)
		start := time.Now()
		b.call("PUT", "/v1/spaces/"+id+"/keys/"+key, api.PutRequest{Value: []byte("x")}, nil)
		var seen float64
		eventually(t, 30*time.Second, key+" shows in A's page", func() bool {
			seen = get(br, "seen", chromedp.Evaluate[float64](fmt.Sprintf(`window.__seen[%q] || 0`, key)))
			return seen > 0
		})
		lat = append(lat, time.UnixMilli(int64(seen)).Sub(start))
	}
	slices.Sort(lat)
	t.Logf("write on B to A's page showing it: p50 %s, max %s over %d writes", lat[len(lat)/2], lat[len(lat)-1], writes)

	// Both write one key while apart: the page shows both siblings. B
	// stops, A writes in the page, B starts alone (no mDNS, no peer: it
	// keeps no address of A) and writes, then starts again with A as its
	// peer.
	b.stop()
	br.run("write while apart",
		chromedp.SetValue(chromedp.CSS("#put-key"), "shared"),
		chromedp.SetValue(chromedp.CSS("#put-value"), "written on A"),
		chromedp.Click(chromedp.CSS("#put-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="shared"]`)))
	b = startDaemonIn(t, b.dir, "Firefox on Ubuntu 64-bit")
	b.call("PUT", "/v1/spaces/"+id+"/keys/shared", api.PutRequest{Value: []byte("written on B")}, nil)
	var e api.Entry
	b.call("GET", "/v1/spaces/"+id+"/keys/shared", nil, &e)
	if len(e.Versions) != 1 {
		t.Fatalf("B met A while apart: shared has %d versions on B", len(e.Versions))
	}
	b.stop()
	b = startDaemonIn(t, b.dir, "Firefox on Ubuntu 64-bit", "--peer", a.tcpAddr())
	br.run("siblings show", chromedp.WaitVisible(chromedp.CSS(`tr[data-key="shared"] .value.sibling`)))
	values := get(br, "sibling values", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('tr[data-key="shared"] .value'), d => d.firstChild.textContent)`))
	slices.Sort(values)
	if !slices.Equal(values, []string{"written on A", "written on B"}) {
		t.Fatalf("the page shows shared = %q, want both siblings", values)
	}
	br.shot("siblings")

	// Sync progress: a bar per peer and feed, all at 100% once caught up.
	eventually(t, 30*time.Second, "the page's progress bars reach 100%", func() bool {
		vals := get(br, "progress", chromedp.Evaluate[[]float64](`Array.from(document.querySelectorAll("#progress progress"), p => p.value)`))
		return len(vals) >= 2 && !slices.ContainsFunc(vals, func(v float64) bool { return v != 100 })
	})
	br.shot("progress")
	// The same page in dark mode, for review.
	if _, err := chromedp.Call(br.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	br.shot("dark")
	if _, err := chromedp.Call(br.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}

	// Remove B from the page: the confirmation says what removal does;
	// once accepted, A no longer lists B as a writer.
	dialogs := make(chan string, 1)
	go func() {
		for ev, err := range chromedp.Events(br.ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			select {
			case dialogs <- ev.Message:
			default:
			}
			chromedp.Call(br.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	br.run("remove B", chromedp.Click(chromedp.CSS("li.device button.danger")))
	select {
	case msg := <-dialogs:
		for _, want := range []string{"Remove Firefox on Ubuntu 64-bit", "keys rotate", "keeps what it already had", "reads nothing written from now on"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("the removal's confirmation says %q, want %q", msg, want)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no confirmation before removing a device")
	}
	eventually(t, 30*time.Second, "A no longer lists B as a writer", func() bool {
		var ms []api.Member
		a.call("GET", "/v1/spaces/"+id+"/members", nil, &ms)
		return len(ms) == 1 && ms[0].Self
	})
	br.run("B leaves the device list", chromedp.WaitNotPresent(chromedp.CSS("li.device button.danger")))
	br.shot("device-removed")
}

// TestBrowserLoginRefused: a wrong, reused or missing login link gives a
// page that says so and no data; a page of another origin (another port
// on loopback, the same site to the browser, which so sends the cookie)
// gets nothing from the API.
func TestBrowserLoginRefused(t *testing.T) {
	requireBuilt(t)
	shots := artefactDir(t)
	a := startDaemon(t, "alpha")
	var info api.SpaceInfo
	a.call("POST", "/v1/spaces", api.CreateSpaceRequest{Name: "secret-space-name"}, &info)
	br := newBrowser(t, shots)

	page := func(what, link, want string) {
		t.Helper()
		br.run(what, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#message")))
		body := br.text("body")
		br.shot(strings.ReplaceAll(what, " ", "-"))
		if !strings.Contains(body, want) || !strings.Contains(body, "mycel ui") {
			t.Fatalf("%s: the page says %q, want %q and how to get a link", what, body, want)
		}
		if strings.Contains(body, "secret-space-name") {
			t.Fatalf("%s: the page shows data", what)
		}
	}
	page("missing link", "http://"+a.api+"/", "Not signed in")
	u, _ := url.Parse(a.uiLink())
	k := u.Query().Get("k")
	u.RawQuery = url.Values{"k": {k[:len(k)-4] + "0000"}}.Encode()
	page("wrong link", u.String(), "not a login link of this daemon")

	// The good link signs in once.
	link := a.uiLink()
	br.run("sign in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`button.space`)))
	br.shot("signed-in")
	page("reused link", link, "used already")
	// The session still works: reuse refused the link, not the session.
	br.run("still signed in", chromedp.Navigate("http://"+a.api+"/"), chromedp.WaitVisible(chromedp.CSS(`button.space`)))

	// A page another local program serves (another port on loopback: the
	// same site, so the browser sends the cookie) fetches A's API with
	// credentials: the page learns nothing, and A answered 403.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!doctype html><title>another local page</title><p>another local page</p>")
	}))
	defer evil.Close()
	br.run("other origin", chromedp.Navigate(evil.URL))
	got := get(br, "cross-origin fetch", chromedp.Evaluate[string](fmt.Sprintf(`fetch("http://%s/v1/spaces/%s", {credentials: "include"}).then(r => r.text()).catch(e => "refused: " + e)`, a.api, info.ID), chromedp.EvalAwaitPromise))
	if strings.Contains(got, "secret-space-name") || !strings.HasPrefix(got, "refused") {
		t.Fatalf("a page of another origin fetched %q", got)
	}
	eventually(t, 10*time.Second, "A logs the cross-origin request refused (403)", func() bool {
		for _, l := range strings.Split(a.stderr.String(), "\n") {
			if strings.Contains(l, "path=/v1/spaces/"+info.ID) && strings.Contains(l, "status=403") {
				return true
			}
		}
		return false
	})
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// TestBrowserPasswordDenyMessages: a space created with the keyboard
// alone; a space password set in the page lets
// devices ask; a request the page denies ends denied on the device; a
// device asking with the password from its own page is authorised from
// A's; and the message console of each page shows what the other device
// sends.
func TestBrowserPasswordDenyMessages(t *testing.T) {
	requireBuilt(t)
	shots := filepath.Join(artefactDir(t), "password")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	a := startDaemon(t, "alpha")
	br := newBrowser(t, shots)
	br.run("sign in", chromedp.Navigate(a.login), chromedp.WaitVisible(chromedp.CSS("#create-name")))
	// With the keyboard alone: Tab to the new space's name, type, Enter.
	for i := 0; get(br, "focus", chromedp.Evaluate[string](`document.activeElement.id`)) != "create-name"; i++ {
		if i == 20 {
			t.Fatal("Tab never reaches the new space's name")
		}
		br.run("tab", chromedp.KeyEvent(kb.Tab))
	}
	br.run("create a space with the keyboard", chromedp.KeyEvent("home"), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`button.space.current`)))
	var spaces []api.SpaceInfo
	a.call("GET", "/v1/spaces", nil, &spaces)
	if len(spaces) != 1 || spaces[0].Name != "home" {
		t.Fatalf("A's spaces: %+v", spaces)
	}
	id := spaces[0].ID
	const password = "correct horse battery"
	br.run("set the password",
		chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#password-form button[type=submit]")))
	eventually(t, 30*time.Second, "the page says the password is set", func() bool {
		return br.textNow("#password-out") == "Password set."
	})
	br.shot("password-set")

	// C asks with the password (through its API); A's page denies it.
	c := startDaemon(t, "intruder", "--peer", a.tcpAddr())
	var cjs api.JoinState
	if code := c.call("POST", "/v1/join", api.JoinWith{Space: id, Password: password}, &cjs); code != http.StatusAccepted {
		t.Fatalf("C's join: status %d", code)
	}
	br.run("C's request shows", chromedp.WaitVisible(chromedp.CSS(".request .deny")))
	if got := br.text(".request .safety-code"); got != cjs.Code {
		t.Fatalf("the prompt shows code %q, C's is %q", got, cjs.Code)
	}
	br.shot("deny-prompt")
	br.run("deny", chromedp.Click(chromedp.CSS(".request .deny")))
	eventually(t, 30*time.Second, "C's request ends denied", func() bool {
		var info api.SpaceInfo
		return c.call("GET", "/v1/spaces/"+id, nil, &info) == 200 && info.Join != nil && info.Join.State == api.JoinDenied
	})

	// B asks with the password from its own page; A's page authorises it.
	b := startDaemon(t, "phone", "--peer", a.tcpAddr())
	bt := br.tab(filepath.Join(shots, "b"))
	if err := os.MkdirAll(bt.artefacts, 0o755); err != nil {
		t.Fatal(err)
	}
	bt.run("B signs in", chromedp.Navigate(b.login), chromedp.WaitVisible(chromedp.CSS("#create-name")))
	bt.run("B asks with the password",
		chromedp.Click(chromedp.CSS("#join-form-summary")),
		chromedp.SetValue(chromedp.CSS("#join-space"), id),
		chromedp.SetValue(chromedp.CSS("#join-password"), password),
		chromedp.Click(chromedp.CSS("#join-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#join-code")))
	bt.shot("password-join-waiting")
	br.run("B's request shows", chromedp.WaitVisible(chromedp.CSS(".request .approve")))
	if got, want := br.text(".request .safety-code"), bt.text("#join-code"); got != want || got == "" {
		t.Fatalf("the prompt shows code %q, B's page %q", got, want)
	}
	eventually(t, 30*time.Second, "authorise", func() bool { return br.clickNow(".request .approve") })
	eventually(t, 30*time.Second, "B becomes a writer", func() bool {
		var info api.SpaceInfo
		return b.call("GET", "/v1/spaces/"+id, nil, &info) == 200 && info.Writer
	})
	eventually(t, 30*time.Second, "B's page lists the space", func() bool {
		return bt.textNow("button.space") != ""
	})
	eventually(t, 30*time.Second, "B opens the space", func() bool { return bt.clickNow("button.space") })
	bt.run("B's space opens", chromedp.WaitVisible(chromedp.CSS("#send-form")))

	// Messages are ephemeral: one sent before the two devices hear each
	// other is lost, so each side sends again until the other shows it.
	var last time.Time
	eventually(t, 60*time.Second, "B's page shows A's message", func() bool {
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			br.run("A sends", chromedp.SetValue(chromedp.CSS("#send-data"), "hello from the page"),
				chromedp.Click(chromedp.CSS("#send-form button[type=submit]")))
		}
		return strings.Contains(bt.textNow("#messages-log"), "hello from the page")
	})
	bt.shot("message-in-b")
	last = time.Time{}
	eventually(t, 60*time.Second, "A's page shows B's message", func() bool {
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			b.call("POST", "/v1/spaces/"+id+"/messages", api.SendRequest{Topic: "chat", Data: []byte("hello from B")}, nil)
		}
		return strings.Contains(br.textNow("#messages-log"), "hello from B")
	})
	br.shot("message-in-a")
}

// TestBrowserForkWarning plays a restored backup: A's data directory is
// copied aside, A writes on, and the copy, started alone, writes too — two
// histories of A's feed signed by one key. B, which held A's first one,
// meets the copy: it freezes A's feed, and B's page warns, saying what it
// means.
func TestBrowserForkWarning(t *testing.T) {
	requireBuilt(t)
	shots := filepath.Join(artefactDir(t), "fork")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	a := startDaemon(t, "alpha")
	b := startDaemon(t, "beta", "--peer", a.tcpAddr())
	var info api.SpaceInfo
	a.call("POST", "/v1/spaces", api.CreateSpaceRequest{Name: "notes"}, &info)
	id := info.ID
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+id+"/invites", api.InviteParams{}, &inv)
	var js api.JoinState
	if code := b.call("POST", "/v1/join", api.JoinWith{Invite: inv.Link}, &js); code != http.StatusAccepted {
		t.Fatalf("B's join: status %d", code)
	}
	var rid string
	eventually(t, 30*time.Second, "A sees B's request", func() bool {
		var rs []api.Request
		a.call("GET", "/v1/requests", nil, &rs)
		for _, r := range rs {
			if r.Code == js.Code {
				rid = r.ID
			}
		}
		return rid != ""
	})
	a.call("POST", "/v1/requests/"+rid+"/approve", api.ApproveParams{Code: js.Code}, nil)
	has := func(d *daemon, key, value string) func() bool {
		return func() bool {
			path := "/v1/spaces/" + id + "/keys/" + key
			if d.call("GET", path, nil, nil) != 200 {
				return false // not written yet (404)
			}
			var e api.Entry
			d.call("GET", path, nil, &e)
			return len(e.Versions) > 0 && string(e.Versions[0].Value) == value
		}
	}
	a.call("PUT", "/v1/spaces/"+id+"/keys/k1", api.PutRequest{Value: []byte("one")}, nil)
	eventually(t, 30*time.Second, "B has k1", has(b, "k1", "one"))

	// The backup: A's directory while A is stopped.
	a.stop()
	backup := t.TempDir()
	if out, err := exec.Command("cp", "-a", a.dir+"/.", backup).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	a = startDaemonIn(t, a.dir, "alpha", "--peer", b.tcpAddr())
	a.call("PUT", "/v1/spaces/"+id+"/keys/k2", api.PutRequest{Value: []byte("from A")}, nil)
	eventually(t, 30*time.Second, "B has A's k2", has(b, "k2", "from A"))
	a.stop()
	// The backup restored and written to alone, then started with B.
	c := startDaemonIn(t, backup, "alpha")
	c.call("PUT", "/v1/spaces/"+id+"/keys/k2", api.PutRequest{Value: []byte("from the backup")}, nil)
	c.stop()
	startDaemonIn(t, backup, "alpha", "--peer", b.tcpAddr())

	var bInfo api.SpaceInfo
	eventually(t, 30*time.Second, "B freezes A's feed", func() bool {
		b.call("GET", "/v1/spaces/"+id, nil, &bInfo)
		return len(bInfo.Forked) == 1
	})
	var members []api.Member
	b.call("GET", "/v1/spaces/"+id+"/members", nil, &members)
	for _, m := range members {
		if m.Name == "alpha" && m.Feed != bInfo.Forked[0] {
			t.Fatalf("B marks %s forked, A's feed is %s", bInfo.Forked[0], m.Feed)
		}
	}
	if !has(b, "k2", "from A")() {
		t.Fatal("B lost what it held of A's feed before the fork")
	}
	br := newBrowser(t, shots)
	br.run("B's page", chromedp.Navigate(b.login), chromedp.WaitVisible(chromedp.CSS(`button.space`)),
		chromedp.Click(chromedp.CSS(`button.space`)), chromedp.WaitVisible(chromedp.CSS("#space-forks")))
	warning := br.text("#space-forks")
	br.shot("fork-warning")
	if !strings.Contains(warning, "Forked: "+bInfo.Forked[0][:8]) || !strings.Contains(warning, "signed two histories") {
		t.Fatalf("B's page warns %q", warning)
	}
}
