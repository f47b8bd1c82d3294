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
	if _, err := b.sp.Capability(); !errors.Is(err, ErrNoKeys) {
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
	capA, _ := a.sp.Capability()
	capB, err := b.sp.Capability()
	if err != nil || capA != capB {
		t.Fatalf("capability after welcome: %v, equal %v", err, capA == capB)
	}
	// Still the same capability after a rotation: B, behind, can sync.
	if err := a.sp.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if capA2, _ := a.sp.Capability(); capA2 != capB {
		t.Fatal("capability changed with a rotation")
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
