package feed_test

import (
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/feedpb"
	"github.com/mycelsync/mycel/feed/memstore"
)

// fuzzSeeds returns valid encodings to start the fuzzers from.
func fuzzSeeds(t testing.TB) (batches [][]byte, heads [][]byte, evidence [][]byte) {
	w := newWriter(t, 11, 40)
	for _, req := range []feed.BatchRequest{
		{Want: []feed.Range{{Start: 0, End: 40}}},
		{Want: []feed.Range{{Start: 3, End: 4}, {Start: 20, End: 33}}, Base: 10},
		{Base: 17},
	} {
		b := mustBatch(t, w.Feed, req)
		data, _ := b.MarshalBinary()
		batches = append(batches, data)
		h, _ := b.Head.MarshalBinary()
		heads = append(heads, h)
	}
	a, b := twoHistories(t, 2, 5, 9)
	f := newReplica(t).feed(t, a.Key())
	_ = f.Ingest(mustBatch(t, a.Feed, feed.BatchRequest{}))
	err := f.Ingest(mustBatch(t, b.Feed, feed.BatchRequest{Base: 5}))
	if fe, ok := err.(*feed.ForkError); ok {
		data, _ := fe.Evidence.MarshalBinary()
		evidence = append(evidence, data)
	}
	return
}

// FuzzBatch decodes arbitrary bytes as a batch and ingests it into a replica
// that already holds part of the feed. It must never panic, and a refused
// batch must leave storage unchanged.
func FuzzBatch(f *testing.F) {
	batches, _, _ := fuzzSeeds(f)
	for _, b := range batches {
		f.Add(b)
	}
	w := newWriter(f, 11, 40)
	f.Fuzz(func(t *testing.T, data []byte) {
		var b feed.Batch
		if err := b.UnmarshalBinary(data); err != nil {
			return
		}
		r := newReplica(t)
		fd := r.feed(t, w.Key())
		if err := fd.Ingest(mustBatch(t, w.Feed, feed.BatchRequest{Want: []feed.Range{{Start: 5, End: 9}}, MaxBytes: 1})); err != nil {
			t.Fatal(err)
		}
		before := r.snapshot(t)
		if err := fd.Ingest(&b); err != nil {
			if fd.Evidence() == nil && !sameSnapshot(before, r.snapshot(t)) {
				t.Fatalf("refused batch changed storage: %v", err)
			}
			return
		}
		// Accepted: it must be the writer's own data (the fuzzer cannot
		// forge a signature), so a round trip keeps it equal.
		re, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var b2 feed.Batch
		if err := b2.UnmarshalBinary(re); err != nil {
			t.Fatalf("re-decoding an accepted batch: %v", err)
		}
	})
}

// FuzzSignedHead decodes arbitrary bytes as a signed head.
func FuzzSignedHead(f *testing.F) {
	_, heads, _ := fuzzSeeds(f)
	for _, h := range heads {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h feed.SignedHead
		if err := h.UnmarshalBinary(data); err != nil {
			return
		}
		_ = h.Verify()
		re, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var h2 feed.SignedHead
		if err := h2.UnmarshalBinary(re); err != nil || h2 != h {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzForkEvidence decodes and verifies arbitrary evidence; a third replica
// must only freeze on evidence that verifies.
func FuzzForkEvidence(f *testing.F) {
	_, _, evs := fuzzSeeds(f)
	for _, e := range evs {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev feed.ForkEvidence
		if err := ev.UnmarshalBinary(data); err != nil {
			return
		}
		verr := feed.VerifyEvidence(&ev)
		fd := newReplica(t).feed(t, ev.A.Key)
		ierr := fd.ImportEvidence(&ev)
		if (verr == nil) != (ierr == nil) || (ierr == nil) != (fd.Evidence() != nil) {
			t.Fatalf("verify %v, import %v, frozen %v", verr, ierr, fd.Evidence() != nil)
		}
	})
}

// FuzzStoredState writes arbitrary bytes where a feed's stored records live
// (head record, a range record, evidence) and opens the feed: corrupt
// storage must give an error, never a panic.
func FuzzStoredState(f *testing.F) {
	w := newWriter(f, 12, 20)
	rec := &feedpb.HeadRecord{Length: 20}
	h, _ := w.Head()
	hb, _ := h.MarshalBinary()
	var hp feedpb.SignedHead
	_ = hp.Unmarshal(hb)
	rec.Head = &hp
	good, _ := rec.Marshal()
	f.Add(good, []byte{0, 0, 0, 0, 0, 0, 0, 9}, []byte{})
	f.Fuzz(func(t *testing.T, head, rangeEnd, evidence []byte) {
		st := memstore.New()
		key := w.Key()
		writes := []feed.Write{
			{Key: append([]byte("fh"), key[:]...), Value: head},
			{Key: append(append([]byte("fr"), key[:]...), 0, 0, 0, 0, 0, 0, 0, 1), Value: rangeEnd},
		}
		if len(evidence) > 0 {
			writes = append(writes, feed.Write{Key: append([]byte("fx"), key[:]...), Value: evidence})
		}
		if err := st.Commit(writes); err != nil {
			t.Fatal(err)
		}
		db, _ := feed.Open(st)
		fd, err := db.Feed(key)
		if err != nil {
			return
		}
		// Whatever loaded must be usable without panics.
		_, _ = fd.Get(0)
		_, _ = fd.RootAt(fd.Length())
		_, _ = fd.InclusionProof(0, fd.Length())
		_, _ = fd.Batch(feed.BatchRequest{Want: []feed.Range{{Start: 0, End: 5}}})
	})
}
