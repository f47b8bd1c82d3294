package space

import (
	"slices"

	"github.com/mycelsync/mycel/feed"
)

// ClearOp is a membership op as its clear header shows it (PeekEntry):
// what a node without the space's keys — a relay's blind mirror — knows of
// it. The op's causal context and clock are sealed, so the writer-set rules
// (Resolve) cannot be applied to it.
type ClearOp struct {
	Author feed.PublicKey
	Index  uint64
	Remove bool
	Target feed.PublicKey
}

// PeekMembership returns the membership op that the entry at index of
// author's feed holds, read from its clear header, and false for any
// other op. It needs no key; the entry may still fail to open.
func PeekMembership(author feed.PublicKey, index uint64, data []byte) (ClearOp, bool, error) {
	h, err := PeekEntry(data)
	if err != nil || h.Membership == 0 {
		return ClearOp{}, false, err
	}
	return ClearOp{Author: author, Index: index, Remove: h.Membership == OpRemoveWriter, Target: h.Target}, true, nil
}

// MirrorWriters is the writer set as far as a node without keys can tell
// it from clear headers: follow is the origin and, transitively, every
// feed that an add-writer of a followed feed names; removed are the
// followed feeds that a remove-writer of a followed feed names (a device
// that left removed itself).
//
// Without the ops' clocks the rules of DESIGN.md cannot be applied, so
// follow is a superset of the feeds of the space (Space.Feeds): it holds
// every writer whose add counts, removed writers included (their ops
// before the removal still count and members need them), and also the
// target of an add that does not count when its author is followed (an
// add a removed writer made after its removal). removed may name a writer
// whose removal does not stand (two writers that removed each other
// concurrently are both in it). Both are pure functions of the set of ops,
// whatever their order. Cost: O(len(ops)) with maps.
func MirrorWriters(origin feed.PublicKey, ops []ClearOp) (follow, removed []feed.PublicKey) {
	adds := make(map[feed.PublicKey][]feed.PublicKey)
	for _, op := range ops {
		if !op.Remove {
			adds[op.Author] = append(adds[op.Author], op.Target)
		}
	}
	set := map[feed.PublicKey]bool{origin: true}
	queue := []feed.PublicKey{origin}
	for len(queue) > 0 {
		k := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, t := range adds[k] {
			if !set[t] {
				set[t] = true
				queue = append(queue, t)
			}
		}
	}
	gone := make(map[feed.PublicKey]bool)
	for _, op := range ops {
		if op.Remove && set[op.Author] && set[op.Target] {
			gone[op.Target] = true
		}
	}
	cmpKey := func(a, b feed.PublicKey) int { return OpID{Feed: a}.compare(OpID{Feed: b}) }
	for k := range set {
		follow = append(follow, k)
	}
	for k := range gone {
		removed = append(removed, k)
	}
	slices.SortFunc(follow, cmpKey)
	slices.SortFunc(removed, cmpKey)
	return follow, removed
}
