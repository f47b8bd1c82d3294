package space

import (
	"context"
	"errors"
	"testing"

	"github.com/mycelsync/mycel/auth"
)

// TestWelcome: a device approved out of band opens the welcome, holds the
// capability its approver proves, and then reads the space once it has
// the feeds. Nobody else opens the welcome.
func TestWelcome(t *testing.T) {
	ctx := context.Background()
	a, b, eve := newDevice(t, "A", nil), newDevice(t, "B", nil), newDevice(t, "Eve", nil)
	create(t, a)
	if err := a.sp.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	join(t, b, a.sp.ID())
	join(t, eve, a.sp.ID())
	if _, err := b.sp.Capabilities(); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("capability before approval: %v", err)
	}
	if b.sp.Approved() {
		t.Fatal("approved before the welcome")
	}
	if err := a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()); err != nil {
		t.Fatal(err)
	}
	welcome, err := a.sp.Welcome(b.feedKey(), b.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := eve.sp.Accept(welcome); !errors.Is(err, auth.ErrDecrypt) {
		t.Fatalf("another device accepted B's welcome: %v", err)
	}
	if err := b.sp.Accept(welcome); err != nil {
		t.Fatal(err)
	}
	capsA, _ := a.sp.Capabilities()
	capsB, err := b.sp.Capabilities()
	if err != nil || len(capsB) != 1 || capsA[0] != capsB[0] {
		t.Fatalf("capabilities after welcome: %v, %d", err, len(capsB))
	}
	// After a rotation, B (behind) is admitted with its old epoch as the
	// writer it is, not without its signature.
	if err := a.sp.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	kB := b.feedKey()
	if a.sp.Admits(holds(capsB), nil) || !a.sp.Admits(holds(capsB), &kB) {
		t.Fatal("B behind on rotations: admitted without its writer signature, or refused with it")
	}
	if capsA, _ = a.sp.Capabilities(); !a.sp.Admits(holds(capsA[1:]), nil) {
		t.Fatal("the newest epoch does not admit")
	}
	kEve := eve.feedKey()
	if a.sp.Admits(holds(nil), &kB) || a.sp.Admits(holds(capsB), &kEve) {
		t.Fatal("admitted without a capability, or an old one signed by a non-writer")
	}
	pull(t, b, a)
	if got := value(b.sp, "k"); got != "v" {
		t.Fatalf("B reads %q", got)
	}
	if !b.sp.IsWriter() || b.sp.Held(a.feedKey()) != a.sp.Held(a.feedKey()) {
		t.Fatalf("writer %v, held %d of %d", b.sp.IsWriter(), b.sp.Held(a.feedKey()), a.sp.Held(a.feedKey()))
	}
}

// TestPutMany: one append of several puts, each its own entry and op.
func TestPutMany(t *testing.T) {
	ctx := context.Background()
	a := newDevice(t, "A", nil)
	create(t, a)
	before := a.sp.Held(a.feedKey())
	kvs := []KV{{"a", []byte("1")}, {"b", []byte("2")}, {"a", []byte("3")}}
	if err := a.sp.PutMany(ctx, kvs); err != nil {
		t.Fatal(err)
	}
	if got := a.sp.Held(a.feedKey()) - before; got != 3 {
		t.Fatalf("%d entries for 3 puts", got)
	}
	if value(a.sp, "a") != "3" || value(a.sp, "b") != "2" || len(a.sp.Get("a")) != 1 {
		t.Fatalf("a=%q b=%q versions of a: %d", value(a.sp, "a"), value(a.sp, "b"), len(a.sp.Get("a")))
	}
}

// holds returns an Admits predicate: the peer proves the capabilities caps.
func holds(caps []auth.ReplicationCapability) func(auth.ReplicationCapability) bool {
	return func(c auth.ReplicationCapability) bool {
		for _, x := range caps {
			if x == c {
				return true
			}
		}
		return false
	}
}

// TestAdmitsAfterRemoval: A removes C. C, holding every epoch up to its
// removal, is no longer admitted, signed or not; B, a member behind on the
// rotation, still is as the writer it is.
func TestAdmitsAfterRemoval(t *testing.T) {
	ctx := context.Background()
	a, b, c := newDevice(t, "A", nil), newDevice(t, "B", nil), newDevice(t, "C", nil)
	create(t, a)
	for _, d := range []*device{b, c} {
		join(t, d, a.sp.ID())
		if err := a.sp.AddWriter(ctx, d.feedKey(), d.name, d.key.Public()); err != nil {
			t.Fatal(err)
		}
		w, err := a.sp.Welcome(d.feedKey(), d.key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := d.sp.Accept(w); err != nil {
			t.Fatal(err)
		}
	}
	capsB, _ := b.sp.Capabilities()
	capsC, _ := c.sp.Capabilities()
	kB, kC := b.feedKey(), c.feedKey()
	if !a.sp.Admits(holds(capsC), &kC) || !a.sp.Admits(holds(capsC), nil) {
		t.Fatal("C refused before its removal")
	}
	if err := a.sp.RemoveWriter(ctx, kC); err != nil {
		t.Fatal(err)
	}
	if a.sp.Admits(holds(capsC), &kC) || a.sp.Admits(holds(capsC), nil) {
		t.Fatal("C admitted after its removal")
	}
	if !a.sp.Admits(holds(capsB), &kB) {
		t.Fatal("B, behind on the rotation, refused")
	}
	// B learns the new epoch from A's feed, and proves it.
	pull(t, b, a)
	if capsB, _ = b.sp.Capabilities(); len(capsB) != 2 || !a.sp.Admits(holds(capsB[1:]), nil) {
		t.Fatalf("B holds %d epochs after pulling the rotation", len(capsB))
	}
}
