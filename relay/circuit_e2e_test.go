package relay_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/syncnet"
	"github.com/mycelsync/mycel/relay"
)

// TestMirrorAdmitsMembers: the ACL's allow-list is fed by what the mirror
// learns. A daemon whose replication opening proves the space's confirmed
// token is a member, and so is a peer proving it; a peer whose bogus token
// opens only a bootstrap session (shown nothing) is not, nor one whose
// proof the relay refused, nor a peer merely connected.
func TestMirrorAdmitsMembers(t *testing.T) {
	ctx := context.Background()
	r, a, tok := mirrored(t)
	eventually(t, 30*time.Second, func() error {
		if !r.ACL().Member(a.Host().ID()) {
			return errors.New("the daemon whose session opened is not a member")
		}
		return nil
	})
	want := memberFeeds(t, a, tok.Space)

	// A bogus token of the confirmed space: the proof is refused.
	refusedPeer := newBare(t, r)
	bogus := auth.MirrorToken{Space: tok.Space, Epoch: tok.Epoch + 1}
	rand.Read(bogus.Token[:])
	if err := relay.HandMirrorToken(ctx, refusedPeer.h, r.Host().ID(), bogus); err != nil {
		t.Fatal(err)
	}
	before := r.Mirror().Counts().ProofsRefused
	rsp := &peerSpace{FeedSpace: syncnet.NewFeedSpace(tok.Space, refusedPeer.db, keys(want), bogus.ReplicationCapability()),
		cap: bogus.ReplicationCapability()}
	if err := refusedPeer.repl.Serve(rsp); err != nil {
		t.Fatal(err)
	}
	refusedPeer.repl.Sync(ctx, r.Host().ID(), rsp)
	eventually(t, 30*time.Second, func() error {
		if r.Mirror().Counts().ProofsRefused == before {
			return errors.New("the relay has not refused the bogus proof yet")
		}
		return nil
	})

	// A bogus token of a space the relay has no confirmed token of: a
	// bootstrap session opens, and proves nothing.
	other, err := a.CreateSpace(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	otok, err := a.MirrorToken(other.ID)
	if err != nil {
		t.Fatal(err)
	}
	otherID := otok.Space
	boot := newBare(t, r)
	btok := auth.MirrorToken{Space: otherID, Epoch: 1}
	rand.Read(btok.Token[:])
	if err := relay.HandMirrorToken(ctx, boot.h, r.Host().ID(), btok); err != nil {
		t.Fatal(err)
	}
	bsp := &peerSpace{FeedSpace: syncnet.NewFeedSpace(otherID, boot.db, nil, btok.ReplicationCapability()),
		cap: btok.ReplicationCapability()}
	if err := boot.repl.Serve(bsp); err != nil {
		t.Fatal(err)
	}
	boot.repl.Sync(ctx, r.Host().ID(), bsp)
	eventually(t, 30*time.Second, func() error {
		for _, p := range r.Mirror().Replicator().Progress() {
			if p.Peer == boot.h.ID() {
				return nil
			}
		}
		return errors.New("no bootstrap session with the outsider")
	})

	// A peer holding the space's capability proves it: a member.
	in := newBare(t, r)
	cap := tok.ReplicationCapability()
	isp := &peerSpace{FeedSpace: syncnet.NewFeedSpace(tok.Space, in.db, keys(want), cap), cap: cap}
	if err := in.repl.Serve(isp); err != nil {
		t.Fatal(err)
	}
	in.repl.Sync(ctx, r.Host().ID(), isp)
	holds(t, in.db, want)
	if !r.ACL().Member(in.h.ID()) {
		t.Fatal("a peer proving the confirmed token is not a member")
	}

	onlyConnected := newBare(t, r)
	for name, b := range map[string]*bare{"refused proof": refusedPeer, "bootstrap session": boot, "connected only": onlyConnected} {
		if r.ACL().Member(b.h.ID()) {
			t.Errorf("a peer with a %s is a member", name)
		}
	}
	if n := r.ACL().Members(); n != 2 {
		t.Errorf("%d members, want 2 (the daemon and the peer with the capability)", n)
	}
}
