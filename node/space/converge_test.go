package space

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// genOp is one op of a generated workload, at its place in its feed.
type genOp struct {
	feed  feed.PublicKey
	index uint64
	op    *Op
}

// workload simulates 5 writer slots with partial knowledge of each other:
// each step a random slot either learns what another knows or writes an op
// with its causal delta. A removed device goes on writing for a while (its
// ops race the removal), then its slot is taken by a fresh device that has
// to be added, so removals are frequent while writers stay active.
func workload(rng *rand.Rand, writers, n int, keys int) (origin feed.PublicKey, all []genOp) {
	type w struct {
		key     feed.PublicKey
		n       uint64
		known   map[feed.PublicKey]uint64 // lengths seen
		told    map[feed.PublicKey]uint64 // lengths in its previous ops
		doomed  int                       // ops left before a fresh device takes the slot; -1: not removed
		devices int
	}
	fresh := func(slot, gen int) feed.PublicKey {
		return feed.PublicKey(sha256.Sum256([]byte{byte(slot), byte(gen)}))
	}
	ws := make([]*w, writers)
	for i := range ws {
		ws[i] = &w{key: fresh(i, 0), known: map[feed.PublicKey]uint64{}, told: map[feed.PublicKey]uint64{}, doomed: -1}
	}
	origin = ws[0].key
	var hlc uint64
	write := func(x *w, op *Op) {
		hlc++
		op.HLC = hlc << 4
		for k, l := range x.known {
			if k != x.key && l > x.told[k] {
				op.Seen = append(op.Seen, Seen{Feed: k, Length: l})
				x.told[k] = l
			}
		}
		slices.SortFunc(op.Seen, func(a, b Seen) int { return OpID{Feed: a.Feed}.compare(OpID{Feed: b.Feed}) })
		all = append(all, genOp{feed: x.key, index: x.n, op: op})
		x.n++
		if x.doomed > 0 {
			x.doomed--
		} else if x.doomed == 0 { // a new device takes the slot
			x.devices++
			x.key, x.n, x.doomed = fresh(slices.Index(ws, x), x.devices), 0, -1
			x.told = map[feed.PublicKey]uint64{}
		}
	}
	write(ws[0], &Op{Kind: OpAddWriter, Target: origin})
	for len(all) < n {
		x := ws[rng.IntN(writers)]
		switch r := rng.IntN(1000); {
		case r < 300: // learn from another writer
			y := ws[rng.IntN(writers)]
			for k, l := range y.known {
				x.known[k] = max(x.known[k], l)
			}
			x.known[y.key] = max(x.known[y.key], y.n)
		case r < 315:
			write(x, &Op{Kind: OpAddWriter, Target: ws[rng.IntN(writers)].key})
		case r < 318:
			y := ws[rng.IntN(writers)]
			write(x, &Op{Kind: OpRemoveWriter, Target: y.key})
			if y.doomed < 0 && y != ws[0] {
				y.doomed = rng.IntN(30)
			}
		case r < 322:
			write(x, &Op{Kind: OpRotate, Rotation: &Rotation{Epoch: 1, KeyID: [16]byte{byte(len(all))}}})
		case r < 420:
			write(x, &Op{Kind: OpDelete, Key: fmt.Sprintf("k%02d", rng.IntN(keys))})
		default:
			write(x, &Op{Kind: OpPut, Key: fmt.Sprintf("k%02d", rng.IntN(keys)), Value: []byte(fmt.Sprintf("v%d", len(all)))})
		}
	}
	return origin, all
}

// oracle computes the view of a set of ops from scratch, without the
// incremental machinery: which ops are applicable, their clocks, the writer
// set, and each key's versions by brute force.
func oracle(origin feed.PublicKey, ops []genOp) [32]byte {
	byFeed := map[feed.PublicKey]map[uint64]*Op{}
	for _, g := range ops {
		if byFeed[g.feed] == nil {
			byFeed[g.feed] = map[uint64]*Op{}
		}
		byFeed[g.feed][g.index] = g.op
	}
	applied := map[feed.PublicKey]uint64{}
	// Apply in rounds until nothing more is ready.
	type rec struct {
		id    OpID
		clock Clock
		op    *Op
		valid bool
	}
	var recs []*rec
	cum := map[feed.PublicKey]Clock{}
	lastHLC := map[feed.PublicKey]uint64{}
	for progress := true; progress; {
		progress = false
		for f, m := range byFeed {
			for {
				op := m[applied[f]]
				if op == nil {
					break
				}
				ready := true
				for _, s := range op.Seen {
					if s.Feed != f && applied[s.Feed] < s.Length {
						ready = false
					}
				}
				if !ready {
					break
				}
				id := OpID{Feed: f, Index: applied[f]}
				applied[f]++
				progress = true
				valid := op.HLC > lastHLC[f]
				for _, s := range op.Seen {
					valid = valid && s.Feed != f
				}
				if !valid {
					continue
				}
				lastHLC[f] = op.HLC
				c := maps.Clone(cum[f])
				if c == nil {
					c = Clock{}
				}
				for _, s := range op.Seen {
					c[s.Feed] = max(c[s.Feed], s.Length)
				}
				cum[f] = c
				own := maps.Clone(c)
				own[f] = id.Index
				recs = append(recs, &rec{id: id, clock: own, op: op, valid: true})
			}
		}
	}
	var members []MemberOp
	for _, r := range recs {
		if r.op.Kind == OpAddWriter || r.op.Kind == OpRemoveWriter {
			members = append(members, MemberOp{ID: r.id, Clock: r.clock, HLC: r.op.HLC, Remove: r.op.Kind == OpRemoveWriter, Target: r.op.Target})
		}
	}
	ws := Resolve(origin, members)
	// Each key's versions by brute force: the counting ops on it that no
	// other counting op on it follows.
	byKey := map[string][]*opRec{}
	for _, r := range recs {
		if r.op.Kind == OpPut || r.op.Kind == OpDelete {
			byKey[r.op.Key] = append(byKey[r.op.Key], &opRec{id: r.id, clock: r.clock, hlc: r.op.HLC, op: r.op, count: ws.Counts(r.id, r.clock)})
		}
	}
	v := NewView(origin)
	for k, ops := range byKey {
		reg := &register{}
		for _, x := range ops {
			followed := false
			for _, z := range ops {
				if z != x && z.count && z.clock.sees(x.id) {
					followed = true
				}
			}
			if x.count && !followed {
				reg.versions = append(reg.versions, x)
			}
		}
		if len(reg.versions) > 0 {
			v.st.putRegister(k, reg)
		}
	}
	d, _ := v.scanDigest()
	return d
}

// checkAccount fails unless the view's incremental digest and live-key
// count match a scan of its registers.
func checkAccount(t *testing.T, v *View) {
	t.Helper()
	d, n := v.scanDigest()
	if d != v.Digest() || n != v.Keys() {
		t.Fatalf("incremental digest/keys %x/%d, scan %x/%d", v.Digest(), v.Keys(), d, n)
	}
	if l := len(v.List("", "", 1<<30)); l != n {
		t.Fatalf("%d live keys listed, %d counted", l, n)
	}
}

func seeds(t *testing.T) []uint64 {
	if s := os.Getenv("MYCEL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return []uint64{v}
	}
	return []uint64{1, 2, rand.Uint64()}
}

// deliveryOrder returns the order replica r receives ops in. Uniformly
// random orders rarely let a removed writer's concurrent ops be applied
// before its removal, so replicas also get orders that hold one feed back,
// as a partition would: feed by feed in a random order, and a random order
// with one feed's ops last.
func deliveryOrder(rng *rand.Rand, r int, ops []genOp) []int {
	perm := rng.Perm(len(ops))
	feeds := map[feed.PublicKey]int{}
	for _, g := range ops {
		if _, ok := feeds[g.feed]; !ok {
			feeds[g.feed] = rng.IntN(1 << 20)
		}
	}
	switch r % 3 {
	case 1: // feed by feed, each feed's ops in a random order
		slices.SortStableFunc(perm, func(a, b int) int { return feeds[ops[a].feed] - feeds[ops[b].feed] })
	case 2: // random, with the feed ranked last held back
		last := slices.MaxFunc(slices.Collect(maps.Keys(feeds)), func(a, b feed.PublicKey) int { return feeds[a] - feeds[b] })
		slices.SortStableFunc(perm, func(a, b int) int {
			x, y := ops[a].feed == last, ops[b].feed == last
			switch {
			case x == y:
				return 0
			case x:
				return 1
			}
			return -1
		})
	}
	return perm
}

// TestConvergence: 5 writers, 10k random ops (puts, deletes, adds,
// removals, rotations) delivered to 3 replicas in random orders, in random
// partial states. After every batch each replica's incremental view equals
// the from-scratch oracle of what it was given; replicas given the same ops
// have the same digest.
func TestConvergence(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("replay with MYCEL_SEED=%d", seed)
			rng := rand.New(rand.NewPCG(seed, 7))
			origin, ops := workload(rng, 5, n, 40)
			var digests [][32]byte
			for r := 0; r < 3; r++ {
				v := NewView(origin)
				perm := deliveryOrder(rng, r, ops)
				var given []genOp
				for len(given) < len(ops) {
					batch := 1 + rng.IntN(len(ops)/20)
					for _, i := range perm[len(given):min(len(given)+batch, len(ops))] {
						g := ops[i]
						v.Apply(g.feed, g.index, g.op)
						given = append(given, g)
					}
					if got, want := v.Digest(), oracle(origin, given); got != want {
						t.Fatalf("replica %d after %d ops: incremental view differs from recomputation", r, len(given))
					}
					checkAccount(t, v)
				}
				if v.Waiting() != 0 {
					t.Fatalf("replica %d: %d ops still waiting with every op given", r, v.Waiting())
				}
				digests = append(digests, v.Digest())
				counting := 0
				for _, rec := range v.st.(*memStore).ops {
					if rec.count {
						counting++
					}
				}
				if nc := v.Diagnostics().NotCounting; nc != len(v.st.(*memStore).ops)-counting {
					t.Fatalf("replica %d: diagnostics count %d ops not counting, the store %d", r, nc, len(v.st.(*memStore).ops)-counting)
				}
				t.Logf("replica %d: %d keys with a value, %d of %d ops count, %d feeds, writers %d, removed %d, voided after counting %d",
					r, len(v.List("", "", 1000)), counting, len(ops), len(v.feeds), len(v.WriterSet().Writers()), len(v.WriterSet().Removed()), v.voided)
			}
			for r := 1; r < 3; r++ {
				if digests[r] != digests[0] {
					t.Fatalf("replica %d digest differs", r)
				}
			}
		})
	}
}
