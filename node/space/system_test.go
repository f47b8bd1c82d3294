package space

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// TestSystemKeys: apps can neither write the space's own keys nor see
// them in List or Watch; invites and the password key travel to other
// members like any op, and an invite's use merges across members.
func TestSystemKeys(t *testing.T) {
	ctx := context.Background()
	a, b := newDevice(t, "A", nil), newDevice(t, "B", nil)
	create(t, a)
	for _, err := range []error{
		a.sp.Put(ctx, invitePrefix+"x", []byte("v")),
		a.sp.Delete(ctx, passwordKey),
		a.sp.PutMany(ctx, []KV{{"ok", nil}, {SystemPrefix + "y", nil}}),
	} {
		if !errors.Is(err, ErrSystemKey) {
			t.Fatalf("system key written by an app: %v", err)
		}
	}
	w := a.sp.Watch("")
	defer a.sp.Unwatch(w)
	inv, err := auth.NewInvite(a.sp.ID(), time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := inv.Locator(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.sp.RecordInvite(ctx, inv.Record(), loc); err != nil {
		t.Fatal(err)
	}
	if err := a.sp.SetPasswordKey(ctx, 0, auth.PasswordKey("correct horse", a.sp.ID())); err != nil {
		t.Fatal(err)
	}
	if err := a.sp.Put(ctx, "app", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if got := a.sp.List("", "", 10); len(got) != 1 || got[0] != "app" {
		t.Fatalf("List(\"\") = %q", got)
	}
	if got := a.sp.List(SystemPrefix, "", 10); len(got) != 2 {
		t.Fatalf("List(SystemPrefix) = %q", got)
	}
	if c := <-w.C; c.Key != "app" {
		t.Fatalf("watch of \"\" saw %q", c.Key)
	}

	// B, approved, reads both from A's feed.
	join(t, b, a.sp.ID())
	if err := a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, b, a)
	rec, gotLoc, ok := b.sp.Invite(inv.ID())
	if !ok || rec.Key != inv.Record().Key || string(gotLoc) != string(loc) || rec.Check(time.Now()) != nil {
		t.Fatalf("B's invite record: %v %v %v", rec, ok, rec.Check(time.Now()))
	}
	want := auth.PasswordRequestKey(auth.PasswordKey("correct horse", a.sp.ID()), a.sp.ID())
	if got, ok := b.sp.PasswordRequestKey(); !ok || got != want {
		t.Fatalf("B's password key: %v %v", got, ok)
	}
	// B spends the invite on a request; A, later, cannot spend it on
	// another.
	var dev1, dev2 [32]byte
	dev1[0], dev2[0] = 1, 2
	if err := b.sp.UseInvite(ctx, inv.ID(), dev1); err != nil {
		t.Fatal(err)
	}
	if err := b.sp.UseInvite(ctx, inv.ID(), dev1); err != nil {
		t.Fatalf("spending it again on the same request: %v", err)
	}
	pull(t, a, b)
	if rec, _, _ := a.sp.Invite(inv.ID()); !errors.Is(rec.Check(time.Now()), auth.ErrUsed) {
		t.Fatalf("A sees the invite unused: %v", rec)
	}
	if err := a.sp.UseInvite(ctx, inv.ID(), dev2); !errors.Is(err, auth.ErrUsed) {
		t.Fatalf("spent twice: %v", err)
	}
}

// TestSpentInviteStaysSpent: a member that writes entries directly puts a
// fresh record under a spent invite's key, causally after the "used" one.
// Every view — the writer's, a peer's that replicates it, one reopened
// from the store, one replaying the ops after a checkpoint — keeps the
// invite used, and nobody can spend it on another device.
func TestSpentInviteStaysSpent(t *testing.T) {
	ctx := context.Background()
	a, b := newDevice(t, "A", nil), newDevice(t, "B", nil)
	create(t, a)
	inv, err := auth.NewInvite(a.sp.ID(), time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := inv.Locator(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.sp.RecordInvite(ctx, inv.Record(), loc); err != nil {
		t.Fatal(err)
	}
	var dev1, dev2 [32]byte
	dev1[0], dev2[0] = 1, 2
	if err := a.sp.UseInvite(ctx, inv.ID(), dev1); err != nil {
		t.Fatal(err)
	}
	// The forgery: a fresh record, written as any op (RecordInvite writes
	// whatever record it is given), after the used one.
	for range 2 {
		if err := a.sp.RecordInvite(ctx, inv.Record(), loc); err != nil {
			t.Fatal(err)
		}
	}
	spent := func(who string, sp *Space) {
		t.Helper()
		rec, _, ok := sp.Invite(inv.ID())
		if !ok || !errors.Is(rec.Check(time.Now()), auth.ErrUsed) || rec.UsedBy != dev1 {
			t.Fatalf("%s sees the invite unspent: %v %v", who, rec, ok)
		}
		if err := sp.UseInvite(ctx, inv.ID(), dev2); !errors.Is(err, auth.ErrUsed) {
			t.Fatalf("%s spends it again on another device: %v", who, err)
		}
	}
	spent("A", a.sp)
	join(t, b, a.sp.ID())
	if err := a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, b, a)
	spent("B", b.sp)
	if b.sp.Digest() != a.sp.Digest() {
		t.Fatal("A and B disagree")
	}
	// Reopened from the store: the register as stored, then as replayed
	// from the op log.
	if err := b.sp.Close(); err != nil {
		t.Fatal(err)
	}
	join(t, b, a.sp.ID())
	spent("B reopened", b.sp)
	if err := a.sp.Flush(); err != nil {
		t.Fatal(err)
	}
	v, err := OpenView(feed.PublicKey(a.sp.ID()), a.store, a.key.LocalKey(a.sp.ID()), nil)
	if err != nil {
		t.Fatal(err)
	}
	var used int
	for _, x := range v.Get(invitePrefix + inv.ID().String()) {
		if final(&Op{Kind: OpPut, Key: invitePrefix + inv.ID().String(), Value: x.Value}) {
			used++
		}
	}
	if used != 1 {
		t.Fatalf("A's stored view keeps %d used records", used)
	}
}

// TestPasswordGeneration: a removal voids the password key set before it;
// the key of the new generation, written after, opens requests again, and
// the removed device cannot read it.
func TestPasswordGeneration(t *testing.T) {
	ctx := context.Background()
	a, b, c := threeMembers(t)
	k0 := [auth.KeySize]byte{1}
	if err := a.sp.SetPasswordKey(ctx, 0, k0); err != nil {
		t.Fatal(err)
	}
	pull(t, c, a)
	if k, ok := c.sp.PasswordRequestKey(); !ok || k.Key != k0 {
		t.Fatal("C lacks the password key")
	}
	if err := a.sp.RemoveWriter(ctx, c.feedKey()); err != nil {
		t.Fatal(err)
	}
	gen := a.sp.PasswordGeneration()
	if gen == 0 {
		t.Fatal("no new generation after a removal")
	}
	if _, ok := a.sp.PasswordRequestKey(); ok {
		t.Fatal("the key of before the removal still opens requests")
	}
	k1 := [auth.KeySize]byte{2}
	if err := a.sp.SetPasswordKey(ctx, gen, k1); err != nil {
		t.Fatal(err)
	}
	pull(t, b, a)
	pull(t, c, a)
	for _, d := range []*device{a, b} {
		if k, ok := d.sp.PasswordRequestKey(); !ok || k.Key != k1 {
			t.Fatalf("%s: password key %v %v", d.name, k, ok)
		}
	}
	if g, k, ok := c.sp.PasswordKey(); ok && (g == gen || k == k1) {
		t.Fatal("the removed device reads the new password key")
	}
}

// TestScenarioRelayListWritersOnly: the space's relay list is written by
// writers only. An entry, or a removal of one, by a device never added, or
// by a removed device after its removal, does not count, in any delivery
// order.
func TestScenarioRelayListWritersOnly(t *testing.T) {
	s := newScript("O", "A", "X")
	s.add("O", "O")
	s.put("O", relayPrefix+"r1", "e1")
	s.add("O", "A")
	s.learn("A", "O")
	s.learn("X", "O")
	s.put("X", relayPrefix+"evil", "x") // X was never added
	s.write("X", &Op{Kind: OpDelete, Key: relayPrefix + "r1"})
	s.remove("O", "A")
	s.learn("A", "O")
	s.put("A", relayPrefix+"late", "a") // after A's removal
	s.write("A", &Op{Kind: OpDelete, Key: relayPrefix + "r1"})
	s.deliver(t, "O", relayPrefix+"r1=e1@O writers=O")
}

// TestSpaceRelays: SetRelay lists, DropRelay unlists, Relays reads at most
// limit entries in key order; apps cannot write the list's keys, and a
// device that is not a writer cannot list a relay.
func TestSpaceRelays(t *testing.T) {
	ctx := context.Background()
	a, b := newDevice(t, "A", nil), newDevice(t, "B", nil)
	create(t, a)
	if err := a.sp.Put(ctx, relayPrefix+"p", []byte("v")); !errors.Is(err, ErrSystemKey) {
		t.Fatalf("relay key written by an app: %v", err)
	}
	for _, id := range []string{"p3", "p1", "p2"} {
		if err := a.sp.SetRelay(ctx, id, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.sp.DropRelay(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	got := a.sp.Relays(10)
	if len(got) != 2 || got[0].ID != "p1" || string(got[0].Entry) != "p1" || got[1].ID != "p3" {
		t.Fatalf("Relays = %+v", got)
	}
	if got := a.sp.Relays(1); len(got) != 1 {
		t.Fatalf("Relays(1) = %+v", got)
	}
	if got := a.sp.List("", "", 10); len(got) != 0 {
		t.Fatalf("apps see %q", got)
	}
	join(t, b, a.sp.ID())
	if err := b.sp.SetRelay(ctx, "p4", nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("a device not approved lists a relay: %v", err)
	}
}
