package space

import (
	"context"
	"slices"
	"testing"
)

// An add-writer op that does not count — here B's add of T, concurrent
// with A's removal of B — does not make T a feed of the space: A neither
// serves nor fetches T, and reads nothing of it. Its author's feed stays
// (B's ops before the removal count).
func TestFeedsOnlyCountingAdds(t *testing.T) {
	ctx := context.Background()
	a, b, tt := newDevice(t, "A", nil), newDevice(t, "B", nil), newDevice(t, "T", nil)
	create(t, a)
	join(t, b, a.sp.ID())
	if err := a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, b, a)
	if !b.sp.IsWriter() {
		t.Fatal("B not approved")
	}
	// Concurrently: A removes B, B adds T.
	if err := a.sp.RemoveWriter(ctx, b.feedKey()); err != nil {
		t.Fatal(err)
	}
	if err := b.sp.AddWriter(ctx, tt.feedKey(), tt.name, tt.key.Public()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(b.sp.Feeds(), tt.feedKey()) {
		t.Fatal("B's own view: its add of T counts, T should be a feed")
	}
	pull(t, a, b)
	feeds := a.sp.Feeds()
	if slices.Contains(feeds, tt.feedKey()) {
		t.Fatalf("A serves T's feed, whose add (by B, concurrent with B's removal) does not count: %x", feeds)
	}
	if !slices.Contains(feeds, b.feedKey()) {
		t.Fatal("A no longer serves B's feed, whose earlier ops count")
	}
	if a.sp.HasFeed(tt.feedKey()) {
		t.Fatal("HasFeed(T)")
	}
}

// TestViewKeepsNoKeyring: the view keeps no approval's sealed keyring, in
// memory or in its store, once the add-writer op is applied — also after
// reopening; the approved device still got its keys from it.
func TestViewKeepsNoKeyring(t *testing.T) {
	ctx := context.Background()
	a, b := newDevice(t, "A", nil), newDevice(t, "B", nil)
	create(t, a)
	join(t, b, a.sp.ID())
	for range 3 {
		c := newDevice(t, "C", nil)
		if err := a.sp.AddWriter(ctx, c.feedKey(), c.name, c.key.Public()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, b, a)
	if !b.sp.IsWriter() {
		t.Fatal("B did not get its keys")
	}
	check := func(name string, sp *Space) {
		t.Helper()
		n := 0
		for _, r := range sp.view.special {
			if r.op.Kind == OpAddWriter {
				n++
				if len(r.op.SealedKeyring) != 0 {
					t.Fatalf("%s: the view keeps a sealed keyring of %d bytes", name, len(r.op.SealedKeyring))
				}
			}
		}
		if n != 5 {
			t.Fatalf("%s: %d add-writer ops", name, n)
		}
	}
	check("A", a.sp)
	check("B", b.sp)
	a.sp.Close()
	join(t, a, a.sp.ID())
	check("A reopened", a.sp)
}
