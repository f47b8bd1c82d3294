package space

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// TestMirrorWriters: the followed feeds are the origin and what followed
// feeds add, transitively, whatever the order of the ops; an add by a feed
// nobody added is not followed; a removal by a followed feed marks its
// target (itself included), one by a stranger does not.
func TestMirrorWriters(t *testing.T) {
	k := func(b byte) feed.PublicKey { return feed.PublicKey{b} }
	origin, a, b, c, x, y := k(1), k(2), k(3), k(4), k(9), k(10)
	ops := []ClearOp{
		{Author: b, Index: 0, Target: c},               // b adds c (b is added below)
		{Author: origin, Index: 0, Target: a},          // origin adds a
		{Author: a, Index: 0, Target: b},               // a adds b
		{Author: x, Index: 0, Target: y},               // a stranger adds y
		{Author: a, Index: 1, Remove: true, Target: b}, // a removes b
		{Author: c, Index: 0, Remove: true, Target: c}, // c leaves
		{Author: x, Index: 1, Remove: true, Target: a}, // a stranger removes a
	}
	wantFollow := []feed.PublicKey{origin, a, b, c}
	wantRemoved := []feed.PublicKey{b, c}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		follow, removed := MirrorWriters(origin, ops)
		if !slices.Equal(follow, wantFollow) || !slices.Equal(removed, wantRemoved) {
			t.Fatalf("follow %x removed %x", follow, removed)
		}
	}
	if follow, removed := MirrorWriters(origin, nil); !slices.Equal(follow, []feed.PublicKey{origin}) || len(removed) != 0 {
		t.Fatalf("no ops: %x %x", follow, removed)
	}
}
