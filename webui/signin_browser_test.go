package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// pageSignin is mycelNode.signinState's answer.
type pageSignin struct {
	Space      string `json:"space"`
	Feed       string `json:"feed"`
	SafetyCode string `json:"safetyCode"`
	State      string `json:"state"`
	Reason     string `json:"reason"`
	Candidates int    `json:"candidates"`
	Published  int    `json:"published"`
	Error      string `json:"error"`
}

// wsAddrOf returns the daemon's WebSocket address.
func wsAddrOf(t *testing.T, d *daemon) string {
	t.Helper()
	var st api.Status
	d.call("GET", "/v1/status", nil, &st)
	for _, a := range st.Addrs {
		if strings.Contains(a, "/ws/") {
			return a
		}
	}
	t.Fatalf("the daemon has no WebSocket address: %v", st.Addrs)
	return ""
}

// startPage opens the browser node's page and starts its node.
func startPage(br *browser, url string) {
	br.run("open the page", chromedp.Navigate(url))
	waitNode(br)
	var started struct{}
	eval(br, "start", `start({wasm: "core.wasm", wasmExec: "wasm_exec.js"})`, &started)
}

// waitRequest waits until the daemon lists a join request from feed.
func waitRequest(t *testing.T, d *daemon, feed string) api.Request {
	t.Helper()
	var got api.Request
	eventually(t, 60*time.Second, "the daemon lists the page's join request", func() bool {
		var rs []api.Request
		d.call("GET", "/v1/requests", nil, &rs)
		for _, r := range rs {
			if r.Feed == feed {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// TestBrowserSignsInWithInvite: the page signs in to daemon A's space
// with an invite link from A's API, connected to A directly over
// WebSocket. A lists the request with the safety code the page shows;
// once approved through A's API the page receives the keyring, replicates
// the space with its secrets as a member (its own feed a writer in its
// view), and its view digest is A's. The same invite again is refused
// with a clear message, and the page keeps nothing of that space.
func TestBrowserSignsInWithInvite(t *testing.T) {
	url := nodePage(t)
	a := startDaemon(t, "a", "--listen", "/ip4/127.0.0.1/tcp/0/ws")
	sp := createSpace(t, a, "signin")
	putMany(t, a, sp.ID, 0, 20)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)
	ws := wsAddrOf(t, a)

	br := newBrowser(t, artefactDir(t))
	startPage(br, url)
	var s pageSignin
	evalFor(br, 60*time.Second, "sign in", "signin("+jsArg(map[string]any{"invite": inv.Link, "addr": ws, "timeoutMs": 40000})+")", &s)
	if s.SafetyCode == "" || s.Space != sp.ID || s.State != "waiting" {
		t.Fatalf("the page's sign-in: %+v", s)
	}
	req := waitRequest(t, a, s.Feed)
	if req.Code != s.SafetyCode {
		t.Fatalf("A shows the safety code %q, the page %q", req.Code, s.SafetyCode)
	}
	if req.Name != "Chromium on Linux" {
		t.Fatalf("A shows the device name %q", req.Name)
	}
	t.Logf("A lists the page's request %s (%s) with the safety code %s", req.ID, req.Name, req.Code)
	a.call("POST", "/v1/requests/"+req.ID+"/approve", api.ApproveParams{Code: s.SafetyCode}, nil)
	t0 := time.Now()
	eventually(t, 60*time.Second, "the page's request is approved", func() bool {
		eval(br, "signinState", "signinState("+jsArg(sp.ID)+")", &s)
		if s.State != "waiting" && s.State != "approved" {
			t.Fatalf("the page's request ended %s: %s", s.State, s.Reason)
		}
		return s.State == "approved"
	})
	t.Logf("approved %v after A's approval (%d requests published)", time.Since(t0).Round(time.Millisecond), s.Published)
	want := spaceInfo(t, a, sp.ID)
	var v pageView
	eventually(t, 30*time.Second, "the page's view is A's", func() bool {
		eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
		want = spaceInfo(t, a, sp.ID)
		return v.Digest == want.Digest
	})
	// The digest is the view's; the page counts the device records the
	// approval wrote among its keys, A's API does not.
	if v.Invalid != 0 || v.Writers != 2 {
		t.Fatalf("the page's view (%d keys, %d writers, %d invalid) is not A's with the page a writer", v.Keys, v.Writers, v.Invalid)
	}
	t.Logf("the page's view: digest %s = A's, %d writers", v.Digest, v.Writers)

	// The invite is spent: a second page asking with it is refused, with
	// a message that says so, and keeps nothing.
	startPage(br, url)
	evalFor(br, 60*time.Second, "sign in with the used invite", "signin("+jsArg(map[string]any{"invite": inv.Link, "addr": ws, "timeoutMs": 40000})+")", &s)
	eventually(t, 60*time.Second, "the used invite is refused", func() bool {
		eval(br, "signinState", "signinState("+jsArg(sp.ID)+")", &s)
		return s.State != "waiting"
	})
	if s.State != "refused" || !strings.Contains(s.Reason, "invite") {
		t.Fatalf("the used invite ended %s: %q", s.State, s.Reason)
	}
	t.Logf("used invite: %s: %s", s.State, s.Reason)
	noState(t, br)

	// A wrong password: the members refuse it, the page says so and
	// keeps nothing.
	a.call("PUT", "/v1/spaces/"+sp.ID+"/password", api.PasswordParams{Password: "correct horse battery"}, nil)
	startPage(br, url)
	evalFor(br, 60*time.Second, "sign in with a wrong password", "signin("+jsArg(map[string]any{"space": sp.ID, "password": "wrong horse battery", "addr": ws, "timeoutMs": 40000})+")", &s)
	eventually(t, 60*time.Second, "the wrong password is refused", func() bool {
		eval(br, "signinState", "signinState("+jsArg(sp.ID)+")", &s)
		return s.State != "waiting"
	})
	if s.State != "refused" || !strings.Contains(s.Reason, "wrong password") {
		t.Fatalf("the wrong password ended %s: %q", s.State, s.Reason)
	}
	t.Logf("wrong password: %s: %s", s.State, s.Reason)
	noState(t, br)
	// A malformed invite throws at once.
	if msg := evalErr(br, "sign in with a bad invite", "signin("+jsArg(map[string]any{"invite": "mycel://join/nonsense", "addr": ws})+")"); !strings.Contains(msg, "invite") {
		t.Fatalf("a malformed invite: %q", msg)
	}
	noState(t, br)
}

// noState fails unless the page holds no space's state.
func noState(t *testing.T, br *browser) {
	t.Helper()
	var held []string
	eval(br, "held", "held()", &held)
	if len(held) != 0 {
		t.Fatalf("after a refusal the page holds state of %v", held)
	}
}

// TestBrowserSignsInThroughRelay: the same sign-in with the relay as the
// only way between the page and daemon A: A reaches only the relay (it
// hands it the space's mirror token, so the relay routes the space's
// gossipsub topic), the page dials A's circuit through the relay's
// WebSocket. The request and the approval cross the relay's router; the
// page replicates through the circuit and ends with A's view.
func TestBrowserSignsInThroughRelay(t *testing.T) {
	url := nodePage(t)
	r := startRelay(t)
	a := startDaemon(t, "a", "--relay", relayAddr(t, r, isTCP))
	circuit := daemonCircuit(t, a, r)
	sp := createSpace(t, a, "relayed")
	putMany(t, a, sp.ID, 0, 20)
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)
	if !strings.Contains(circuit, "/ws/") {
		t.Fatalf("the circuit %s is not through the relay's WebSocket", circuit)
	}

	br := newBrowser(t, artefactDir(t))
	startPage(br, url)
	var s pageSignin
	evalFor(br, 90*time.Second, "sign in", "signin("+jsArg(map[string]any{"invite": inv.Link, "addr": circuit, "timeoutMs": 40000})+")", &s)
	req := waitRequest(t, a, s.Feed)
	if req.Code != s.SafetyCode {
		t.Fatalf("A shows the safety code %q, the page %q", req.Code, s.SafetyCode)
	}
	a.call("POST", "/v1/requests/"+req.ID+"/approve", api.ApproveParams{Code: s.SafetyCode}, nil)
	t0 := time.Now()
	eventually(t, 90*time.Second, "the page's request is approved", func() bool {
		eval(br, "signinState", "signinState("+jsArg(sp.ID)+")", &s)
		if s.State != "waiting" && s.State != "approved" {
			t.Fatalf("the page's request ended %s: %s", s.State, s.Reason)
		}
		return s.State == "approved"
	})
	t.Logf("approved %v after A's approval, through the relay (%d requests published)", time.Since(t0).Round(time.Millisecond), s.Published)
	var v pageView
	eventually(t, 30*time.Second, "the page's view is A's", func() bool {
		eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
		return v.Digest == spaceInfo(t, a, sp.ID).Digest
	})
	if v.Invalid != 0 || v.Writers != 2 {
		t.Fatalf("the page's view: %d writers, %d invalid", v.Writers, v.Invalid)
	}
	var ps pageStatus
	eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
	for _, x := range ps.Sessions {
		if !strings.Contains(x.Addr, "/p2p-circuit") {
			t.Fatalf("a session not through the relay: %s", x.Addr)
		}
	}
	if c := r.Router().RouterCounts(); c[relay.RouteForwarded] < 2 {
		t.Fatalf("the relay forwarded %d envelopes: %v", c[relay.RouteForwarded], c)
	}
}
