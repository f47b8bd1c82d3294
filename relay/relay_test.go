package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"
)

const echoProto = "/mycel-test/echo/1.0.0"

// newTestRelay starts a relay on loopback (TCP and QUIC, metrics on a
// free port) with the default limits changed by tune.
func newTestRelay(t *testing.T, tune func(*Limits)) *Relay {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{DataDir: t.TempDir(), LogLevel: "info", Metrics: "127.0.0.1:0", Limits: DefaultLimits(),
		Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}}
	if tune != nil {
		tune(&cfg.Limits)
	}
	r, err := New(cfg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		// A second Close returns at once (it used to wait for the metrics
		// server a second time, for ever).
		done := make(chan error, 1)
		go func() { done <- r.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("second Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("second Close hangs")
		}
	})
	return r
}

// newPeer starts a libp2p host on loopback, as a daemon behind a NAT would
// use the relay: it accepts relayed connections and echoes on echoProto.
func newPeer(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	return h
}

func relayInfo(r *Relay) peer.AddrInfo {
	return peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}
}

func reserve(ctx context.Context, t *testing.T, h host.Host, r *Relay) (*client.Reservation, error) {
	t.Helper()
	if err := h.Connect(ctx, relayInfo(r)); err != nil {
		t.Fatal(err)
	}
	return client.Reserve(ctx, h, relayInfo(r))
}

// circuitEcho dials dst from src through the relay's /p2p-circuit address,
// sends n bytes on an echo stream and checks that they come back.
func circuitEcho(ctx context.Context, src, dst host.Host, r *Relay, n int) error {
	circuit, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/" + tcpPort(r) + "/p2p/" + r.Host().ID().String() + "/p2p-circuit/p2p/" + dst.ID().String())
	if err != nil {
		return err
	}
	src.Peerstore().ClearAddrs(dst.ID())
	if err := src.Connect(ctx, peer.AddrInfo{ID: dst.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		return err
	}
	s, err := src.NewStream(network.WithAllowLimitedConn(ctx, "test"), dst.ID(), echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	if !s.Conn().Stat().Limited {
		return errors.New("the relayed connection is not limited: the circuit limits were not applied")
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	want := make([]byte, n)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(want)
		if err == nil {
			err = s.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(s)
	if werr := <-errc; err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("echo through the circuit differs")
	}
	return nil
}

func tcpPort(r *Relay) string {
	for _, a := range r.Host().Addrs() {
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			return p
		}
	}
	return ""
}

func TestCircuitThroughRelay(t *testing.T) {
	r := newTestRelay(t, nil)
	a, b := newPeer(t), newPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := reserve(ctx, t, a, r); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	if err := circuitEcho(ctx, b, a, r, 1000); err != nil {
		t.Fatalf("B to A through the relay: %v", err)
	}
	// The ACL was asked about the reservation and the circuit; neither
	// peer is a member of a served space.
	if n := r.ACL().Decisions("reserve", false); n != 1 {
		t.Errorf("ACL reserve decisions: %d, want 1", n)
	}
	if n := r.ACL().Decisions("connect", false); n != 1 {
		t.Errorf("ACL connect decisions: %d, want 1", n)
	}
	if n := r.ACL().Decisions("connect", true); n != 0 {
		t.Errorf("ACL member connect decisions: %d, want 0", n)
	}
}

func TestACLMembers(t *testing.T) {
	r := newTestRelay(t, nil)
	a, b := newPeer(t), newPeer(t)
	r.ACL().SetMembers(a.ID(), b.ID())
	if !r.ACL().Member(a.ID()) || r.ACL().Member(r.Host().ID()) {
		t.Fatal("allow-list")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := reserve(ctx, t, a, r); err != nil {
		t.Fatal(err)
	}
	if err := circuitEcho(ctx, b, a, r, 100); err != nil {
		t.Fatal(err)
	}
	if r.ACL().Decisions("reserve", true) != 1 || r.ACL().Decisions("connect", true) != 1 {
		t.Fatalf("member decisions: reserve %d connect %d, want 1 and 1",
			r.ACL().Decisions("reserve", true), r.ACL().Decisions("connect", true))
	}
	r.ACL().SetMembers()
	if r.ACL().Member(a.ID()) {
		t.Fatal("SetMembers() left a member")
	}
}

// The circuit limits reach libp2p's relay service: a circuit is reset
// once it has carried CircuitBytes.
func TestCircuitBytesLimit(t *testing.T) {
	r := newTestRelay(t, func(l *Limits) { l.CircuitBytes = 32 << 10 })
	a, b := newPeer(t), newPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := reserve(ctx, t, a, r); err != nil {
		t.Fatal(err)
	}
	if err := circuitEcho(ctx, b, a, r, 1<<10); err != nil {
		t.Fatalf("under the limit: %v", err)
	}
	if err := circuitEcho(ctx, b, a, r, 256<<10); err == nil {
		t.Fatal("256 KiB crossed a circuit limited to 32 KiB")
	}
}

// A peer beyond the reservation limits (overall, and per IP address) is
// refused with RESERVATION_REFUSED; the peers that hold slots keep them
// and keep talking through the relay.
func TestReservationLimit(t *testing.T) {
	for _, c := range []struct {
		name         string
		total, perIP int
	}{{"overall", 2, 8}, {"per IP", 8, 2}} {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRelay(t, func(l *Limits) { l.MaxReservations, l.MaxReservationsPerIP = c.total, c.perIP })
			a, b, c := newPeer(t), newPeer(t), newPeer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, h := range []host.Host{a, b} {
				if _, err := reserve(ctx, t, h, r); err != nil {
					t.Fatalf("reservation under the limit: %v", err)
				}
			}
			_, err := reserve(ctx, t, c, r)
			var refused client.ReservationError
			if !errors.As(err, &refused) || refused.Status != pbv2.Status_RESERVATION_REFUSED {
				t.Fatalf("third reservation: %v, want RESERVATION_REFUSED", err)
			}
			if !strings.Contains(err.Error(), "RESERVATION_REFUSED") {
				t.Errorf("error does not say why: %v", err)
			}
			if err := circuitEcho(ctx, b, a, r, 1000); err != nil {
				t.Fatalf("B to A after C was refused: %v", err)
			}
			if err := circuitEcho(ctx, a, b, r, 1000); err != nil {
				t.Fatalf("A to B after C was refused: %v", err)
			}
			// C, refused a slot, may still reach a peer that holds one.
			if err := circuitEcho(ctx, c, a, r, 1000); err != nil {
				t.Fatalf("C to A: %v", err)
			}
		})
	}
}

// The resource manager holds one peer to MaxStreamsPerPeer: its streams
// beyond the limit are refused while another peer's go through, and it
// gets streams again once it closes some.
func TestStreamsPerPeerLimit(t *testing.T) {
	const limit = 8
	r := newTestRelay(t, func(l *Limits) { l.MaxStreamsPerPeer = limit })
	// An echo handler on the relay's host: libp2p's own protocols (ping,
	// identify) have tighter per-peer limits of their own.
	r.Host().SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	greedy, other := newPeer(t), newPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, h := range []host.Host{greedy, other} {
		if err := h.Connect(ctx, relayInfo(r)); err != nil {
			t.Fatal(err)
		}
	}
	var open []network.Stream
	defer func() {
		for _, s := range open {
			s.Reset()
		}
	}()
	refused := false
	for i := 0; i < 3*limit && !refused; i++ {
		s, err := echoStream(ctx, greedy, r)
		if err != nil {
			refused = true
			break
		}
		open = append(open, s)
	}
	if !refused || len(open) > limit {
		t.Fatalf("%d echo streams open at once, refused %v; the limit is %d", len(open), refused, limit)
	}
	s, err := echoStream(ctx, other, r)
	if err != nil {
		t.Fatalf("another peer refused: %v", err)
	}
	s.Reset()
	for _, s := range open {
		s.Reset()
	}
	open = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := echoStream(ctx, greedy, r)
		if err == nil {
			s.Reset()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream after closing the others: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// echoStream opens an echo stream to the relay and checks one round trip.
func echoStream(ctx context.Context, h host.Host, r *Relay) (network.Stream, error) {
	s, err := h.NewStream(ctx, r.Host().ID(), echoProto)
	if err != nil {
		return nil, err
	}
	s.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 32)
	rand.Read(buf)
	if _, err := s.Write(buf); err != nil {
		s.Reset()
		return nil, err
	}
	got := make([]byte, 32)
	if _, err := io.ReadFull(s, got); err != nil {
		s.Reset()
		return nil, err
	}
	if !bytes.Equal(got, buf) {
		s.Reset()
		return nil, errors.New("echo differs")
	}
	return s, nil
}

// The metrics are aggregate: after a reservation and a circuit they count
// them, and name no peer.
func TestMetricsAggregate(t *testing.T) {
	r := newTestRelay(t, nil)
	a, b := newPeer(t), newPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := reserve(ctx, t, a, r); err != nil {
		t.Fatal(err)
	}
	if err := circuitEcho(ctx, b, a, r, 1000); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + r.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	text := string(body)
	for _, want := range []string{`mycel_relay_acl_decisions_total{members="no",request="connect"} 1`,
		"libp2p_relaysvc_", "libp2p_rcmgr_", "go_memstats_"} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Positive control: the search finds a peer ID where there is one.
	if !containsAny(a.ID().String(), a, b) {
		t.Fatal("control: search failed")
	}
	if containsAny(text, a, b) {
		t.Fatal("the metrics name a peer")
	}
	for _, addr := range []string{"/ip4/", "/ip6/", "127.0.0.1"} {
		if strings.Contains(text, addr) {
			t.Fatalf("the metrics name an address (%s)", addr)
		}
	}
}

func containsAny(text string, hosts ...host.Host) bool {
	for _, h := range hosts {
		if strings.Contains(text, h.ID().String()) {
			return true
		}
	}
	return false
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	cfg := &Config{LogLevel: "info", Limits: DefaultLimits(), Listen: []string{"/ip4/127.0.0.1/tcp/" + port}}
	_, err = New(cfg, key, nil)
	if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("New on a taken port: %v", err)
	}
}

func TestMetricsAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	cfg := &Config{LogLevel: "info", Limits: DefaultLimits(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Metrics: ln.Addr().String()}
	if _, err := New(cfg, key, nil); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Fatalf("New with the metrics port taken: %v", err)
	}
}

// The resource manager holds all peers together to MaxConns: a peer
// beyond it is refused while the connected ones keep talking, and it gets
// in once one of them leaves.
func TestMaxConns(t *testing.T) {
	const limit = 3
	r := newTestRelay(t, func(l *Limits) { l.MaxConns, l.MaxConnsPerPeer, l.MaxConnsPerIP = limit, 2, limit })
	r.Host().SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	var tcp peer.AddrInfo
	for _, a := range r.Host().Addrs() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			tcp = peer.AddrInfo{ID: r.Host().ID(), Addrs: []ma.Multiaddr{a}}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var in []host.Host
	for range limit {
		h := newPeer(t)
		if err := h.Connect(ctx, tcp); err != nil {
			t.Fatalf("connection under the limit: %v", err)
		}
		in = append(in, h)
	}
	late := newPeer(t)
	if err := late.Connect(ctx, tcp); err == nil {
		// The handshake may finish before the relay's resource manager
		// refuses the connection; then it is closed at once.
		if _, err := echoStream(ctx, late, r); err == nil {
			t.Fatalf("connection %d of %d accepted and working", limit+1, limit)
		}
	}
	for i, h := range in {
		s, err := echoStream(ctx, h, r)
		if err != nil {
			t.Fatalf("peer %d after the refusal: %v", i, err)
		}
		s.Reset()
	}
	in[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		late.Network().ClosePeer(r.Host().ID())
		late.Network().(*swarm.Swarm).Backoff().Clear(r.Host().ID())
		err := late.Connect(ctx, tcp)
		if err == nil {
			var s network.Stream
			if s, err = echoStream(ctx, late, r); err == nil {
				s.Reset()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection after a peer left: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
