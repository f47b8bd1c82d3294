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

// BenchmarkCatchUpView is the browser node's catch-up in Go: a node
// replicates a feed of 10k puts (10k keys) from another through a session
// and ends with its view complete — kept as batches arrive (kept=true, as
// the page does) or built once the session is done (kept=false). Compare
// with the browser test's figure for the same work in wasm
// (TestBrowserNodeReplicates with MYCEL_BROWSER_ENTRIES=10000). With
// member=true the node is a member (Node.Member: node/space's Space, whose
// view a page that signed in keeps).
func BenchmarkCatchUpView(b *testing.B) {
	const n = 10000
	sp, _ := PublicKey(seed(9))
	ss := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	src, _ := NewNode([][]byte{sp})
	for c := 0; c < n; c += 1000 {
		var entries [][]byte
		for i := c; i < c+1000; i++ {
			e, err := SealEntry(sp, sp, uint64(i), ss[0], Op{Kind: "put", Key: fmt.Sprintf("k%05d", i), Value: fmt.Appendf(nil, "value %d", i), HLC: uint64(i + 1)})
			if err != nil {
				b.Fatal(err)
			}
			entries = append(entries, e)
		}
		if _, err := src.Append(seed(9), entries); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []string{"kept=true", "kept=false", "member"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				dst, _ := NewNode([][]byte{sp})
				switch mode {
				case "kept=true":
					dst.ViewSummary(sp, ss)
				case "member":
					if err := dst.Member(MemberConfig{Space: sp, Seed: seed(3), Secrets: ss, NowMs: 1}); err != nil {
						b.Fatal(err)
					}
				}
				sa, _ := src.NewSession(SessionConfig{LocalID: []byte("a"), RemoteID: []byte("b"), Nonce: seed(1), Space: sp, Secrets: ss})
				sb, _ := dst.NewSession(SessionConfig{LocalID: []byte("b"), RemoteID: []byte("a"), Nonce: seed(2), Space: sp, Secrets: ss})
				if errA, errB := pump(b, sa, sb); errA != nil || errB != nil {
					b.Fatal(errA, errB)
				}
				v, err := dst.ViewSummary(sp, ss)
				if err != nil || v.Keys != n {
					b.Fatalf("%d keys, %v", v.Keys, err)
				}
			}
		})
	}
}
