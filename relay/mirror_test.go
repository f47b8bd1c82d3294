package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/space"
)

// newMirror starts a mirror on a loopback host over a memory store.
func newMirror(t *testing.T, lim MirrorLimits) *Mirror {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	m, err := NewMirror(h, memstore.New(), lim, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// writer is a feed of a test space with the space's secret.
type writer struct {
	priv ed25519.PrivateKey
	db   *feed.DB
	w    *feed.Writer
}

func newWriter(t *testing.T) *writer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	db, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	w, err := db.Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &writer{priv: priv, db: db, w: w}
}

func (w *writer) key() feed.PublicKey { return feed.PublicKey(w.priv.Public().(ed25519.PublicKey)) }

// seal appends op sealed under es to w's feed.
func (w *writer) seal(t *testing.T, id auth.SpaceID, es auth.EpochSecret, op *space.Op) {
	t.Helper()
	e, err := space.SealEntry(id, w.key(), w.w.Length(), es, op, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.w.Append(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// batch returns the whole of w's feed as a batch.
func (w *writer) batch(t *testing.T) *feed.Batch {
	t.Helper()
	b, err := w.w.Batch(feed.BatchRequest{Want: []feed.Range{{Start: 0, End: w.w.Length()}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMirrorFollowsWriters: the mirror stores the origin's feed, follows
// the writer its add-writer names, and refuses a feed nobody added (and
// counts the refusal); a batch over the space's quota is refused whole.
func TestMirrorFollowsWriters(t *testing.T) {
	m := newMirror(t, MirrorLimits{BytesPerSpace: 4 << 10})
	origin, added, stranger := newWriter(t), newWriter(t), newWriter(t)
	id := auth.SpaceID(origin.key())
	kr, err := auth.NewKeyring(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	es := kr.Epochs[0]
	origin.seal(t, id, es, &space.Op{Kind: space.OpPut, Key: "k", Value: []byte("v")})
	origin.seal(t, id, es, &space.Op{Kind: space.OpAddWriter, Target: added.key()})
	added.seal(t, id, es, &space.Op{Kind: space.OpPut, Key: "k2", Value: []byte("v2")})
	stranger.seal(t, id, es, &space.Op{Kind: space.OpPut, Key: "k3", Value: []byte("v3")})
	if err := m.Hand("peer", es.MirrorToken(id)); err != nil {
		t.Fatal(err)
	}
	ms := m.spaces[id]

	if err := ms.Ingest(added.key(), added.batch(t)); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("a writer not added yet: %v", err)
	}
	if err := ms.Ingest(origin.key(), origin.batch(t)); err != nil {
		t.Fatal(err)
	}
	if err := ms.Ingest(added.key(), added.batch(t)); err != nil {
		t.Fatalf("the added writer: %v", err)
	}
	before := m.Counts().FeedsRefused
	if err := ms.Ingest(stranger.key(), stranger.batch(t)); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("a stranger's feed: %v", err)
	}
	if got := m.Counts().FeedsRefused; got != before+1 {
		t.Fatalf("feeds refused %d, want %d", got, before+1)
	}
	stored := m.Stored(id)
	if len(stored) != 2 || stored[origin.key()] != 2 || stored[added.key()] != 1 {
		t.Fatalf("stored %v", stored)
	}

	// Over the quota: refused, nothing stored.
	big := bytes.Repeat([]byte("x"), 8<<10)
	added.seal(t, id, es, &space.Op{Kind: space.OpPut, Key: "big", Value: big})
	if err := ms.Ingest(added.key(), added.batch(t)); !errors.Is(err, ErrMirrorQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if got := m.Stored(id)[added.key()]; got != 1 {
		t.Fatalf("after a refused batch the mirror holds %d entries", got)
	}
}

// TestMirrorTokenConfirmation: a handed token is pending; while nothing
// is confirmed a proof of it opens a bootstrap session that is shown
// nothing, and neither a proof without a writer's signature nor one by a
// stranger's feed confirms it; the origin's does. A bogus token handed later, of a
// newer epoch, opens nothing even to its holder, and the confirmed one
// still does.
func TestMirrorTokenConfirmation(t *testing.T) {
	m := newMirror(t, MirrorLimits{})
	origin, stranger := newWriter(t), newWriter(t)
	id := auth.SpaceID(origin.key())
	kr, _ := auth.NewKeyring(id, nil)
	tok := kr.Epochs[0].MirrorToken(id)
	if err := m.Hand("a", tok); err != nil {
		t.Fatal(err)
	}
	ms := m.spaces[id]
	binding := []byte("binding")
	prove := func(c auth.ReplicationCapability, w *writer) replication.Proof {
		pr := c.Proof(binding)
		p := replication.Proof{Epochs: []replication.EpochProof{{Epoch: c.Epoch, Proof: pr[:]}}}
		if w != nil {
			k := w.key()
			p.Writer = &k
		}
		return p
	}
	cap := tok.ReplicationCapability()
	// Bootstrap: nothing confirmed yet, a pending token opens a session
	// that is shown nothing.
	if !ms.Verify(binding, prove(cap, nil)) || !ms.Verify(binding, prove(cap, stranger)) || m.Counts().Confirmed != 0 {
		t.Fatal("bootstrap: a pending token's proof refused, or confirmed by a non-writer")
	}
	if _, hidden := ms.Model().(hiddenModel); !hidden {
		t.Fatal("a model shown before any token is confirmed")
	}
	if !ms.Verify(binding, prove(cap, origin)) || m.Counts().Confirmed != 1 {
		t.Fatal("the origin's proof did not confirm the token")
	}
	// The sessions opened before the confirmation (this binding) end when
	// they are checked again: their models show nothing for their life.
	// New sessions (a new binding) are shown everything.
	if ms.Verify(binding, prove(cap, origin)) {
		t.Fatal("a bootstrap session goes on after the confirmation")
	}
	binding = []byte("binding of a new session")
	if _, hidden := ms.Model().(hiddenModel); hidden || !ms.Verify(binding, prove(cap, nil)) {
		t.Fatal("a confirmed token's proof refused, or its sessions shown nothing")
	}

	bogus := auth.MirrorToken{Space: id, Epoch: 7}
	rand.Read(bogus.Token[:])
	if err := m.Hand("x", bogus); err != nil {
		t.Fatal(err)
	}
	if ms.Verify(binding, prove(bogus.ReplicationCapability(), nil)) || ms.Verify(binding, prove(bogus.ReplicationCapability(), stranger)) {
		t.Fatal("a bogus token opened a session")
	}
	if !ms.Verify(binding, prove(cap, nil)) {
		t.Fatal("the bogus token displaced the confirmed one")
	}
	// A bogus token of the confirmed epoch: the relay still proves the
	// confirmed one, and only it for that epoch (a Prove holds one proof
	// per epoch).
	same := auth.MirrorToken{Space: id, Epoch: tok.Epoch}
	rand.Read(same.Token[:])
	if err := m.Hand("x", same); err != nil {
		t.Fatal(err)
	}
	for _, c := range ms.Credentials().Caps {
		if c.Epoch == tok.Epoch && c != cap {
			t.Fatal("the relay proves a bogus token of the confirmed epoch")
		}
	}
	// A rotation: the next epoch's token, handed by a member, counts once
	// a writer proves it; then the old epoch opens sessions only to
	// writers (members behind on the rotation), and not at all once
	// KeepEpochs newer ones are confirmed.
	next := auth.MirrorToken{Space: id, Epoch: 1}
	rand.Read(next.Token[:])
	if err := m.Hand("a", next); err != nil {
		t.Fatal(err)
	}
	ncap := next.ReplicationCapability()
	if ms.Verify(binding, prove(ncap, nil)) || !ms.Verify(binding, prove(cap, nil)) {
		t.Fatal("an unconfirmed newer token opened a session, or displaced the confirmed one")
	}
	if !ms.Verify(binding, prove(ncap, origin)) || m.Counts().Confirmed != 2 {
		t.Fatal("a writer's proof did not confirm the next epoch's token")
	}
	if ms.Verify(binding, prove(cap, nil)) || ms.Verify(binding, prove(cap, stranger)) || !ms.Verify(binding, prove(cap, origin)) {
		t.Fatal("after the rotation the old epoch must open sessions to writers only")
	}
	third := auth.MirrorToken{Space: id, Epoch: 2}
	rand.Read(third.Token[:])
	if err := m.Hand("a", third); err != nil || !ms.Verify(binding, prove(third.ReplicationCapability(), origin)) {
		t.Fatalf("third epoch: %v", err)
	}
	if ms.Verify(binding, prove(cap, origin)) {
		t.Fatal("an epoch older than the kept ones still opens sessions")
	}
	if err := m.Hand("a", tok); !errors.Is(err, ErrMirrorStale) {
		t.Fatalf("handing a token older than the kept epochs again: %v", err)
	}

	// The bogus one expires; the space stays.
	m.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := m.Hand("a", next); err != nil {
		t.Fatal(err)
	}
	if n := len(ms.Credentials().Caps); n != 2 {
		t.Fatalf("%d capabilities after expiry, want the 2 kept epochs", n)
	}
}

// TestMirrorCredentialsLastHanded: of two pending tokens of one epoch,
// the relay proves the one handed last, whichever came first.
func TestMirrorCredentialsLastHanded(t *testing.T) {
	m := newMirror(t, MirrorLimits{})
	var id auth.SpaceID
	rand.Read(id[:])
	a, b := auth.MirrorToken{Space: id}, auth.MirrorToken{Space: id}
	rand.Read(a.Token[:])
	rand.Read(b.Token[:])
	now := time.Now()
	for i, tok := range []auth.MirrorToken{a, b, a} {
		m.now = func() time.Time { return now.Add(time.Duration(i) * time.Second) }
		if err := m.Hand("p", tok); err != nil {
			t.Fatal(err)
		}
		caps := m.spaces[id].Credentials().Caps
		if len(caps) != 1 || caps[0] != tok.ReplicationCapability() {
			t.Fatalf("after handing token %d: %d caps", i, len(caps))
		}
	}
}
