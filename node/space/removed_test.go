package space

import (
	"context"
	"errors"
	"testing"

	"github.com/mycelsync/mycel/auth"
)

// TestLearnRemoval: C, removed by A, never replicates its removal; the
// evidence A builds (the signed remove-writer entry and its proof) makes C
// stop being a writer, also after a restart. Evidence of B's removal, a
// removal by a device that is no writer in C's view, and altered evidence
// change nothing.
func TestLearnRemoval(t *testing.T) {
	ctx := context.Background()
	a, b, c := threeMembers(t)
	if _, ok := a.sp.RemovalEvidence(c.feedKey()); ok {
		t.Fatal("evidence of a removal that did not happen")
	}
	if err := a.sp.RemoveWriter(ctx, c.feedKey()); err != nil {
		t.Fatal(err)
	}
	ev, ok := a.sp.RemovalEvidence(c.feedKey())
	if !ok || len(ev) > MaxRemovalEvidence {
		t.Fatalf("evidence: %d bytes, %v", len(ev), ok)
	}
	if !c.sp.IsWriter() || c.sp.Removed() {
		t.Fatal("C knows before it is told")
	}
	// Altered: one byte of the entry, of the head's signature.
	for _, i := range []int{len(ev) / 2, len(ev) - 3} {
		bad := append([]byte(nil), ev...)
		bad[i] ^= 1
		if err := c.sp.LearnRemoval(bad); err == nil {
			t.Fatalf("altered evidence (byte %d) accepted", i)
		}
	}
	// B's evidence shown to B (B's view knows nothing of it: A is a
	// writer in B's view, but the op does not name B).
	if err := b.sp.LearnRemoval(ev); !errors.Is(err, ErrNotRemoval) || b.sp.Removed() || !b.sp.IsWriter() {
		t.Fatalf("B takes C's removal as its own: %v", err)
	}
	if !c.sp.IsWriter() {
		t.Fatal("C changed by failed evidence")
	}
	if err := c.sp.LearnRemoval(ev); err != nil {
		t.Fatal(err)
	}
	if c.sp.IsWriter() || !c.sp.Removed() {
		t.Fatal("C still a writer")
	}
	if err := c.sp.Put(ctx, "late", []byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("C writes: %v", err)
	}
	if err := c.sp.AddWriter(ctx, b.feedKey(), "x", b.key.Public()); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("C approves: %v", err)
	}
	if c.sp.Admits(func(auth.ReplicationCapability) bool { return true }, nil) {
		t.Fatal("C admits peers")
	}
	if err := c.sp.Close(); err != nil {
		t.Fatal(err)
	}
	join(t, c, a.sp.ID())
	if c.sp.IsWriter() || !c.sp.Removed() || !c.sp.Approved() {
		t.Fatal("C forgot its removal on restart")
	}

	// A removal by a feed that is no writer where it is shown: A's entry
	// shown to Y, of another space.
	x, y := newDevice(t, "X", nil), newDevice(t, "Y", nil)
	create(t, x)
	join(t, y, x.sp.ID())
	if err := x.sp.AddWriter(ctx, y.feedKey(), y.name, y.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, y, x)
	if err := y.sp.LearnRemoval(ev); !errors.Is(err, ErrNotRemoval) || !y.sp.IsWriter() {
		t.Fatalf("evidence of another space's removal: %v", err)
	}
}

// FuzzLearnRemoval: arbitrary bytes as the evidence of a removal, shown to
// a member that was not removed. LearnRemoval never panics, and nothing
// but the real evidence of its own removal — which does not exist — makes
// it stop being a writer.
func FuzzLearnRemoval(f *testing.F) {
	ctx := context.Background()
	a, b, c := threeMembers(f)
	if err := a.sp.RemoveWriter(ctx, c.feedKey()); err != nil {
		f.Fatal(err)
	}
	ev, ok := a.sp.RemovalEvidence(c.feedKey())
	if !ok {
		f.Fatal("no evidence")
	}
	pull(f, b, a)
	f.Add(ev)
	f.Add([]byte{})
	f.Add(ev[:len(ev)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := b.sp.LearnRemoval(data); err == nil || b.sp.Removed() || !b.sp.IsWriter() {
			t.Fatalf("B removed by %d bytes: %v", len(data), err)
		}
	})
}

// TestLearnApproverRemoval: A removes C; C, not told, approves J. J's view
// counts it a writer (C's add, with C's keyring). The evidence of C's
// removal makes J no writer and not approved, also after a restart; it
// changes nothing for B, approved by A, nor does altered evidence for J.
// A approves J; J tries A's keyring, fetches A's feeds and is a writer
// again, its mark cleared.
func TestLearnApproverRemoval(t *testing.T) {
	ctx := context.Background()
	a, b, c := threeMembers(t)
	if err := a.sp.RemoveWriter(ctx, c.feedKey()); err != nil {
		t.Fatal(err)
	}
	j := newDevice(t, "J", nil)
	join(t, j, a.sp.ID())
	if err := c.sp.AddWriter(ctx, j.feedKey(), j.name, j.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, j, c)
	if !j.sp.IsWriter() || !j.sp.Approved() {
		t.Fatal("J not approved by C")
	}
	if by, ok := j.sp.Approver(); !ok || by != c.feedKey() {
		t.Fatalf("J's approver: %x %v", by[:4], ok)
	}
	ev, ok := a.sp.RemovalEvidence(c.feedKey())
	if !ok {
		t.Fatal("no evidence")
	}
	if err := b.sp.LearnApproverRemoval(ev); !errors.Is(err, ErrNotRemoval) || b.sp.Stale() || !b.sp.IsWriter() || !b.sp.Approved() {
		t.Fatalf("B, approved by A, gives up: %v", err)
	}
	for _, i := range []int{len(ev) / 2, len(ev) - 3} {
		bad := append([]byte(nil), ev...)
		bad[i] ^= 1
		if err := j.sp.LearnApproverRemoval(bad); err == nil || j.sp.Stale() || !j.sp.IsWriter() {
			t.Fatalf("altered evidence (byte %d) accepted: %v", i, err)
		}
	}
	if err := j.sp.LearnApproverRemoval(ev); err != nil {
		t.Fatal(err)
	}
	if !j.sp.Stale() || j.sp.IsWriter() || j.sp.Approved() {
		t.Fatal("J still approved")
	}
	if err := j.sp.Put(ctx, "k", []byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("J writes: %v", err)
	}
	if err := j.sp.Close(); err != nil {
		t.Fatal(err)
	}
	join(t, j, a.sp.ID())
	if !j.sp.Stale() || j.sp.IsWriter() || j.sp.Approved() {
		t.Fatal("J forgot on restart")
	}
	if err := a.sp.AddWriter(ctx, j.feedKey(), j.name, j.key.Public()); err != nil {
		t.Fatal(err)
	}
	kr, err := a.sp.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	if err := j.sp.TryKeyring(kr); err != nil || !j.sp.Trying() {
		t.Fatalf("J does not try A's keyring: %v", err)
	}
	pull(t, j, a)
	if j.sp.Stale() || !j.sp.IsWriter() || !j.sp.Approved() || j.sp.Trying() {
		t.Fatalf("J not approved again: stale %v writer %v", j.sp.Stale(), j.sp.IsWriter())
	}
	if err := j.sp.Put(ctx, "j", []byte("1")); err != nil {
		t.Fatal(err)
	}
	pull(t, a, j)
	if v := a.sp.Get("j"); len(v) == 0 || string(v[0].Value) != "1" {
		t.Fatalf("A reads %+v", v)
	}
}

// FuzzLearnApproverRemoval: arbitrary bytes as the evidence of the
// removal of the writer that approved B (A, the origin, never removed).
// It never panics and never makes B give up its approval.
func FuzzLearnApproverRemoval(f *testing.F) {
	ctx := context.Background()
	a, b, c := threeMembers(f)
	if err := a.sp.RemoveWriter(ctx, c.feedKey()); err != nil {
		f.Fatal(err)
	}
	ev, ok := a.sp.RemovalEvidence(c.feedKey())
	if !ok {
		f.Fatal("no evidence")
	}
	f.Add(ev)
	f.Add([]byte{})
	f.Add(ev[:len(ev)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := b.sp.LearnApproverRemoval(data); err == nil || b.sp.Stale() || !b.sp.Approved() {
			t.Fatalf("B gave up for %d bytes: %v", len(data), err)
		}
	})
}
