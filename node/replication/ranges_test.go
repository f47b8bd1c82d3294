package replication

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// TestRangeSets checks union, subtract, intersect, clip and take against
// bitmaps.
func TestRangeSets(t *testing.T) {
	const n = 64
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() []feed.Range {
		var rs []feed.Range
		for range rng.IntN(6) {
			s := uint64(rng.IntN(n))
			rs = append(rs, feed.Range{Start: s, End: s + uint64(rng.IntN(10))})
		}
		return rs
	}
	bits := func(rs []feed.Range) (b [n + 10]bool) {
		for _, r := range rs {
			for i := r.Start; i < r.End; i++ {
				b[i] = true
			}
		}
		return b
	}
	normal := func(rs []feed.Range) bool {
		for i, r := range rs {
			if r.Start >= r.End || i > 0 && r.Start <= rs[i-1].End {
				return false
			}
		}
		return true
	}
	for range 2000 {
		a, b := union(random(), nil), union(random(), nil)
		ba, bb := bits(a), bits(b)
		u, s, x, c := union(a, b), subtract(a, b), intersect(a, b), clip(a, 30)
		bu, bs, bx, bc := bits(u), bits(s), bits(x), bits(c)
		for i := range ba {
			if bu[i] != (ba[i] || bb[i]) || bs[i] != (ba[i] && !bb[i]) || bx[i] != (ba[i] && bb[i]) || bc[i] != (ba[i] && i < 30) {
				t.Fatalf("a=%v b=%v: index %d: union %v subtract %v intersect %v clip %v", a, b, i, u, s, x, c)
			}
		}
		for _, r := range [][]feed.Range{u, s, x, c} {
			if !normal(r) {
				t.Fatalf("not normalized: %v", r)
			}
		}
		tk := take(a, 7, 2)
		if size(tk) > 7 || len(tk) > 2 || len(subtract(tk, a)) != 0 || len(a) > 0 && (len(tk) == 0 || tk[0].Start != a[0].Start) {
			t.Fatalf("take(%v, 7, 2) = %v", a, tk)
		}
	}
	if got := take([]feed.Range{{Start: 0, End: 3}, {Start: 5, End: 9}}, 5, 10); !slices.Equal(got, []feed.Range{{Start: 0, End: 3}, {Start: 5, End: 7}}) {
		t.Errorf("take: %v", got)
	}
}
