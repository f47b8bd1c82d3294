package feed

import "sort"

// Range is a half-open interval [Start, End) of entry indices.
type Range struct {
	Start, End uint64
}

// Len returns the number of indices in r.
func (r Range) Len() uint64 { return r.End - r.Start }

// rangeSet is a sorted list of disjoint, non-adjacent, non-empty ranges.
type rangeSet []Range

// find returns the index of the first range whose End >= i (ranges that end
// exactly at i are adjacent to i and so found too).
func (s rangeSet) find(i uint64) int {
	return sort.Search(len(s), func(k int) bool { return s[k].End >= i })
}

func (s rangeSet) contains(i uint64) bool {
	k := s.find(i + 1)
	return k < len(s) && s[k].Start <= i
}

// covers reports whether every index of [a, b) is in the set.
func (s rangeSet) covers(a, b uint64) bool {
	if a >= b {
		return true
	}
	k := s.find(b)
	return k < len(s) && s[k].Start <= a
}

// add returns the set with [a, b) added, the ranges it replaced and the one
// that replaced them (for writing the change to storage).
func (s rangeSet) add(a, b uint64) (out rangeSet, removed []Range, merged Range) {
	merged = Range{a, b}
	lo := s.find(a) // first range that ends at or after a: may touch [a, b)
	hi := lo
	for hi < len(s) && s[hi].Start <= b {
		merged.Start = min(merged.Start, s[hi].Start)
		merged.End = max(merged.End, s[hi].End)
		hi++
	}
	removed = append(removed, s[lo:hi]...)
	out = make(rangeSet, 0, len(s)-(hi-lo)+1)
	out = append(out, s[:lo]...)
	out = append(out, merged)
	out = append(out, s[hi:]...)
	return out, removed, merged
}

// missing returns the parts of [a, b) not in the set.
func (s rangeSet) missing(a, b uint64) []Range {
	var out []Range
	for k := s.find(a); a < b; k++ {
		if k >= len(s) || s[k].Start >= b {
			out = append(out, Range{a, b})
			break
		}
		if s[k].Start > a {
			out = append(out, Range{a, s[k].Start})
		}
		a = max(a, s[k].End)
	}
	return out
}

// intersect returns the parts of [a, b) that are in the set.
func (s rangeSet) intersect(a, b uint64) []Range {
	var out []Range
	for k := s.find(a); k < len(s) && s[k].Start < b; k++ {
		lo, hi := max(a, s[k].Start), min(b, s[k].End)
		if lo < hi {
			out = append(out, Range{lo, hi})
		}
	}
	return out
}
