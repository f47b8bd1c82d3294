package core

import (
	"fmt"
	"testing"
)

// BenchmarkSealAndView is benchView of src/wasmcheck.ts in Go: 10k puts on
// 1000 keys sealed, then their view computed (compare the browser test's
// figures for the same work in wasm).
func BenchmarkSealAndView(b *testing.B) {
	const n = 10000
	sp, origin := seed(0x51), seed(0x01)
	ss := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	for b.Loop() {
		entries := make([]Entry, n)
		for i := range n {
			d, err := SealEntry(sp, origin, uint64(i), ss[0], Op{Kind: "put", Key: fmt.Sprintf("key %d", i%1000), Value: fmt.Appendf(nil, "value %d", i), HLC: uint64(i+1) << 16})
			if err != nil {
				b.Fatal(err)
			}
			entries[i] = Entry{Author: origin, Index: uint64(i), Data: d}
		}
		v, err := ComputeView(sp, origin, ss, entries)
		if err != nil {
			b.Fatal(err)
		}
		if len(v.KVs) != 1000 {
			b.Fatalf("%d keys", len(v.KVs))
		}
	}
}
