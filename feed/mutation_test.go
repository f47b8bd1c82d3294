package feed_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// TestRFC6962ProofMutations: every mutation of a valid inclusion or
// consistency proof is refused.
func TestRFC6962ProofMutations(t *testing.T) {
	w := newWriter(t, 5, 300)
	for _, tc := range []struct{ index, size uint64 }{{0, 1}, {0, 2}, {1, 2}, {5, 8}, {6, 13}, {100, 257}, {299, 300}, {128, 300}} {
		root, _ := w.RootAt(tc.size)
		e, _ := w.Get(tc.index)
		p, err := w.InclusionProof(tc.index, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		if err := feed.VerifyInclusion(tc.index, tc.size, e, p, root); err != nil {
			t.Fatalf("valid proof %d/%d refused: %v", tc.index, tc.size, err)
		}
		refuse := func(what string, index, size uint64, e []byte, p [][]byte) {
			t.Helper()
			if err := feed.VerifyInclusion(index, size, e, p, root); !errors.Is(err, feed.ErrInvalidProof) {
				t.Errorf("inclusion %d/%d, %s: accepted (%v)", tc.index, tc.size, what, err)
			}
		}
		refuse("index+1", tc.index+1, tc.size, e, p)
		if tc.index > 0 {
			refuse("index-1", tc.index-1, tc.size, e, p)
		}
		refuse("size*2", tc.index, tc.size*2, e, p)
		if tc.size/2 > tc.index {
			refuse("size/2", tc.index, tc.size/2, e, p)
		}
		refuse("size 0", tc.index, 0, e, p)
		// size+1 is not in the list: for some shapes an audit path is the
		// same for n and n+1, which is why size is only ever trusted
		// together with the root, from a signed head.
		refuse("other entry", tc.index, tc.size, append(bytes.Clone(e), 'x'), p)
		refuse("extra hash", tc.index, tc.size, e, append(clone(p), make([]byte, 32)))
		if len(p) > 0 {
			refuse("missing hash", tc.index, tc.size, e, clone(p)[:len(p)-1])
			refuse("empty proof", tc.index, tc.size, e, nil)
			refuse("short hash", tc.index, tc.size, e, append(clone(p)[:len(p)-1], p[len(p)-1][:31]))
			for i := range p {
				for _, bit := range []int{0, 7, 100, 255} {
					q := clone(p)
					q[i][bit/8] ^= 1 << (bit % 8)
					refuse(fmt.Sprintf("bit %d of hash %d", bit, i), tc.index, tc.size, e, q)
				}
			}
		}
	}

	for _, tc := range []struct{ s1, s2 uint64 }{{1, 2}, {3, 7}, {4, 8}, {5, 13}, {100, 300}, {128, 256}, {299, 300}} {
		r1, _ := w.RootAt(tc.s1)
		r2, _ := w.RootAt(tc.s2)
		p, err := w.ConsistencyProof(tc.s1, tc.s2)
		if err != nil {
			t.Fatal(err)
		}
		if err := feed.VerifyConsistency(tc.s1, tc.s2, p, r1, r2); err != nil {
			t.Fatalf("valid consistency %d→%d refused: %v", tc.s1, tc.s2, err)
		}
		refuse := func(what string, s1, s2 uint64, p [][]byte, r1, r2 feed.Hash) {
			t.Helper()
			if err := feed.VerifyConsistency(s1, s2, p, r1, r2); !errors.Is(err, feed.ErrInvalidProof) {
				t.Errorf("consistency %d→%d, %s: accepted (%v)", tc.s1, tc.s2, what, err)
			}
		}
		refuse("size1+1", tc.s1+1, tc.s2, p, r1, r2)
		refuse("size2*2", tc.s1, tc.s2*2, p, r1, r2)
		refuse("size2/2", tc.s1, tc.s2/2, p, r1, r2)
		refuse("size1 0", 0, tc.s2, p, r1, r2)
		refuse("swapped", tc.s2, tc.s1, p, r2, r1)
		refuse("wrong old root", tc.s1, tc.s2, p, r2, r2)
		refuse("extra hash", tc.s1, tc.s2, append(clone(p), make([]byte, 32)), r1, r2)
		refuse("empty proof", tc.s1, tc.s2, nil, r1, r2)
		refuse("missing hash", tc.s1, tc.s2, clone(p)[:len(p)-1], r1, r2)
		for i := range p {
			q := clone(p)
			q[i][i%32] ^= 0x10
			refuse(fmt.Sprintf("flip in hash %d", i), tc.s1, tc.s2, q, r1, r2)
		}
	}
}

func clone(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i])
	}
	return out
}

func cloneBatch(b *feed.Batch) *feed.Batch {
	c := &feed.Batch{Head: b.Head}
	for _, r := range b.Runs {
		c.Runs = append(c.Runs, feed.Run{Start: r.Start, Entries: clone(r.Entries), Left: clone(r.Left), Right: clone(r.Right)})
	}
	if b.Consistency != nil {
		c.Consistency = &feed.Consistency{Base: b.Consistency.Base, Left: clone(b.Consistency.Left), Right: clone(b.Consistency.Right)}
	}
	return c
}

// TestIngestMutations: a replica holding a head of length 50 is sent
// mutated versions of valid batches; each is refused with a typed error and
// storage is byte-for-byte unchanged. The unmutated batches are then
// accepted, which shows the refusals were about the mutations.
func TestIngestMutations(t *testing.T) {
	w := newWriter(t, 6, 50)
	head50, _ := w.Head()
	appendN(t, w, 50)
	// A run inside the held part, one that reaches the replica's length, and
	// a head-only batch with a consistency proof.
	batches := map[string]*feed.Batch{
		"inner run":   mustBatch(t, w.Feed, feed.BatchRequest{Want: []feed.Range{{Start: 10, End: 20}, {Start: 70, End: 75}}, Base: 50}),
		"reaching":    mustBatch(t, w.Feed, feed.BatchRequest{Want: []feed.Range{{Start: 45, End: 90}}, Base: 50}),
		"consistency": mustBatch(t, w.Feed, feed.BatchRequest{Base: 50}),
	}
	head100, _ := w.Head()
	appendN(t, w, 100)
	head200, _ := w.Head()
	other := newWriter(t, 7, 100)
	headOther, _ := other.Head()

	for name, valid := range batches {
		t.Run(name, func(t *testing.T) {
			r := newReplica(t)
			f := r.feed(t, w.Key())
			syncHead(t, w, f, head50)
			before := r.snapshot(t)
			type mutation struct {
				what string
				mut  func(b *feed.Batch) bool // false: not applicable
			}
			flip := func(hs [][]byte, i int) bool {
				if i >= len(hs) {
					return false
				}
				hs[i][i%32] ^= 0x01
				return true
			}
			muts := []mutation{
				{"bad signature", func(b *feed.Batch) bool { b.Head.Signature[3] ^= 1; return true }},
				{"length+1 unsigned", func(b *feed.Batch) bool { b.Head.Length++; return true }},
				{"root flipped", func(b *feed.Batch) bool { b.Head.Root[0] ^= 1; return true }},
				{"head size×2", func(b *feed.Batch) bool { b.Head = head200; return true }},
				{"head size÷2", func(b *feed.Batch) bool { b.Head = head50; return len(b.Runs) > 0 }},
				{"head of other feed", func(b *feed.Batch) bool { b.Head = headOther; return true }},
				{"head size 0", func(b *feed.Batch) bool { b.Head.Length = 0; return true }},
			}
			for ri := range valid.Runs {
				muts = append(muts,
					mutation{fmt.Sprintf("run %d start+1", ri), func(b *feed.Batch) bool { b.Runs[ri].Start++; return true }},
					mutation{fmt.Sprintf("run %d start-1", ri), func(b *feed.Batch) bool { b.Runs[ri].Start--; return b.Runs[ri].Start != ^uint64(0) }},
					mutation{fmt.Sprintf("run %d entry changed", ri), func(b *feed.Batch) bool { b.Runs[ri].Entries[0] = []byte("forged"); return true }},
					mutation{fmt.Sprintf("run %d entry dropped", ri), func(b *feed.Batch) bool {
						b.Runs[ri].Entries = b.Runs[ri].Entries[:len(b.Runs[ri].Entries)-1]
						return len(b.Runs[ri].Entries) > 0
					}},
					mutation{fmt.Sprintf("run %d entry added", ri), func(b *feed.Batch) bool {
						b.Runs[ri].Entries = append(b.Runs[ri].Entries, []byte("extra"))
						return b.Runs[ri].End() <= b.Head.Length && (ri+1 == len(b.Runs) || b.Runs[ri].End() <= b.Runs[ri+1].Start)
					}},
					mutation{fmt.Sprintf("run %d left extra hash", ri), func(b *feed.Batch) bool { b.Runs[ri].Left = append(b.Runs[ri].Left, make([]byte, 32)); return true }},
					mutation{fmt.Sprintf("run %d right extra hash", ri), func(b *feed.Batch) bool { b.Runs[ri].Right = append(b.Runs[ri].Right, make([]byte, 32)); return true }},
					mutation{fmt.Sprintf("run %d left missing hash", ri), func(b *feed.Batch) bool {
						l := b.Runs[ri].Left
						b.Runs[ri].Left = l[:max(len(l)-1, 0)]
						return len(l) > 0
					}},
					mutation{fmt.Sprintf("run %d right empty", ri), func(b *feed.Batch) bool {
						ok := len(b.Runs[ri].Right) > 0
						b.Runs[ri].Right = nil
						return ok
					}},
					mutation{fmt.Sprintf("run %d left short hash", ri), func(b *feed.Batch) bool {
						if len(b.Runs[ri].Left) == 0 {
							return false
						}
						b.Runs[ri].Left[0] = b.Runs[ri].Left[0][:31]
						return true
					}},
				)
				for i := 0; i < 8; i++ {
					muts = append(muts,
						mutation{fmt.Sprintf("run %d left flip %d", ri, i), func(b *feed.Batch) bool { return flip(b.Runs[ri].Left, i) }},
						mutation{fmt.Sprintf("run %d right flip %d", ri, i), func(b *feed.Batch) bool { return flip(b.Runs[ri].Right, i) }})
				}
			}
			if valid.Consistency != nil {
				muts = append(muts,
					mutation{"consistency base+1", func(b *feed.Batch) bool { b.Consistency.Base++; return true }},
					mutation{"consistency right empty", func(b *feed.Batch) bool { b.Consistency.Right = nil; return true }},
					mutation{"consistency right extra", func(b *feed.Batch) bool {
						b.Consistency.Right = append(b.Consistency.Right, make([]byte, 32))
						return true
					}},
					mutation{"consistency dropped", func(b *feed.Batch) bool { b.Consistency = nil; return true }})
				for i := 0; i < 8; i++ {
					muts = append(muts, mutation{fmt.Sprintf("consistency right flip %d", i), func(b *feed.Batch) bool { return flip(b.Consistency.Right, i) }})
				}
			}
			tried := 0
			for _, m := range muts {
				b := cloneBatch(valid)
				if !m.mut(b) {
					continue
				}
				tried++
				err := f.Ingest(b)
				if err == nil {
					t.Errorf("%s: accepted", m.what)
					continue
				}
				if !typed(err) {
					t.Errorf("%s: untyped error %v", m.what, err)
				}
				// And through the wire encoding, as a peer would send it.
				if data, merr := b.MarshalBinary(); merr == nil {
					var d feed.Batch
					if d.UnmarshalBinary(data) == nil && f.Ingest(&d) == nil {
						t.Errorf("%s: accepted after a wire round trip", m.what)
					}
				}
				if !sameSnapshot(before, r.snapshot(t)) {
					t.Fatalf("%s: refused (%v) but storage changed", m.what, err)
				}
				if f.Evidence() != nil {
					t.Fatalf("%s: a forged batch froze the feed", m.what)
				}
			}
			t.Logf("%d mutations refused, storage unchanged", tried)
			if err := f.Ingest(valid); err != nil {
				t.Fatalf("valid batch refused after mutations: %v", err)
			}
			if h, _ := f.Head(); h != head100 {
				t.Fatalf("replica head %d, want 100", h.Length)
			}
		})
	}
}

// syncHead gives a replica a head (and nothing else) via a consistency-only
// batch made by a writer that was at that head.
func syncHead(t *testing.T, w *feed.Writer, f *feed.Feed, h feed.SignedHead) {
	t.Helper()
	r := newReplica(t)
	tmp := r.feed(t, w.Key())
	b := mustBatch(t, w.Feed, feed.BatchRequest{Want: []feed.Range{{Start: 0, End: h.Length}}})
	// Rebuild the batch against h: a fresh writer-side replica holding
	// exactly h's entries.
	entries := b.Runs[0].Entries[:h.Length]
	part := &feed.Batch{Head: h, Runs: []feed.Run{{Start: 0, Entries: entries}}}
	if err := tmp.Ingest(part); err != nil {
		t.Fatal(err)
	}
	if err := f.Ingest(mustBatch(t, tmp, feed.BatchRequest{})); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Head(); got != h || len(f.Ranges()) != 0 {
		t.Fatalf("syncHead: replica at %d holding %v", got.Length, f.Ranges())
	}
}

func typed(err error) bool {
	for _, s := range []error{feed.ErrBadSignature, feed.ErrInvalidProof, feed.ErrMalformed,
		feed.ErrNeedConsistency, feed.ErrTooLarge, feed.ErrWrongFeed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
