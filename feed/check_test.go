package feed_test

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// TestVerify: Verify passes a feed as written, and finds an entry whose
// stored bytes changed (the store's own checksums aside).
func TestVerify(t *testing.T) {
	r := newReplica(t)
	priv := testKey(1)
	w := r.writer(t, priv)
	for i := range 10 {
		if _, err := w.Append(context.Background(), entry(2*i), entry(2*i+1)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := w.Verify(nil)
	if err != nil || rep.Length != 20 || rep.Held != 20 || rep.Verified != 20 {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	// Entry 7, as the store keeps it: 'f', tag, key, index.
	var key feed.PublicKey
	copy(key[:], priv.Public().(ed25519.PublicKey))
	var found []byte
	r.st.Scan([]byte("f"), []byte("g"), func(k, v []byte) error {
		if len(k) == 2+feed.KeySize+8 && [32]byte(k[2:34]) == key && binary.BigEndian.Uint64(k[34:]) == 7 && string(v) == string(entry(7)) {
			found = append([]byte(nil), k...)
		}
		return nil
	})
	if found == nil {
		t.Fatal("entry 7 not found in the store")
	}
	if err := r.st.Commit([]feed.Write{{Key: found, Value: []byte("entry X")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Verify(nil); !errors.Is(err, feed.ErrDamaged) {
		t.Fatalf("Verify of a changed entry: %v", err)
	}
}

// TestWithoutAppends: a DB opened WithoutAppends refuses appends and
// still ingests (a node restoring its own feed from peers).
func TestWithoutAppends(t *testing.T) {
	src := newReplica(t)
	priv := testKey(2)
	w := src.writer(t, priv)
	if _, err := w.Append(context.Background(), entry(0), entry(1)); err != nil {
		t.Fatal(err)
	}
	r := newReplica(t)
	db, err := feed.Open(r.st, feed.WithoutAppends())
	if err != nil {
		t.Fatal(err)
	}
	mine, err := db.Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Append(context.Background(), entry(9)); !errors.Is(err, feed.ErrAppendsHeld) {
		t.Fatalf("Append: %v, want ErrAppendsHeld", err)
	}
	b, err := w.Batch(feed.BatchRequest{Want: []feed.Range{{Start: 0, End: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mine.Ingest(b); err != nil {
		t.Fatal(err)
	}
	if mine.Length() != 2 {
		t.Fatalf("length %d after ingest, want 2", mine.Length())
	}
}
