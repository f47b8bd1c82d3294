package space

import (
	"strings"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// TestDiagnostics: every kind of bad input a feed can carry stays out of
// the view and shows up in Diagnostics.
func TestDiagnostics(t *testing.T) {
	s := newScript("O", "X")
	s.add("O", "O")
	s.put("O", "k", "ok")
	o, x := s.key("O"), s.key("X")
	v := NewView(o)
	for _, g := range s.ops {
		v.Apply(g.feed, g.index, g.op)
	}
	// An op from a feed never added.
	v.Apply(x, 0, &Op{Kind: OpPut, Key: "k", Value: []byte("intruder"), HLC: 100})
	// An op whose clock does not advance, one of no known kind, and an entry
	// that could not be decrypted.
	v.Apply(o, 2, &Op{Kind: OpPut, Key: "k", Value: []byte("stale"), HLC: 1})
	v.Apply(o, 3, &Op{Kind: 99, HLC: 200})
	v.ApplyInvalid(o, 4, "open entry: invalid entry: bad tag")
	// An op claiming to have seen entries that do not exist.
	v.Apply(o, 5, &Op{Kind: OpPut, Key: "k", Value: []byte("future"), HLC: 300,
		Seen: []Seen{{Feed: feed.PublicKey{9}, Length: 7}}})

	if vs := v.Get("k"); len(vs) != 1 || string(vs[0].Value) != "ok" {
		t.Fatalf("bad input reached the view: %+v", vs)
	}
	d := v.Diagnostics()
	if d.InvalidTotal != 3 || len(d.Invalid) != 3 {
		t.Fatalf("invalid %d %+v", d.InvalidTotal, d.Invalid)
	}
	for i, want := range []string{"clock", "unknown op kind", "bad tag"} {
		if !strings.Contains(d.Invalid[i].Reason, want) || d.Invalid[i].ID != (OpID{Feed: o, Index: uint64(i + 2)}) {
			t.Errorf("refusal %d: %+v, want %q", i, d.Invalid[i], want)
		}
	}
	if d.NotCounting != 1 {
		t.Errorf("not counting %d, want 1 (the never-added feed's put)", d.NotCounting)
	}
	if d.Waiting != 1 || len(d.Stuck) != 1 || d.Stuck[0] != (Stuck{ID: OpID{Feed: o, Index: 5}, Feed: feed.PublicKey{9}, Length: 7}) {
		t.Errorf("waiting %d, stuck %+v", d.Waiting, d.Stuck)
	}
}
