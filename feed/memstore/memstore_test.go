package memstore_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/feed/storetest"
)

func TestStorage(t *testing.T) {
	storetest.Run(t, func(t *testing.T) feed.Storage { return memstore.New() })
}

// TestCommitMergesInOrder: commits of new keys that fall between, before
// and after the keys held (merged into the sorted entries in one pass), with
// updates and deletes in the same commits, leave the store equal to a map
// that took the same writes, and Scan returns its keys in order.
func TestCommitMergesInOrder(t *testing.T) {
	s := memstore.New()
	model := map[string]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	for c := range 200 {
		var ws []feed.Write
		for range rng.IntN(40) {
			k := fmt.Sprintf("k%04d", rng.IntN(500))
			if rng.IntN(5) == 0 {
				ws = append(ws, feed.Write{Key: []byte(k), Delete: true})
				delete(model, k)
				continue
			}
			v := fmt.Sprintf("v%d", c)
			ws = append(ws, feed.Write{Key: []byte(k), Value: []byte(v)})
			model[k] = v
		}
		if err := s.Commit(ws); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.Scan(nil, nil, func(k, v []byte) error {
		if model[string(k)] != string(v) {
			t.Errorf("%s = %q, want %q", k, v, model[string(k)])
		}
		got = append(got, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(maps.Keys(model))
	if !slices.Equal(got, want) {
		t.Fatalf("scan: %d keys, want %d (or out of order)", len(got), len(want))
	}
}

// BenchmarkCommitInterleaved commits batches of new keys that each fall
// before every key held, the shape of a feed's entries and tree nodes
// stored batch by batch: each commit moves the entries held once.
func BenchmarkCommitInterleaved(b *testing.B) {
	for b.Loop() {
		s := memstore.New()
		for c := 9; c >= 0; c-- {
			ws := make([]feed.Write, 0, 1000)
			for i := range 1000 {
				ws = append(ws, feed.Write{Key: fmt.Appendf(nil, "%d-%05d", c, i), Value: []byte("v")})
			}
			if err := s.Commit(ws); err != nil {
				b.Fatal(err)
			}
		}
	}
}
