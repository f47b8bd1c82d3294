package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/api"
)

// TestInviteHints: a node's invite hints name it and give the addresses a
// daemon dials (TCP, QUIC; not WebSocket), loopback ones only when it has
// no other, and circuit addresses through its relays; another node
// connects with them alone.
func TestInviteHints(t *testing.T) {
	cfg := loopbackConfig(t)
	cfg.Listen = append(cfg.Listen, "/ip4/127.0.0.1/tcp/0/ws")
	relay := "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	cfg.Relays = []string{relay}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h := a.InviteHints()
	if id, err := peer.IDFromBytes(h.Peer); err != nil || id != a.Host().ID() {
		t.Fatalf("hints name peer %v (%v), want %s", id, err, a.Host().ID())
	}
	var tcp, quic, circuit int
	for _, b := range h.Addrs {
		m, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case hasProto(m, ma.P_CIRCUIT):
			circuit++
			if m.String() != relay+"/p2p-circuit" {
				t.Errorf("circuit hint %s, want through %s", m, relay)
			}
		case hasProto(m, ma.P_WS):
			t.Errorf("a WebSocket address in the hints: %s", m)
		case hasProto(m, ma.P_QUIC_V1):
			quic++
		case hasProto(m, ma.P_TCP):
			tcp++
		}
		if _, err := m.ValueForProtocol(ma.P_P2P); err == nil && !hasProto(m, ma.P_CIRCUIT) {
			t.Errorf("hint %s carries a /p2p/ part", m)
		}
	}
	if tcp != 1 || quic != 1 || circuit != 1 {
		t.Errorf("hints: %d TCP, %d QUIC, %d circuit addresses; want 1 each", tcp, quic, circuit)
	}
	inv := &auth.Invite{Space: auth.SpaceID{1}, Expires: time.Now().Add(time.Hour), Hints: h}
	if _, err := inv.Link(); err != nil {
		t.Fatalf("the hints do not fit a link: %v", err)
	}

	b, err := New(loopbackConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.DialHints(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	if b.Host().Network().Connectedness(a.Host().ID()) != network.Connected {
		t.Fatal("not connected after dialling the hints")
	}
	if err := a.DialHints(t.Context(), h); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("dialling its own hints: %v", err)
	}
	if err := b.DialHints(t.Context(), auth.InviteHints{Peer: []byte{1, 2}, Addrs: h.Addrs}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("hints with a bad peer ID: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := b.DialHints(ctx, auth.InviteHints{Peer: h.Peer, Addrs: [][]byte{{0xff, 0xff}}}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("hints whose addresses do not parse: %v", err)
	}
}

// TestInviteHintsPreferReachable: listening on every interface, a node
// gives its non-loopback addresses, not 127.0.0.1, when it has any.
func TestInviteHintsPreferReachable(t *testing.T) {
	cfg := loopbackConfig(t)
	cfg.Listen = []string{"/ip4/0.0.0.0/tcp/0"}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	other := false
	for _, m := range a.Host().Addrs() {
		other = other || !manet.IsIPLoopback(m)
	}
	h := a.InviteHints()
	if len(h.Addrs) == 0 || len(h.Addrs) > maxHintDirect {
		t.Fatalf("%d hints, want 1 to %d", len(h.Addrs), maxHintDirect)
	}
	for _, b := range h.Addrs {
		m, _ := ma.NewMultiaddrBytes(b)
		if manet.IsIPLoopback(m) == other {
			t.Errorf("hint %s: loopback %t, while the node has non-loopback addresses: %t", m, manet.IsIPLoopback(m), other)
		}
	}
}
