package replication

import (
	"slices"

	"github.com/mycelsync/mycel/feed"
)

// Range sets here are sorted lists of disjoint, non-empty ranges.

// union returns the normalized union of a and b.
func union(a, b []feed.Range) []feed.Range {
	all := make([]feed.Range, 0, len(a)+len(b))
	for _, r := range append(slices.Clone(a), b...) {
		if r.Start < r.End {
			all = append(all, r)
		}
	}
	slices.SortFunc(all, func(x, y feed.Range) int {
		switch {
		case x.Start < y.Start:
			return -1
		case x.Start > y.Start:
			return 1
		}
		return 0
	})
	var out []feed.Range
	for _, r := range all {
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtract returns the parts of a not in b (both normalized).
func subtract(a, b []feed.Range) []feed.Range {
	var out []feed.Range
	j := 0
	for _, r := range a {
		s := r.Start
		for j < len(b) && b[j].End <= s {
			j++
		}
		for k := j; k < len(b) && b[k].Start < r.End && s < r.End; k++ {
			if b[k].Start > s {
				out = append(out, feed.Range{Start: s, End: b[k].Start})
			}
			s = max(s, b[k].End)
		}
		if s < r.End {
			out = append(out, feed.Range{Start: s, End: r.End})
		}
	}
	return out
}

// clip returns the parts of a below end.
func clip(a []feed.Range, end uint64) []feed.Range {
	return subtract(a, []feed.Range{{Start: end, End: feed.MaxLength + 1}})
}

// size returns the number of indices in a.
func size(a []feed.Range) uint64 {
	var n uint64
	for _, r := range a {
		n += r.Len()
	}
	return n
}

// take returns a prefix of a of at most n indices and at most k ranges.
func take(a []feed.Range, n uint64, k int) []feed.Range {
	var out []feed.Range
	for _, r := range a {
		if n == 0 || len(out) == k {
			break
		}
		if r.Len() > n {
			r.End = r.Start + n
		}
		out = append(out, r)
		n -= r.Len()
	}
	return out
}

// intersect returns the parts of a also in b.
func intersect(a, b []feed.Range) []feed.Range {
	return subtract(a, subtract(a, b))
}
