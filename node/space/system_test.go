package space

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
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
	if err := a.sp.SetPasswordKey(ctx, auth.PasswordKey("correct horse", a.sp.ID())); err != nil {
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
