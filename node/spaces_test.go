package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/api"
)

func startNode(t testing.TB, cfg *Config) *Node {
	t.Helper()
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feedLengths describes what n holds of each feed of a space, for failure
// messages.
func feedLengths(n *Node, id string) string {
	m, err := n.opened(id)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, k := range m.sp.Feeds() {
		f, err := m.db.Feed(k)
		if err != nil {
			out = append(out, fmt.Sprintf("%x: %v", k[:4], err))
			continue
		}
		h, _ := f.Head()
		out = append(out, fmt.Sprintf("%x: len %d ranges %v", k[:4], h.Length, f.Ranges()))
	}
	return strings.Join(out, "; ")
}

// waitWriters waits until each node sees itself as a writer of space id.
func waitWriters(t *testing.T, id string, nodes ...*Node) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, 30*time.Second, func() error {
			if i, _ := n.Space(id); !i.Writer {
				return fmt.Errorf("%s not a writer yet: %+v", n.host.ID(), i)
			}
			return nil
		})
	}
}

// signInEntries is what signing a device in with an invite writes to the
// inviting member's feed: the invite's record, its use, and the
// add-writer op.
const signInEntries = 3

// approve signs b in to space with an invite of a's: b joins with the
// link, cannot write before it is approved, a approves the request that
// shows b's safety code, and b waits until it holds the space's keys.
// The name is b's own (its config's); name only labels the failure.
func approve(t testing.TB, a, b *Node, space, name string) {
	t.Helper()
	ctx := context.Background()
	inv, err := a.CreateInvite(ctx, space, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Join(ctx, api.JoinWith{Invite: inv.Link})
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	if err := b.Put(ctx, space, "early", []byte("x")); !errors.Is(err, api.ErrReadOnly) {
		t.Fatalf("write before approval: %v", err)
	}
	var req api.Request
	eventually(t, 30*time.Second, func() error {
		for _, r := range a.Requests() {
			if r.Code == st.Code {
				req = r
				return nil
			}
		}
		return fmt.Errorf("no request of %s's with code %s: %+v", name, st.Code, a.Requests())
	})
	if err := a.Approve(ctx, req.ID, st.Code); err != nil {
		t.Fatalf("approving %s: %v", name, err)
	}
	eventually(t, 45*time.Second, func() error {
		i, err := b.Space(space)
		switch {
		case err != nil:
			return err
		case i.Join != nil && i.Join.State != api.JoinWaiting && i.Join.State != api.JoinApproved:
			t.Fatalf("%s's join: %+v", name, i.Join)
		case !i.Approved:
			return fmt.Errorf("%s does not hold the keys yet: %+v", name, i.Join)
		}
		return nil
	})
}

// addWriter makes n, a writer of space id, add feedHex as a writer with
// device key dk: the add-writer op a member's approval writes, here for a
// feed that no device asked for (a hostile member's add).
func addWriter(t *testing.T, n *Node, id, feedHex, name string, dk *auth.DeviceKey) {
	t.Helper()
	m, err := n.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	target, err := parseFeed(feedHex)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.sp.AddWriter(context.Background(), target, name, dk.Public()); err != nil {
		t.Fatal(err)
	}
	m.wrote()
}

// TestNodesConverge: A creates a space, approves B and C; all three write
// concurrently over real libp2p hosts on loopback and end with one digest;
// a node restarted from its data directory has the same view.
func TestNodesConverge(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, loopbackConfig(t))
	peer := a.Addrs()[0].String()
	b := startNode(t, loopbackConfig(t, peer))
	cCfg := loopbackConfig(t, peer)
	c := startNode(t, cCfg)

	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	approve(t, a, b, id, "B")
	approve(t, a, c, id, "C")
	waitWriters(t, id, a, b, c)
	done := make(chan error, 3)
	for i, n := range []*Node{a, b, c} {
		go func() {
			for j := range 50 {
				if err := n.Put(ctx, id, fmt.Sprintf("k%d", j%10), []byte(fmt.Sprintf("%d-%d", i, j))); err != nil {
					done <- err
					return
				}
			}
			done <- n.Put(ctx, id, fmt.Sprintf("own/%d", i), []byte("x"))
		}()
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	same := func() error {
		ia, _ := a.Space(id)
		for _, n := range []*Node{b, c} {
			in, _ := n.Space(id)
			if in.Digest != ia.Digest || in.Entries != ia.Entries {
				return fmt.Errorf("A %d entries %s…, other %d entries %s…\nA: %s\nB: %s\nC: %s", ia.Entries, ia.Digest[:8], in.Entries, in.Digest[:8], feedLengths(a, id), feedLengths(b, id), feedLengths(c, id))
			}
		}
		if ia.Entries != 3*51+1+2*signInEntries { // puts, A's create, two sign-ins
			return fmt.Errorf("A holds %d entries", ia.Entries)
		}
		if ia.Keys != 13 { // k0…k9, own/0…own/2
			return fmt.Errorf("A counts %d live keys", ia.Keys)
		}
		return nil
	}
	eventually(t, 60*time.Second, same)
	page, err := c.List(id, "own/", "", 2)
	if err != nil || len(page.Entries) != 2 || page.Next != "own/1" {
		t.Fatalf("list: %+v %v", page, err)
	}
	members, err := b.Members(id)
	if err != nil || len(members) != 3 {
		t.Fatalf("members: %+v %v", members, err)
	}

	// C restarts from its data directory: same view, still replicating.
	want, _ := c.Space(id)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = startNode(t, cCfg)
	if got, err := c.Space(id); err != nil || got.Digest != want.Digest {
		t.Fatalf("after restart: %+v %v (want %s)", got, err, want.Digest)
	}
	if err := a.Put(ctx, id, "after", []byte("restart")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		e, _ := c.Get(id, "after")
		if len(e.Versions) == 0 || string(e.Versions[0].Value) != "restart" {
			return fmt.Errorf("C: %+v", e)
		}
		return nil
	})
}
