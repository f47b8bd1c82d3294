package space

// Benchmarks of the writer set (issue 8): N membership ops applied to a
// view, one by one, as they arrive from the feeds.
//
//	go test -run '^$' -bench Membership -benchtime 1x ./node/space/
//
// MYCEL_BENCH_MEMBERS sets N (default 1,000).

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mycelsync/mycel/feed"
)

func benchMembers(b *testing.B) int {
	if s := os.Getenv("MYCEL_BENCH_MEMBERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1000
}

// memberChain returns the j-th of a chain of membership ops, made when
// asked (so that the benchmark holds none of them): writer j adds writer
// j+1 (the origin is writer 0), having seen the op that added it; with
// removeEvery > 0, every removeEvery-th op removes instead the writer added
// five ops before. Each add carries a sealed keyring of 1 KiB.
func memberChain(removeEvery int) (feed.PublicKey, func(j int) genOp) {
	w := func(i int) feed.PublicKey {
		return feed.PublicKey(sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))))
	}
	return w(0), func(j int) genOp {
		op := &Op{Kind: OpAddWriter, Target: w(j + 1), HLC: uint64(j + 1), Name: "device",
			SealedKeyring: make([]byte, 1<<10)}
		if removeEvery > 0 && j%removeEvery == removeEvery-1 && j >= 5 {
			op = &Op{Kind: OpRemoveWriter, Target: w(j - 4), HLC: uint64(j + 1)}
		}
		if j > 0 {
			op.Seen = []Seen{{Feed: w(j - 1), Length: 1}}
		}
		return genOp{feed: w(j), index: 0, op: op}
	}
}

func benchMembership(b *testing.B, removeEvery int) {
	n := benchMembers(b)
	origin, next := memberChain(removeEvery)
	for range b.N {
		v := NewView(origin)
		start := time.Now()
		for j := range n {
			g := next(j)
			v.Apply(g.feed, g.index, g.op)
		}
		el := time.Since(start)
		if v.Waiting() != 0 {
			b.Fatalf("%d ops waiting", v.Waiting())
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(n)/el.Seconds(), "member-ops/s")
		b.ReportMetric(float64(el.Microseconds())/float64(n), "µs/member-op")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		if len(v.members) != n {
			b.Fatalf("%d membership ops applied of %d", len(v.members), n)
		}
		runtime.KeepAlive(v)
	}
}

func BenchmarkMembershipAdds(b *testing.B)     { benchMembership(b, 0) }
func BenchmarkMembershipRemovals(b *testing.B) { benchMembership(b, 10) }
