package space

import (
	"bytes"
	"cmp"
	"container/heap"
	"slices"
	"sort"

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
	adds     map[feed.PublicKey][]OpID // accepted adds of each writer, in canonical order
	removals map[feed.PublicKey][]MemberOp
	standing []OpID // removals that stand, in decision order

	// Seniority: rank (position of each target's first add in the canonical
	// order) is computed from ops when first needed after a change.
	rank map[feed.PublicKey]int
	ops  []MemberOp
	// targets: feeds any add names; removers: authors of any removal. They
	// decide whether a new add can be applied without resolving again.
	targets  map[feed.PublicKey]bool
	removers map[feed.PublicKey]bool
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
//
// Each op's clock names its own feed (Clock[op.ID.Feed] == op.ID.Index), as
// a View's clocks do.
//
// Cost: the canonical order takes O(n log n) plus the size of the ops'
// clocks; the ops are evaluated once without removals, and each removal
// then re-evaluates only the ops it can void (its target's, and those of
// the writers they added, transitively). A View calls Resolve only for a
// removal, or for an add that Add cannot apply alone.
func Resolve(origin feed.PublicKey, ops []MemberOp) *WriterSet {
	order := canonicalOrder(ops)
	rank := ranks(origin, order)
	pos := make(map[OpID]int, len(order))
	var removals []*MemberOp
	targets := make(map[feed.PublicKey]bool)
	removers := make(map[feed.PublicKey]bool)
	for i, op := range order {
		pos[op.ID] = i
		if op.Remove {
			removals = append(removals, op)
			removers[op.ID.Feed] = true
		} else {
			targets[op.Target] = true
		}
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

	ev := newEvaluation(origin, order, pos)
	var standing []OpID
	for _, r := range removals {
		if ev.stand(r) {
			standing = append(standing, r.ID)
		}
	}
	return &WriterSet{origin: origin, adds: ev.adds, removals: ev.removals, standing: standing,
		rank: rank, ops: ops, targets: targets, removers: removers}
}

// ranks returns the seniority of each target: the origin 0, others the
// position after their first add in order.
func ranks(origin feed.PublicKey, order []*MemberOp) map[feed.PublicKey]int {
	rank := map[feed.PublicKey]int{origin: 0}
	for i, op := range order {
		if _, ok := rank[op.Target]; !op.Remove && !ok {
			rank[op.Target] = i + 1
		}
	}
	return rank
}

// Add applies a new add op to the writer set in place, when it can be
// applied alone: no op of the set has it in its causal past (a View applies
// ops in causal order), it names a feed no other add names, and that feed
// wrote no removal. Such an add changes whether no other op counts, nor the
// order in which removals are decided; it counts when its author's op
// would. all is the set with op in it (for seniority, computed when asked).
// Add reports false, changing nothing, when the set must be resolved anew.
func (ws *WriterSet) Add(op MemberOp, all []MemberOp) bool {
	if op.Remove || op.Target == ws.origin || ws.targets[op.Target] || ws.removers[op.Target] {
		return false
	}
	ws.targets[op.Target] = true
	ws.rank, ws.ops = nil, all
	if ws.Counts(op.ID, op.Clock) {
		ws.adds[op.Target] = append(ws.adds[op.Target], op.ID)
	}
	return true
}

// seniority returns the rank of every target, computing it if needed.
func (ws *WriterSet) seniority() map[feed.PublicKey]int {
	if ws.rank == nil {
		ws.rank = ranks(ws.origin, canonicalOrder(ws.ops))
	}
	return ws.rank
}

// evaluation is the outcome of the rules over ops in canonical order under
// a set of standing removals, grown one removal at a time (stand).
type evaluation struct {
	origin   feed.PublicKey
	order    []*MemberOp
	pos      map[OpID]int
	byAuthor map[feed.PublicKey][]int // positions of each author's ops, ascending
	count    []bool
	adds     map[feed.PublicKey][]OpID
	removals map[feed.PublicKey][]MemberOp
	standing []*MemberOp
}

// newEvaluation evaluates order without removals.
func newEvaluation(origin feed.PublicKey, order []*MemberOp, pos map[OpID]int) *evaluation {
	ev := &evaluation{origin: origin, order: order, pos: pos,
		byAuthor: make(map[feed.PublicKey][]int), count: make([]bool, len(order)),
		adds: make(map[feed.PublicKey][]OpID), removals: make(map[feed.PublicKey][]MemberOp)}
	for i, op := range order {
		ev.byAuthor[op.ID.Feed] = append(ev.byAuthor[op.ID.Feed], i)
		if ev.counts(op) {
			ev.count[i] = true
			if !op.Remove {
				ev.adds[op.Target] = append(ev.adds[op.Target], op.ID)
			}
		}
	}
	return ev
}

func (ev *evaluation) counts(op *MemberOp) bool {
	ws := WriterSet{origin: ev.origin, adds: ev.adds, removals: ev.removals}
	return ws.Counts(op.ID, op.Clock)
}

// stand assumes removal r stands too, and keeps that assumption if every
// standing removal still counts. Assuming a removal only voids: the ops of
// its target it does not see, then the ops that counted only through an
// add so voided, and so on. Those are re-evaluated in canonical order (an
// op depends only on ops before it); nothing else changes.
func (ev *evaluation) stand(r *MemberOp) bool {
	type undoAdds struct {
		target feed.PublicKey
		adds   []OpID
	}
	var voided []int
	var addsBefore []undoAdds
	removalsBefore := ev.removals[r.Target]
	ev.removals[r.Target] = append(removalsBefore[:len(removalsBefore):len(removalsBefore)], *r)

	queue := &posHeap{}
	for _, i := range ev.byAuthor[r.Target] {
		if ev.count[i] {
			heap.Push(queue, i)
		}
	}
	for queue.Len() > 0 {
		i := heap.Pop(queue).(int)
		op := ev.order[i]
		if !ev.count[i] || ev.counts(op) {
			continue
		}
		ev.count[i] = false
		voided = append(voided, i)
		if op.Remove {
			continue
		}
		before := ev.adds[op.Target]
		addsBefore = append(addsBefore, undoAdds{op.Target, before})
		after := slices.DeleteFunc(slices.Clone(before), func(id OpID) bool { return id == op.ID })
		if len(after) == 0 {
			delete(ev.adds, op.Target)
		} else {
			ev.adds[op.Target] = after
		}
		for _, j := range ev.byAuthor[op.Target] {
			if j > i && ev.count[j] {
				heap.Push(queue, j)
			}
		}
	}
	ok := ev.count[ev.pos[r.ID]]
	for _, s := range ev.standing {
		ok = ok && ev.count[ev.pos[s.ID]]
	}
	if ok {
		ev.standing = append(ev.standing, r)
		return true
	}
	// Undo, newest first.
	for _, i := range voided {
		ev.count[i] = true
	}
	for k := len(addsBefore) - 1; k >= 0; k-- {
		u := addsBefore[k]
		if len(u.adds) == 0 {
			delete(ev.adds, u.target)
		} else {
			ev.adds[u.target] = u.adds
		}
	}
	if len(removalsBefore) == 0 {
		delete(ev.removals, r.Target)
	} else {
		ev.removals[r.Target] = removalsBefore
	}
	return false
}

// posHeap is a min-heap of positions in the canonical order.
type posHeap []int

func (h posHeap) Len() int           { return len(h) }
func (h posHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h posHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *posHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *posHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
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
	rank := ws.seniority()
	for k := range rank {
		if ws.IsWriter(k) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b feed.PublicKey) int { return cmp.Compare(rank[a], rank[b]) })
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
//
// An op's clock covers the earlier ops of each feed it names (an op of feed
// f covers the earlier ops of f, as Clock says), so its predecessors are
// placed once the last op it sees of each feed is: those are the only edges
// needed, found by binary search, and a heap keeps the ready ops.
func canonicalOrder(ops []MemberOp) []*MemberOp {
	n := len(ops)
	ptr := make([]*MemberOp, n)
	byFeed := make(map[feed.PublicKey][]int) // indices into ptr, by op index
	for i := range ops {
		ptr[i] = &ops[i]
		byFeed[ops[i].ID.Feed] = append(byFeed[ops[i].ID.Feed], i)
	}
	for _, l := range byFeed {
		slices.SortFunc(l, func(a, b int) int { return cmp.Compare(ptr[a].ID.Index, ptr[b].ID.Index) })
	}
	indeg := make([]int, n)
	succ := make([][]int, n)
	edge := func(from, to int) {
		succ[from] = append(succ[from], to)
		indeg[to]++
	}
	for j, b := range ptr {
		for f, length := range b.Clock {
			l := byFeed[f]
			// The last op of f that b sees: index < length.
			k := sort.Search(len(l), func(x int) bool { return ptr[l[x]].ID.Index >= length }) - 1
			for ; k >= 0; k-- {
				if i := l[k]; i != j {
					edge(i, j)
					break
				}
			}
		}
	}
	less := func(a, b int) bool {
		x, y := ptr[a], ptr[b]
		if x.HLC != y.HLC {
			return x.HLC < y.HLC
		}
		return x.ID.compare(y.ID) < 0
	}
	ready := &opHeap{less: less}
	for i := range ptr {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	placed := make([]bool, n)
	out := make([]*MemberOp, 0, n)
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		placed[i] = true
		out = append(out, ptr[i])
		for _, j := range succ[i] {
			if indeg[j]--; indeg[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	if len(out) < n {
		// A cycle: only possible with clocks that claim to see the future.
		// Place the rest by (HLC, id) so the order stays a function of the
		// set.
		var rest []int
		for i := range ptr {
			if !placed[i] {
				rest = append(rest, i)
			}
		}
		slices.SortFunc(rest, func(a, b int) int {
			if less(a, b) {
				return -1
			}
			return 1
		})
		for _, i := range rest {
			out = append(out, ptr[i])
		}
	}
	return out
}

// opHeap is a min-heap of op indices under less.
type opHeap struct {
	items []int
	less  func(a, b int) bool
}

func (h *opHeap) Len() int           { return len(h.items) }
func (h *opHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *opHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *opHeap) Push(x any)         { h.items = append(h.items, x.(int)) }
func (h *opHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
