package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/feed/memstore"
)

// fakeWriters is the writer set of a few spaces, as a Mirror would follow
// them.
type fakeWriters struct {
	mu sync.Mutex
	w  map[auth.SpaceID]map[feed.PublicKey]bool
}

func (f *fakeWriters) isWriter(id auth.SpaceID, k feed.PublicKey) (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.w[id]
	return ok, s[k]
}

// add makes a new writer of space id (a new space when id is zero) and
// returns the space and the writer's key.
func (f *fakeWriters) add(id auth.SpaceID) (auth.SpaceID, ed25519.PrivateKey) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == (auth.SpaceID{}) {
		id = auth.SpaceID(priv.Public().(ed25519.PublicKey))
	}
	if f.w == nil {
		f.w = map[auth.SpaceID]map[feed.PublicKey]bool{}
	}
	if f.w[id] == nil {
		f.w[id] = map[feed.PublicKey]bool{}
	}
	f.w[id][feed.PublicKey(priv.Public().(ed25519.PublicKey))] = true
	return id, priv
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type dirHarness struct {
	t   *testing.T
	d   *Directory
	h   host.Host
	st  feed.Storage
	w   *fakeWriters
	clk *clock
}

func newDirHarness(t *testing.T, st feed.Storage, lim DirectoryLimits) *dirHarness {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if st == nil {
		st = memstore.New()
	}
	x := &dirHarness{t: t, h: h, st: st, w: &fakeWriters{}, clk: &clock{t: time.Now()}}
	if x.d, err = newDirectory(h, st, x.w, lim, nil, x.clk.now); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.d.Close() })
	return x
}

func (x *dirHarness) client() host.Host {
	x.t.Helper()
	c, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(func() { c.Close() })
	if err := c.Connect(context.Background(), peer.AddrInfo{ID: x.h.ID(), Addrs: x.h.Addrs()}); err != nil {
		x.t.Fatal(err)
	}
	return c
}

// raw sends an encoded request as it is and returns the reply's error.
func (x *dirHarness) raw(c host.Host, req []byte) error {
	x.t.Helper()
	st, err := c.NewStream(context.Background(), x.h.ID(), LocatorProtocol)
	if err != nil {
		x.t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	st.Write(req)
	st.CloseWrite()
	code, _, err := decodeDirReply(st)
	if err != nil {
		x.t.Fatal(err)
	}
	return dirError(code)
}

func newLocator(space auth.SpaceID, expires time.Time) (Locator, [32]byte) {
	var l Locator
	l.Space, l.Expires = space, time.Unix(expires.Unix(), 0)
	rand.Read(l.ID[:])
	var secret [32]byte
	rand.Read(secret[:])
	l.RemovalHash = sha256.Sum256(secret[:])
	l.Blob = make([]byte, 100)
	rand.Read(l.Blob)
	return l, secret
}

// TestLocatorDepositLookupRemove: a writer deposits, anyone looks it up
// and gets the blob and expiry, the removal secret removes it, a wrong
// secret does not; an unknown invite ID is not found.
func TestLocatorDepositLookupRemove(t *testing.T) {
	ctx := context.Background()
	x := newDirHarness(t, nil, DirectoryLimits{})
	sid, key := x.w.add(auth.SpaceID{})
	member, joiner := x.client(), x.client()
	loc, secret := newLocator(sid, x.clk.now().Add(time.Hour))
	if err := DepositLocator(ctx, member, x.h.ID(), loc, key, x.clk.now()); err != nil {
		t.Fatal(err)
	}
	exp, blob, err := LookupLocator(ctx, joiner, x.h.ID(), loc.ID)
	if err != nil || !exp.Equal(loc.Expires) || !bytes.Equal(blob, loc.Blob) {
		t.Fatalf("lookup: %v %v %v", exp, len(blob), err)
	}
	var unknown auth.InviteID
	rand.Read(unknown[:])
	if _, _, err := LookupLocator(ctx, joiner, x.h.ID(), unknown); !errors.Is(err, ErrDirectoryNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	var wrong [32]byte
	if err := RemoveLocator(ctx, joiner, x.h.ID(), loc.ID, wrong); !errors.Is(err, ErrDirectoryForbidden) {
		t.Fatalf("removal with a wrong secret: %v", err)
	}
	if err := RemoveLocator(ctx, member, x.h.ID(), loc.ID, secret); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LookupLocator(ctx, joiner, x.h.ID(), loc.ID); !errors.Is(err, ErrDirectoryNotFound) {
		t.Fatalf("after removal: %v", err)
	}
	if n := x.d.Counts().Locators; n != 0 {
		t.Fatalf("%d locators", n)
	}
}

// TestLocatorNonMemberRefused: a deposit signed by a key that is not a
// writer of the space is refused, one for a space the relay does not
// mirror too, and one signed for another relay; none is stored.
func TestLocatorNonMemberRefused(t *testing.T) {
	ctx := context.Background()
	x := newDirHarness(t, nil, DirectoryLimits{})
	sid, _ := x.w.add(auth.SpaceID{})
	_, outsider := x.w.add(auth.SpaceID{}) // a writer of another space
	c := x.client()
	loc, _ := newLocator(sid, x.clk.now().Add(time.Hour))
	if err := DepositLocator(ctx, c, x.h.ID(), loc, outsider, x.clk.now()); !errors.Is(err, ErrDirectoryForbidden) {
		t.Fatalf("outsider's deposit: %v", err)
	}
	var nowhere auth.SpaceID
	rand.Read(nowhere[:])
	loc2, _ := newLocator(nowhere, x.clk.now().Add(time.Hour))
	if err := DepositLocator(ctx, c, x.h.ID(), loc2, outsider, x.clk.now()); !errors.Is(err, ErrUnknownSpace) {
		t.Fatalf("deposit for a space not mirrored: %v", err)
	}
	// Signed for another relay, sent here.
	_, key := x.w.add(sid)
	q := &dirRequest{Op: opPutLocator, Space: sid, Time: x.clk.now().Unix(), ID: loc.ID, Expires: loc.Expires.Unix(), Blob: loc.Blob}
	if err := q.sign(c.ID(), key); err != nil {
		t.Fatal(err)
	}
	req, _ := q.encode()
	if err := x.raw(c, req); !errors.Is(err, ErrDirectoryForbidden) {
		t.Fatalf("a deposit signed for another relay: %v", err)
	}
	if n := x.d.Counts().Locators; n != 0 {
		t.Fatalf("%d locators stored", n)
	}
}

// TestLocatorReplay: a deposit replayed after its removal is refused (the
// tombstone), and so is one replayed once the tombstone is gone (its
// signed time is out of the window); a deposit signed too far in the
// future is refused.
func TestLocatorReplay(t *testing.T) {
	ctx := context.Background()
	x := newDirHarness(t, nil, DirectoryLimits{})
	sid, key := x.w.add(auth.SpaceID{})
	c := x.client()
	loc, secret := newLocator(sid, x.clk.now().Add(48*time.Hour))
	q := &dirRequest{Op: opPutLocator, Space: sid, Time: x.clk.now().Unix(), ID: loc.ID, Expires: loc.Expires.Unix(),
		Removal: loc.RemovalHash, Blob: loc.Blob}
	if err := q.sign(x.h.ID(), key); err != nil {
		t.Fatal(err)
	}
	req, _ := q.encode()
	if err := x.raw(c, req); err != nil {
		t.Fatal(err)
	}
	x.clk.add(time.Minute)
	if err := RemoveLocator(ctx, c, x.h.ID(), loc.ID, secret); err != nil {
		t.Fatal(err)
	}
	if err := x.raw(c, req); !errors.Is(err, ErrDirectoryStale) {
		t.Fatalf("replay after the removal: %v", err)
	}
	x.clk.add(3 * MaxClockSkew)
	if err := x.raw(c, req); !errors.Is(err, ErrDirectoryStale) {
		t.Fatalf("replay after the window: %v", err)
	}
	if _, _, err := LookupLocator(ctx, c, x.h.ID(), loc.ID); !errors.Is(err, ErrDirectoryNotFound) {
		t.Fatalf("the replayed locator is back: %v", err)
	}
	loc3, _ := newLocator(sid, x.clk.now().Add(time.Hour))
	if err := DepositLocator(ctx, c, x.h.ID(), loc3, key, x.clk.now().Add(2*MaxClockSkew)); !errors.Is(err, ErrDirectoryStale) {
		t.Fatalf("signed in the future: %v", err)
	}
	loc4, _ := newLocator(sid, x.clk.now().Add(40*24*time.Hour))
	if err := DepositLocator(ctx, c, x.h.ID(), loc4, key, x.clk.now()); !errors.Is(err, ErrMalformedDirectory) {
		t.Fatalf("expiry in 40 days: %v", err)
	}
}

// TestLocatorFlood: a member depositing without end fills its space's
// quota and then its peer's rate, nothing more; another space's member
// is still served; expired locators are forgotten and their records
// deleted.
func TestLocatorFlood(t *testing.T) {
	ctx := context.Background()
	x := newDirHarness(t, nil, DirectoryLimits{LocatorsPerSpace: 8, MaxLocators: 10, WritesPerPeer: 20, LookupsPerPeer: 30})
	sid, key := x.w.add(auth.SpaceID{})
	flooder := x.client()
	full, busy := 0, 0
	for range 50 {
		loc, _ := newLocator(sid, x.clk.now().Add(time.Hour))
		err := DepositLocator(ctx, flooder, x.h.ID(), loc, key, x.clk.now())
		switch {
		case err == nil:
		case errors.Is(err, ErrDirectoryFull):
			full++
		case errors.Is(err, ErrDirectoryBusy):
			busy++
		default:
			t.Fatal(err)
		}
	}
	if n := x.d.Counts().Locators; n != 8 || full != 12 || busy != 30 {
		t.Fatalf("%d stored, %d full, %d busy", n, full, busy)
	}
	other, okey := x.w.add(auth.SpaceID{})
	loc, _ := newLocator(other, x.clk.now().Add(time.Hour))
	if err := DepositLocator(ctx, x.client(), x.h.ID(), loc, okey, x.clk.now()); err != nil {
		t.Fatalf("another space's member: %v", err)
	}
	// The overall bound (10): a third space gets one more, then none.
	third, tkey := x.w.add(auth.SpaceID{})
	tc := x.client()
	for i := range 2 {
		l, _ := newLocator(third, x.clk.now().Add(time.Hour))
		err := DepositLocator(ctx, tc, x.h.ID(), l, tkey, x.clk.now())
		if i == 0 && err != nil || i == 1 && !errors.Is(err, ErrDirectoryFull) {
			t.Fatalf("locator %d overall: %v", 10+i, err)
		}
	}
	// Lookups for unknown codes: not found, then busy; others served.
	scanner := x.client()
	notFound, busy := 0, 0
	for range 40 {
		var id auth.InviteID
		rand.Read(id[:])
		_, _, err := LookupLocator(ctx, scanner, x.h.ID(), id)
		switch {
		case errors.Is(err, ErrDirectoryNotFound):
			notFound++
		case errors.Is(err, ErrDirectoryBusy):
			busy++
		default:
			t.Fatal(err)
		}
	}
	if notFound != 30 || busy != 10 {
		t.Fatalf("scanner: %d not found, %d busy", notFound, busy)
	}
	if _, _, err := LookupLocator(ctx, x.client(), x.h.ID(), loc.ID); err != nil {
		t.Fatalf("a joiner while the scanner is busy: %v", err)
	}
	// Expiry.
	x.clk.add(2 * time.Hour)
	if _, _, err := LookupLocator(ctx, x.client(), x.h.ID(), loc.ID); !errors.Is(err, ErrDirectoryNotFound) {
		t.Fatalf("expired: %v", err)
	}
	if n := x.d.Counts().Locators; n != 0 {
		t.Fatalf("%d locators after expiry", n)
	}
	records := 0
	x.st.Scan([]byte("L"), []byte("M"), func(k, v []byte) error { records++; return nil })
	if records != 0 {
		t.Fatalf("%d locator records after expiry", records)
	}
}

// TestAliases: first come first served; a non-member cannot register a
// name for someone's space nor take one over; a writer of the holding
// space moves and drops it; a registration replayed after the drop is
// refused; names are normalised.
func TestAliases(t *testing.T) {
	ctx := context.Background()
	x := newDirHarness(t, nil, DirectoryLimits{AliasesPerSpace: 2})
	family, alice := x.w.add(auth.SpaceID{})
	_, bob := x.w.add(family)
	work, mallory := x.w.add(auth.SpaceID{}) // a space of mallory's own
	c := x.client()
	now := x.clk.now()
	if err := RegisterAlias(ctx, c, x.h.ID(), "family", family, mallory, now); !errors.Is(err, ErrDirectoryForbidden) {
		t.Fatalf("a non-member registering a name for someone's space: %v", err)
	}
	if err := RegisterAlias(ctx, c, x.h.ID(), "  Family ", family, alice, now); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveAlias(ctx, x.client(), x.h.ID(), "FAMILY")
	if err != nil || got != family {
		t.Fatalf("resolve: %v %v", got, err)
	}
	if err := RegisterAlias(ctx, c, x.h.ID(), "family", work, mallory, now); !errors.Is(err, ErrAliasTaken) {
		t.Fatalf("taking a held name: %v", err)
	}
	if err := DropAlias(ctx, c, x.h.ID(), "family", mallory, now); !errors.Is(err, ErrDirectoryForbidden) {
		t.Fatalf("an outsider dropping it: %v", err)
	}
	for _, bad := range []string{"", "a--b", "-a", "a-", "é", "a b", "a.b", string(make([]byte, 33))} {
		if err := RegisterAlias(ctx, c, x.h.ID(), bad, family, alice, now); !errors.Is(err, ErrMalformedDirectory) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	// Bob, another writer of the space, drops it; alice's registration
	// replayed is refused.
	q := &dirRequest{Op: opPutAlias, Space: family, Time: now.Unix() + 1, Name: "home"}
	q.sign(x.h.ID(), alice)
	req, _ := q.encode()
	if err := x.raw(c, req); err != nil {
		t.Fatal(err)
	}
	x.clk.add(time.Second)
	if err := DropAlias(ctx, c, x.h.ID(), "home", bob, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := x.raw(c, req); !errors.Is(err, ErrDirectoryStale) {
		t.Fatalf("registration replayed after the drop: %v", err)
	}
	x.clk.add(3 * MaxClockSkew)
	if err := x.raw(c, req); !errors.Is(err, ErrDirectoryStale) {
		t.Fatalf("registration replayed after the window: %v", err)
	}
	if _, err := ResolveAlias(ctx, c, x.h.ID(), "home"); !errors.Is(err, ErrDirectoryNotFound) {
		t.Fatalf("dropped alias resolves: %v", err)
	}
	// Per space bound.
	now = x.clk.now()
	for i, name := range []string{"b", "c"} {
		err := RegisterAlias(ctx, c, x.h.ID(), name, family, alice, now)
		if i == 0 && err != nil || i == 1 && !errors.Is(err, ErrDirectoryFull) {
			t.Fatalf("alias %d of the space: %v", i+2, err)
		}
	}
	// A writer of both spaces moves a name.
	_, both := x.w.add(family)
	x.w.mu.Lock()
	x.w.w[work][feed.PublicKey(both.Public().(ed25519.PublicKey))] = true
	x.w.mu.Unlock()
	if err := RegisterAlias(ctx, c, x.h.ID(), "family", work, both, now.Add(time.Second)); err != nil {
		t.Fatalf("a writer of both moves the name: %v", err)
	}
	if got, _ := ResolveAlias(ctx, c, x.h.ID(), "family"); got != work {
		t.Fatalf("moved alias resolves to %v", got)
	}
}

// TestDirectorySurvivesRestart: locators and aliases are in the relay's
// store and come back after a restart; expired ones do not.
func TestDirectorySurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	x := newDirHarness(t, st, DirectoryLimits{})
	sid, key := x.w.add(auth.SpaceID{})
	c := x.client()
	loc, _ := newLocator(sid, x.clk.now().Add(time.Hour))
	short, _ := newLocator(sid, x.clk.now().Add(time.Minute))
	for _, l := range []Locator{loc, short} {
		if err := DepositLocator(ctx, c, x.h.ID(), l, key, x.clk.now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := RegisterAlias(ctx, c, x.h.ID(), "kept", sid, key, x.clk.now()); err != nil {
		t.Fatal(err)
	}
	x.d.Close()
	st.Close()

	st2, err := badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	x.clk.add(2 * time.Minute)
	d2, err := newDirectory(x.h, st2, x.w, DirectoryLimits{}, nil, x.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	if n := d2.Counts(); n.Locators != 1 || n.Aliases != 1 {
		t.Fatalf("after restart: %+v", n)
	}
	if _, blob, err := LookupLocator(ctx, c, x.h.ID(), loc.ID); err != nil || !bytes.Equal(blob, loc.Blob) {
		t.Fatalf("after restart: %v", err)
	}
	if _, _, err := LookupLocator(ctx, c, x.h.ID(), short.ID); !errors.Is(err, ErrDirectoryNotFound) {
		t.Fatalf("expired across the restart: %v", err)
	}
	if got, err := ResolveAlias(ctx, c, x.h.ID(), "kept"); err != nil || got != sid {
		t.Fatalf("alias after restart: %v %v", got, err)
	}
}

// TestDirectoryCodec: every operation round-trips; garbage and truncation
// are malformed; reply codes map back to their errors.
func TestDirectoryCodec(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	loc, _ := newLocator(auth.SpaceID{1}, time.Now().Add(time.Hour))
	reqs := []*dirRequest{
		{Op: opPutLocator, Space: loc.Space, Time: 5, ID: loc.ID, Expires: 7, Removal: loc.RemovalHash, Blob: loc.Blob},
		{Op: opGetLocator, ID: loc.ID},
		{Op: opDelLocator, ID: loc.ID, Removal: [32]byte{3}},
		{Op: opPutAlias, Space: loc.Space, Time: 9, Name: "abc"},
		{Op: opDelAlias, Time: 9, Name: "abc"},
		{Op: opGetAlias, Name: "abc"},
	}
	for _, q := range reqs {
		if q.signed() {
			q.sign("relay", key)
		}
		b, err := q.encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeDirRequest(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("op %d: %v", q.Op, err)
		}
		again, _ := got.encode()
		if !bytes.Equal(again, b) || q.signed() && !got.verify("relay") {
			t.Fatalf("op %d: round trip differs", q.Op)
		}
		for i := range len(b) - 1 {
			if _, err := decodeDirRequest(bytes.NewReader(b[:i])); !errors.Is(err, ErrMalformedDirectory) {
				t.Fatalf("op %d truncated to %d: %v", q.Op, i, err)
			}
		}
	}
	for _, in := range [][]byte{{2, 1, 0, 0}, {1, 99, 0, 0}, {1, 2, 0xff, 0xff}, {1, 2, 0, 17}} {
		if _, err := decodeDirRequest(bytes.NewReader(append(in, make([]byte, 17)...))); !errors.Is(err, ErrMalformedDirectory) {
			t.Errorf("%x: %v", in, err)
		}
	}
	for code := byte(0); code < 16; code++ {
		err := dirError(code)
		want := code
		if code > dirTaken {
			want = dirInternal
		}
		if got := dirCode(err); got != want || (code == dirOK) != (err == nil) || code != dirOK && !errors.Is(err, ErrDirectoryRefused) {
			t.Errorf("code %d: %v reads back as %d", code, err, got)
		}
	}
}

// FuzzDirectoryRequest: whatever a peer sends, the decoder reads at most
// maxLocatorRequest bytes, and what it accepts encodes back to the same
// bytes.
func FuzzDirectoryRequest(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	q := &dirRequest{Op: opPutLocator, Blob: []byte{1, 2, 3}}
	q.sign("r", key)
	b, _ := q.encode()
	f.Add(b)
	q = &dirRequest{Op: opPutAlias, Name: "x"}
	q.sign("r", key)
	b, _ = q.encode()
	f.Add(b)
	f.Add([]byte{1, 2, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{1, 6, 0, 2, 1, 'a'})
	f.Add([]byte{1, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		q, err := decodeDirRequest(r)
		if read := len(in) - r.Len(); read > maxLocatorRequest {
			t.Fatalf("read %d bytes", read)
		}
		if err != nil {
			return
		}
		again, err := q.encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, in[:len(again)]) {
			t.Fatalf("re-encoded differently")
		}
	})
}

// FuzzDirectoryReply: the client reads at most 3 + maxLocatorBody bytes
// of a reply, and the locator and alias replies it accepts are in bounds.
func FuzzDirectoryReply(f *testing.F) {
	f.Add(encodeDirReply(0, make([]byte, 40)))
	f.Add([]byte{0, 0xff, 0xff})
	f.Add([]byte{7, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		code, body, err := decodeDirReply(r)
		if read := len(in) - r.Len(); read > 3+maxLocatorBody {
			t.Fatalf("read %d bytes", read)
		}
		if err == nil && (len(body) > maxLocatorBody || (code == dirOK) != (dirError(code) == nil)) {
			t.Fatalf("code %d, body of %d", code, len(body))
		}
	})
}

// FuzzDirectoryRecords: records read back from the store decode or are
// refused, never panic; what decodes encodes back the same.
func FuzzDirectoryRecords(f *testing.F) {
	f.Add(encodeLocator(&locEntry{expires: time.Unix(9, 0)}, []byte{1}))
	f.Add(encodeAlias(&aliasEntry{at: 3}))
	f.Fuzz(func(t *testing.T, in []byte) {
		if e, blob, err := decodeLocator(in); err == nil && !bytes.Equal(encodeLocator(e, blob), in) {
			t.Fatalf("locator record re-encoded differently")
		}
		if a, err := decodeAlias(in); err == nil && a.gone && !bytes.Equal(encodeAlias(a), in) {
			t.Fatalf("alias record re-encoded differently")
		}
	})
}

// FuzzNormaliseAlias: a normalised alias is a fixed point, in bounds, of
// the allowed characters.
func FuzzNormaliseAlias(f *testing.F) {
	f.Add("Family")
	f.Add("a-b")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormaliseAlias(s)
		if err != nil {
			return
		}
		if again, err := NormaliseAlias(n); err != nil || again != n || len(n) > MaxAliasLen || len(n) == 0 {
			t.Fatalf("%q → %q → %q %v", s, n, again, err)
		}
	})
}

// BenchmarkLocatorLookup: one lookup (a stream, a request, a reply) from
// a client to the directory over loopback TCP; and the memory the
// directory holds per live locator (its index; the bytes stay in the
// store).
func BenchmarkLocatorLookup(b *testing.B) {
	ctx := context.Background()
	h, _ := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	defer h.Close()
	w := &fakeWriters{}
	d, err := newDirectory(h, memstore.New(), w, DirectoryLimits{LookupsPerPeer: 1 << 30, WritesPerPeer: 1 << 30, MaxLocators: 1 << 20, LocatorsPerSpace: 1 << 20}, nil, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	c, _ := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	defer c.Close()
	if err := c.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		b.Fatal(err)
	}
	sid, key := w.add(auth.SpaceID{})
	loc, _ := newLocator(sid, time.Now().Add(time.Hour))
	loc.Blob = make([]byte, 200)
	if err := DepositLocator(ctx, c, h.ID(), loc, key, time.Now()); err != nil {
		b.Fatal(err)
	}
	// Memory per locator: 10,000 more straight into the directory.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d.mu.Lock()
	for range 10000 {
		var id auth.InviteID
		rand.Read(id[:])
		d.addLoc(id, &locEntry{space: sid, expires: time.Now().Add(time.Hour)})
	}
	d.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perLocator := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / 10000
	b.ResetTimer()
	for range b.N {
		if _, _, err := LookupLocator(ctx, c, h.ID(), loc.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perLocator, "heap-B/locator")
}
