package feed_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// twoHistories returns two writers with the same key whose feeds agree on
// the first `common` entries and then differ: what a device restored from a
// backup produces when it appends again.
func twoHistories(t testing.TB, common, lenA, lenB int) (a, b *feed.Writer) {
	t.Helper()
	a = newWriter(t, 9, common)
	b = newWriter(t, 9, common)
	appendN(t, a, lenA-common)
	for i := common; i < lenB; i++ {
		if _, err := b.Append(context.Background(), []byte("other history")); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

// checkFork asserts err is a fork whose evidence verifies on its own and on
// a third store, which it freezes.
func checkFork(t *testing.T, err error, f *feed.Feed) *feed.ForkEvidence {
	t.Helper()
	var fe *feed.ForkError
	if !errors.Is(err, feed.ErrFork) || !errors.As(err, &fe) {
		t.Fatalf("want fork error, got %v", err)
	}
	if err := feed.VerifyEvidence(fe.Evidence); err != nil {
		t.Fatalf("evidence does not verify: %v", err)
	}
	if f.Evidence() == nil {
		t.Fatal("feed not frozen")
	}
	// Over the wire to a third node that never saw either history.
	data, err := fe.Evidence.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var ev feed.ForkEvidence
	if err := ev.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	third := newReplica(t).feed(t, f.Key())
	if err := third.ImportEvidence(&ev); err != nil {
		t.Fatalf("third store refuses evidence: %v", err)
	}
	if third.Evidence() == nil {
		t.Fatal("third store not frozen")
	}
	return fe.Evidence
}

func TestForkDetection(t *testing.T) {
	cases := []struct {
		name             string
		common, la, lb   int
		held             bool // replica holds A's entries (else only A's head)
		want             func(a *feed.Writer, b *feed.Writer, base uint64) feed.BatchRequest
		needsConsistency bool
	}{
		{name: "same length", common: 5, la: 10, lb: 10, held: true,
			want: func(_, b *feed.Writer, base uint64) feed.BatchRequest { return feed.BatchRequest{Base: base} }},
		{name: "longer with run", common: 5, la: 10, lb: 15, held: true,
			want: func(_, b *feed.Writer, base uint64) feed.BatchRequest {
				return feed.BatchRequest{Want: []feed.Range{{Start: 0, End: 15}}, Base: base}
			}},
		{name: "longer with consistency proof", common: 5, la: 10, lb: 15, held: false,
			want: func(_, b *feed.Writer, base uint64) feed.BatchRequest { return feed.BatchRequest{Base: base} }},
		{name: "longer diverging at 0", common: 0, la: 8, lb: 9, held: false,
			want: func(_, b *feed.Writer, base uint64) feed.BatchRequest { return feed.BatchRequest{Base: base} }},
		{name: "shorter, checked against own tree", common: 5, la: 10, lb: 7, held: true,
			want: func(_, b *feed.Writer, base uint64) feed.BatchRequest {
				return feed.BatchRequest{Want: []feed.Range{{Start: 6, End: 7}}}
			}},
		{name: "shorter, sparse replica", common: 5, la: 10, lb: 7, held: false, needsConsistency: true,
			want: func(_, b *feed.Writer, base uint64) feed.BatchRequest {
				return feed.BatchRequest{Want: []feed.Range{{Start: 6, End: 7}}}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := twoHistories(t, tc.common, tc.la, tc.lb)
			r := newReplica(t)
			f := r.feed(t, a.Key())
			req := feed.BatchRequest{}
			if tc.held {
				req.Want = []feed.Range{{Start: 0, End: uint64(tc.la)}}
			}
			if err := f.Ingest(mustBatch(t, a.Feed, req)); err != nil {
				t.Fatal(err)
			}
			before := r.snapshot(t)
			err := f.Ingest(mustBatch(t, b.Feed, tc.want(a, b, f.Length())))
			if tc.needsConsistency {
				// A replica without A's tree cannot tell; it refuses and
				// keeps nothing rather than guess.
				if !errors.Is(err, feed.ErrNeedConsistency) || !sameSnapshot(before, r.snapshot(t)) {
					t.Fatalf("want clean ErrNeedConsistency, got %v", err)
				}
				return
			}
			ev := checkFork(t, err, f)
			if ev.A.Length > ev.B.Length {
				t.Fatal("evidence heads out of order")
			}
			// Frozen: nothing more is ingested, not even A's own history.
			if err := f.Ingest(mustBatch(t, a.Feed, feed.BatchRequest{Base: f.Length()})); !errors.Is(err, feed.ErrFrozen) {
				t.Fatalf("ingest into frozen feed: %v", err)
			}
			// The freeze survives a restart.
			db2, err := feed.Open(r.st)
			if err != nil {
				t.Fatal(err)
			}
			f2, err := db2.Feed(a.Key())
			if err != nil {
				t.Fatal(err)
			}
			if f2.Evidence() == nil {
				t.Fatal("fork evidence lost on reopen")
			}
			if err := f2.Ingest(mustBatch(t, a.Feed, feed.BatchRequest{})); !errors.Is(err, feed.ErrFrozen) {
				t.Fatalf("after reopen: %v", err)
			}
		})
	}
}

// TestWriterFrozenByOwnFork: a writer that learns its key signed another
// history stops appending.
func TestWriterFrozenByOwnFork(t *testing.T) {
	a, b := twoHistories(t, 3, 6, 6)
	err := a.Ingest(mustBatch(t, b.Feed, feed.BatchRequest{Base: a.Length()}))
	checkFork(t, err, a.Feed)
	if _, err := a.Append(context.Background(), []byte("more")); !errors.Is(err, feed.ErrFrozen) {
		t.Fatalf("append after fork: %v", err)
	}
}

// TestEvidenceTampering: evidence that does not prove a fork is refused and
// freezes nothing.
func TestEvidenceTampering(t *testing.T) {
	a, b := twoHistories(t, 5, 10, 15)
	f := newReplica(t).feed(t, a.Key())
	if err := f.Ingest(mustBatch(t, a.Feed, feed.BatchRequest{})); err != nil {
		t.Fatal(err)
	}
	ev := checkFork(t, f.Ingest(mustBatch(t, b.Feed, feed.BatchRequest{Base: 10})), f)

	ha, _ := a.Head()
	appendN(t, a, 5)
	ha15, _ := a.Head()
	honest := newWriter(t, 10, 20)
	hh, _ := honest.Head()
	for name, mut := range map[string]func(e *feed.ForkEvidence){
		"swapped heads":      func(e *feed.ForkEvidence) { e.A, e.B = e.B, e.A },
		"left flipped":       func(e *feed.ForkEvidence) { e.Left[0][0] ^= 1 },
		"right flipped":      func(e *feed.ForkEvidence) { e.Right[0][0] ^= 1 },
		"left missing":       func(e *feed.ForkEvidence) { e.Left = e.Left[1:] },
		"right extra":        func(e *feed.ForkEvidence) { e.Right = append(e.Right, make([]byte, 32)) },
		"bad signature":      func(e *feed.ForkEvidence) { e.B.Signature[0] ^= 1 },
		"heads of two feeds": func(e *feed.ForkEvidence) { e.B = hh },
		"consistent heads": func(e *feed.ForkEvidence) {
			e.A, e.B = ha, ha15
			l, _ := a.Batch(feed.BatchRequest{Base: 10})
			e.Left, e.Right = l.Consistency.Left, l.Consistency.Right
		},
		"same head twice": func(e *feed.ForkEvidence) { e.A, e.B, e.Left, e.Right = ha, ha, nil, nil },
	} {
		e := &feed.ForkEvidence{A: ev.A, B: ev.B, Left: clone(ev.Left), Right: clone(ev.Right)}
		mut(e)
		if err := feed.VerifyEvidence(e); err == nil {
			t.Errorf("%s: tampered evidence verifies", name)
		}
		third := newReplica(t).feed(t, a.Key())
		if err := third.ImportEvidence(e); err == nil || third.Evidence() != nil {
			t.Errorf("%s: tampered evidence imported", name)
		}
	}
}
