package webui_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/signin"
)

// pageList is mycelNode.listHex's answer (values in hex).
type pageList struct {
	Entries []struct {
		Key      string `json:"key"`
		Versions []struct {
			Value   string  `json:"value"`
			Deleted bool    `json:"deleted"`
			HLC     float64 `json:"hlc"`
			Feed    string  `json:"feed"`
			Index   uint64  `json:"index"`
		} `json:"versions"`
	} `json:"entries"`
	Next string `json:"next"`
}

// pageRequest is mycelNode.requests' element.
type pageRequest struct {
	ID    string `json:"id"`
	Space string `json:"space"`
	Name  string `json:"name"`
	Feed  string `json:"feed"`
	Code  string `json:"code"`
	Via   string `json:"via"`
	Time  string `json:"time"`
}

// signedInPage starts a page with an IndexedDB store, signs it in to
// daemon a's space with an invite over a's WebSocket, approves it through
// a's API and waits until the page is a member whose view is a's.
func signedInPage(t *testing.T, url string, a *daemon, sp api.SpaceInfo) (*browser, pageSignin) {
	t.Helper()
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)
	br := newBrowser(t, artefactDir(t))
	startStored(br, url)
	var s pageSignin
	evalFor(br, 60*time.Second, "sign in", "signin("+jsArg(map[string]any{"invite": inv.Link, "addr": wsAddrOf(t, a), "timeoutMs": 40000})+")", &s)
	req := waitRequest(t, a, s.Feed)
	a.call("POST", "/v1/requests/"+req.ID+"/approve", api.ApproveParams{Code: s.SafetyCode}, nil)
	eventually(t, 60*time.Second, "the page's request is approved", func() bool {
		eval(br, "signinState", "signinState("+jsArg(sp.ID)+")", &s)
		if s.State != "waiting" && s.State != "approved" {
			t.Fatalf("the page's request ended %s: %s", s.State, s.Reason)
		}
		return s.State == "approved"
	})
	if s.Error != "" {
		t.Fatalf("the page's sign-in: %s", s.Error)
	}
	return br, s
}

// daemonGet returns the daemon's versions of key (none for a key never
// written).
func daemonGet(d *daemon, space, key string) api.Entry {
	d.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.api+"/v1/spaces/"+space+"/keys/"+url.PathEscape(key), nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.Entry
	if resp.StatusCode == http.StatusNotFound {
		return e
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET %s: %d %v", key, resp.StatusCode, err)
	}
	return e
}

// putFromPage puts key = value from the page (the call resolves once the
// write is stored in IndexedDB and announced).
func putFromPage(br *browser, space, key, value string) {
	var ok any
	evalFor(br, 30*time.Second, "put", "putHex("+jsArg(space)+", "+jsArg(key)+", "+jsArg(hex.EncodeToString([]byte(value)))+")", &ok)
}

// TestBrowserWrites (issue 14: "the browser writes, both daemons see it;
// a daemon writes, the browser shows it without a reload"; "Reload the
// tab: still a member with all its data"): a page signed in through daemon
// A puts and deletes; A holds its writes, authored by the page's feed.
// A writes; the page's onChange fires and its list shows it, without a
// reload. The tab is reloaded: its writes are still listed, before any
// network, and it writes again: its feed continues where IndexedDB left
// it, A takes the new entry, flags no fork, and the two views agree.
func TestBrowserWrites(t *testing.T) {
	url := nodePage(t)
	a := startDaemon(t, "a", "--listen", "/ip4/127.0.0.1/tcp/0/ws")
	sp := createSpace(t, a, "writes")
	putMany(t, a, sp.ID, 0, 10)
	br, s := signedInPage(t, url, a, sp)
	var w bool
	eval(br, "watchChanges", "watchChanges("+jsArg(sp.ID)+")", &w)

	putFromPage(br, sp.ID, "page/a", "from the page")
	putFromPage(br, sp.ID, "page/b", "second")
	var ok any
	evalFor(br, 30*time.Second, "del", "del("+jsArg(sp.ID)+", \"k000001\").then(() => true)", &ok)
	eventually(t, 30*time.Second, "A holds the page's writes", func() bool {
		e := daemonGet(a, sp.ID, "page/b")
		d := daemonGet(a, sp.ID, "k000001")
		return len(e.Versions) > 0 && len(d.Versions) > 0 && d.Versions[0].Deleted
	})
	e := daemonGet(a, sp.ID, "page/a")
	if len(e.Versions) != 1 || string(e.Versions[0].Value) != "from the page" || e.Versions[0].Feed != s.Feed || e.Versions[0].Index != 0 {
		t.Fatalf("A's page/a: %+v (the page's feed %s)", e, s.Feed)
	}

	// A writes: the page shows it without a reload, and told its watcher.
	var before int
	eval(br, "changes", "changes("+jsArg(sp.ID)+")", &before)
	if code := a.call("PUT", "/v1/spaces/"+sp.ID+"/keys/from-a", api.PutRequest{Value: []byte("hello page")}, nil); code != 204 {
		t.Fatalf("A's put: %d", code)
	}
	var l pageList
	eventually(t, 30*time.Second, "the page lists A's write", func() bool {
		eval(br, "list", "listHex("+jsArg(sp.ID)+", \"from-\")", &l)
		return len(l.Entries) == 1
	})
	var after int
	eval(br, "changes", "changes("+jsArg(sp.ID)+")", &after)
	if after <= before || l.Entries[0].Versions[0].Value != hex.EncodeToString([]byte("hello page")) {
		t.Fatalf("onChange fired %d times for A's write; the page lists %+v", after-before, l.Entries)
	}
	var devs []struct {
		Feed string `json:"feed"`
		Name string `json:"name"`
		Self bool   `json:"self"`
	}
	eval(br, "devices", "devices("+jsArg(sp.ID)+")", &devs)
	if len(devs) != 2 || !slices.ContainsFunc(devs, func(d struct {
		Feed string `json:"feed"`
		Name string `json:"name"`
		Self bool   `json:"self"`
	}) bool {
		return d.Self && d.Feed == s.Feed && d.Name == "Chromium on Linux"
	}) {
		t.Fatalf("the page's devices: %+v", devs)
	}
	var p pagePersisted
	eval(br, "persisted", "persisted()", &p)
	if p.Error != "" || p.Dropped != 0 || p.Pending != 0 {
		t.Fatalf("persisting: %+v", p)
	}

	// Reload.
	st := startStored(br, url)
	if len(st.Restored) != 1 || st.Restored[0].Refused != 0 || len(st.Restored[0].Reasons) != 0 {
		t.Fatalf("restored %+v", st.Restored)
	}
	eval(br, "list", "listHex("+jsArg(sp.ID)+", \"page/\")", &l)
	if len(l.Entries) != 2 || l.Entries[0].Key != "page/a" || l.Entries[1].Versions[0].Value != hex.EncodeToString([]byte("second")) {
		t.Fatalf("after the reload, before any network, the page lists %+v", l.Entries)
	}
	// The page writes again, then replicates: its feed continues at 3.
	putFromPage(br, sp.ID, "page/c", "after the reload")
	eventually(t, 60*time.Second, "the reloaded page replicates with A", func() bool {
		var rep struct{}
		if evalErr(br, "replicate", "replicate("+jsArg(map[string]any{"addr": wsAddrOf(t, a), "space": sp.ID, "timeoutMs": 20000})+").then(() => null)") != "" {
			return false
		}
		_ = rep
		e := daemonGet(a, sp.ID, "page/c")
		for deadline := time.Now().Add(10 * time.Second); len(e.Versions) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			e = daemonGet(a, sp.ID, "page/c")
		}
		return len(e.Versions) == 1
	})
	e = daemonGet(a, sp.ID, "page/c")
	if e.Versions[0].Feed != s.Feed || e.Versions[0].Index != 3 || string(e.Versions[0].Value) != "after the reload" {
		t.Fatalf("A's page/c: %+v", e)
	}
	info := spaceInfo(t, a, sp.ID)
	if len(info.Forked) != 0 {
		t.Fatalf("A flags forks: %v", info.Forked)
	}
	var v pageView
	eventually(t, 30*time.Second, "the page's view is A's", func() bool {
		eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
		info = spaceInfo(t, a, sp.ID)
		return v.Digest == info.Digest
	})
	t.Logf("after the reload the page wrote entry 3 of its feed; A: %d entries, digest %s = the page's, no fork", info.Entries, info.Digest)
}

// TestBrowserApprovesDaemon (issue 14: "The browser approves a new
// daemon's join request"): daemon B asks to join A's space with its
// password (B reaches A only; the request reaches the page through A's
// gossip). The page, a member signed in through A, lists the request with
// the safety code B shows; a wrong code is refused; with the right one
// the page appends B's add-writer op and publishes the approval. B
// becomes a writer, and its view converges with the page's.
func TestBrowserApprovesDaemon(t *testing.T) {
	url := nodePage(t)
	a := startDaemon(t, "a", "--listen", "/ip4/127.0.0.1/tcp/0/ws")
	sp := createSpace(t, a, "approve")
	putMany(t, a, sp.ID, 0, 10)
	const pw = "correct horse battery"
	a.call("PUT", "/v1/spaces/"+sp.ID+"/password", api.PasswordParams{Password: pw}, nil)
	br, ps := signedInPage(t, url, a, sp)
	ownLength := func() int {
		var st pageStatus
		eval(br, "status", "status("+jsArg(sp.ID)+")", &st)
		return int(st.Lengths[ps.Feed])
	}
	if l := ownLength(); l != 0 {
		t.Fatalf("the page's feed holds %d entries before it wrote", l)
	}

	b := startDaemon(t, "b", "--peer", a.tcpAddr())
	var js api.JoinState
	if code := b.call("POST", "/v1/join", api.JoinWith{Space: sp.ID, Password: pw}, &js); code >= 300 || js.Code == "" {
		t.Fatalf("B's join: %d %+v", code, js)
	}
	var req pageRequest
	eventually(t, 90*time.Second, "the page lists B's request", func() bool {
		var rs []pageRequest
		eval(br, "requests", "requests()", &rs)
		for _, r := range rs {
			if r.Space == sp.ID && r.Code == js.Code {
				req = r
				return true
			}
		}
		return false
	})
	if req.Via != "password" || req.Name != "b" {
		t.Fatalf("the page lists %+v", req)
	}
	t.Logf("the page lists B's request %s (%s) with B's safety code %s", req.ID, req.Name, req.Code)
	if msg := evalErr(br, "approve with a wrong code", "approve("+jsArg(req.ID)+", \"000-000\")"); !strings.Contains(msg, "another code") {
		t.Fatalf("approving with a wrong code: %q", msg)
	}
	var ok any
	evalFor(br, 30*time.Second, "approve", "approve("+jsArg(req.ID)+", "+jsArg(js.Code)+").then(() => true)", &ok)
	t0 := time.Now()
	if l := ownLength(); l != 1 {
		t.Fatalf("the page's feed holds %d entries after approving, want its add-writer op", l)
	}
	var binfo api.SpaceInfo
	eventually(t, 120*time.Second, "B is approved and a writer", func() bool {
		binfo = spaceInfo(t, b, sp.ID)
		if binfo.Join != nil && binfo.Join.State != api.JoinWaiting && binfo.Join.State != api.JoinApproved {
			t.Fatalf("B's join ended %s: %s", binfo.Join.State, binfo.Join.Reason)
		}
		return binfo.Writer
	})
	t.Logf("B is a writer %v after the page's approval", time.Since(t0).Round(time.Millisecond))
	// B writes; everyone converges.
	if code := b.call("PUT", "/v1/spaces/"+sp.ID+"/keys/from-b", api.PutRequest{Value: []byte("b was let in by a page")}, nil); code != 204 {
		t.Fatalf("B's put: %d", code)
	}
	var v pageView
	eventually(t, 60*time.Second, "B's view is the page's", func() bool {
		eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
		binfo = spaceInfo(t, b, sp.ID)
		return v.Digest == binfo.Digest && v.Writers == 3
	})
	var rs []pageRequest
	eval(br, "requests", "requests()", &rs)
	if len(rs) != 0 {
		t.Fatalf("the page still lists %+v", rs)
	}
	t.Logf("B's view digest %s = the page's, %d writers", binfo.Digest, v.Writers)
}

// TestBrowserPutVisible measures a put in the page until daemon A's API
// shows it (issue 14's benchmark: "a put in the browser visible on a
// daemon"), page and A on loopback WebSocket, 50 puts one after another.
// It logs p50 and p99 and fails if a put is not visible within 10 s.
func TestBrowserPutVisible(t *testing.T) {
	url := nodePage(t)
	a := startDaemon(t, "a", "--listen", "/ip4/127.0.0.1/tcp/0/ws")
	sp := createSpace(t, a, "latency")
	br, _ := signedInPage(t, url, a, sp)
	const n = 50
	var ds []time.Duration
	for i := range n {
		key := fmt.Sprintf("lat/%03d", i)
		t0 := time.Now()
		putFromPage(br, sp.ID, key, "v")
		for deadline := t0.Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			if len(daemonGet(a, sp.ID, key).Versions) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("put %d not visible on A after 10 s", i)
			}
		}
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	t.Logf("a put in the page visible on A (loopback WebSocket, %d puts): p50 %v, p99 %v, max %v",
		n, ds[n/2].Round(100*time.Microsecond), ds[n*99/100].Round(100*time.Microsecond), ds[n-1].Round(100*time.Microsecond))
}

// passwordRequest builds a join request for the space sealed under its
// password's request key, as a device asking with the password does, and
// signed by signer (the request's own feed key unless forged); it returns
// the envelope and the request's safety code.
func passwordRequest(t *testing.T, sid auth.SpaceID, key auth.RequestKey, name string, signer ed25519.PrivateKey, feed ed25519.PublicKey, at time.Time) ([]byte, string) {
	t.Helper()
	dk, err := auth.GenerateDeviceKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	req, err := auth.NewJoinRequest(sid, name, [32]byte(feed), dk.Public(), at, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := signin.Body{Kind: signin.KindJoinRequest, Request: raw}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ephemeral.Seal(key.Key, signer, ephemeral.Header{Topic: ephemeral.Topic(auth.DiscoveryKey(sid)), KeyKind: signin.KeyKind(key.Kind), KeyID: key.ID[:]}, plain, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b, auth.SafetyCode(req)
}

// TestBrowserRefusesForgedRequests: envelopes handed to a member page as
// gossip would hand them (mycelNode.gossipHex, the validator's own path):
// a join request signed by another key than the feed it names, one with a
// byte flipped, one an hour old, and the replay of a good one are refused
// and counted, none listed; the good one is listed once, with its safety
// code. Nothing of them is written.
func TestBrowserRefusesForgedRequests(t *testing.T) {
	url := nodePage(t)
	a := startDaemon(t, "a", "--listen", "/ip4/127.0.0.1/tcp/0/ws")
	sp := createSpace(t, a, "forged")
	const pw = "correct horse battery"
	a.call("PUT", "/v1/spaces/"+sp.ID+"/password", api.PasswordParams{Password: pw}, nil)
	br, ps := signedInPage(t, url, a, sp)
	sid := spaceID(t, sp)
	key := auth.PasswordRequestKey(auth.PasswordKey(pw, sid), sid)
	// The page holds the password's key once its view has A's record of it.
	eventually(t, 30*time.Second, "the page's view is A's", func() bool {
		var v pageView
		eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
		return v.Digest == spaceInfo(t, a, sp.ID).Digest
	})
	type gossip struct {
		Result  string         `json:"result"`
		Refused map[string]int `json:"refused"`
	}
	hand := func(what string, env []byte) gossip {
		var g gossip
		eval(br, what, "gossipHex("+jsArg(sp.ID)+", "+jsArg(hex.EncodeToString(env))+")", &g)
		if g.Result == "accept" {
			t.Fatalf("%s: accepted and forwarded", what)
		}
		return g
	}
	listed := func() []pageRequest {
		var rs []pageRequest
		eval(br, "requests", "requests()", &rs)
		return rs
	}
	now := time.Now()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := passwordRequest(t, sid, key, "forged", stranger, pub, now)
	hand("a request not signed by its feed", forged)
	good, code := passwordRequest(t, sid, key, "honest", priv, pub, now)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-10] ^= 1
	hand("a flipped byte", flipped)
	pub2, priv2, _ := ed25519.GenerateKey(rand.Reader)
	old, _ := passwordRequest(t, sid, key, "old", priv2, pub2, now.Add(-time.Hour))
	hand("an hour old", old)
	if rs := listed(); len(rs) != 0 {
		t.Fatalf("forged requests listed: %+v", rs)
	}
	hand("the honest request", good)
	g := hand("its replay", good)
	rs := listed()
	if len(rs) != 1 || rs[0].Code != code || rs[0].Name != "honest" || rs[0].Via != "password" {
		t.Fatalf("listed %+v, want the honest request with code %s", rs, code)
	}
	refused := 0
	for reason, n := range g.Refused {
		refused += n
		t.Logf("refused %d: %s", n, reason)
	}
	if refused != 4 {
		t.Fatalf("%d sign-in envelopes refused, want 4: %v", refused, g.Refused)
	}
	var st pageStatus
	eval(br, "status", "status("+jsArg(sp.ID)+")", &st)
	if l := st.Lengths[ps.Feed]; l != 0 {
		t.Fatalf("the page wrote %d entries receiving requests", l)
	}
}

// TestBrowserWritesThroughRelay: the same with the relay as the only way
// between the page and daemon A (A reaches only the relay; the page dials
// A's circuit through the relay's WebSocket): the page signs in, puts and
// deletes, and A holds its writes; A writes and the page lists it without
// a reload. Every session of the page runs over the circuit.
func TestBrowserWritesThroughRelay(t *testing.T) {
	url := nodePage(t)
	r := startRelay(t)
	a := startDaemon(t, "a", "--relay", relayAddr(t, r, isTCP))
	circuit := daemonCircuit(t, a, r)
	sp := createSpace(t, a, "relayed writes")
	putMany(t, a, sp.ID, 0, 10)
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)
	br := newBrowser(t, artefactDir(t))
	startStored(br, url)
	var s pageSignin
	evalFor(br, 90*time.Second, "sign in", "signin("+jsArg(map[string]any{"invite": inv.Link, "addr": circuit, "timeoutMs": 40000})+")", &s)
	req := waitRequest(t, a, s.Feed)
	a.call("POST", "/v1/requests/"+req.ID+"/approve", api.ApproveParams{Code: s.SafetyCode}, nil)
	eventually(t, 90*time.Second, "the page's request is approved", func() bool {
		eval(br, "signinState", "signinState("+jsArg(sp.ID)+")", &s)
		if s.State != "waiting" && s.State != "approved" {
			t.Fatalf("the page's request ended %s: %s", s.State, s.Reason)
		}
		return s.State == "approved"
	})
	t0 := time.Now()
	putFromPage(br, sp.ID, "relayed/a", "through the relay")
	var ok any
	evalFor(br, 30*time.Second, "del", "del("+jsArg(sp.ID)+", \"k000002\").then(() => true)", &ok)
	eventually(t, 60*time.Second, "A holds the page's writes", func() bool {
		e := daemonGet(a, sp.ID, "relayed/a")
		d := daemonGet(a, sp.ID, "k000002")
		return len(e.Versions) == 1 && e.Versions[0].Feed == s.Feed && len(d.Versions) > 0 && d.Versions[0].Deleted
	})
	t.Logf("the page's put and delete reached A through the relay in %v", time.Since(t0).Round(time.Millisecond))
	if code := a.call("PUT", "/v1/spaces/"+sp.ID+"/keys/from-a", api.PutRequest{Value: []byte("back through the relay")}, nil); code != 204 {
		t.Fatalf("A's put: %d", code)
	}
	var l pageList
	eventually(t, 60*time.Second, "the page lists A's write", func() bool {
		eval(br, "list", "listHex("+jsArg(sp.ID)+", \"from-\")", &l)
		return len(l.Entries) == 1
	})
	var ps pageStatus
	eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
	for _, x := range ps.Sessions {
		if !strings.Contains(x.Addr, "/p2p-circuit") {
			t.Fatalf("a session not through the relay: %s", x.Addr)
		}
	}
	var v pageView
	eventually(t, 30*time.Second, "the page's view is A's", func() bool {
		eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
		return v.Digest == spaceInfo(t, a, sp.ID).Digest
	})
}
