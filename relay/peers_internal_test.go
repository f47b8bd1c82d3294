package relay

import (
	"context"
	"errors"
	"fmt"
	"testing"

	ds "github.com/ipfs/go-datastore"
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
