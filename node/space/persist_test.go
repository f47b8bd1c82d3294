package space

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
)

// crashStore is a Storage whose commits fail, as if the process had died,
// once left reaches 0; what it committed before stays. left < 0: never.
type crashStore struct {
	feed.Storage
	left int
}

var errCrash = errors.New("crashed")

func (c *crashStore) Commit(ws []feed.Write) error {
	if c.left == 0 {
		return errCrash
	}
	if c.left > 0 {
		c.left--
	}
	return c.Storage.Commit(ws)
}

// tinyLimits make every flush span several commits and pages, and
// checkpoints frequent, so that crashes land inside them.
var tinyLimits = kvLimits{
	flushBytes:      2 << 10,
	pageBytes:       700,
	commitBytes:     3000,
	commitWrites:    6,
	checkpointOps:   200,
	checkpointBytes: 16 << 10,
	dirtyMax:        25,
	dirtyBytes:      8 << 10,
	regCacheMax:     16,
	regCacheBytes:   4 << 10,
}

// TestPersistedViewConverges runs the convergence workload on views kept in
// storage, reopened at random moments: sometimes after a Flush, sometimes
// as after a crash, losing what was not flushed, sometimes after a crash
// in the middle of a flush (its log pages, its checkpoint) or of the
// checkpoint a flush with nothing new makes. A reopened view
// is given again the ops it no longer has (from Applied on, as a Space
// reads them from its feeds), and after every batch it must equal the
// oracle of all ops given so far.
func TestPersistedViewConverges(t *testing.T) {
	n := 6000
	if testing.Short() {
		n = 1500
	}
	for _, limits := range []struct {
		name string
		lim  kvLimits
	}{{"default", defaultKVLimits}, {"tiny", tinyLimits}} {
		for _, seed := range seeds(t) {
			t.Run(fmt.Sprint(limits.name, "/", seed), func(t *testing.T) {
				t.Logf("replay with MYCEL_SEED=%d", seed)
				rng := rand.New(rand.NewPCG(seed, 11))
				origin, ops := workload(rng, 5, n, 40)
				st := &crashStore{Storage: memstore.New(), left: -1}
				key := [auth.KeySize]byte{7}
				rebuilt := 0
				open := func() *View {
					st.left = -1
					v, err := OpenView(origin, st, key, nil)
					if err != nil {
						t.Fatal(err)
					}
					kv := v.st.(*kvStore)
					if kv.rebuilt {
						rebuilt++
					}
					kv.lim = limits.lim
					return v
				}
				v := open()
				var given []genOp
				reopens, crashes, cut := 0, 0, 0
				for _, i := range deliveryOrder(rng, int(seed), ops) {
					g := ops[i]
					v.Apply(g.feed, g.index, g.op)
					given = append(given, g)
					if rng.IntN(300) != 0 {
						continue
					}
					var applied map[feed.PublicKey]uint64
					switch rng.IntN(4) {
					case 0:
						if err := v.Flush(); err != nil {
							t.Fatal(err)
						}
						applied = map[feed.PublicKey]uint64{}
						for k := range v.feeds {
							applied[k] = v.Applied(k)
						}
					case 1:
						crashes++
					case 2:
						st.left = rng.IntN(4)
						if v.Flush() != nil {
							cut++
						}
					case 3:
						// A flush, then one with nothing new (a Close),
						// which makes a checkpoint, cut short.
						if err := v.Flush(); err != nil {
							t.Fatal(err)
						}
						st.left = rng.IntN(4)
						if v.Flush() != nil {
							cut++
						}
					}
					reopens++
					v = open()
					for k, n := range applied {
						if v.Applied(k) != n {
							t.Fatalf("reopened after a flush: %d ops of %x applied, want %d", v.Applied(k), k[:4], n)
						}
					}
					for _, g := range given {
						if g.index >= v.Applied(g.feed) {
							v.Apply(g.feed, g.index, g.op)
						}
					}
					if got, want := v.Digest(), oracle(origin, given); got != want {
						t.Fatalf("after reopen %d (%d ops given): view differs from recomputation", reopens, len(given))
					}
					checkAccount(t, v)
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
				t.Logf("%d ops, %d reopens (%d losing unflushed work, %d flushes cut short, %d rebuilt registers), %d keys, %d writers",
					len(given), reopens, crashes, cut, rebuilt, len(v.List("", "", 1000)), len(v.WriterSet().Writers()))
			})
		}
	}
}

// TestOldViewFormatDropped: a view stored in another format version is
// thrown away on open and rebuilt from the feeds.
func TestOldViewFormatDropped(t *testing.T) {
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
	meta := v.encodeMeta(kv)
	meta[0] = 1 // the format of one record per op
	w, err := kv.seal(kv.recKey('m'), meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit([]feed.Write{w}); err != nil {
		t.Fatal(err)
	}
	again, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Applied(origin) != 0 || len(again.Get("k")) != 0 {
		t.Fatal("view of version 1 kept")
	}
	left := 0
	st.Scan([]byte("v"), []byte("w"), func(k, _ []byte) error { left++; return nil })
	if left != 0 {
		t.Fatalf("%d records of the dropped view left", left)
	}
}

// TestViewReopenReadsTail: reopening reads the log's tail only, and a key
// written in the tail is right before and after a checkpoint.
func TestViewReopenReadsTail(t *testing.T) {
	st := memstore.New()
	origin := feed.PublicKey{1}
	key := [auth.KeySize]byte{9}
	v, _ := OpenView(origin, st, key, nil)
	v.Apply(origin, 0, &Op{Kind: OpAddWriter, Target: origin, HLC: 1})
	for i := range 100 {
		v.Apply(origin, uint64(1+i), &Op{Kind: OpPut, Key: fmt.Sprint("k", i%10), Value: []byte(fmt.Sprint(i)), HLC: uint64(2 + i)})
	}
	if err := v.Flush(); err != nil { // checkpoint: a membership op was logged
		t.Fatal(err)
	}
	for i := 100; i < 150; i++ {
		v.Apply(origin, uint64(1+i), &Op{Kind: OpPut, Key: fmt.Sprint("k", i%10), Value: []byte(fmt.Sprint(i)), HLC: uint64(2 + i)})
	}
	if err := v.Flush(); err != nil { // no checkpoint
		t.Fatal(err)
	}
	want := v.Digest()
	again, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	kv := again.st.(*kvStore)
	if kv.ckpt != 101 || kv.flushed != 151 || len(kv.pending) != 10 {
		t.Fatalf("checkpoint %d, log %d, %d keys pending; want 101, 151, 10", kv.ckpt, kv.flushed, len(kv.pending))
	}
	if vs := again.Get("k3"); len(vs) != 1 || string(vs[0].Value) != "143" {
		t.Fatalf("k3 = %v", vs)
	}
	if again.Digest() != want {
		t.Fatal("reopened view differs")
	}
	kv.lim.checkpointOps = 1
	if err := again.Flush(); err != nil {
		t.Fatal(err)
	}
	third, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kv := third.st.(*kvStore); kv.ckpt != 151 || len(kv.pending) != 0 {
		t.Fatalf("after a checkpoint: checkpoint %d, %d keys pending", kv.ckpt, len(kv.pending))
	}
	if third.Digest() != want {
		t.Fatal("view after the checkpoint differs")
	}
}

// TestViewLargeOps: ops of the largest values are cut into pages that each
// stay under the sealing limit, and read back.
func TestViewLargeOps(t *testing.T) {
	st := memstore.New()
	origin := feed.PublicKey{1}
	key := [auth.KeySize]byte{9}
	v, _ := OpenView(origin, st, key, nil)
	v.Apply(origin, 0, &Op{Kind: OpAddWriter, Target: origin, HLC: 1})
	for i := range 8 {
		value := make([]byte, MaxValueSize)
		value[0] = byte(i)
		v.Apply(origin, uint64(1+i), &Op{Kind: OpPut, Key: fmt.Sprint("k", i%3), Value: value, HLC: uint64(2 + i)})
	}
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	want := v.Digest()
	again, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kv := again.st.(*kvStore); kv.flushed != 9 {
		t.Fatalf("log of %d ops, want 9", kv.flushed)
	}
	if again.Digest() != want {
		t.Fatal("reopened view differs")
	}
	pages := 0
	st.Scan([]byte("v"), []byte("w"), func(k, _ []byte) error {
		if k[9] == 'l' {
			pages++
		}
		return nil
	})
	if pages < 8 {
		t.Fatalf("%d pages for 9 ops of up to 512 KiB", pages)
	}
}
