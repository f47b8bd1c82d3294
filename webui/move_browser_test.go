package webui_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
)

type moveSession struct {
	Remote    string `json:"remote"`
	BytesIn   int    `json:"bytesIn"`
	FramesIn  int    `json:"framesIn"`
	Error     string `json:"error"`
	Ended     bool   `json:"ended"`
	Addr      string `json:"addr"`
	Transport string `json:"transport"`
	Relayed   bool   `json:"relayed"`
	Outbound  bool   `json:"outbound"`
}

type moveStatus struct {
	Sessions []moveSession `json:"sessions"`
}

// with returns the page's session with the peer id (nil if none).
func (ps moveStatus) with(id string) *moveSession {
	for i := range ps.Sessions {
		if ps.Sessions[i].Remote == id {
			return &ps.Sessions[i]
		}
	}
	return nil
}

// TestBrowserSessionMovesToDirect plays a page replicating with a daemon
// through the relay's circuit, then dialling the daemon's WebSocket: the
// session moves onto the direct connection — opened by the page when its
// peer ID is the lower one (moveDirect), by the daemon otherwise (the
// page takes its stream, serve) — and stays there (no reset loop: the
// session on the direct connection keeps running and a later write
// reaches it); the new session fetches no entry the page already held.
// Both orders of the peer IDs are played: the page is opened again (a new
// peer ID) until it has the order wanted.
func TestBrowserSessionMovesToDirect(t *testing.T) {
	url := nodePage(t)
	r := startRelay(t)
	d := startDaemonIn(t, midIdentity(t), "daemon", "--listen", "/ip4/127.0.0.1/tcp/0/ws", "--relay", relayAddr(t, r, isTCP))
	circuit := daemonCircuit(t, d, r)
	sp := createSpace(t, d, "moved")
	putMany(t, d, sp.ID, 0, 300)
	secrets := memberSecrets(t, d, sp)
	var st api.Status
	d.call("GET", "/v1/status", nil, &st)
	wsAddr := ""
	for _, a := range st.Addrs {
		if strings.Contains(a, "/ws/") {
			wsAddr = a
		}
	}
	if wsAddr == "" {
		t.Fatalf("the daemon has no WebSocket address: %v", st.Addrs)
	}
	daemonID := peerIDOf(t, st.PeerID)

	br := newBrowser(t, artefactDir(t))
	for _, pageLower := range []bool{true, false} {
		name := map[bool]string{true: "page lower", false: "page higher"}[pageLower]
		found := false
		for try := 0; try < 16 && !found; try++ {
			// A URL of its own each time: a fresh document, so a fresh host
			// and peer ID (start keeps the host of a document it ran in).
			br.run("open the page", chromedp.Navigate(fmt.Sprintf("%s?%s-%d", url, map[bool]string{true: "lower", false: "higher"}[pageLower], try)))
			waitNode(br)
			var started struct {
				PeerID string `json:"peerId"`
			}
			eval(br, "start", `start({wasm: "core.wasm", wasmExec: "wasm_exec.js"})`, &started)
			pid := peerIDOf(t, started.PeerID)
			t.Logf("%s: try %d: the page is %s", name, try, pid)
			found = (bytes.Compare([]byte(pid), []byte(daemonID)) < 0) == pageLower
		}
		if !found {
			t.Fatalf("%s: no page in 16 had that order of peer IDs", name)
		}
		opts := map[string]any{"addr": circuit, "space": sp.ID, "secrets": secrets, "feeds": []string{sp.Feed}, "timeoutMs": 40000}
		var rep struct {
			Transport string `json:"transport"`
		}
		evalFor(br, 90*time.Second, name+": replicate over the circuit", "replicate("+jsArg(opts)+")", &rep)
		if rep.Transport != "circuit" {
			t.Fatalf("%s: the session runs over %s", name, rep.Transport)
		}
		want := spaceInfo(t, d, sp.ID)
		waitLength(t, br, sp, want.Entries)
		var ps moveStatus
		eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
		// (The relay, a mirror of the space, may run a session with the
		// page too: only the daemon's is looked at.)
		s := ps.with(st.PeerID)
		if s == nil || !s.Relayed || s.Ended {
			t.Fatalf("%s: before the direct connection, sessions %+v", name, ps.Sessions)
		}
		caughtUp := 0 // bytes the page's sessions received to catch up
		for _, x := range ps.Sessions {
			caughtUp += x.BytesIn
		}

		var conn struct {
			Transport string `json:"transport"`
		}
		evalFor(br, 60*time.Second, name+": connect to the daemon's WebSocket", "connect("+jsArg(wsAddr)+")", &conn)
		if conn.Transport != "websocket" {
			t.Fatalf("%s: the direct connection is %s", name, conn.Transport)
		}
		eventually(t, 30*time.Second, name+": the session moves to the WebSocket", func() bool {
			eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
			s = ps.with(st.PeerID)
			return s != nil && !s.Ended && !s.Relayed && s.Transport == "websocket"
		})
		t.Logf("%s: the session moved to %s (opened by the page: %v)", name, s.Addr, s.Outbound)
		if s.Outbound != pageLower {
			t.Fatalf("%s: the session on the direct connection was opened by the page: %v", name, s.Outbound)
		}
		// No reset loop: the session stays on the direct connection, and a
		// write on the daemon reaches it.
		putMany(t, d, sp.ID, 100_000, 3)
		want = spaceInfo(t, d, sp.ID)
		waitLength(t, br, sp, want.Entries)
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
			eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
			if s = ps.with(st.PeerID); s == nil || s.Ended || s.Relayed {
				t.Fatalf("%s: the direct session did not last: %+v", name, ps.Sessions)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Nothing fetched twice: the direct session brought the 3 new
		// entries and heads, far less than the 300 the page caught up on.
		if in := s.BytesIn; in*4 > caughtUp {
			t.Fatalf("%s: the direct session received %d bytes, the catch-up %d: it fetched entries again", name, in, caughtUp)
		}
		var v pageView
		eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
		if v.Digest != want.Digest || v.Keys != want.Keys {
			t.Fatalf("%s: the page's view %s/%d keys, the daemon's %s/%d", name, v.Digest, v.Keys, want.Digest, want.Keys)
		}
	}
}

// midIdentity is a data directory whose node identity's public key starts
// with a byte in [0x40, 0xc0): a page's random peer ID is then lower or
// higher than the daemon's with odds of at least a quarter each, so that
// 16 page loads find both orders (a daemon key starting 0x00 or 0xff made
// one order all but impossible).
func midIdentity(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for range 256 {
		key, err := node.LoadIdentity(dir)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := key.GetPublic().Raw()
		if err != nil {
			t.Fatal(err)
		}
		if raw[0] >= 0x40 && raw[0] < 0xc0 {
			return dir
		}
		if err := os.Remove(filepath.Join(dir, node.IdentityFile)); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("no identity in the middle in 256 tries")
	return ""
}
