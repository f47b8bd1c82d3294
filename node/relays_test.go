package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// relayHost is a circuit relay v2 on loopback TCP whose reservations last
// ttl.
func relayHost(t *testing.T, listen string, ttl time.Duration) (host.Host, *relayv2.Relay) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings(listen), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	rc := relayv2.DefaultResources()
	rc.ReservationTTL = ttl
	r, err := relayv2.New(h, relayv2.WithResources(rc))
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	return h, r
}

func waitRelay(t *testing.T, n *Node, what string, ok func(api.Relay) bool) api.Relay {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs := n.Status().Relays
		if len(rs) == 1 && ok(rs[0]) {
			return rs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay not %s: %+v", what, rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasAddr(n *Node, s string) bool {
	return slices.ContainsFunc(n.Addrs(), func(a ma.Multiaddr) bool { return a.String() == s })
}

// TestRelayReservation: a node reserves a slot on its relay, advertises
// the circuit address (Addrs, Status, invite hints), renews the
// reservation before it expires, drops the address when the relay goes
// away and reserves again when it comes back at the same address.
func TestRelayReservation(t *testing.T) {
	rh, rs := relayHost(t, "/ip4/127.0.0.1/tcp/0", 5*time.Second)
	raddr := rh.Addrs()[0]
	rinfo := fmt.Sprintf("%s/p2p/%s", raddr, rh.ID())
	cfg := loopbackConfig(t)
	cfg.Relays = []string{rinfo}
	cfg.Limits.Net.MinBackoff, cfg.Limits.Net.MaxBackoff = 100*time.Millisecond, 200*time.Millisecond
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	r := waitRelay(t, n, "reserved", func(r api.Relay) bool { return r.ReservedUntil != nil })
	circuit := rinfo + "/p2p-circuit/p2p/" + n.Host().ID().String()
	if !r.Connected || len(r.Circuit) != 1 || r.Circuit[0] != circuit || r.ID != rh.ID().String() {
		t.Fatalf("relay state %+v, want circuit %s", r, circuit)
	}
	if !hasAddr(n, circuit) || !slices.Contains(n.Status().Addrs, circuit) {
		t.Errorf("addresses lack %s: %v", circuit, n.Addrs())
	}
	hints := n.InviteHints()
	if !slices.ContainsFunc(hints.Addrs, func(b []byte) bool {
		a, err := ma.NewMultiaddrBytes(b)
		return err == nil && a.String() == rinfo+"/p2p-circuit"
	}) {
		t.Errorf("invite hints lack the circuit address")
	}
	if peers := n.Peers(); len(peers) != 1 || !peers[0].Relay {
		t.Errorf("peers: %+v, want the relay marked", peers)
	}

	// Renewed before it expires: the expiry moves on.
	first := *r.ReservedUntil
	waitRelay(t, n, "renewed", func(r api.Relay) bool { return r.ReservedUntil != nil && r.ReservedUntil.After(first) })

	// The relay goes away: no reservation, no circuit address, an error.
	rs.Close()
	rh.Close()
	waitRelay(t, n, "lost", func(r api.Relay) bool { return !r.Connected && r.ReservedUntil == nil && r.Error != "" })
	if hasAddr(n, circuit) {
		t.Errorf("circuit address still advertised with the relay down: %v", n.Addrs())
	}

	// Back at the same address, with the same identity: reserved again.
	key := rh.Peerstore().PrivKey(rh.ID())
	rh2, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrs(raddr), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer rh2.Close()
	rs2, err := relayv2.New(rh2)
	if err != nil {
		t.Fatal(err)
	}
	defer rs2.Close()
	waitRelay(t, n, "reserved again", func(r api.Relay) bool { return r.ReservedUntil != nil && r.Error == "" })
	if !hasAddr(n, circuit) {
		t.Errorf("circuit address not advertised again: %v", n.Addrs())
	}
}

// TestCircuitAddrs: circuit addresses are built from the configured
// addresses and the vouched ones, each once, without another relay's or
// a circuit address, at most relayCircuitAddrs.
func TestCircuitAddrs(t *testing.T) {
	id, err := peer.Decode("12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	if err != nil {
		t.Fatal(err)
	}
	other := "12D3KooWEVic3tvwqavEKSHNe4yq2wiRsCMduFTDft47NMU7NU4r"
	m := func(s string) ma.Multiaddr { return ma.StringCast(s) }
	info := peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{m("/ip4/10.0.0.1/tcp/1")}}
	vouched := []ma.Multiaddr{
		m("/ip4/10.0.0.1/tcp/1/p2p/" + id.String()), // the configured one again
		m("/ip4/192.0.2.1/tcp/2/p2p/" + other),      // another peer's
		m("/ip4/192.0.2.1/tcp/3/p2p/" + id.String() + "/p2p-circuit"),
		m("/ip4/192.0.2.1/udp/4/quic-v1"),
		m("/ip4/192.0.2.1/tcp/5"), m("/ip4/192.0.2.1/tcp/6"), m("/ip4/192.0.2.1/tcp/7"),
	}
	var got []string
	for _, a := range circuitAddrs(info, vouched) {
		got = append(got, a.String())
	}
	want := []string{
		"/ip4/10.0.0.1/tcp/1/p2p/" + id.String() + "/p2p-circuit",
		"/ip4/192.0.2.1/udp/4/quic-v1/p2p/" + id.String() + "/p2p-circuit",
		"/ip4/192.0.2.1/tcp/5/p2p/" + id.String() + "/p2p-circuit",
		"/ip4/192.0.2.1/tcp/6/p2p/" + id.String() + "/p2p-circuit",
	}
	if !slices.Equal(got, want) {
		t.Errorf("circuit addresses\n%v\nwant\n%v", got, want)
	}
}

// TestRelaySetMerges: several addresses of one relay make one relay (one
// reservation), in the order given.
func TestRelaySetMerges(t *testing.T) {
	infos, err := addrInfos([]string{
		"/ip4/10.0.0.1/tcp/1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
		"/ip4/10.0.0.2/tcp/1/p2p/12D3KooWEVic3tvwqavEKSHNe4yq2wiRsCMduFTDft47NMU7NU4r",
		"/ip4/10.0.0.3/tcp/1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
		"/ip4/10.0.0.1/tcp/1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newRelaySet(infos)
	if len(s.relays) != 2 || len(s.relays[0].info.Addrs) != 2 || len(s.relays[1].info.Addrs) != 1 ||
		s.relays[0].info.Addrs[1].String() != "/ip4/10.0.0.3/tcp/1" {
		for _, r := range s.relays {
			t.Logf("%s %v", r.info.ID, r.info.Addrs)
		}
		t.Fatal("relays not merged by peer ID")
	}
}

// TestDialThroughRelay: a node given another's circuit address only, as
// invite hints or as a static peer, reaches it through the relay (a
// limited connection), and Peers names that connection's transport
// "relayed".
func TestDialThroughRelay(t *testing.T) {
	rh, rs := relayHost(t, "/ip4/127.0.0.1/tcp/0", time.Hour)
	defer rh.Close()
	defer rs.Close()
	rinfo := fmt.Sprintf("%s/p2p/%s", rh.Addrs()[0], rh.ID())
	cfg := loopbackConfig(t)
	cfg.Relays = []string{rinfo}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := waitRelay(t, a, "reserved", func(r api.Relay) bool { return r.ReservedUntil != nil })

	hints := a.InviteHints()
	var circuit [][]byte
	for _, b := range hints.Addrs {
		if m, err := ma.NewMultiaddrBytes(b); err == nil && hasProto(m, ma.P_CIRCUIT) {
			circuit = append(circuit, b)
		}
	}
	hints.Addrs = circuit
	if len(circuit) != 1 {
		t.Fatalf("hints: %d circuit addresses", len(circuit))
	}
	relayedTo := func(n *Node) bool {
		for _, p := range n.Peers() {
			if p.ID == a.Host().ID().String() {
				for _, c := range p.Conns {
					if c.Transport == "relayed" && c.Limited {
						return true
					}
				}
			}
		}
		return false
	}
	b, err := New(loopbackConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.DialHints(context.Background(), hints); err != nil {
		t.Fatal(err)
	}
	if !relayedTo(b) {
		t.Errorf("B's peers after the hints: %+v", b.Peers())
	}

	c, err := New(loopbackConfig(t, r.Circuit[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !relayedTo(c) {
		if time.Now().After(deadline) {
			t.Fatalf("C's peers: %+v", c.Peers())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRelayRestartedGetsTokensAgain: the relay comes back at the same
// address with the same identity but without its store (a new machine, a
// lost disk): the node's new reservation on it hands it the space's
// mirror token again, and the relay mirrors the space anew.
func TestRelayRestartedGetsTokensAgain(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	l.Close()
	start := func() *relay.Relay {
		t.Helper()
		cfg := &relay.Config{DataDir: t.TempDir(), LogLevel: "info", Limits: relay.DefaultLimits(), Listen: []string{listen}}
		r, err := relay.New(cfg, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	r := start()
	cfg := loopbackConfig(t)
	cfg.Relays = []string{listen + "/p2p/" + r.Host().ID().String()}
	cfg.Limits.Net.MinBackoff, cfg.Limits.Net.MaxBackoff = 100*time.Millisecond, 200*time.Millisecond
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	info, err := n.CreateSpace(context.Background(), "notes")
	if err != nil {
		t.Fatal(err)
	}
	mirrors := func(r *relay.Relay) func() error {
		return func() error {
			for _, id := range r.Mirror().Spaces() {
				if id.String() == info.ID && len(r.Mirror().Stored(id)) > 0 {
					return nil
				}
			}
			return fmt.Errorf("the relay does not mirror %s: %v", info.ID, r.Mirror().Spaces())
		}
	}
	eventually(t, 20*time.Second, mirrors(r))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	waitRelay(t, n, "lost", func(r api.Relay) bool { return r.ReservedUntil == nil })
	r = start()
	waitRelay(t, n, "reserved again", func(r api.Relay) bool { return r.ReservedUntil != nil })
	eventually(t, 20*time.Second, mirrors(r))
}

// TestRelayNotARelay: --relay given a peer that runs no circuit relay (a
// daemon's address, say): the relay's status error says so, where it
// only carried libp2p's "protocols not supported".
func TestRelayNotARelay(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	cfg := loopbackConfig(t)
	cfg.Relays = []string{fmt.Sprintf("%s/p2p/%s", h.Addrs()[0], h.ID())}
	cfg.Limits.Net.MinBackoff, cfg.Limits.Net.MaxBackoff = 100*time.Millisecond, 200*time.Millisecond
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	r := waitRelay(t, n, "refused as no relay", func(r api.Relay) bool { return strings.Contains(r.Error, "runs no circuit relay") })
	if r.ReservedUntil != nil || !strings.Contains(r.Error, "--relay takes a mycel relay's") {
		t.Fatalf("relay state %+v", r)
	}
}
