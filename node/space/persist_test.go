package space

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
)

// TestPersistedViewConverges runs the convergence workload on views kept in
// storage, reopened at random moments: sometimes after a Flush, sometimes
// as after a crash, losing what was not flushed. A reopened view is given
// again the ops it no longer has (from Applied on, as a Space reads them
// from its feeds), and after every batch it must equal the oracle of all
// ops given so far.
func TestPersistedViewConverges(t *testing.T) {
	n := 6000
	if testing.Short() {
		n = 1500
	}
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("replay with MYCEL_SEED=%d", seed)
			rng := rand.New(rand.NewPCG(seed, 11))
			origin, ops := workload(rng, 5, n, 40)
			st := memstore.New()
			key := [auth.KeySize]byte{7}
			open := func() *View {
				v, err := OpenView(origin, st, key, nil)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			v := open()
			var given []genOp
			reopens, crashes := 0, 0
			for _, i := range deliveryOrder(rng, int(seed), ops) {
				g := ops[i]
				v.Apply(g.feed, g.index, g.op)
				given = append(given, g)
				if rng.IntN(300) != 0 {
					continue
				}
				if rng.IntN(2) == 0 {
					if err := v.Flush(); err != nil {
						t.Fatal(err)
					}
				} else {
					crashes++
				}
				reopens++
				v = open()
				for _, g := range given {
					if g.index >= v.Applied(g.feed) {
						v.Apply(g.feed, g.index, g.op)
					}
				}
				if got, want := v.Digest(), oracle(origin, given); got != want {
					t.Fatalf("after reopen %d (%d ops given): view differs from recomputation", reopens, len(given))
				}
			}
			if err := v.Flush(); err != nil {
				t.Fatal(err)
			}
			v = open()
			if got, want := v.Digest(), oracle(origin, given); got != want {
				t.Fatal("final reopened view differs from recomputation")
			}
			if v.Waiting() != 0 {
				t.Fatalf("%d ops waiting", v.Waiting())
			}
			t.Logf("%d ops, %d reopens (%d losing unflushed work), %d keys, %d writers", len(given), reopens, crashes, len(v.List("", "", 1000)), len(v.WriterSet().Writers()))
		})
	}
}

// TestIncompleteFlushIsDropped: a view whose meta says a flush was cut
// short is thrown away on open and rebuilt from the feeds.
func TestIncompleteFlushIsDropped(t *testing.T) {
	st := memstore.New()
	origin := feed.PublicKey{1}
	key := [auth.KeySize]byte{9}
	v, _ := OpenView(origin, st, key, nil)
	v.Apply(origin, 0, &Op{Kind: OpAddWriter, Target: origin, HLC: 1})
	v.Apply(origin, 1, &Op{Kind: OpPut, Key: "k", Value: []byte("v"), HLC: 2})
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	kv := v.st.(*kvStore)
	kv.put(kv.recKey('m'), v.encodeMeta(kv, true))
	kv.flush(func(bool) []byte { return v.encodeMeta(kv, true) })
	again, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Applied(origin) != 0 || len(again.Get("k")) != 0 {
		t.Fatal("incomplete view kept")
	}
	left := 0
	st.Scan([]byte("v"), []byte("w"), func(k, _ []byte) error { left++; return nil })
	if left != 0 {
		t.Fatalf("%d records of the dropped view left", left)
	}
}
