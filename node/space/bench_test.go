package space

// Benchmarks of the view (issue 3). They run only with -bench:
//
//	go test -run '^$' -bench . -benchtime 1x ./node/space/
//
// MYCEL_BENCH_OPS sets the number of ops (default 1,000,000).

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
)

func benchOps(b *testing.B) int {
	if s := os.Getenv("MYCEL_BENCH_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1_000_000
}

// benchWorkload: 10 writers (the origin adds the other 9), taking turns in
// random order and catching up with a random other writer every few ops;
// 90% puts of 100-byte values and 10% deletes over 100,000 keys
// "k/00000"…"k/99999".
func benchWorkload(n int) (feed.PublicKey, []genOp) {
	rng := rand.New(rand.NewPCG(42, 42))
	type w struct {
		key         feed.PublicKey
		n           uint64
		known, told map[feed.PublicKey]uint64
	}
	ws := make([]*w, 10)
	for i := range ws {
		ws[i] = &w{key: feed.PublicKey(sha256.Sum256([]byte{'b', byte(i)})), known: map[feed.PublicKey]uint64{}, told: map[feed.PublicKey]uint64{}}
	}
	var all []genOp
	var hlc uint64
	value := make([]byte, 100)
	write := func(x *w, op *Op) {
		hlc++
		op.HLC = hlc
		for k, l := range x.known {
			if k != x.key && l > x.told[k] {
				op.Seen = append(op.Seen, Seen{Feed: k, Length: l})
				x.told[k] = l
			}
		}
		all = append(all, genOp{feed: x.key, index: x.n, op: op})
		x.n++
	}
	write(ws[0], &Op{Kind: OpAddWriter, Target: ws[0].key})
	for _, x := range ws[1:] {
		write(ws[0], &Op{Kind: OpAddWriter, Target: x.key})
	}
	for _, x := range ws[1:] {
		x.known[ws[0].key] = ws[0].n
	}
	for len(all) < n {
		x := ws[rng.IntN(len(ws))]
		if rng.IntN(8) == 0 {
			y := ws[rng.IntN(len(ws))]
			for k, l := range y.known {
				x.known[k] = max(x.known[k], l)
			}
			x.known[y.key] = max(x.known[y.key], y.n)
		}
		key := fmt.Sprintf("k/%05d", rng.IntN(100_000))
		if rng.IntN(10) == 0 {
			write(x, &Op{Kind: OpDelete, Key: key})
			continue
		}
		for i := range value {
			value[i] = byte(rng.Uint32())
		}
		write(x, &Op{Kind: OpPut, Key: key, Value: slices.Clone(value)})
	}
	return ws[0].key, all
}

func percentile(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p)]
}

// BenchmarkView1M applies the ops to a view kept in badger, flushes, reopens
// it and reads: apply ops/s, reopen-to-ready time (and the ops of the log's
// tail it read), Get and List latencies.
func BenchmarkView1M(b *testing.B) {
	n := benchOps(b)
	origin, ops := benchWorkload(n)
	key := [auth.KeySize]byte{1}
	for range b.N {
		dir := b.TempDir()
		st, err := badgerstore.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		v, err := OpenView(origin, st, key, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for _, g := range ops {
			v.Apply(g.feed, g.index, g.op)
		}
		if err := v.Flush(); err != nil {
			b.Fatal(err)
		}
		applied := time.Since(start)
		if v.Waiting() != 0 || len(v.Invalid()) != 0 {
			b.Fatalf("%d waiting, %d invalid", v.Waiting(), len(v.Invalid()))
		}
		st.Close()

		// Reopen: storage, then the view, ready to answer.
		start = time.Now()
		st, err = badgerstore.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		v, err = OpenView(origin, st, key, nil)
		if err != nil {
			b.Fatal(err)
		}
		v.Get("k/00000")
		reopen := time.Since(start)
		kv := v.st.(*kvStore)
		tail := kv.flushed - kv.ckpt

		rng := rand.New(rand.NewPCG(1, 1))
		gets := make([]time.Duration, 20_000)
		for i := range gets {
			k := fmt.Sprintf("k/%05d", rng.IntN(100_000))
			t0 := time.Now()
			v.Get(k)
			gets[i] = time.Since(t0)
		}
		t0 := time.Now()
		v.List("k/", "", 100) // loads the name index
		firstList := time.Since(t0)
		lists := make([]time.Duration, 2_000)
		for i := range lists {
			p := fmt.Sprintf("k/%03d", rng.IntN(1000))
			t0 := time.Now()
			if got := v.List(p, "", 100); len(got) == 0 {
				b.Fatalf("List(%q) empty", p)
			}
			lists[i] = time.Since(t0)
		}
		st.Close()

		b.ReportMetric(float64(n)/applied.Seconds(), "apply-ops/s")
		b.ReportMetric(float64(reopen.Milliseconds()), "reopen-ms")
		b.ReportMetric(float64(tail), "reopen-tail-ops")
		b.ReportMetric(float64(percentile(gets, 0.5).Microseconds()), "get-p50-µs")
		b.ReportMetric(float64(percentile(gets, 0.99).Microseconds()), "get-p99-µs")
		b.ReportMetric(float64(firstList.Milliseconds()), "first-list-ms")
		b.ReportMetric(float64(percentile(lists, 0.5).Microseconds()), "list100-p50-µs")
		b.ReportMetric(float64(percentile(lists, 0.99).Microseconds()), "list100-p99-µs")
	}
}

// BenchmarkViewApplyMemory is the same apply with the view in memory: the
// cost of the rules without storage.
func BenchmarkViewApplyMemory(b *testing.B) {
	n := benchOps(b)
	origin, ops := benchWorkload(n)
	for range b.N {
		v := NewView(origin)
		start := time.Now()
		for _, g := range ops {
			v.Apply(g.feed, g.index, g.op)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "apply-ops/s")
	}
}
