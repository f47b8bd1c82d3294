package space

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// sim simulates devices writing ops with causal contexts.
type sim struct {
	t     *testing.T
	devs  map[string]*simDev
	ops   []MemberOp
	clock uint64 // a global wall clock feeding the HLCs
}

type simDev struct {
	key   feed.PublicKey
	n     uint64
	clock Clock
}

func newSim(t *testing.T, names ...string) *sim {
	s := &sim{t: t, devs: make(map[string]*simDev)}
	for _, n := range names {
		s.devs[n] = &simDev{key: feed.PublicKey(sha256.Sum256([]byte(n))), clock: Clock{}}
	}
	return s
}

func (s *sim) key(n string) feed.PublicKey { return s.devs[n].key }

// learn: a receives everything b has.
func (s *sim) learn(a, b string) {
	da, db := s.devs[a], s.devs[b]
	for k, v := range db.clock {
		da.clock[k] = max(da.clock[k], v)
	}
	da.clock[db.key] = max(da.clock[db.key], db.n)
}

// next makes a's next op and returns its id and clock.
func (s *sim) next(a string) (OpID, Clock) {
	d := s.devs[a]
	id := OpID{Feed: d.key, Index: d.n}
	c := maps.Clone(d.clock)
	c[d.key] = d.n
	d.n++
	return id, c
}

func (s *sim) member(a string, remove bool, target string) OpID {
	id, c := s.next(a)
	s.clock++
	s.ops = append(s.ops, MemberOp{ID: id, Clock: c, HLC: s.clock, Remove: remove, Target: s.key(target)})
	return id
}

func (s *sim) add(a, target string) OpID    { return s.member(a, false, target) }
func (s *sim) remove(a, target string) OpID { return s.member(a, true, target) }

type dataOp struct {
	id    OpID
	clock Clock
}

func (s *sim) put(a string) dataOp {
	id, c := s.next(a)
	s.clock++
	return dataOp{id, c}
}

// digest summarises a writer set and which data ops count.
func (s *sim) digest(ws *WriterSet, data []dataOp) string {
	names := slices.Sorted(maps.Keys(s.devs))
	out := ""
	for _, n := range names {
		out += fmt.Sprintf("%s:writer=%v ", n, ws.IsWriter(s.key(n)))
	}
	for i, d := range data {
		out += fmt.Sprintf("op%d=%v ", i, ws.Counts(d.id, d.clock))
	}
	return out
}

// checkOrders resolves the scenario's ops in 1,000 random input orders and
// requires one digest, the expected one.
func (s *sim) checkOrders(origin string, data []dataOp, want string) {
	s.t.Helper()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	var first string
	for i := 0; i < 1000; i++ {
		ops := slices.Clone(s.ops)
		rng.Shuffle(len(ops), func(a, b int) { ops[a], ops[b] = ops[b], ops[a] })
		got := s.digest(Resolve(s.key(origin), ops), data)
		if i == 0 {
			first = got
		} else if got != first {
			s.t.Fatalf("seed %d order %d: digest %q differs from %q", seed, i, got, first)
		}
	}
	if first != want {
		s.t.Fatalf("digest\n got %q\nwant %q", first, want)
	}
}

func TestMutualRemoval(t *testing.T) {
	s := newSim(t, "O", "A", "B")
	s.add("O", "O")
	s.add("O", "A")
	s.add("O", "B")
	s.learn("A", "O")
	s.learn("B", "O")
	// Concurrently: A removes B, B removes A. A was added first: A stands.
	s.remove("A", "B")
	s.remove("B", "A")
	a := s.put("A")
	b := s.put("B")
	s.checkOrders("O", []dataOp{a, b}, "A:writer=true B:writer=false O:writer=true op0=true op1=false ")

	// Seniority, not who removed first by the clock: B's removal of A has
	// the lower HLC in this variant, and A still stands.
	s2 := newSim(t, "O", "A", "B")
	s2.add("O", "O")
	s2.add("O", "A")
	s2.add("O", "B")
	s2.learn("A", "O")
	s2.learn("B", "O")
	s2.remove("B", "A")
	s2.remove("A", "B")
	s2.checkOrders("O", nil, "A:writer=true B:writer=false O:writer=true ")
}

func TestCircularRemoval(t *testing.T) {
	s := newSim(t, "O", "A", "B", "C")
	s.add("O", "O")
	s.add("O", "A")
	s.add("O", "B")
	s.add("O", "C")
	for _, n := range []string{"A", "B", "C"} {
		s.learn(n, "O")
	}
	// A→B→C→A, all concurrent. A is the most senior: its removal of B
	// stands, which voids B's removal of C; C's removal of A would void
	// A's standing removal, so it falls.
	s.remove("A", "B")
	s.remove("B", "C")
	s.remove("C", "A")
	s.checkOrders("O", nil, "A:writer=true B:writer=false C:writer=true O:writer=true ")
}

func TestRemovalConcurrentWithPutsAndApproval(t *testing.T) {
	s := newSim(t, "O", "A", "N")
	s.add("O", "O")
	s.add("O", "A")
	s.learn("A", "O")
	before := s.put("A") // O will have seen this one
	s.learn("O", "A")
	// Concurrently: O removes A; A writes and approves a new device N.
	s.remove("O", "A")
	raced := s.put("A")
	s.add("A", "N")
	s.learn("N", "A")
	nPut := s.put("N")
	s.checkOrders("O", []dataOp{before, raced, nPut},
		"A:writer=false N:writer=false O:writer=true op0=true op1=false op2=false ")
}

func TestNeverAddedAndBeforeAdd(t *testing.T) {
	s := newSim(t, "O", "A", "Z")
	s.add("O", "O")
	early := s.put("A") // A writes before being added
	s.learn("O", "A")
	s.add("O", "A")
	s.learn("A", "O")
	later := s.put("A")
	z := s.put("Z") // never added
	s.checkOrders("O", []dataOp{early, later, z},
		"A:writer=true O:writer=true Z:writer=false op0=false op1=true op2=false ")
}

func TestJuniorRemovesSenior(t *testing.T) {
	s := newSim(t, "O", "A")
	s.add("O", "O")
	seen := s.put("O")
	s.add("O", "A")
	s.learn("A", "O")
	s.remove("A", "O")
	raced := s.put("O") // concurrent with its removal
	s.checkOrders("O", []dataOp{seen, raced}, "A:writer=true O:writer=false op0=true op1=false ")
}

func TestAddByRemovedWriterAfterRemovalSeen(t *testing.T) {
	// A removal in an add's causal past voids it even if the author writes
	// on: a removed device cannot approve anyone.
	s := newSim(t, "O", "A", "N")
	s.add("O", "O")
	s.add("O", "A")
	s.learn("A", "O")
	s.remove("O", "A")
	s.learn("A", "O")
	s.add("A", "N")
	s.checkOrders("O", nil, "A:writer=false N:writer=false O:writer=true ")
}

func TestSelfRemoval(t *testing.T) {
	s := newSim(t, "O", "A")
	s.add("O", "O")
	s.add("O", "A")
	s.learn("A", "O")
	before := s.put("A")
	s.remove("A", "A")
	after := s.put("A")
	s.checkOrders("O", []dataOp{before, after}, "A:writer=false O:writer=true op0=true op1=false ")
}
