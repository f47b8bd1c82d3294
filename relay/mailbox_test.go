package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/signin"
)

// fakeSpaces is a writer set per space, changed by the test.
type fakeSpaces struct {
	mu      sync.Mutex
	writers map[auth.SpaceID][]feed.PublicKey
}

func (f *fakeSpaces) Writers(id auth.SpaceID) ([]feed.PublicKey, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.writers[id]
	return slices.Clone(w), ok
}

func (f *fakeSpaces) Spaces() []auth.SpaceID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []auth.SpaceID
	for id := range f.writers {
		out = append(out, id)
	}
	return out
}

func (f *fakeSpaces) set(id auth.SpaceID, ws ...*device) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []feed.PublicKey
	for _, w := range ws {
		keys = append(keys, w.key())
	}
	f.writers[id] = keys
}

// device is a signing key: a member's feed key, or a signing-in device's.
type device struct{ priv ed25519.PrivateKey }

func newDevice() *device {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return &device{priv}
}

func (d *device) key() feed.PublicKey { return feed.PublicKey(d.priv.Public().(ed25519.PublicKey)) }

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func randomSpace() auth.SpaceID {
	var id auth.SpaceID
	rand.Read(id[:])
	return id
}

// envelope seals a body for space id by d at now, of a key kind and
// key ID.
func envelope(t testing.TB, id auth.SpaceID, d *device, kind uint32, keyID []byte, now time.Time, body string) []byte {
	t.Helper()
	var key [ephemeral.KeySize]byte
	e, err := ephemeral.Seal(key, d.priv, ephemeral.Header{Topic: ephemeral.Topic(auth.DiscoveryKey(id)), KeyKind: kind, KeyID: keyID},
		[]byte(body), now, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var memberKID = bytes.Repeat([]byte{1}, 16)

func member(t testing.TB, id auth.SpaceID, d *device, now time.Time, body string) []byte {
	return envelope(t, id, d, 1, memberKID, now, body)
}

type mbFixture struct {
	mb     *Mailbox
	spaces *fakeSpaces
	clock  *testClock
}

func newMailboxFixture(t *testing.T, st feed.Storage, lim MailboxLimits) *mbFixture {
	t.Helper()
	f := &mbFixture{spaces: &fakeSpaces{writers: map[auth.SpaceID][]feed.PublicKey{}},
		clock: &testClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}}
	var err error
	f.mb, err = newMailbox(st, f.spaces, lim, nil, nil, f.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *mbFixture) deposit(t *testing.T, id auth.SpaceID, envs ...[]byte) []error {
	t.Helper()
	errs, err := f.mb.Deposit("peer", id, envs)
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

func (f *mbFixture) mustDeposit(t *testing.T, id auth.SpaceID, envs ...[]byte) {
	t.Helper()
	for i, err := range f.deposit(t, id, envs...) {
		if err != nil {
			t.Fatalf("deposit %d: %v", i, err)
		}
	}
}

// fetchAll fetches until the relay says there is no more.
func (f *mbFixture) fetchAll(t *testing.T, id auth.SpaceID, d *device) [][]byte {
	t.Helper()
	var out [][]byte
	for range 100 {
		res, err := f.mb.Fetch(id, d.key())
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		out = append(out, res.Envelopes...)
		if !res.More {
			return out
		}
	}
	t.Fatal("fetch never ends")
	return nil
}

func sameEnvelopes(t *testing.T, what string, got [][]byte, want ...[]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d envelopes, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: envelope %d differs", what, i)
		}
	}
}

// TestMailboxPointer: each device gets each envelope once, in order, never
// its own; an envelope is deleted once every current writer took it (its
// sender counts as having it).
func TestMailboxPointer(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{})
	id := randomSpace()
	a, b, c := newDevice(), newDevice(), newDevice()
	f.spaces.set(id, a, b, c)
	now := f.clock.now()
	e1, e2 := member(t, id, a, now, "one"), member(t, id, a, now, "two")
	f.mustDeposit(t, id, e1, e2)
	if got := f.fetchAll(t, id, a); len(got) != 0 {
		t.Fatalf("the sender got its own %d envelopes", len(got))
	}
	sameEnvelopes(t, "B", f.fetchAll(t, id, b), e1, e2)
	sameEnvelopes(t, "B again", f.fetchAll(t, id, b))
	e3 := member(t, id, b, now, "three")
	f.mustDeposit(t, id, e3)
	sameEnvelopes(t, "B after its own", f.fetchAll(t, id, b))
	if k := f.mb.Counts().Kept; k != 3 {
		t.Fatalf("kept %d before C fetched, want 3", k)
	}
	sameEnvelopes(t, "C", f.fetchAll(t, id, c), e1, e2, e3)
	// e1, e2: A sent, B and C took. e3: B sent, C took, A not yet.
	if k := f.mb.Counts().Kept; k != 1 {
		t.Fatalf("kept %d after C fetched, want 1 (e3, which A has not taken)", k)
	}
	sameEnvelopes(t, "A", f.fetchAll(t, id, a), e3)
	if c := f.mb.Counts(); c.Kept != 0 || c.Taken != 3 {
		t.Fatalf("after every device took every envelope: %+v", c)
	}
	// A late copy of what every device took (a daemon's queued deposit of
	// an envelope the router kept) is not kept and delivered again.
	if errs := f.deposit(t, id, e1); !errors.Is(errs[0], ErrMailboxDuplicate) {
		t.Fatalf("a copy of a taken envelope: %v, want a duplicate", errs[0])
	}
	sameEnvelopes(t, "B after the copy", f.fetchAll(t, id, b))
}

// TestMailboxRemovedDeviceHoldsNothing: a device removed from the writer
// set no longer holds envelopes back, nor may it fetch.
func TestMailboxRemovedDeviceHoldsNothing(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{})
	id := randomSpace()
	a, b, c := newDevice(), newDevice(), newDevice()
	f.spaces.set(id, a, b, c)
	e := member(t, id, a, f.clock.now(), "x")
	f.mustDeposit(t, id, e)
	sameEnvelopes(t, "B", f.fetchAll(t, id, b), e)
	if k := f.mb.Counts().Kept; k != 1 {
		t.Fatalf("kept %d while C has not taken it", k)
	}
	f.spaces.set(id, a, b) // C removed
	if err := f.mb.Sweep(); err != nil {
		t.Fatal(err)
	}
	if k := f.mb.Counts().Kept; k != 0 {
		t.Fatalf("kept %d after C's removal: every current device took it", k)
	}
	if _, err := f.mb.Fetch(id, c.key()); !errors.Is(err, ErrMailboxForbidden) {
		t.Fatalf("removed device's fetch: %v", err)
	}
}

// TestMailboxExpiry: an envelope nobody took is deleted at expiry; before
// it, it is kept.
func TestMailboxExpiry(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{Expiry: time.Hour})
	id := randomSpace()
	a, b := newDevice(), newDevice()
	f.spaces.set(id, a, b)
	f.mustDeposit(t, id, member(t, id, a, f.clock.now(), "x"))
	f.clock.add(59 * time.Minute)
	f.mb.Sweep()
	if k := f.mb.Counts().Kept; k != 1 {
		t.Fatalf("kept %d before expiry", k)
	}
	f.clock.add(time.Minute)
	f.mb.Sweep()
	if c := f.mb.Counts(); c.Kept != 0 || c.Expired != 1 {
		t.Fatalf("after expiry: %+v", c)
	}
	if got := f.fetchAll(t, id, b); len(got) != 0 {
		t.Fatalf("B got %d expired envelopes", len(got))
	}
}

// TestMailboxQuota: a space over its quota is refused, whole envelopes,
// while another space keeps taking envelopes; what was taken frees room.
func TestMailboxQuota(t *testing.T) {
	one := len(member(t, randomSpace(), newDevice(), time.Now(), "quota test body"))
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{BytesPerSpace: int64(3*one + one/2), SenderShare: 1})
	x, y := randomSpace(), randomSpace()
	a, b := newDevice(), newDevice()
	f.spaces.set(x, a, b)
	f.spaces.set(y, a, b)
	now := f.clock.now()
	for i := range 3 {
		f.mustDeposit(t, x, member(t, x, a, now, "quota test body"))
		_ = i
	}
	errs := f.deposit(t, x, member(t, x, a, now, "quota test body"))
	if !errors.Is(errs[0], ErrMailboxFull) {
		t.Fatalf("fourth envelope in a full space: %v", errs[0])
	}
	f.mustDeposit(t, y, member(t, y, a, now, "quota test body"))
	if got := f.fetchAll(t, x, b); len(got) != 3 {
		t.Fatalf("B got %d of x's envelopes, want 3", len(got))
	}
	f.mustDeposit(t, x, member(t, x, a, now, "quota test body"))
	if c := f.mb.Counts(); c.Full != 1 {
		t.Fatalf("full refusals %d, want 1", c.Full)
	}
}

// TestMailboxRestart: the unexpired mailbox and the pointers survive a
// restart: nothing is delivered twice, what was not taken is delivered,
// and sequence numbers go on after everything was deleted.
func TestMailboxRestart(t *testing.T) {
	dir := t.TempDir()
	st, err := badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newMailboxFixture(t, st, MailboxLimits{Expiry: time.Hour})
	id := randomSpace()
	a, b, c := newDevice(), newDevice(), newDevice()
	f.spaces.set(id, a, b, c)
	now := f.clock.now()
	e1, e2 := member(t, id, a, now, "one"), member(t, id, a, now, "two")
	f.mustDeposit(t, id, e1, e2)
	sameEnvelopes(t, "B", f.fetchAll(t, id, b), e1, e2)
	f.mb.Close()
	st.Close()

	st, err = badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mb, err := newMailbox(st, f.spaces, MailboxLimits{Expiry: time.Hour}, nil, nil, f.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	f.mb = mb
	if k := mb.Counts().Kept; k != 2 {
		t.Fatalf("kept %d after the restart, want 2", k)
	}
	sameEnvelopes(t, "B after the restart", f.fetchAll(t, id, b))
	sameEnvelopes(t, "C after the restart", f.fetchAll(t, id, c), e1, e2)
	if k := mb.Counts().Kept; k != 0 {
		t.Fatalf("kept %d once all took them", k)
	}
	mb.Close()
	st.Close()

	// Empty now: a new envelope after another restart still reaches B.
	st, err = badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if f.mb, err = newMailbox(st, f.spaces, MailboxLimits{Expiry: time.Hour}, nil, nil, f.clock.now); err != nil {
		t.Fatal(err)
	}
	e3 := member(t, id, a, now, "three")
	f.mustDeposit(t, id, e3)
	sameEnvelopes(t, "B, third", f.fetchAll(t, id, b), e3)
	// The unexpired survive; the expired do not come back.
	f.clock.add(2 * time.Hour)
	f.mb.Sweep()
	if k := f.mb.Counts().Kept; k != 0 {
		t.Fatalf("kept %d after expiry", k)
	}
}

// TestMailboxSignIn: a device that is no writer deposits its join
// request; the only member takes it; the member's answer is kept for the
// waiting device although every writer took it, and deleted once the
// device took it. A device that stops waiting holds nothing back after
// GuestTTL.
func TestMailboxSignIn(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{GuestTTL: 10 * time.Minute})
	id := randomSpace()
	a, d, other := newDevice(), newDevice(), newDevice()
	f.spaces.set(id, a)
	now := f.clock.now()
	kid := bytes.Repeat([]byte{7}, 16)
	if _, err := f.mb.Fetch(id, d.key()); !errors.Is(err, ErrMailboxForbidden) {
		t.Fatalf("fetch before asking: %v", err)
	}
	req := envelope(t, id, d, signin.KeyKindPassword, kid, now, "join request")
	f.mustDeposit(t, id, req)
	sameEnvelopes(t, "member", f.fetchAll(t, id, a), req)
	if k := f.mb.Counts().Kept; k != 0 {
		t.Fatalf("kept %d after the only member took the request", k)
	}
	ans := envelope(t, id, a, signin.KeyKindPassword, kid, now, "approval")
	f.mustDeposit(t, id, ans, member(t, id, a, now, "members only"),
		envelope(t, id, a, signin.KeyKindPassword, bytes.Repeat([]byte{8}, 16), now, "another request's answer"))
	if k := f.mb.Counts().Kept; k != 1 {
		t.Fatalf("kept %d, want only the answer the waiting device may take", k)
	}
	sameEnvelopes(t, "waiting device", f.fetchAll(t, id, d), ans)
	if k := f.mb.Counts().Kept; k != 0 {
		t.Fatalf("kept %d after the device took its answer", k)
	}

	// Another device asks, then stops: its answer is held only GuestTTL.
	f.mustDeposit(t, id, envelope(t, id, other, signin.KeyKindInvite, kid, now, "request"))
	f.fetchAll(t, id, a)
	f.mustDeposit(t, id, envelope(t, id, a, signin.KeyKindInvite, kid, now, "answer"))
	if k := f.mb.Counts().Kept; k != 1 {
		t.Fatalf("kept %d, want the answer", k)
	}
	f.clock.add(10 * time.Minute)
	f.mb.Sweep()
	if k := f.mb.Counts().Kept; k != 0 {
		t.Fatalf("kept %d after the waiting device expired", k)
	}
	if _, err := f.mb.Fetch(id, other.key()); !errors.Is(err, ErrMailboxForbidden) {
		t.Fatalf("expired guest's fetch: %v", err)
	}
}

// TestMailboxForgedDeposits: what a relay can check without a key it
// checks — signature, topic, time, key kind of a non-writer, duplicates —
// and nothing refused is kept.
func TestMailboxForgedDeposits(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{})
	id, other := randomSpace(), randomSpace()
	a, b, outsider := newDevice(), newDevice(), newDevice()
	f.spaces.set(id, a, b)
	now := f.clock.now()
	good := member(t, id, a, now, "good")
	forged := slices.Clone(good)
	forged[len(forged)-70] ^= 1 // in the ciphertext or the signature
	cases := []struct {
		name string
		env  []byte
		want error
	}{
		{"bad signature", forged, ephemeral.ErrSignature},
		{"garbage", []byte("not an envelope"), ephemeral.ErrMalformed},
		{"another space's topic", member(t, other, a, now, "x"), ErrMailboxUnknownSpace},
		{"stale", member(t, id, a, now.Add(-ephemeral.Window-time.Second), "x"), ErrMailboxStale},
		{"future", member(t, id, a, now.Add(ephemeral.Window+time.Second), "x"), ErrMailboxStale},
		{"outsider with members' key kind", member(t, id, outsider, now, "x"), ErrMailboxForbidden},
		{"sign-in kind with a short key ID", envelope(t, id, outsider, signin.KeyKindInvite, []byte{1}, now, "x"), ErrMailboxMalformed},
	}
	for _, c := range cases {
		errs := f.deposit(t, id, c.env)
		if !errors.Is(errs[0], c.want) {
			t.Errorf("%s: %v, want %v", c.name, errs[0], c.want)
		}
	}
	if k := f.mb.Counts().Kept; k != 0 {
		t.Fatalf("kept %d refused envelopes", k)
	}
	f.mustDeposit(t, id, good)
	if errs := f.deposit(t, id, good); !errors.Is(errs[0], ErrMailboxDuplicate) {
		t.Fatalf("the same envelope again: %v", errs[0])
	}
	sameEnvelopes(t, "B", f.fetchAll(t, id, b), good)
	if _, err := f.mb.Deposit("peer", randomSpace(), [][]byte{good}); !errors.Is(err, ErrMailboxUnknownSpace) {
		t.Fatalf("deposit to a space not mirrored: %v", err)
	}
}

// TestMailboxFlood: one peer's requests are bounded by RequestsPerPeer; a
// flood of sign-in envelopes from throwaway keys fills only the share of
// devices signing in (and MaxGuests), and members' envelopes are still
// kept; other peers are served.
func TestMailboxFlood(t *testing.T) {
	one := len(envelope(t, randomSpace(), newDevice(), signin.KeyKindInvite, memberKID, time.Now(), "flood"))
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{BytesPerSpace: int64(40 * one), RequestsPerPeer: 50, MaxGuests: 8, SenderShare: 1})
	id := randomSpace()
	a, b := newDevice(), newDevice()
	f.spaces.set(id, a, b)
	now := f.clock.now()
	busy, full, kept := 0, 0, 0
	for i := range 200 {
		errs, err := f.mb.Deposit("flooder", id, [][]byte{envelope(t, id, newDevice(), signin.KeyKindInvite, memberKID, now, "flood")})
		switch {
		case errors.Is(err, ErrMailboxBusy):
			busy++
		case err != nil:
			t.Fatalf("deposit %d: %v", i, err)
		case errors.Is(errs[0], ErrMailboxFull):
			full++
		case errs[0] == nil:
			kept++
		default:
			t.Fatalf("deposit %d: %v", i, errs[0])
		}
	}
	if busy != 150 || kept != 8 || full != 42 {
		t.Fatalf("flood: %d busy, %d kept, %d full; want 150, 8, 42", busy, kept, full)
	}
	// One device asking over and over fills at most the quarter.
	d := newDevice()
	guestKept := 0
	for range 40 {
		errs, err := f.mb.Deposit("asker", id, [][]byte{envelope(t, id, d, signin.KeyKindInvite, memberKID, now, "flood")})
		if err != nil {
			t.Fatal(err)
		}
		if errs[0] == nil {
			guestKept++
		}
	}
	if guestKept != 0 {
		// MaxGuests (8) are taken by the flood: a ninth device waits.
		t.Fatalf("a ninth device kept %d envelopes", guestKept)
	}
	// Members are still served, from another peer.
	for i := range 20 {
		if errs := f.deposit(t, id, member(t, id, a, now, "member")); errs[0] != nil {
			t.Fatalf("member's envelope %d: %v", i, errs[0])
		}
	}
	if got := f.fetchAll(t, id, b); len(got) != 28 {
		t.Fatalf("B got %d envelopes, want 28", len(got))
	}
	f.clock.add(time.Minute)
	if _, err := f.mb.Deposit("flooder", id, [][]byte{member(t, id, a, f.clock.now(), "later")}); err != nil {
		t.Fatalf("the flooder after the window: %v", err)
	}

	// One device asking over and over takes at most the quarter of
	// devices signing in; the members keep the rest.
	g := newMailboxFixture(t, memstore.New(), MailboxLimits{BytesPerSpace: int64(40 * one), SenderShare: 1})
	g.spaces.set(id, a, b)
	kept, full = 0, 0
	for range 40 {
		switch errs := g.deposit(t, id, envelope(t, id, d, signin.KeyKindInvite, memberKID, now, "flood")); {
		case errs[0] == nil:
			kept++
		case errors.Is(errs[0], ErrMailboxFull):
			full++
		default:
			t.Fatal(errs[0])
		}
	}
	if kept != 10 || full != 30 {
		t.Fatalf("one asking device: %d kept, %d full; want 10, 30", kept, full)
	}
	for i := range 30 {
		if errs := g.deposit(t, id, envelope(t, id, a, signin.KeyKindInvite, memberKID, now, "flood")); errs[0] != nil {
			t.Fatalf("member's envelope %d: %v", i, errs[0])
		}
	}
}

// TestMailboxSenderShare: one writer's envelopes take at most
// SenderShare of the space's mailbox (a member's presence handed over
// while another member is away for days fills no more); the others'
// are still kept, and taking them frees the share.
func TestMailboxSenderShare(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{MaxEnvelopesPerSpace: 80})
	id := randomSpace()
	a, b, c := newDevice(), newDevice(), newDevice()
	f.spaces.set(id, a, b, c)
	now := f.clock.now()
	kept := 0
	for range 30 {
		if errs := f.deposit(t, id, member(t, id, a, now, "presence")); errs[0] == nil {
			kept++
		} else if !errors.Is(errs[0], ErrMailboxFull) {
			t.Fatal(errs[0])
		}
	}
	if kept != 10 {
		t.Fatalf("one sender kept %d envelopes, want 10 (an eighth of 80)", kept)
	}
	f.mustDeposit(t, id, member(t, id, b, now, "another member"))
	f.fetchAll(t, id, b)
	f.fetchAll(t, id, c)
	f.mustDeposit(t, id, member(t, id, a, now, "after the others took the first"))
}

// mailboxHosts starts a relay host serving a mailbox over spaces, and a
// client host connected to it, on loopback.
func mailboxHosts(t *testing.T, spaces MailboxSpaces) (*Mailbox, host.Host, host.Host) {
	t.Helper()
	mk := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	rh, ch := mk(), mk()
	mb, err := NewMailbox(memstore.New(), spaces, MailboxLimits{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := serveMailbox(mb, rh)
	t.Cleanup(func() { s.Close() })
	if err := ch.Connect(context.Background(), peer.AddrInfo{ID: rh.ID(), Addrs: rh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return mb, rh, ch
}

// TestMailboxProtocolNonWriter: over the protocol, a writer deposits and
// another fetches; a device that is no writer gets nothing of the
// members' (refused), nor does a device claiming a writer's key without
// its private key; a signature made for another relay does not open it.
func TestMailboxProtocolNonWriter(t *testing.T) {
	spaces := &fakeSpaces{writers: map[auth.SpaceID][]feed.PublicKey{}}
	_, rh, ch := mailboxHosts(t, spaces)
	ctx := context.Background()
	id := randomSpace()
	a, b, outsider := newDevice(), newDevice(), newDevice()
	spaces.set(id, a, b)
	e := member(t, id, a, time.Now(), "for members")
	errs, err := DepositMailbox(ctx, ch, rh.ID(), id, [][]byte{e, []byte("junk")})
	if err != nil || errs[0] != nil || !errors.Is(errs[1], ErrMailboxMalformed) {
		t.Fatalf("deposit: %v %v", errs, err)
	}
	if _, _, err := FetchMailbox(ctx, ch, rh.ID(), id, outsider.priv); !errors.Is(err, ErrMailboxForbidden) {
		t.Fatalf("outsider's fetch: %v", err)
	}
	// A client that claims B's key and signs with its own.
	st, challenge, err := openMailbox(ctx, ch, rh.ID())
	if err != nil {
		t.Fatal(err)
	}
	req := encodeFetch(id, outsider.priv, rh.ID(), ch.ID(), challenge)
	bk := b.key()
	copy(req[2+auth.SpaceIDSize:], bk[:])
	st.Write(req)
	st.CloseWrite()
	if _, _, err := decodeFetchReply(st); !errors.Is(err, ErrMailboxForbidden) {
		t.Fatalf("claimed key: %v", err)
	}
	st.Close()
	// B's real signature, but bound to another relay's ID.
	st, challenge, err = openMailbox(ctx, ch, rh.ID())
	if err != nil {
		t.Fatal(err)
	}
	st.Write(encodeFetch(id, b.priv, ch.ID(), ch.ID(), challenge))
	st.CloseWrite()
	if _, _, err := decodeFetchReply(st); !errors.Is(err, ErrMailboxForbidden) {
		t.Fatalf("signature for another relay: %v", err)
	}
	st.Close()
	got, more, err := FetchMailbox(ctx, ch, rh.ID(), id, b.priv)
	if err != nil || more {
		t.Fatal(err, more)
	}
	sameEnvelopes(t, "B", got, e)
}

// TestMailboxProtocolOversized: a deposit that announces an envelope over
// the bound is refused before anything of that size is read or kept.
func TestMailboxProtocolOversized(t *testing.T) {
	spaces := &fakeSpaces{writers: map[auth.SpaceID][]feed.PublicKey{}}
	mb, rh, ch := mailboxHosts(t, spaces)
	id := randomSpace()
	spaces.set(id, newDevice())
	st, _, err := openMailbox(context.Background(), ch, rh.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	req := append([]byte{mailboxVersion, opDeposit}, id[:]...)
	req = append(req, 1, 0xff, 0xff, 0xff, 0xff)
	st.Write(req)
	st.CloseWrite()
	if _, err := decodeDepositReply(st, 1); !errors.Is(err, ErrMailboxMalformed) {
		t.Fatalf("oversized envelope: %v", err)
	}
	if k := mb.Counts().Kept; k != 0 {
		t.Fatalf("kept %d", k)
	}
}

// TestMailboxProtocolStreamsBound: requests served at once are bounded;
// one over the bound is reset, and served again once others end.
func TestMailboxProtocolStreamsBound(t *testing.T) {
	spaces := &fakeSpaces{writers: map[auth.SpaceID][]feed.PublicKey{}}
	mb, rh, ch := mailboxHosts(t, spaces)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var held []interface{ Reset() error }
	for i := range maxMailboxStreams {
		st, _, err := openMailbox(ctx, ch, rh.ID())
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		held = append(held, st)
	}
	if _, _, err := openMailbox(ctx, ch, rh.ID()); err == nil {
		t.Fatal("a stream over the bound was served")
	}
	if c := mb.Counts(); c.Busy != 1 {
		t.Fatalf("busy %d, want 1", c.Busy)
	}
	for _, st := range held {
		st.Reset()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, err := openMailbox(ctx, ch, rh.ID())
		if err == nil {
			st.Reset()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after the others ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMailboxKeep: the router's entry point finds the space by the
// envelope's topic, keeps it once, and applies the deposit's checks.
func TestMailboxKeep(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{})
	id := randomSpace()
	a, b, outsider := newDevice(), newDevice(), newDevice()
	f.spaces.set(id, a, b)
	now := f.clock.now()
	parse := func(raw []byte) *ephemeral.Envelope {
		e, err := ephemeral.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	raw := member(t, id, a, now, "routed")
	for range 2 {
		if err := f.mb.Keep(parse(raw)); err != nil {
			t.Fatalf("keep: %v", err)
		}
	}
	if err := f.mb.Keep(parse(member(t, randomSpace(), a, now, "x"))); !errors.Is(err, ErrMailboxUnknownSpace) {
		t.Fatalf("another topic: %v", err)
	}
	if err := f.mb.Keep(parse(member(t, id, outsider, now, "x"))); !errors.Is(err, ErrMailboxForbidden) {
		t.Fatalf("outsider: %v", err)
	}
	sameEnvelopes(t, "B", f.fetchAll(t, id, b), raw)
}
