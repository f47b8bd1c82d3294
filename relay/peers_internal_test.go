package relay

import (
	"context"
	"errors"
	"fmt"
	"testing"

	ds "github.com/ipfs/go-datastore"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/replication"
)

// TestBoundedDatastore: the DHT's provider records, which any peer that
// speaks the DHT protocol can add, are held to a count: a new key past it
// is refused, directly or in a batch; an existing key may be rewritten,
// and a deleted one frees its place.
func TestBoundedDatastore(t *testing.T) {
	ctx := context.Background()
	b := newBoundedDatastore(3)
	for i := range 3 {
		if err := b.Put(ctx, ds.NewKey(fmt.Sprint("k", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Put(ctx, ds.NewKey("k3"), []byte("v")); !errors.Is(err, errDatastoreFull) {
		t.Fatalf("a key past the bound: %v", err)
	}
	if err := b.Put(ctx, ds.NewKey("k0"), []byte("w")); err != nil {
		t.Fatalf("rewriting a held key: %v", err)
	}
	batch, err := b.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batch.Put(ctx, ds.NewKey("k4"), []byte("v"))
	if err := batch.Commit(ctx); !errors.Is(err, errDatastoreFull) {
		t.Fatalf("a batched key past the bound: %v", err)
	}
	if err := b.Delete(ctx, ds.NewKey("k1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, ds.NewKey("k1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, ds.NewKey("k3"), []byte("v")); err != nil {
		t.Fatalf("a key after a delete: %v", err)
	}
	if err := b.Put(ctx, ds.NewKey("k5"), []byte("v")); !errors.Is(err, errDatastoreFull) {
		t.Fatalf("a second delete of one key freed two places: %v", err)
	}
}

// TestMirrorBootSessionsBounded: bootstrap sessions are never refused
// for want of room (an outsider opening and dropping many cannot lock a
// member out); the relay keeps the newest maxBootSessions bindings, whose
// sessions end at the first confirmation, and an evicted one goes on
// showing nothing.
func TestMirrorBootSessionsBounded(t *testing.T) {
	m := newMirror(t, MirrorLimits{})
	origin := newWriter(t)
	id := auth.SpaceID(origin.key())
	kr, _ := auth.NewKeyring(id, nil)
	tok := kr.Epochs[0].MirrorToken(id)
	if err := m.Hand("a", tok); err != nil {
		t.Fatal(err)
	}
	ms := m.spaces[id]
	c := tok.ReplicationCapability()
	prove := func(binding []byte, w *writer) replication.Proof {
		pr := c.Proof(binding)
		p := replication.Proof{Epochs: []replication.EpochProof{{Epoch: c.Epoch, Proof: pr[:]}}}
		if w != nil {
			k := w.key()
			p.Writer = &k
		}
		return p
	}
	bind := func(i int) []byte { return []byte(fmt.Sprint("session ", i)) }
	for i := range maxBootSessions + 10 {
		if !ms.Verify(bind(i), prove(bind(i), nil)) {
			t.Fatalf("bootstrap session %d refused", i)
		}
	}
	if len(ms.boot) > maxBootSessions {
		t.Fatalf("%d bindings kept", len(ms.boot))
	}
	confirm := []byte("the origin's session")
	if !ms.Verify(confirm, prove(confirm, origin)) || m.Counts().Confirmed != 1 {
		t.Fatal("the origin's proof did not confirm the token")
	}
	// Rechecked after the confirmation: the newest bindings end, the
	// evicted oldest goes on (its model shows nothing), as does a new
	// session.
	if ms.Verify(bind(maxBootSessions+9), prove(bind(maxBootSessions+9), nil)) || ms.Verify(confirm, prove(confirm, origin)) {
		t.Fatal("a bootstrap session goes on after the confirmation")
	}
	if !ms.Verify(bind(0), prove(bind(0), nil)) {
		t.Fatal("an evicted binding's proof refused")
	}
	if !ms.Verify([]byte("new"), prove([]byte("new"), nil)) {
		t.Fatal("a new session refused")
	}
}
