package webui_test

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
	"github.com/mycelsync/mycel/webui"
)

// The page as the relay serves it: the browser node's UI (src/main.ts with
// BrowserNode), driven through its forms as a person would, against a real
// relay and real daemons.

// relayPage returns the URL of the page on the relay's WebSocket port. The
// relay serves the app embedded in this test binary (webui.Dist): make
// webui must have built it, core.wasm included.
func relayPage(t *testing.T, r *relay.Relay) string {
	t.Helper()
	for _, f := range []string{"index.html", "app.js", "node.js", "core.wasm", "wasm_exec.js", "hashes.txt"} {
		if _, err := fs.Stat(webui.Dist(), f); err != nil {
			t.Fatalf("the embedded app has no %s (make webui builds it): %v", f, err)
		}
	}
	ws := relayAddr(t, r, isWS)
	var host, port string
	parts := strings.Split(ws, "/")
	for i := 0; i+1 < len(parts); i++ {
		switch parts[i] {
		case "ip4":
			host = parts[i+1]
		case "tcp":
			port = parts[i+1]
		}
	}
	return "http://" + host + ":" + port + "/"
}

// relayedDaemon starts daemon name with the relay as its only way in for a
// browser (its one other address is loopback TCP, which a page cannot
// dial), and waits for its reservation.
func relayedDaemon(t *testing.T, r *relay.Relay, name string) *daemon {
	t.Helper()
	d := startDaemon(t, name, "--relay", relayAddr(t, r, isTCP))
	daemonCircuit(t, d, r)
	return d
}

// waitRouted waits until the relay routes the space's gossipsub topic.
func waitRouted(t *testing.T, r *relay.Relay, space string) {
	t.Helper()
	eventually(t, 60*time.Second, "the relay routes the space", func() bool {
		for _, id := range r.Router().Routed() {
			if id.String() == space {
				return true
			}
		}
		return false
	})
}

// pageJoin fills the page's join form and submits it.
func pageJoin(br *browser, fields map[string]string) {
	br.t.Helper()
	br.run("the join form", chromedp.WaitVisible(chromedp.CSS("#join-invite")))
	all := map[string]string{"join-invite": "", "join-space": "", "join-password": "", "join-member": "", "join-name": ""}
	for id, v := range fields {
		all[id] = v
	}
	js, _ := json.Marshal(all)
	get(br, "fill the join form", chromedp.Evaluate[bool](`(() => { for (const [id, v] of Object.entries(`+string(js)+`)) document.getElementById(id).value = v; document.querySelector("#join-form button[type=submit]").click(); return true })()`))
}

// keyShown reports the value the page's key browser shows for key, "" if
// none.
func keyShown(br *browser, key string) string {
	q, _ := json.Marshal(key)
	return get(br, "key "+key, chromedp.Evaluate[string](`(() => { for (const tr of document.querySelectorAll("#keys tr")) if (tr.dataset.key === `+string(q)+`) return tr.querySelector(".value.winner")?.textContent ?? ""; return ""; })()`))
}

// TestBrowserPageSignsIn: a person opens the relay's address and signs in
// through the page's form with an invite link made on daemon A, which the
// page can reach only through that relay. The page shows a safety code,
// A's own web UI (another browser, signed in by its login link) prompts
// with the same code; approved there, the page shows the key browser with
// A's keys, and a put on A appears in it without a reload. Reloaded, the
// page is still a member (IndexedDB): it shows the keys, and catches up on
// a put made meanwhile.
func TestBrowserPageSignsIn(t *testing.T) {
	r := startRelay(t)
	url := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	sp := createSpace(t, a, "family")
	putMany(t, a, sp.ID, 0, 5)
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)
	if !strings.Contains(inv.Link, "/") {
		t.Fatalf("invite link %q", inv.Link)
	}

	art := artefactDir(t)
	br := newBrowser(t, art)
	br.timeout = 60 * time.Second
	br.run("open the relay's page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#join-invite")))
	eventually(t, 60*time.Second, "the page is a browser node", func() bool {
		return strings.HasPrefix(br.textNow("#status"), "browser node")
	})
	for _, hidden := range []string{"#create-form", "#invite-section", "#password-form", "#logout"} {
		if get(br, "hidden "+hidden, chromedp.Evaluate[bool](`document.querySelector("`+hidden+`").hidden`)) != true {
			t.Errorf("the browser node's page shows %s, which it cannot do", hidden)
		}
	}
	pageJoin(br, map[string]string{"join-invite": inv.Link, "join-name": "family"})
	br.run("the safety code", chromedp.WaitVisible(chromedp.CSS("#join-code")))
	code := br.textNow("#join-code")
	if code == "" {
		t.Fatal("the page shows no safety code")
	}

	ui := newBrowser(t, art)
	ui.run("A's web UI", chromedp.Navigate(a.login), chromedp.WaitVisible(chromedp.CSS("#create-name")))
	ui.timeout = 90 * time.Second
	ui.run("A's prompt", chromedp.WaitVisible(chromedp.CSS(".request .approve")))
	if got := ui.textNow(".request .safety-code"); got != code {
		t.Fatalf("A's UI prompts with the safety code %q, the page shows %q", got, code)
	}
	t.Logf("the page and A's UI show the safety code %s", code)
	eventually(t, 30*time.Second, "authorise in A's UI", func() bool { return ui.clickNow(".request .approve") })

	t0 := time.Now()
	eventually(t, 90*time.Second, "the page shows A's keys", func() bool {
		if s := br.textNow("#join-state"); strings.Contains(s, "refused") || strings.Contains(s, "denied") {
			t.Fatalf("the page's request: %s", s)
		}
		for i := range 5 {
			if keyShown(br, fmt.Sprintf("k%06d", i)) != fmt.Sprintf("value %d", i) {
				return false
			}
		}
		return true
	})
	t.Logf("the page shows A's keys %v after the approval", time.Since(t0).Round(time.Millisecond))
	// Sync progress and connections: the feeds it holds, whole, and A
	// through the relay's circuit.
	eventually(t, 30*time.Second, "the page shows its sync progress and its circuit to A", func() bool {
		return strings.Contains(br.textNow("#progress"), "100%") && strings.Contains(br.textNow("#peers"), "circuit")
	})

	a.call("PUT", "/v1/spaces/"+sp.ID+"/keys/live", api.PutRequest{Value: []byte("from A")}, nil)
	t0 = time.Now()
	eventually(t, 60*time.Second, "A's put shows in the page without a reload", func() bool {
		return keyShown(br, "live") == "from A"
	})
	t.Logf("A's put shown in the page after %v", time.Since(t0).Round(time.Millisecond))

	// Reload: still a member, the keys from IndexedDB, and what A writes
	// meanwhile arrives.
	a.call("PUT", "/v1/spaces/"+sp.ID+"/keys/while", api.PutRequest{Value: []byte("reloading")}, nil)
	br.run("reload", chromedp.Navigate(url))
	eventually(t, 90*time.Second, "after the reload the page shows the keys, and the put made meanwhile", func() bool {
		return keyShown(br, "k000000") == "value 0" && keyShown(br, "live") == "from A" && keyShown(br, "while") == "reloading"
	})
	if s := br.textNow("#space-meta"); !strings.HasPrefix(s, "writer") {
		t.Fatalf("after the reload the page's space: %q", s)
	}
	a.call("PUT", "/v1/spaces/"+sp.ID+"/keys/after", api.PutRequest{Value: []byte("reloaded")}, nil)
	eventually(t, 60*time.Second, "a put after the reload shows", func() bool {
		return keyShown(br, "after") == "reloaded"
	})
	if !get(br, "no warnings yet", chromedp.Evaluate[bool](`document.querySelector("#warnings").hidden`)) {
		t.Fatalf("the page warns of %q with its store whole", br.textNow("#warnings"))
	}

	// The newest stored record, edited in IndexedDB: the page refuses it
	// at start, says so, and has the entries again from A.
	edit := `(async () => {
		const db = await new Promise((ok, no) => { const r = indexedDB.open("mycel-node-mycel"); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		const tx = db.transaction("records", "readwrite");
		const n = await new Promise((ok, no) => {
			const c = tx.objectStore("records").openCursor(null, "prev");
			c.onerror = () => no(c.error);
			c.onsuccess = () => { const cur = c.result; if (!cur) { ok(0); return; } const v = cur.value; v.rec[v.rec.length - 1] ^= 1; cur.update(v); ok(v.rec.length); };
		});
		await new Promise((ok, no) => { tx.oncomplete = ok; tx.onerror = () => no(tx.error); });
		db.close();
		return n;
	})()`
	br.run("leave the page", chromedp.Navigate("about:blank"))
	br.run("open the relay's page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#join-invite")))
	// The page opened the store again: edit it and load the page anew.
	if n := get(br, "edit the newest record", chromedp.Evaluate[int](edit, chromedp.EvalAwaitPromise)); n == 0 {
		t.Fatal("no record to edit")
	}
	br.run("reload", chromedp.Navigate(url))
	eventually(t, 60*time.Second, "the page says a stored record did not verify", func() bool {
		return strings.Contains(br.textNow("#warnings"), "did not verify")
	})
	t.Logf("the page warns: %s", br.textNow("#warnings"))
	eventually(t, 90*time.Second, "the page has every key again", func() bool {
		return keyShown(br, "k000000") == "value 0" && keyShown(br, "live") == "from A" && keyShown(br, "after") == "reloaded"
	})
}

// TestBrowserPageRefusals: through the page's form, a used invite, a
// space the relay does not serve (password, no member's address) and a
// wrong password (no member's address: the relay serves the space) end
// with a message that says so, and the page holds nothing of the space.
func TestBrowserPageRefusals(t *testing.T) {
	r := startRelay(t)
	url := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	sp := createSpace(t, a, "refusals")
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)
	var req api.Request
	// Spend the invite: a daemon joins with it and A denies it.
	c := startDaemon(t, "c", "--relay", relayAddr(t, r, isTCP))
	var js api.JoinState
	if code := c.call("POST", "/v1/join", api.JoinWith{Invite: inv.Link}, &js); code != http.StatusAccepted {
		t.Fatalf("C joins: %d", code)
	}
	eventually(t, 60*time.Second, "A lists C's request", func() bool {
		var rs []api.Request
		a.call("GET", "/v1/requests", nil, &rs)
		for _, x := range rs {
			if x.Code == js.Code {
				req = x
				return true
			}
		}
		return false
	})
	a.call("POST", "/v1/requests/"+req.ID+"/deny", nil, nil)
	a.call("PUT", "/v1/spaces/"+sp.ID+"/password", api.PasswordParams{Password: "correct horse battery"}, nil)

	br := openRelayPage(t, url)

	// A space the relay does not serve (B has no relay), with a password
	// and no member's address: the page says no member was reached
	// instead of waiting for nobody.
	b := startDaemon(t, "b")
	other := createSpace(t, b, "not-relayed")
	b.call("PUT", "/v1/spaces/"+other.ID+"/password", api.PasswordParams{Password: "correct horse battery"}, nil)

	for _, c := range []struct {
		what   string
		fields map[string]string
		want   string
	}{
		{"used invite", map[string]string{"join-invite": inv.Link}, "invite"},
		{"not served", map[string]string{"join-space": other.ID, "join-password": "correct horse battery"}, "no member reached through this relay"},
		{"wrong password", map[string]string{"join-space": sp.ID, "join-password": "wrong horse battery"}, "wrong password"},
	} {
		pageJoin(br, c.fields)
		var state string
		eventually(t, 90*time.Second, c.what+": the page says the request ended", func() bool {
			state = br.textNow("#join-state")
			return strings.HasPrefix(state, "Request ")
		})
		if !strings.Contains(state, "refused") || !strings.Contains(state, c.want) {
			t.Fatalf("%s: the page says %q", c.what, state)
		}
		t.Logf("%s: the page says %q", c.what, state)
		var held []string
		eval(br, "held", "held()", &held)
		if len(held) != 0 {
			t.Fatalf("%s: the page holds %v", c.what, held)
		}
		if kept := get(br, "localStorage", chromedp.Evaluate[string](`localStorage.getItem("mycel.browser.spaces") ?? ""`)); strings.Contains(kept, sp.ID) {
			t.Fatalf("%s: the page keeps %s", c.what, kept)
		}
	}
}

// TestRelayServesHashes: every file of the app the relay serves is the
// bytes of a fresh build from this tree (build.mjs into a temporary
// directory: esbuild and the wasm core again), with the type a browser
// needs, and /hashes.txt lists their SHA-256 as that build does.
func TestRelayServesHashes(t *testing.T) {
	r := startRelay(t)
	url := relayPage(t, r)
	dir := t.TempDir()
	rebuild(t, dir)
	// The relay gzips core.wasm at its first request: 1 s, 11 s under -race.
	client := &http.Client{Timeout: 120 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	types := map[string]string{"index.html": "text/html", "app.js": "text/javascript", "node.js": "text/javascript",
		"app.css": "text/css", "core.wasm": "application/wasm", "wasm_exec.js": "text/javascript", "hashes.txt": "text/plain"}
	for f, ct := range types {
		path := f
		if f == "index.html" {
			path = ""
		}
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /%s: %s %v", path, resp.Status, err)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("GET /%s: Content-Type %q, want %s", path, resp.Header.Get("Content-Type"), ct)
		}
		want := readFile(t, dir, f)
		if string(got) != string(want) {
			t.Errorf("GET /%s: %d bytes that are not the rebuild's %d", path, len(got), len(want))
		}
	}
	hashes := string(readFile(t, dir, "hashes.txt"))
	for _, f := range []string{"index.html", "app.js", "node.js", "app.css", "core.wasm", "wasm_exec.js"} {
		if !strings.Contains(hashes, "  "+f+"\n") {
			t.Errorf("hashes.txt names no %s:\n%s", f, hashes)
		}
	}
	resp, err := client.Get(url + "relay.json")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		PeerID string `json:"peer_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil || info.PeerID != r.Host().ID().String() {
		t.Fatalf("relay.json: %+v %v, want the relay's ID %s", info, err, r.Host().ID())
	}
	t.Logf("the relay serves the rebuild's bytes:\n%s", hashes)
}

// rebuild runs build.mjs into dir: the same build as make webui's.
func rebuild(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("node", "build.mjs")
	cmd.Env = append(os.Environ(), "MYCEL_DIST="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node build.mjs: %v\n%s", err, out)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDaemonServesBrowserPage: a person who does not trust the relay's
// operator loads the page from their own daemon: /node?relay=<the relay>
// is the browser node, which signs in with an invite through that relay
// and shows the space's keys. The daemon serves core.wasm as WebAssembly
// and the build's hashes.txt, the same as the relay's.
func TestDaemonServesBrowserPage(t *testing.T) {
	r := startRelay(t)
	relayURL := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	own := startDaemon(t, "own")
	sp := createSpace(t, a, "from-my-daemon")
	putMany(t, a, sp.ID, 0, 3)
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)

	client := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	fetch := func(url string) ([]byte, string) {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v", url, resp.Status, err)
		}
		return b, resp.Header.Get("Content-Type")
	}
	ownHashes, _ := fetch("http://" + own.api + "/hashes.txt")
	relayHashes, _ := fetch(relayURL + "hashes.txt")
	if string(ownHashes) != string(relayHashes) {
		t.Fatalf("the daemon's hashes.txt:\n%s\nthe relay's:\n%s", ownHashes, relayHashes)
	}
	if _, ct := fetch("http://" + own.api + "/core.wasm"); ct != "application/wasm" {
		t.Fatalf("the daemon serves core.wasm as %q", ct)
	}

	br := newBrowser(t, artefactDir(t))
	br.timeout = 60 * time.Second
	page := "http://" + own.api + "/node?relay=" + relayAddr(t, r, isWS)
	br.run("open the daemon's browser node page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#join-invite")))
	eventually(t, 60*time.Second, "the page is a browser node", func() bool {
		if e := br.textNow("#error"); e != "" {
			t.Fatalf("the page: %s", e)
		}
		return strings.HasPrefix(br.textNow("#status"), "browser node")
	})
	pageJoin(br, map[string]string{"join-invite": inv.Link})
	approveShown(t, br, a, "")
	eventually(t, 90*time.Second, "the page shows A's keys", func() bool {
		return keyShown(br, "k000000") == "value 0" && keyShown(br, "k000002") == "value 2"
	})
	// The page is not the daemon's control panel: it holds a member's
	// data of its own, and the daemon it came from has no space.
	var spaces []api.SpaceInfo
	own.call("GET", "/v1/spaces", nil, &spaces)
	if len(spaces) != 0 {
		t.Fatalf("the serving daemon holds %d spaces", len(spaces))
	}
}

// TestBrowserPageSignsInWithCode: an invite's code names no member, so
// the page takes the space ID and a member's address beside it; the
// request reaches A through the relay and, approved, the page shows A's
// keys.
func TestBrowserPageSignsInWithCode(t *testing.T) {
	r := startRelay(t)
	url := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	circuit := daemonCircuit(t, a, r)
	sp := createSpace(t, a, "by-code")
	putMany(t, a, sp.ID, 0, 2)
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)

	br := openRelayPage(t, url)
	pageJoin(br, map[string]string{"join-invite": inv.Code, "join-space": sp.ID, "join-member": circuit})
	approveShown(t, br, a, "invite")
	eventually(t, 90*time.Second, "the page shows A's keys", func() bool {
		return keyShown(br, "k000000") == "value 0" && keyShown(br, "k000001") == "value 1"
	})
}

// openRelayPage opens the relay's page in a new browser and waits until
// it is a browser node.
func openRelayPage(t *testing.T, url string) *browser {
	t.Helper()
	br := newBrowser(t, artefactDir(t))
	br.timeout = 60 * time.Second
	br.run("open the relay's page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#join-invite")))
	eventually(t, 60*time.Second, "the page is a browser node", func() bool {
		return strings.HasPrefix(br.textNow("#status"), "browser node")
	})
	return br
}

// approveShown waits for d to list the request the page shows the safety
// code of, checks it came via want (any, when empty), approves it and
// returns it.
func approveShown(t *testing.T, br *browser, d *daemon, want string) api.Request {
	t.Helper()
	br.run("the safety code", chromedp.WaitVisible(chromedp.CSS("#join-code")))
	code := br.textNow("#join-code")
	var req api.Request
	eventually(t, 60*time.Second, "the member lists the page's request", func() bool {
		var rs []api.Request
		d.call("GET", "/v1/requests", nil, &rs)
		for _, x := range rs {
			if x.Code == code {
				req = x
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(req.Via, want) {
		t.Fatalf("the member lists the request via %q, want %s", req.Via, want)
	}
	if c := d.call("POST", "/v1/requests/"+req.ID+"/approve", api.ApproveParams{Code: code}, nil); c/100 != 2 {
		t.Fatalf("approve: %d", c)
	}
	return req
}
