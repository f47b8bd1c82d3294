package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
)

// spaceKeys counts what n's store holds of space id: keys in its
// namespace, and its record.
func spaceKeys(t *testing.T, n *Node, id string) (keys int, record bool) {
	t.Helper()
	sid, err := parseSpaceID(id)
	if err != nil {
		t.Fatal(err)
	}
	p := spacePrefix(sid)
	if err := n.store.Scan(p, feed.PrefixEnd(p), func(_, _ []byte) error { keys++; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = n.store.Get(recordKey(sid))
	return keys, err == nil
}

// TestLeaveSpace: a writer leaves — its removal reaches the peer, which no
// longer lists it; its copy is gone from the list and the store; it can
// join again later. A device that only asked to join gives up the same
// way. A writer with no peer leaves with a warning.
func TestLeaveSpace(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, loopbackConfig(t))
	b := startNode(t, loopbackConfig(t, a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	if err := a.Put(ctx, id, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, id, "B")
	waitWriters(t, id, b)
	if err := b.Put(ctx, id, "from-b", []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if e, _ := b.Get(id, "k"); len(e.Versions) == 0 {
			return fmt.Errorf("B lacks A's key")
		}
		return nil
	})
	bi, _ := b.Space(id)

	left, err := b.LeaveSpace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !left.Removed || left.Reached < 1 || left.Warning != "" {
		t.Fatalf("left: %+v", left)
	}
	if sp := b.Spaces(); len(sp) != 0 {
		t.Fatalf("B still lists %+v", sp)
	}
	if _, err := b.Space(id); err == nil {
		t.Fatal("B still has the space")
	}
	if keys, rec := spaceKeys(t, b, id); keys != 0 || rec {
		t.Fatalf("B's store keeps %d keys of the space, record %v", keys, rec)
	}
	eventually(t, 30*time.Second, func() error {
		ms, _ := a.Members(id)
		for _, m := range ms {
			if m.Feed == bi.Feed {
				return fmt.Errorf("A still lists B")
			}
		}
		return nil
	})
	// A goes on writing; B's write before leaving stays.
	if err := a.Put(ctx, id, "after", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if e, _ := a.Get(id, "from-b"); len(e.Versions) == 0 {
		t.Fatal("B's write before leaving is gone")
	}

	// B joins again, with a new feed.
	approve(t, a, b, id, "B again")
	waitWriters(t, id, b)
	eventually(t, 30*time.Second, func() error {
		if e, _ := b.Get(id, "after"); len(e.Versions) == 0 {
			return fmt.Errorf("B (joined again) lacks A's write: %s", feedLengths(b, id))
		}
		return nil
	})
	if bi2, _ := b.Space(id); bi2.Feed == bi.Feed {
		t.Fatal("joined again with the same feed")
	}

	// C asks to join and gives up while waiting.
	c := startNode(t, loopbackConfig(t, a.Addrs()[0].String()))
	inv, err := a.CreateInvite(ctx, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Join(ctx, api.JoinWith{Invite: inv.Link}); err != nil || st.State != api.JoinWaiting {
		t.Fatalf("C's join: %+v %v", st, err)
	}
	left, err = c.LeaveSpace(ctx, id)
	if err != nil || left.Removed {
		t.Fatalf("leave while joining: %+v %v", left, err)
	}
	if keys, rec := spaceKeys(t, c, id); keys != 0 || rec || len(c.Spaces()) != 0 {
		t.Fatalf("C keeps %d keys, record %v, spaces %+v", keys, rec, c.Spaces())
	}
	if _, err := c.LeaveSpace(ctx, id); err == nil {
		t.Fatal("leaving twice")
	}

	// D alone: no peer hears the removal.
	d := startNode(t, loopbackConfig(t))
	di, _ := d.CreateSpace(ctx, "alone")
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	left, err = d.LeaveSpace(sctx, di.ID)
	if err != nil || !left.Removed || left.Reached != 0 || left.Warning == "" {
		t.Fatalf("leave with no peer: %+v %v", left, err)
	}
}

// TestLeaveResumesAfterCrash: a leave cut short after the record was
// marked finishes at the next open.
func TestLeaveResumesAfterCrash(t *testing.T) {
	ctx := context.Background()
	cfg := loopbackConfig(t)
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := n.CreateSpace(ctx, "x")
	n.Put(ctx, info.ID, "k", []byte("v"))
	sid, _ := auth.SpaceIDFromBytes(mustHex(t, info.ID))
	rec, err := n.readRecord(sid)
	if err != nil {
		t.Fatal(err)
	}
	rec.Leaving = true
	if err := n.writeRecord(sid, rec); err != nil {
		t.Fatal(err)
	}
	n.Close()
	n = startNode(t, cfg)
	if len(n.Spaces()) != 0 {
		t.Fatalf("a space being left opened: %+v", n.Spaces())
	}
	if keys, rec := spaceKeys(t, n, info.ID); keys != 0 || rec {
		t.Fatalf("%d keys, record %v", keys, rec)
	}
	if _, err := n.Space(info.ID); err == nil {
		t.Fatal("space still there")
	}
	var _ = api.ErrNotFound
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	id, err := parseSpaceID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id[:]
}

// TestLeaveRemovalServedEarly: the session serves the leaving device's
// removal to its peer before LeaveSpace has noted the removal's index (a
// session can push it as soon as it is appended) — and the peer, having
// taken it, closes its session with the device at once, so nothing is
// served after. The leave still counts that peer: it ends at once with
// the peer reached, not after LeaveWait with a warning.
func TestLeaveRemovalServedEarly(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, loopbackConfig(t))
	cb := loopbackConfig(t, a.Addrs()[0].String())
	cb.Limits.Net.LeaveWait = 5 * time.Second
	b := startNode(t, cb)
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	approve(t, a, b, id, "B")
	waitWriters(t, id, b)
	if err := b.Put(ctx, id, "from-b", []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if e, _ := a.Get(id, "from-b"); len(e.Versions) == 0 {
			return fmt.Errorf("A lacks B's key")
		}
		return nil
	})
	bi, _ := b.Space(id)
	mb, err := b.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	mb.leaveHook = func() {
		// The removal is written; a session pushes it now.
		b.repl.Appended(mb.sp.ID(), mb.sp.Feed())
		eventually(t, 20*time.Second, func() error {
			ms, _ := a.Members(id)
			for _, m := range ms {
				if m.Feed == bi.Feed {
					return fmt.Errorf("A still lists B")
				}
			}
			return nil
		})
	}
	start := time.Now()
	left, err := b.LeaveSpace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !left.Removed || left.Reached != 1 || left.Warning != "" {
		t.Fatalf("left after %v: %+v", time.Since(start), left)
	}
}
