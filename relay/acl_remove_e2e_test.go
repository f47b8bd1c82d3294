package relay_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// TestRemovedMemberLeavesACL: two daemons that name the relay are members
// on its ACL (their replication openings proved the space); once A removes
// B, the relay's mirror sees the removal and B is a member no more within
// seconds — while B stays connected and its proof is far from the
// allow-list's 24 h expiry — so a circuit of B's gets the default limits;
// A stays a member.
func TestRemovedMemberLeavesACL(t *testing.T) {
	ctx := context.Background()
	rkey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r := startRelay(t, t.TempDir(), rkey)
	relayAddr := r.Addrs()[0].String() + "/p2p/" + r.Host().ID().String()
	cfgA := daemonConfig(t.TempDir(), "A")
	cfgA.Relays = []string{relayAddr}
	a := startDaemon(t, cfgA)
	cfgB := daemonConfig(t.TempDir(), "B", a.Addrs()[0].String())
	cfgB.Relays = []string{relayAddr}
	b := startDaemon(t, cfgB)
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	if err := a.Put(ctx, info.ID, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	acl := r.ACL()
	eventually(t, 60*time.Second, func() error {
		if !acl.Member(a.Host().ID()) || !acl.Member(b.Host().ID()) {
			return fmt.Errorf("members: A %v, B %v", acl.Member(a.Host().ID()), acl.Member(b.Host().ID()))
		}
		return nil
	})
	bi, err := b.Space(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	if err := a.RemoveMember(ctx, info.ID, bi.Feed); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if acl.Member(b.Host().ID()) {
			return errors.New("B, removed, is still a member at the relay")
		}
		return nil
	})
	t.Logf("B left the ACL %v after its removal", time.Since(removed).Round(time.Millisecond))
	if len(r.Host().Network().ConnsToPeer(b.Host().ID())) == 0 {
		t.Fatal("B is not connected to the relay: its entry would have expired anyway")
	}
	if acl.Lifted(b.Host().ID(), a.Host().ID()) || acl.Lifted(a.Host().ID(), b.Host().ID()) {
		t.Fatal("a circuit between A and B would get the members' limits")
	}
	// A goes on writing and proving: still a member, through the new epoch.
	if err := a.Put(ctx, info.ID, "after", []byte("w")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if c := r.Mirror().Counts(); c.Confirmed != 2 {
			return fmt.Errorf("counts %+v: the new epoch's token is not confirmed", c)
		}
		return nil
	})
	if !acl.Member(a.Host().ID()) {
		t.Fatal("A is no member after the rotation")
	}
	// B, still connected and syncing as it can, is not admitted again.
	if acl.Member(b.Host().ID()) {
		t.Fatal("B was admitted again after the rotation")
	}
}
