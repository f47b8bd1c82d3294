package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// onlyConnectedTo fails unless n's only connections are to want.
func onlyConnectedTo(t *testing.T, n *node.Node, want peer.ID) {
	t.Helper()
	for _, p := range n.Host().Network().Peers() {
		if p != want {
			t.Errorf("%s is connected to %s, not only to its relay %s", n.Host().ID(), p, want)
		}
	}
}

// TestRelayMeshAcrossRelays: two relays of one space, R1 and R2, peered
// (R2 lists R1 as --peer). Member A reaches R1 only, member B R2 only, a
// joining device C R2 only; no device reaches another. The relays'
// gossipsub routers mesh on the space's topic: A and B see each other
// online and exchange app messages both ways, C's password sign-in
// request made at R2 reaches A at R1, and A's approval reaches C, which
// becomes a writer.
func TestRelayMeshAcrossRelays(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	r1 := startPeerRelay(t)
	r2 := startPeerRelay(t, r1)

	// Members first, connected directly; then each restarted with one
	// relay as its only peer.
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startDaemon(t, daemonConfig(dirA, "a"))
	b := startDaemon(t, daemonConfig(dirB, "b", a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	const password = "correct horse battery staple"
	if err := a.SetPassword(ctx, info.ID, password); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = startDaemon(t, daemonConfig(dirA, "a", r1.Addrs()[0].String()))
	b = startDaemon(t, daemonConfig(dirB, "b", r2.Addrs()[0].String()))

	tok, err := a.MirrorToken(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	id := tok.Space
	eventually(t, 30*time.Second, func() error {
		return relay.HandMirrorToken(ctx, a.Host(), r1.Host().ID(), tok)
	})
	eventually(t, 30*time.Second, func() error {
		return relay.HandMirrorToken(ctx, b.Host(), r2.Host().ID(), tok)
	})
	for _, r := range []*relay.Relay{r1, r2} {
		eventually(t, 60*time.Second, func() error {
			if !slices.Contains(r.Router().Routed(), id) {
				return fmt.Errorf("relay %s does not route the space yet", r.Host().ID())
			}
			return nil
		})
	}

	// Each relay has the other in its mesh of the topic.
	topic := p2p.TopicName(ephemeral.Topic(auth.DiscoveryKey(id)))
	for _, rr := range [][2]*relay.Relay{{r1, r2}, {r2, r1}} {
		eventually(t, 60*time.Second, func() error {
			if !slices.Contains(rr[0].Router().PubSub().ListPeers(topic), rr[1].Host().ID()) {
				return fmt.Errorf("relay %s has not relay %s on the topic", rr[0].Host().ID(), rr[1].Host().ID())
			}
			return nil
		})
	}
	t.Logf("%v: the relays route the topic to each other", time.Since(start))

	online(t, a, info.ID, 2)
	online(t, b, info.ID, 2)
	sendUntil(t, a, b, info.ID, "chat", []byte("hello B, from R1's side"))
	sendUntil(t, b, a, info.ID, "chat", []byte("hello A, from R2's side"))

	t.Logf("%v: A and B see each other online and exchanged messages", time.Since(start))
	for _, r := range []*relay.Relay{r1, r2} {
		if c := r.Router().RouterCounts(); c[relay.RouteForwarded] < 4 {
			t.Errorf("relay %s forwarded %d envelopes: %v", r.Host().ID(), c[relay.RouteForwarded], c)
		}
	}

	// C signs in with the password at R2; A, at R1, gets the request.
	c := startDaemon(t, daemonConfig(t.TempDir(), "c", r2.Addrs()[0].String()))
	var st api.JoinState
	eventually(t, 30*time.Second, func() error {
		st, err = c.Join(ctx, api.JoinWith{Space: info.ID, Password: password, Name: "notes"})
		return err
	})
	var req api.Request
	eventually(t, 60*time.Second, func() error {
		for _, r := range a.Requests() {
			if r.Code == st.Code {
				req = r
				return nil
			}
		}
		return errors.New("A at R1 has not got C's request made at R2")
	})
	t.Logf("%v: A got C's request", time.Since(start))
	if err := a.Approve(ctx, req.ID, st.Code); err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r1, a, id)
	t.Logf("%v: R1 holds A's feed", time.Since(start))
	relayHolds(t, r2, a, id)
	t.Logf("%v: R2 holds A's feed", time.Since(start))
	eventually(t, 60*time.Second, func() error {
		if i, _ := c.Space(info.ID); !i.Writer {
			return errors.New("C is not a writer yet")
		}
		return nil
	})

	t.Logf("%v: C is a writer", time.Since(start))
	onlyConnectedTo(t, a, r1.Host().ID())
	onlyConnectedTo(t, b, r2.Host().ID())
	onlyConnectedTo(t, c, r2.Host().ID())
}
