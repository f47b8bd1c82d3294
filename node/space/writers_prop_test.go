package space

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// randomMembers plays devices adding, removing (others and themselves) and
// learning from each other at random: concurrent adds of one device,
// mutual and circular removals, removed devices writing on.
func randomMembers(t *testing.T, rng *rand.Rand, devices, steps int) (*sim, string) {
	names := make([]string, devices)
	for i := range names {
		names[i] = fmt.Sprintf("d%d", i)
	}
	s := newSim(t, names...)
	s.add(names[0], names[0])
	for range steps {
		a, b := names[rng.IntN(devices)], names[rng.IntN(devices)]
		switch r := rng.IntN(10); {
		case r < 4:
			s.learn(a, b)
		case r < 8:
			s.add(a, b)
		default:
			s.remove(a, b)
		}
		if rng.IntN(3) == 0 {
			s.clock += uint64(rng.IntN(3)) // HLC ties and gaps
		}
	}
	return s, names[0]
}

// sameWriterSet reports how two writer sets differ ("" if they do not).
func sameWriterSet(a, b *WriterSet) string {
	switch {
	case !maps.EqualFunc(a.adds, b.adds, func(x, y []OpID) bool { return slices.Equal(x, y) }):
		return fmt.Sprintf("adds %v vs %v", a.adds, b.adds)
	case !slices.Equal(a.standing, b.standing):
		return fmt.Sprintf("standing %v vs %v", a.standing, b.standing)
	case !slices.Equal(a.Writers(), b.Writers()):
		return fmt.Sprintf("writers %x vs %x", a.Writers(), b.Writers())
	case !slices.Equal(a.Removed(), b.Removed()):
		return fmt.Sprintf("removed %x vs %x", a.Removed(), b.Removed())
	}
	for k, rs := range a.removals {
		if !slices.EqualFunc(rs, b.removals[k], func(x, y MemberOp) bool { return x.ID == y.ID }) {
			return fmt.Sprintf("removals of %x", k[:4])
		}
	}
	return ""
}

// TestResolveMatchesReference holds Resolve to the rules as first written
// (resolveRef) over random membership histories and input orders.
func TestResolveMatchesReference(t *testing.T) {
	for _, seed := range seeds(t) {
		rng := rand.New(rand.NewPCG(seed, 8))
		for round := range 200 {
			s, origin := randomMembers(t, rng, 2+rng.IntN(6), 5+rng.IntN(60))
			want := resolveRef(s.key(origin), s.ops)
			ops := slices.Clone(s.ops)
			rng.Shuffle(len(ops), func(a, b int) { ops[a], ops[b] = ops[b], ops[a] })
			if d := sameWriterSet(Resolve(s.key(origin), ops), want); d != "" {
				t.Fatalf("seed %d round %d (%d ops): %s", seed, round, len(ops), d)
			}
			if got, want := canonicalOrder(ops), canonicalOrderRef(ops); !slices.EqualFunc(got, want, func(x, y *MemberOp) bool { return x.ID == y.ID }) {
				t.Fatalf("seed %d round %d: canonical orders differ", seed, round)
			}
		}
	}
}

// TestViewWriterSetIncremental: a view that applies membership ops one by
// one — most adds applied alone (WriterSet.Add), the rest resolved anew —
// holds after every op the writer set the reference computes from scratch,
// and counts each op as the reference does.
func TestViewWriterSetIncremental(t *testing.T) {
	for _, seed := range seeds(t) {
		rng := rand.New(rand.NewPCG(seed, 9))
		for round := range 100 {
			s, origin := randomMembers(t, rng, 2+rng.IntN(6), 5+rng.IntN(50))
			v := NewView(s.key(origin))
			ops := slices.Clone(s.ops)
			rng.Shuffle(len(ops), func(a, b int) { ops[a], ops[b] = ops[b], ops[a] })
			for _, m := range ops {
				op := &Op{Kind: OpAddWriter, Target: m.Target, HLC: m.HLC + 1}
				if m.Remove {
					op.Kind = OpRemoveWriter
				}
				for f, l := range m.Clock {
					if f != m.ID.Feed && l > 0 {
						op.Seen = append(op.Seen, Seen{Feed: f, Length: l})
					}
				}
				slices.SortFunc(op.Seen, func(a, b Seen) int { return OpID{Feed: a.Feed}.compare(OpID{Feed: b.Feed}) })
				v.Apply(m.ID.Feed, m.ID.Index, op)
				want := resolveRef(s.key(origin), v.members)
				if d := sameWriterSet(v.ws, want); d != "" {
					t.Fatalf("seed %d round %d after %d of %d ops: %s", seed, round, len(v.members), len(ops), d)
				}
				for _, r := range v.special {
					if r.count != want.Counts(r.id, r.clock) {
						t.Fatalf("seed %d round %d: op %x/%d counts %v", seed, round, r.id.Feed[:4], r.id.Index, r.count)
					}
				}
			}
			if v.Waiting() != 0 || len(v.members) != len(ops) {
				t.Fatalf("seed %d round %d: %d applied of %d, %d waiting", seed, round, len(v.members), len(ops), v.Waiting())
			}
		}
	}
}

var _ = feed.PublicKey{}
