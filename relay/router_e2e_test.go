package relay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/relay"
)

// online waits until n sees every device of space id online.
func online(t *testing.T, n *node.Node, id string, want int) {
	t.Helper()
	eventually(t, 60*time.Second, func() error {
		devs, err := n.Devices(id)
		if err != nil {
			return err
		}
		on := 0
		for _, d := range devs {
			if d.Online {
				on++
			}
		}
		if on != want {
			return fmt.Errorf("%d of %d devices online: %+v", on, want, devs)
		}
		return nil
	})
}

// sendUntil sends data on topic from `from` until `to`'s listener gets
// it: the first ones may go out before the mesh through the relay is
// made (gossipsub delivers only to peers already in it).
func sendUntil(t *testing.T, from, to *node.Node, id, topic string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch, _, err := to.Listen(ctx, id, topic)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := from.Send(ctx, id, topic, data); err != nil {
			t.Fatal(err)
		}
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatal("listener ended")
			}
			if string(m.Data) != string(data) {
				t.Fatalf("got %q, want %q", m.Data, data)
			}
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s never got %q", topic, data)
		}
	}
}

// TestRouterDaemonsThroughRelay: two members whose only peer is the relay
// (neither listens where the other dials; they never connect to each
// other) see each other online and exchange app messages both ways
// through the relay's gossipsub; the relay counts them forwarded.
func TestRouterDaemonsThroughRelay(t *testing.T) {
	ctx := context.Background()
	dirA, dirB, dirR := t.TempDir(), t.TempDir(), t.TempDir()
	rkey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, dirR, rkey)
	raddr := r.Addrs()[0].String()

	// Members first, connected directly; then each restarted with the
	// relay as its only peer.
	a := startDaemon(t, daemonConfig(dirA, "a"))
	b := startDaemon(t, daemonConfig(dirB, "b", a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = startDaemon(t, daemonConfig(dirA, "a", raddr))
	b = startDaemon(t, daemonConfig(dirB, "b", raddr))
	tok, err := a.MirrorToken(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		return relay.HandMirrorToken(ctx, a.Host(), r.Host().ID(), tok)
	})
	id := tok.Space
	eventually(t, 60*time.Second, func() error {
		if !slices.Contains(r.Router().Routed(), id) {
			return errors.New("the relay does not route the space yet")
		}
		return nil
	})

	online(t, a, info.ID, 2)
	online(t, b, info.ID, 2)
	sendUntil(t, a, b, info.ID, "chat", []byte("hello B"))
	sendUntil(t, b, a, info.ID, "chat", []byte("hello A"))
	if c := r.Router().RouterCounts(); c[relay.RouteForwarded] < 4 {
		t.Errorf("the relay forwarded %d envelopes: %v", c[relay.RouteForwarded], c)
	}
	// A stranger on the topic: its members' envelope (signed by a key no
	// writer added) is not forwarded, and counted.
	stranger, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	ps, err := pubsub.NewGossipSub(sctx, stranger, p2p.PubSubOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	dk := ephemeral.Topic(auth.DiscoveryKey(id))
	pt, err := ps.Join(p2p.TopicName(dk), pubsub.WithTopicMessageIdFn(p2p.MessageID))
	if err != nil {
		t.Fatal(err)
	}
	if err := stranger.Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	_, skey, _ := ed25519.GenerateKey(rand.Reader)
	before := r.Router().RouterCounts()[relay.RouteNotWriter]
	eventually(t, 30*time.Second, func() error {
		env, err := ephemeral.Seal([ephemeral.KeySize]byte{}, skey, ephemeral.Header{Topic: dk, KeyKind: 1, KeyID: make([]byte, auth.KeyIDSize)}, []byte("{}"), time.Now(), nil)
		if err != nil {
			return err
		}
		data, err := env.Marshal()
		if err != nil {
			return err
		}
		if err := pt.Publish(ctx, data); err != nil {
			return err
		}
		if r.Router().RouterCounts()[relay.RouteNotWriter] == before {
			return errors.New("the stranger's envelope is not counted yet")
		}
		return nil
	})
	stranger.Close()

	for _, n := range []*node.Node{a, b} {
		for _, p := range n.Host().Network().Peers() {
			if p != r.Host().ID() {
				t.Errorf("%s is connected to %s, not only to the relay", n.Host().ID(), p)
			}
		}
	}
}
