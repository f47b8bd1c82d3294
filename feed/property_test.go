package feed_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// testSeeds returns the seeds a randomised test runs with: MYCEL_SEED if set,
// else a fresh one plus fixed ones. Each is logged so a failure can be
// replayed.
func testSeeds(t *testing.T) []uint64 {
	if s := os.Getenv("MYCEL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return []uint64{v}
	}
	return []uint64{1, 2, 3, rand.Uint64()}
}

// TestReplicaRandomSubsetsRandomOrder: a writer appends; batches of random
// ranges are cut at random moments and delivered to a replica in a random
// order. Every batch is either stored or refused without a trace; the
// replica holds exactly what it accepted, and once filled in it has the
// writer's roots and proofs for every size.
func TestReplicaRandomSubsetsRandomOrder(t *testing.T) {
	for _, seed := range testSeeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("replay with MYCEL_SEED=%d", seed)
			rng := rand.New(rand.NewPCG(seed, 0))
			w := newWriter(t, 3, 0)
			var batches []*feed.Batch
			cuts := []uint64{0} // head lengths batches were cut at
			for step := 0; step < 30; step++ {
				appendN(t, w, 1+rng.IntN(60))
				n := w.Length()
				for k := 0; k < 1+rng.IntN(3); k++ {
					a := rng.Uint64N(n)
					req := feed.BatchRequest{
						Want: []feed.Range{{Start: a, End: a + 1 + rng.Uint64N(min(n-a, 50))}},
						// The sender proves consistency from some length a
						// receiver might have had.
						Base:     cuts[rng.IntN(len(cuts))],
						MaxBytes: 1 + rng.IntN(400),
					}
					if rng.IntN(4) == 0 {
						req.Want = nil // head and consistency proof only
					}
					batches = append(batches, mustBatch(t, w.Feed, req))
				}
				cuts = append(cuts, n)
			}
			rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })

			r := newReplica(t)
			f := r.feed(t, w.Key())
			var expect []feed.Range // what the replica must hold
			accepted, refused := 0, 0
			// A batch the replica cannot check yet is refused untouched; like
			// the replication protocol, deliver it again later.
			for pass := 0; pass < 3 && len(batches) > 0; pass++ {
				var retry []*feed.Batch
				for i, b := range batches {
					before := r.snapshot(t)
					err := f.Ingest(b)
					if errors.Is(err, feed.ErrNeedConsistency) {
						if !sameSnapshot(before, r.snapshot(t)) {
							t.Fatalf("batch %d refused but storage changed", i)
						}
						refused++
						retry = append(retry, b)
						continue
					}
					if err != nil {
						t.Fatalf("batch %d (head %d, base %v): %v", i, b.Head.Length, b.Consistency != nil, err)
					}
					accepted++
					for _, run := range b.Runs {
						expect = addRange(expect, feed.Range{Start: run.Start, End: run.End()})
					}
					if got := f.Ranges(); fmt.Sprint(clip(expect, f.Length())) != fmt.Sprint(got) {
						t.Fatalf("after batch %d replica holds %v, want %v", i, got, clip(expect, f.Length()))
					}
				}
				batches = retry
				rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
			}
			t.Logf("%d batches accepted in random order, %d refusals, %d never checkable", accepted, refused, len(batches))
			if accepted == 0 {
				t.Fatal("no batch accepted")
			}
			syncAll(t, w.Feed, f)
			compareFeeds(t, w.Feed, f, rng)
		})
	}
}

// compareFeeds checks that two replicas of a feed agree on everything.
func compareFeeds(t *testing.T, a, b *feed.Feed, rng *rand.Rand) {
	t.Helper()
	ha, _ := a.Head()
	hb, _ := b.Head()
	if ha.Length != hb.Length || ha.Root != hb.Root {
		t.Fatalf("heads differ: %d/%x vs %d/%x", ha.Length, ha.Root[:4], hb.Length, hb.Root[:4])
	}
	n := ha.Length
	for s := uint64(0); s <= n; s++ {
		ra, err1 := a.RootAt(s)
		rb, err2 := b.RootAt(s)
		if err1 != nil || err2 != nil || ra != rb {
			t.Fatalf("RootAt(%d): %x %v / %x %v", s, ra, err1, rb, err2)
		}
	}
	for k := 0; k < 200; k++ {
		s := 1 + rng.Uint64N(n)
		i := rng.Uint64N(s)
		pa, err1 := a.InclusionProof(i, s)
		pb, err2 := b.InclusionProof(i, s)
		if err1 != nil || err2 != nil || fmt.Sprint(pa) != fmt.Sprint(pb) {
			t.Fatalf("InclusionProof(%d, %d): %v / %v", i, s, err1, err2)
		}
		e, _ := b.Get(i)
		root, _ := b.RootAt(s)
		if err := feed.VerifyInclusion(i, s, e, pb, root); err != nil {
			t.Fatal(err)
		}
		s1 := rng.Uint64N(s + 1)
		ca, err1 := a.ConsistencyProof(s1, s)
		cb, err2 := b.ConsistencyProof(s1, s)
		if err1 != nil || err2 != nil || fmt.Sprint(ca) != fmt.Sprint(cb) {
			t.Fatalf("ConsistencyProof(%d, %d): %v / %v", s1, s, err1, err2)
		}
		r1, _ := b.RootAt(s1)
		if err := feed.VerifyConsistency(s1, s, cb, r1, root); err != nil {
			t.Fatal(err)
		}
	}
}

func addRange(set []feed.Range, r feed.Range) []feed.Range {
	var out []feed.Range
	for _, x := range set {
		if x.End < r.Start || x.Start > r.End {
			out = append(out, x)
			continue
		}
		r = feed.Range{Start: min(r.Start, x.Start), End: max(r.End, x.End)}
	}
	out = append(out, r)
	for i := len(out) - 1; i > 0 && out[i].Start < out[i-1].Start; i-- {
		out[i], out[i-1] = out[i-1], out[i]
	}
	return out
}

func clip(set []feed.Range, n uint64) []feed.Range {
	var out []feed.Range
	for _, r := range set {
		if r.Start < n {
			out = append(out, feed.Range{Start: r.Start, End: min(r.End, n)})
		}
	}
	return out
}

// TestRandomAppendsMatchReference appends random batch sizes and checks the
// head against a from-scratch root after each.
func TestRandomAppendsMatchReference(t *testing.T) {
	for _, seed := range testSeeds(t) {
		rng := rand.New(rand.NewPCG(seed, 1))
		w := newWriter(t, 4, 0)
		var all [][]byte
		for len(all) < 2000 {
			k := 1 + rng.IntN(50)
			batch := make([][]byte, k)
			for j := range batch {
				batch[j] = make([]byte, rng.IntN(200))
				for x := range batch[j] {
					batch[j][x] = byte(rng.Uint32())
				}
			}
			first, err := w.Append(t.Context(), batch...)
			if err != nil || first != uint64(len(all)) {
				t.Fatalf("seed %d: append at %d: %d, %v", seed, len(all), first, err)
			}
			all = append(all, batch...)
			if h, _ := w.Head(); h.Root != feed.Root(all) || h.Verify() != nil {
				t.Fatalf("seed %d: head root after %d entries differs from reference", seed, len(all))
			}
		}
		got, err := w.GetRange(0, uint64(len(all)))
		if err != nil {
			t.Fatal(err)
		}
		for i := range all {
			if string(got[i]) != string(all[i]) {
				t.Fatalf("seed %d: entry %d differs", seed, i)
			}
		}
	}
}
