package relay_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// startPeerRelay starts a relay on loopback that joins the relays' DHT
// through peers, with rounds every 200 ms.
func startPeerRelay(t *testing.T, peers ...*relay.Relay) *relay.Relay {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &relay.Config{DataDir: t.TempDir(), LogLevel: "debug", Limits: relay.DefaultLimits(),
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, PeerInterval: 200 * time.Millisecond}
	for _, p := range peers {
		cfg.Peers = append(cfg.Peers, p.Addrs()[0].String())
	}
	r, err := relay.New(cfg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// hand connects n to r and hands r the mirror token of space id.
func hand(t *testing.T, n *node.Node, r *relay.Relay, id string) auth.MirrorToken {
	t.Helper()
	ctx := context.Background()
	tok, err := n.MirrorToken(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Host().Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := relay.HandMirrorToken(ctx, n.Host(), r.Host().ID(), tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRelayPeersDiscoverAndConverge: relays R1 and R2 know only a third
// relay R0 (--peer), which mirrors nothing. A hands R1 the token and
// writes to it alone; B, offline meanwhile, hands R2 the token and writes
// to it alone. R2 finds R1 providing the space in the relays' DHT, the two
// sync, and their mirrors converge: both hold every entry of both
// writers, and B, which reaches R2 only, gets what A wrote after B left.
func TestRelayPeersDiscoverAndConverge(t *testing.T) {
	ctx := context.Background()
	r0 := startPeerRelay(t)
	r1 := startPeerRelay(t, r0)
	r2 := startPeerRelay(t, r0)

	dirB := t.TempDir()
	a := startDaemon(t, daemonConfig(t.TempDir(), "A"))
	b := startDaemon(t, daemonConfig(dirB, "B", a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tok := hand(t, a, r1, info.ID)
	for i := range 20 {
		if err := a.Put(ctx, info.ID, fmt.Sprint("a", i), []byte("from A")); err != nil {
			t.Fatal(err)
		}
	}
	relayHolds(t, r1, a, tok.Space)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b = startDaemon(t, daemonConfig(dirB, "B"))
	hand(t, b, r2, info.ID)
	for i := range 20 {
		if err := b.Put(ctx, info.ID, fmt.Sprint("b", i), []byte("from B")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() error {
		if c := r2.Mirror().Counts(); c.Confirmed != 1 {
			return fmt.Errorf("R2's counts %+v: B's token not confirmed", c)
		}
		return nil
	})

	eventually(t, 30*time.Second, func() error {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if got := r2.FindRelays(fctx, tok.Space); !slices.Contains(got, r1.Host().ID()) {
			return fmt.Errorf("R2 finds %v, not R1 %s", got, r1.Host().ID())
		}
		return nil
	})
	eventually(t, 60*time.Second, func() error {
		s1, s2 := r1.Mirror().Stored(tok.Space), r2.Mirror().Stored(tok.Space)
		if len(s1) < 2 || !maps.Equal(s1, s2) {
			return fmt.Errorf("mirrors differ: R1 %v, R2 %v", s1, s2)
		}
		return nil
	})
	// B reaches R2 only, and gets A's writes from it.
	eventually(t, 60*time.Second, func() error {
		e, err := b.Get(info.ID, "a19")
		if err != nil || len(e.Versions) == 0 || string(e.Versions[0].Value) != "from A" {
			return fmt.Errorf("B's a19: %+v %v", e, err)
		}
		return nil
	})
	relayHolds(t, r1, b, tok.Space)
	relayHolds(t, r2, b, tok.Space)
}

// TestRelayPeerConfig: a peer relay's address must name its peer ID.
func TestRelayPeerConfig(t *testing.T) {
	cfg := &relay.Config{LogLevel: "info", Limits: relay.DefaultLimits(), Peers: []string{"/ip4/127.0.0.1/tcp/4111"}}
	if err := cfg.Validate(); err == nil {
		t.Fatal("a peer without /p2p/ID was accepted")
	}
}

// TestHandToRelay: the daemon's HandToRelay (POST
// /v1/spaces/{space}/relays, `mycel relay add`) hands a relay that is not
// in its config the token: the relay mirrors the space. An address
// without a peer ID is a bad request.
func TestHandToRelay(t *testing.T) {
	ctx := context.Background()
	r := startPeerRelay(t)
	a := startDaemon(t, daemonConfig(t.TempDir(), "A"))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, info.ID, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := a.HandToRelay(ctx, info.ID, r.Host().Addrs()[0].String()); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("an address without a peer ID: %v", err)
	}
	if err := a.HandToRelay(ctx, info.ID, r.Addrs()[0].String()); err != nil {
		t.Fatal(err)
	}
	tok, err := a.MirrorToken(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, a, tok.Space)
}
