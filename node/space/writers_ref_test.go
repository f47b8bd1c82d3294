package space

// The writer-set rules as first written (quadratic per call, and called on
// every membership op): the reference the faster Resolve is held to.

import (
	"cmp"
	"slices"

	"github.com/mycelsync/mycel/feed"
)

func resolveRef(origin feed.PublicKey, ops []MemberOp) *WriterSet {
	order := canonicalOrderRef(ops)
	rank := map[feed.PublicKey]int{origin: 0}
	for i, op := range order {
		if _, ok := rank[op.Target]; !op.Remove && !ok {
			rank[op.Target] = i + 1
		}
	}
	var removals []*MemberOp
	for _, op := range order {
		if op.Remove {
			removals = append(removals, op)
		}
	}
	pos := make(map[OpID]int, len(order))
	for i, op := range order {
		pos[op.ID] = i
	}
	authorRank := func(op *MemberOp) int {
		if r, ok := rank[op.ID.Feed]; ok {
			return r
		}
		return len(order) + 1 // never added: its ops never count anyway
	}
	slices.SortStableFunc(removals, func(a, b *MemberOp) int {
		if c := cmp.Compare(authorRank(a), authorRank(b)); c != 0 {
			return c
		}
		return cmp.Compare(pos[a.ID], pos[b.ID])
	})

	var standing []*MemberOp
	for _, r := range removals {
		if _, ok := evaluateRef(origin, order, append(standing[:len(standing):len(standing)], r)); ok {
			standing = append(standing, r)
		}
	}
	ws, _ := evaluateRef(origin, order, standing)
	ws.rank = rank
	return ws
}

// evaluate runs the rules over ops in canonical order, assuming the removals
// in standing stand. It reports whether that assumption is consistent:
// every assumed removal counts.
func evaluateRef(origin feed.PublicKey, order []*MemberOp, standing []*MemberOp) (*WriterSet, bool) {
	ws := &WriterSet{
		origin:   origin,
		adds:     make(map[feed.PublicKey][]OpID),
		removals: make(map[feed.PublicKey][]MemberOp),
	}
	for _, r := range standing {
		ws.removals[r.Target] = append(ws.removals[r.Target], *r)
		ws.standing = append(ws.standing, r.ID)
	}
	counted := make(map[OpID]bool)
	for _, op := range order {
		if !ws.Counts(op.ID, op.Clock) {
			continue
		}
		counted[op.ID] = true
		if !op.Remove {
			ws.adds[op.Target] = append(ws.adds[op.Target], op.ID)
		}
	}
	for _, r := range standing {
		if !counted[r.ID] {
			return ws, false
		}
	}
	return ws, true
}

// canonicalOrderRef sorts ops into a linear extension of their causal order:
// among the ops whose causal predecessors are all placed, the one with the
// smallest (HLC, feed key, index) goes next.
func canonicalOrderRef(ops []MemberOp) []*MemberOp {
	n := len(ops)
	sorted := make([]*MemberOp, n)
	for i := range ops {
		sorted[i] = &ops[i]
	}
	less := func(a, b *MemberOp) int {
		if c := cmp.Compare(a.HLC, b.HLC); c != 0 {
			return c
		}
		return a.ID.compare(b.ID)
	}
	slices.SortFunc(sorted, less)
	// indeg[i]: predecessors of sorted[i] not yet placed.
	indeg := make([]int, n)
	succ := make([][]int, n)
	for i, a := range sorted {
		for j, b := range sorted {
			if i != j && b.Clock.sees(a.ID) {
				succ[i] = append(succ[i], j)
				indeg[j]++
			}
		}
	}
	placed := make([]bool, n)
	out := make([]*MemberOp, 0, n)
	for len(out) < n {
		next := -1
		for i := range sorted { // sorted by (HLC, id): the first ready one wins
			if !placed[i] && indeg[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			// A cycle: only possible with clocks that claim to see the
			// future. Place the rest by (HLC, id) so the order stays a
			// function of the set.
			for i := range sorted {
				if !placed[i] {
					placed[i] = true
					out = append(out, sorted[i])
				}
			}
			break
		}
		placed[next] = true
		out = append(out, sorted[next])
		for _, j := range succ[next] {
			indeg[j]--
		}
	}
	return out
}
