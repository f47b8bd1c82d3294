package feed_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

func TestAppendReadProve(t *testing.T) {
	w := newWriter(t, 1, 0)
	var all [][]byte
	for i := 0; i < 300; i++ {
		k := 1 + i%5
		batch := make([][]byte, k)
		for j := range batch {
			batch[j] = entry(len(all) + j)
		}
		first, err := w.Append(context.Background(), batch...)
		if err != nil {
			t.Fatal(err)
		}
		if first != uint64(len(all)) {
			t.Fatalf("append returned index %d, want %d", first, len(all))
		}
		all = append(all, batch...)
	}
	h, ok := w.Head()
	if !ok || h.Length != uint64(len(all)) || h.Root != feed.Root(all) {
		t.Fatalf("head %+v, want length %d root %x", h, len(all), feed.Root(all))
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
	for i := range all {
		got, err := w.Get(uint64(i))
		if err != nil || string(got) != string(all[i]) {
			t.Fatalf("get %d = %q, %v", i, got, err)
		}
	}
	for _, size := range []uint64{1, 2, 3, 16, 17, 100, 511, uint64(len(all))} {
		root, err := w.RootAt(size)
		if err != nil || root != feed.Root(all[:size]) {
			t.Fatalf("RootAt(%d) = %x, %v", size, root, err)
		}
		for i := uint64(0); i < size; i += 1 + size/7 {
			p, err := w.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := feed.VerifyInclusion(i, size, all[i], p, root); err != nil {
				t.Fatalf("inclusion %d/%d: %v", i, size, err)
			}
		}
		for s1 := uint64(0); s1 <= size; s1 += 1 + size/5 {
			p, err := w.ConsistencyProof(s1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := feed.VerifyConsistency(s1, size, p, feed.Root(all[:s1]), root); err != nil {
				t.Fatalf("consistency %d→%d: %v", s1, size, err)
			}
		}
	}
}

func TestReplicaRandomSubsets(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	w := newWriter(t, 2, 0)
	rdb := newDB(t)
	r, err := rdb.Feed(w.Key())
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 40; round++ {
		n := 1 + rng.IntN(40)
		for i := 0; i < n; i++ {
			if _, err := w.Append(context.Background(), entry(int(w.Length()))); err != nil {
				t.Fatal(err)
			}
		}
		L := w.Length()
		// ask for a few random ranges
		var want []feed.Range
		for k := 0; k < 1+rng.IntN(3); k++ {
			a := rng.Uint64N(L)
			want = append(want, feed.Range{Start: a, End: a + 1 + rng.Uint64N(L-a)})
		}
		b, err := w.Batch(feed.BatchRequest{Want: want[:1], Base: r.Length()})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Ingest(b); err != nil {
			t.Fatalf("round %d: ingest: %v", round, err)
		}
		if h, _ := r.Head(); h.Length != L {
			t.Fatalf("replica length %d want %d", h.Length, L)
		}
	}
	// fill everything and compare proofs
	for len(r.Missing()) > 0 {
		b, err := w.Batch(feed.BatchRequest{Want: r.Missing(), Base: r.Length()})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Ingest(b); err != nil {
			t.Fatal(err)
		}
	}
	L := w.Length()
	for i := uint64(0); i < L; i += 7 {
		p1, err1 := w.InclusionProof(i, L)
		p2, err2 := r.InclusionProof(i, L)
		if err1 != nil || err2 != nil || fmt.Sprint(p1) != fmt.Sprint(p2) {
			t.Fatalf("proof %d differs: %v %v", i, err1, err2)
		}
	}
}
