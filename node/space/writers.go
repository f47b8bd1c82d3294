package space

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/mycelsync/mycel/feed"
)

// OpID names an op by its position: the feed that holds it and its index.
type OpID struct {
	Feed  feed.PublicKey
	Index uint64
}

func (a OpID) compare(b OpID) int {
	if c := bytes.Compare(a.Feed[:], b.Feed[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.Index, b.Index)
}

// Clock is an op's causal context as a vector: for each feed, how many of
// its entries are in the op's causal past. An op's own feed counts the
// entries before it, so Clock[op.Feed] == op.Index.
type Clock map[feed.PublicKey]uint64

// sees reports whether op x is in the causal past of an op with clock c.
func (c Clock) sees(x OpID) bool { return c[x.Feed] > x.Index }

// MemberOp is an add-writer or remove-writer op, as the writer-set rules
// see it.
type MemberOp struct {
	ID     OpID
	Clock  Clock
	HLC    uint64
	Remove bool
	Target feed.PublicKey
}

// WriterSet is the outcome of the writer-set rules over a set of membership
// ops. It is a pure function of that set: every node holding the same ops
// computes the same WriterSet, whatever order they arrived in.
type WriterSet struct {
	origin   feed.PublicKey
	adds     map[feed.PublicKey][]OpID // accepted adds of each writer
	removals map[feed.PublicKey][]MemberOp
	standing []OpID // removals that stand, in decision order
	rank     map[feed.PublicKey]int
}

// Resolve applies the writer-set rules of DESIGN.md to ops:
//
//   - The origin feed is a writer from its first entry.
//   - An op by W counts only if an accepted add of W is in its causal past
//     and no standing removal of W is.
//   - A standing removal of W also voids W's ops concurrent with it: W's op
//     counts only if it is in the causal past of every standing removal of W
//     (a removal never voids itself, so a device can remove itself).
//   - An add counts, and so is accepted, when its author's op counts.
//   - Removals that void each other (A removes B while B removes A, or a
//     cycle A→B→C→A) are decided by seniority: removals are considered in
//     order of their author's seniority, and one is accepted only if,
//     together with those accepted before it, every accepted removal still
//     counts. So the most senior writer's removal stands and the removals it
//     voids fall.
//
// Seniority: the origin first, then writers in the order their first add
// appears in the canonical order of the ops — causal order, with concurrent
// ops ordered by hybrid logical clock, then feed key, then index.
func Resolve(origin feed.PublicKey, ops []MemberOp) *WriterSet {
	order := canonicalOrder(ops)
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
		if _, ok := evaluate(origin, order, append(standing[:len(standing):len(standing)], r)); ok {
			standing = append(standing, r)
		}
	}
	ws, _ := evaluate(origin, order, standing)
	ws.rank = rank
	return ws
}

// evaluate runs the rules over ops in canonical order, assuming the removals
// in standing stand. It reports whether that assumption is consistent:
// every assumed removal counts.
func evaluate(origin feed.PublicKey, order []*MemberOp, standing []*MemberOp) (*WriterSet, bool) {
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

// Counts reports whether an op at id with causal context clock counts under
// the writer set: its author was added in its causal past and it is in the
// causal past of every standing removal of its author.
func (ws *WriterSet) Counts(id OpID, clock Clock) bool {
	author := id.Feed
	if author != ws.origin {
		added := false
		for _, a := range ws.adds[author] {
			if clock.sees(a) {
				added = true
				break
			}
		}
		if !added {
			return false
		}
	}
	for _, r := range ws.removals[author] {
		if r.ID != id && !r.Clock.sees(id) {
			return false
		}
	}
	return true
}

// IsWriter reports whether feed k may write new ops that count: it has an
// accepted add (or is the origin) and no standing removal.
func (ws *WriterSet) IsWriter(k feed.PublicKey) bool {
	if len(ws.removals[k]) > 0 {
		return false
	}
	return k == ws.origin || len(ws.adds[k]) > 0
}

// Writers returns the current writers, most senior first.
func (ws *WriterSet) Writers() []feed.PublicKey {
	var out []feed.PublicKey
	for k := range ws.rank {
		if ws.IsWriter(k) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b feed.PublicKey) int { return cmp.Compare(ws.rank[a], ws.rank[b]) })
	return out
}

// Removed returns the feeds with a standing removal.
func (ws *WriterSet) Removed() []feed.PublicKey {
	var out []feed.PublicKey
	for k := range ws.removals {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b feed.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Standing returns the removals that stand.
func (ws *WriterSet) Standing() []OpID { return slices.Clone(ws.standing) }

// canonicalOrder sorts ops into a linear extension of their causal order:
// among the ops whose causal predecessors are all placed, the one with the
// smallest (HLC, feed key, index) goes next.
func canonicalOrder(ops []MemberOp) []*MemberOp {
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
