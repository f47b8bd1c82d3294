package feed_test

import (
	"errors"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// TestVerifyThenIngest: a batch verified first ingests as it would
// unverified, into several replicas; a bad batch fails Verify and then
// Ingest; a batch whose head changed after Verify is verified again.
func TestVerifyThenIngest(t *testing.T) {
	w := newWriter(t, 7, 500)
	b := mustBatch(t, w.Feed, feed.BatchRequest{Want: []feed.Range{{Start: 100, End: 300}}})
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r := newReplica(t).feed(t, w.Key())
		if err := r.Ingest(b); err != nil {
			t.Fatal(err)
		}
		if got := r.Ranges(); len(got) != 1 || got[0] != (feed.Range{Start: 100, End: 300}) {
			t.Fatalf("held %v", got)
		}
	}

	bad := mustBatch(t, w.Feed, feed.BatchRequest{Want: []feed.Range{{Start: 0, End: 10}}})
	bad.Runs[0].Entries[3] = []byte("forged")
	if err := bad.Verify(); !errors.Is(err, feed.ErrInvalidProof) {
		t.Fatalf("Verify of a forged entry: %v", err)
	}
	if err := newReplica(t).feed(t, w.Key()).Ingest(bad); !errors.Is(err, feed.ErrInvalidProof) {
		t.Fatalf("Ingest of a forged entry: %v", err)
	}

	// A head swapped after Verify is not covered by the kept result.
	old := mustBatch(t, w.Feed, feed.BatchRequest{Want: []feed.Range{{Start: 0, End: 10}}})
	if err := old.Verify(); err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 10)
	old.Head, _ = w.Head()
	if err := newReplica(t).feed(t, w.Key()).Ingest(old); !errors.Is(err, feed.ErrInvalidProof) {
		t.Fatalf("Ingest after the head changed: %v", err)
	}
}
