package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"

	"github.com/mycelsync/mycel/node/api"
)

// TestStaticPeerRelayedOnly: a static peer reachable only through a relay
// (it listens nowhere, two NATs in the field) counts as connected: the
// node logs one "peer: connected (relayed)" line, not one per round, and
// tries a direct connection with a backoff, not every round. Before, the
// limited connection read as not connected: "peer: connected" and a dial
// every MinBackoff, for ever.
func TestStaticPeerRelayedOnly(t *testing.T) {
	rh, rs := relayHost(t, "/ip4/127.0.0.1/tcp/0", time.Hour)
	defer rh.Close()
	defer rs.Close()
	relayInfo := peer.AddrInfo{ID: rh.ID(), Addrs: rh.Addrs()}

	// A listens on circuits only: only the relay reaches it.
	a, err := libp2p.New(libp2p.ListenAddrStrings("/p2p-circuit"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, relayInfo); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, a, relayInfo); err != nil {
		t.Fatal(err)
	}
	circuit := rh.Addrs()[0].String() + "/p2p/" + rh.ID().String() + "/p2p-circuit/p2p/" + a.ID().String()

	var mu sync.Mutex
	dials, direct := 0, 0
	hook := withDialHook(func(p peer.ID, d bool) {
		mu.Lock()
		defer mu.Unlock()
		if p == a.ID() {
			dials++
			if d {
				direct++
			}
		}
	})
	logs := new(lockedBuffer)
	cfg := loopbackConfig(t, circuit)
	const minB, maxB = 50 * time.Millisecond, 800 * time.Millisecond
	cfg.Limits.Net.MinBackoff, cfg.Limits.Net.MaxBackoff = minB, maxB
	n, err := New(cfg, captureLog(logs), hook)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	eventually(t, 10*time.Second, func() error {
		if c := n.Host().Network().Connectedness(a.ID()); c != network.Limited {
			return errors.New(c.String() + "\n" + logs.String())
		}
		return nil
	})
	// 3 s are 60 rounds of MinBackoff; the direct dials back off to
	// MaxBackoff: after 0.05, 0.1, 0.2, 0.4 s, every 0.8 s: about 8 in 3 s.
	time.Sleep(3 * time.Second)
	mu.Lock()
	gotDials, gotDirect := dials, direct
	mu.Unlock()
	out := logs.String()
	relayed := strings.Count(out, `msg="peer: connected (relayed)"`)
	connected := strings.Count(out, `msg="peer: connected"`)
	if relayed != 1 || connected != 0 {
		t.Errorf("%d \"connected (relayed)\" and %d \"connected\" lines, want 1 and 0:\n%s", relayed, connected, out)
	}
	if gotDials > 12 {
		t.Errorf("%d dials of the relayed peer in 3 s, want them backed off (MinBackoff %v, MaxBackoff %v)", gotDials, minB, maxB)
	}
	if gotDirect < 2 {
		t.Errorf("%d direct dials of the relayed peer in 3 s, want it still tried", gotDirect)
	}
	if c := n.Host().Network().Connectedness(a.ID()); c != network.Limited {
		t.Errorf("connectedness %v, want limited", c)
	}
	t.Logf("%d dials, %d of them direct, in 3 s", gotDials, gotDirect)
}

// TestStaticDialer plays keepConnected's states: dials backed off while
// disconnected, none while connected directly, direct-only dials backed
// off while relayed, the backoff starting over on every change.
func TestStaticDialer(t *testing.T) {
	const minB, maxB = time.Second, 4 * time.Second
	d := newStaticDialer(minB, maxB)
	t0 := time.Unix(0, 0)
	fail := errors.New("no")
	if d.observe(t0, linkNone) {
		t.Error("the initial disconnected state logged as a change")
	}
	if dial, direct := d.due(t0); !dial || direct {
		t.Fatalf("disconnected: due %v %v, want a dial at once, any address", dial, direct)
	}
	if w := d.dialed(t0, fail); w != minB {
		t.Errorf("first failure waits %v", w)
	}
	if dial, _ := d.due(t0.Add(minB / 2)); dial {
		t.Error("dialled again before the backoff")
	}
	if w := d.dialed(t0.Add(minB), fail); w != 2*minB {
		t.Errorf("second failure waits %v", w)
	}
	if !d.observe(t0.Add(2*minB), linkRelayed) {
		t.Fatal("relayed not a change")
	}
	if dial, _ := d.due(t0.Add(2 * minB)); dial {
		t.Error("relayed: a direct dial before the hole punch had its chance")
	}
	now := t0.Add(3 * minB)
	waits := []time.Duration{}
	for range 5 {
		dial, direct := d.due(now)
		if !dial || !direct {
			t.Fatalf("relayed at %v: due %v %v, want a direct dial", now, dial, direct)
		}
		w := d.dialed(now, fail)
		waits = append(waits, w)
		if dial, _ := d.due(now.Add(w - time.Millisecond)); dial {
			t.Errorf("relayed: dial due before its backoff %v", w)
		}
		now = now.Add(w)
	}
	want := []time.Duration{minB, 2 * minB, maxB, maxB, maxB}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("relayed backoffs %v, want %v", waits, want)
			break
		}
	}
	if d.observe(now, linkRelayed) {
		t.Error("relayed again logged as a change")
	}
	if !d.observe(now, linkDirect) {
		t.Fatal("direct not a change")
	}
	if dial, _ := d.due(now.Add(time.Hour)); dial {
		t.Error("a directly connected peer dialled")
	}
	if !d.observe(now, linkNone) {
		t.Fatal("disconnected not a change")
	}
	if dial, direct := d.due(now); !dial || direct {
		t.Errorf("disconnected again: due %v %v, want a dial at once", dial, direct)
	}
	for l, s := range map[peerLink]string{linkNone: "disconnected", linkRelayed: "connected (relayed)", linkDirect: "connected"} {
		if l.String() != s {
			t.Errorf("%d reads %q", l, l.String())
		}
	}
}

// TestStaticPeerRelayedGetsDirect: a static peer given by its circuit
// address, whose identify (over the circuit) gave direct addresses that
// work, gets a direct connection too; when that one drops and the relayed
// one is left, the direct one comes back. Before, a limited connection
// made Connect return at once, so the peer stayed relayed only: gossipsub
// (sign-in requests, ephemeral messages) does not use limited
// connections (the TestE2ERelayDaemons flake: "no request with code").
func TestStaticPeerRelayedGetsDirect(t *testing.T) {
	rh, rs := relayHost(t, "/ip4/127.0.0.1/tcp/0", time.Hour)
	defer rh.Close()
	defer rs.Close()
	cfg := loopbackConfig(t)
	cfg.Relays = []string{rh.Addrs()[0].String() + "/p2p/" + rh.ID().String()}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := waitRelay(t, a, "reserved", func(r api.Relay) bool { return r.ReservedUntil != nil })

	cfg = loopbackConfig(t, r.Circuit[0])
	cfg.Limits.Net.MinBackoff, cfg.Limits.Net.MaxBackoff = 200*time.Millisecond, 400*time.Millisecond
	b, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	direct := func() error {
		if c := b.Host().Network().Connectedness(a.Host().ID()); c != network.Connected {
			return fmt.Errorf("B to A: %v", c)
		}
		return nil
	}
	eventually(t, 10*time.Second, direct)
	for _, c := range b.Host().Network().ConnsToPeer(a.Host().ID()) {
		if !c.Stat().Limited {
			c.Close()
		}
	}
	// B dials again MinBackoff after it sees the circuit alone: long
	// enough to see it.
	if c := b.Host().Network().Connectedness(a.Host().ID()); c != network.Limited {
		t.Fatalf("B to A after closing the direct connections: %v, want the circuit left", c)
	}
	eventually(t, 10*time.Second, direct)
}
