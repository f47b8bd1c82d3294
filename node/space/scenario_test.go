package space

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// script writes ops for named devices with explicit causal knowledge, to
// build the membership scenarios of the issue.
type script struct {
	devs map[string]*scriptDev
	ops  []genOp
	hlc  uint64
}

type scriptDev struct {
	key   feed.PublicKey
	n     uint64
	known map[feed.PublicKey]uint64
	told  map[feed.PublicKey]uint64
}

func newScript(names ...string) *script {
	s := &script{devs: map[string]*scriptDev{}}
	for _, n := range names {
		s.devs[n] = &scriptDev{key: feed.PublicKey(sha256.Sum256([]byte(n))), known: map[feed.PublicKey]uint64{}, told: map[feed.PublicKey]uint64{}}
	}
	return s
}

func (s *script) key(n string) feed.PublicKey { return s.devs[n].key }

// learn: a now knows everything b knows.
func (s *script) learn(a, b string) {
	da, db := s.devs[a], s.devs[b]
	for k, l := range db.known {
		da.known[k] = max(da.known[k], l)
	}
	da.known[db.key] = max(da.known[db.key], db.n)
}

func (s *script) write(a string, op *Op) {
	d := s.devs[a]
	s.hlc++
	op.HLC = s.hlc
	for k, l := range d.known {
		if k != d.key && l > d.told[k] {
			op.Seen = append(op.Seen, Seen{Feed: k, Length: l})
			d.told[k] = l
		}
	}
	s.ops = append(s.ops, genOp{feed: d.key, index: d.n, op: op})
	d.n++
}

func (s *script) add(a, b string)    { s.write(a, &Op{Kind: OpAddWriter, Target: s.key(b)}) }
func (s *script) remove(a, b string) { s.write(a, &Op{Kind: OpRemoveWriter, Target: s.key(b)}) }
func (s *script) put(a, k, v string) { s.write(a, &Op{Kind: OpPut, Key: k, Value: []byte(v)}) }

// summary renders the view: each key's versions (value@device), winner
// first, and the writers.
func (s *script) summary(v *View) string {
	names := map[feed.PublicKey]string{}
	for n, d := range s.devs {
		names[d.key] = n
	}
	var b strings.Builder
	for _, k := range v.st.names() {
		if len(v.Get(k)) == 0 {
			continue // only void ops touched it
		}
		fmt.Fprintf(&b, "%s=", k)
		for i, x := range v.Get(k) {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%s@%s", x.Value, names[x.ID.Feed])
		}
		b.WriteString(" ")
	}
	var ws []string
	for _, k := range v.WriterSet().Writers() {
		ws = append(ws, names[k])
	}
	fmt.Fprintf(&b, "writers=%s", strings.Join(ws, ","))
	return b.String()
}

// deliver applies the script's ops to fresh views in 1,000 random orders
// (uniform, feed by feed, one feed held back) and requires a single digest,
// whose summary must be want.
func (s *script) deliver(t *testing.T, origin, want string) {
	t.Helper()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	var digest [32]byte
	for i := 0; i < 1000; i++ {
		v := NewView(s.key(origin))
		for _, j := range deliveryOrder(rng, i, s.ops) {
			g := s.ops[j]
			v.Apply(g.feed, g.index, g.op)
		}
		if v.Waiting() != 0 {
			t.Fatalf("order %d: %d ops waiting", i, v.Waiting())
		}
		if i == 0 {
			digest = v.Digest()
			if got := s.summary(v); got != want {
				t.Fatalf("view\n got %s\nwant %s", got, want)
			}
		} else if v.Digest() != digest {
			t.Fatalf("seed %d order %d: digest differs: %s", seed, i, s.summary(v))
		}
	}
}

func TestScenarioMutualRemoval(t *testing.T) {
	s := newScript("O", "A", "B")
	s.add("O", "O")
	s.add("O", "A")
	s.add("O", "B")
	s.learn("A", "O")
	s.learn("B", "O")
	s.put("A", "k", "a0")
	s.put("B", "k", "b0") // concurrent with a0: siblings
	s.remove("A", "B")    // A was added before B: A's removal stands
	s.remove("B", "A")
	s.put("A", "k", "a1") // A saw only its own a0: b0 is still a sibling… but B is removed
	s.put("B", "k", "b1") // B's writes after its void removal do not count
	s.deliver(t, "O", "k=a1@A writers=O,A")
}

func TestScenarioCircularRemoval(t *testing.T) {
	s := newScript("O", "A", "B", "C")
	s.add("O", "O")
	for _, n := range []string{"A", "B", "C"} {
		s.add("O", n)
	}
	for _, n := range []string{"A", "B", "C"} {
		s.learn(n, "O")
	}
	s.remove("A", "B")
	s.remove("B", "C")
	s.remove("C", "A")
	s.put("A", "a", "1")
	s.put("B", "b", "1")
	s.put("C", "c", "1")
	// A is the most senior of the three: its removal of B stands; B's
	// removal of C is void; C's removal of A would void A's standing
	// removal, so it falls too.
	s.deliver(t, "O", "a=1@A c=1@C writers=O,A,C")
}

func TestScenarioRemovalRacesPutsAndApproval(t *testing.T) {
	s := newScript("O", "A", "N")
	s.add("O", "O")
	s.add("O", "A")
	s.learn("A", "O")
	s.put("A", "seen", "yes") // O sees this before removing A: it stays
	s.put("A", "k", "old")
	s.learn("O", "A")
	s.put("O", "k", "o") // O overwrites k
	s.remove("O", "A")
	// Concurrently A, not yet aware, overwrites k, writes another key and
	// approves a new device N, which writes too.
	s.put("A", "k", "raced")
	s.put("A", "other", "raced")
	s.add("A", "N")
	s.learn("N", "A")
	s.put("N", "n", "from N")
	// All of A's racing writes, its approval of N and N's writes are void;
	// k keeps O's value, as if A's raced write never happened.
	s.deliver(t, "O", "k=o@O seen=yes@A writers=O")
}

func TestScenarioVoidedWriteBringsBackOlderValue(t *testing.T) {
	s := newScript("O", "A")
	s.add("O", "O")
	s.put("O", "k", "original")
	s.add("O", "A")
	s.learn("A", "O")
	s.remove("O", "A")           // O removes A without having seen A's write below
	s.put("A", "k", "overwrite") // follows "original" causally, but is void
	s.deliver(t, "O", "k=original@O writers=O")
}

func TestScenarioNeverAdded(t *testing.T) {
	s := newScript("O", "X")
	s.add("O", "O")
	s.put("O", "k", "o")
	s.learn("X", "O")
	s.put("X", "k", "x")    // X was never added
	s.put("X", "x", "only") // nor this
	s.deliver(t, "O", "k=o@O writers=O")
}

func TestScenarioWritesBeforeAdd(t *testing.T) {
	s := newScript("O", "A")
	s.add("O", "O")
	s.put("O", "k", "o")
	s.learn("A", "O")
	s.put("A", "k", "early") // follows O's put, but A is not a writer yet
	s.put("A", "a", "early")
	s.learn("O", "A") // O sees A's early writes, then adds A
	s.add("O", "A")
	s.learn("A", "O")
	s.put("A", "late", "counts")
	s.deliver(t, "O", "k=o@O late=counts@A writers=O,A")
}
