package syncnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/internal/clock"
)

// countTracer counts what a Replicator reports.
type countTracer struct {
	mu                     sync.Mutex
	strikes, proofs, bans  int
	drops                  map[string]int
	tracked, trackedCalled int
}

func (c *countTracer) Strike(proof bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if proof {
		c.proofs++
	} else {
		c.strikes++
	}
}

func (c *countTracer) Ban() { c.mu.Lock(); c.bans++; c.mu.Unlock() }

func (c *countTracer) Drop(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drops == nil {
		c.drops = map[string]int{}
	}
	c.drops[reason]++
}

func (c *countTracer) Tracked(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tracked, c.trackedCalled = n, c.trackedCalled+1
}

func (c *countTracer) get() (strikes, bans, tracked int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.strikes, c.bans, c.tracked
}

// mockServer is a Replicator on a mocknet host serving an empty space,
// with a fake clock and a counting tracer.
type mockServer struct {
	mn    mocknet.Mocknet
	h     host.Host
	r     *Replicator
	clk   *clock.Fake
	tr    *countTracer
	space auth.SpaceID
}

func newMockServer(t *testing.T, cfg Config) *mockServer {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	// The server gets the greatest of a few IDs, so that it opens no
	// session to most peers (the lower ID opens): their streams then never
	// meet one of its own.
	var h host.Host
	for range 8 {
		c, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil || c.ID() > h.ID() {
			h = c
		}
	}
	s := &mockServer{mn: mn, h: h, clk: clock.NewFake(time.Unix(1_700_000_000, 0)), tr: &countTracer{}}
	s.r = newReplicator(t, h, nil, WithConfig(cfg), WithClock(s.clk), WithTracer(s.tr))
	s.space = auth.SpaceID(pub(newKey(t)))
	if err := s.r.Serve(NewFeedSpace(s.space, newDB(t), nil, newCap(s.space))); err != nil {
		t.Fatal(err)
	}
	return s
}

// peer returns a new connected mocknet peer that the server does not open
// sessions to.
func (s *mockServer) peer(t *testing.T) host.Host {
	t.Helper()
	for range 100 {
		h, err := s.mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		if h.ID() > s.h.ID() {
			h.Close()
			continue
		}
		if _, err := s.mn.LinkPeers(h.ID(), s.h.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.mn.ConnectPeers(h.ID(), s.h.ID()); err != nil {
			t.Fatal(err)
		}
		return h
	}
	t.Fatal("no peer ID below the server's in 100 tries")
	return nil
}

// garbage sends from h a stream of garbage, which the server resets and
// strikes h for, and waits for the strike.
func (s *mockServer) garbage(t *testing.T, h host.Host) {
	t.Helper()
	before, _, _ := s.tr.get()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, s.h.ID(), ProtocolFor(s.space))
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	st.Write([]byte(strings.Repeat("not a frame ", 20)))
	if _, err := io.Copy(io.Discard, st); !errors.Is(err, network.ErrReset) {
		t.Fatalf("stream ended with %v, want a reset", err)
	}
	st.Reset()
	eventually(t, testDeadline, func() error {
		if n, _, _ := s.tr.get(); n <= before {
			return errors.New("no strike counted")
		}
		return nil
	})
}

// TestStandingBounded: 150 peers each strike once and leave. The standing
// table never holds more than MaxTracked of them, and once ForgetAfter
// passed (on the injected clock) it forgets them all. A peer that strikes
// three times while connected, amid that churn, is banned all the same;
// its ban ends after BanDuration on the same clock.
func TestStandingBounded(t *testing.T) {
	const maxTracked, churn = 16, 150
	cfg := Config{MaxTracked: maxTracked, ForgetAfter: time.Minute, BanDuration: time.Hour, IdleTimeout: 20 * time.Second}
	s := newMockServer(t, cfg)
	bad := s.peer(t)
	most := 0
	for i := range churn {
		if i%(churn/2) == 0 {
			s.garbage(t, bad) // strikes 1 and 2 of 3
		}
		h := s.peer(t)
		s.garbage(t, h)
		if err := s.mn.DisconnectPeers(h.ID(), s.h.ID()); err != nil {
			t.Fatal(err)
		}
		h.Close()
		most = max(most, s.r.Tracked())
	}
	if most > maxTracked {
		t.Fatalf("standing table held %d peers, MaxTracked is %d", most, maxTracked)
	}
	if strikes, _, _ := s.tr.get(); strikes != churn+2 {
		t.Fatalf("tracer counted %d strikes, want %d", strikes, churn+2)
	}
	if s.r.Banned(bad.ID()) {
		t.Fatal("banned after two strikes")
	}
	s.garbage(t, bad)
	if !s.r.Banned(bad.ID()) {
		t.Fatalf("the peer that struck 3 times while connected is not banned (table: %d peers)", s.r.Tracked())
	}
	if _, bans, _ := s.tr.get(); bans != 1 {
		t.Fatalf("tracer counted %d bans, want 1", bans)
	}
	// Banned: its next stream is reset unread, and reported as a drop.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := bad.NewStream(ctx, s.h.ID(), ProtocolFor(s.space)); err == nil {
		st.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, st); !errors.Is(err, network.ErrReset) {
			t.Fatalf("banned peer's stream ended with %v, want a reset", err)
		}
	}
	eventually(t, testDeadline, func() error {
		s.tr.mu.Lock()
		defer s.tr.mu.Unlock()
		if s.tr.drops[DropBanned] != 1 {
			return fmt.Errorf("drops %v, want one %q", s.tr.drops, DropBanned)
		}
		return nil
	})

	// ForgetAfter later, the next disconnection sweeps the peers that left.
	s.clk.Advance(cfg.ForgetAfter)
	h := s.peer(t)
	if err := s.mn.DisconnectPeers(h.ID(), s.h.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if n := s.r.Tracked(); n != 1 {
			return fmt.Errorf("standing table holds %d peers after ForgetAfter, want only the banned one:\n%s(bad %s, now %v)", n, s.r.standingString(), bad.ID(), s.clk.Now())
		}
		return nil
	})
	s.clk.Advance(cfg.BanDuration)
	if s.r.Banned(bad.ID()) {
		t.Fatal("still banned after BanDuration")
	}
	if n := s.r.Tracked(); n != 0 {
		t.Fatalf("standing table holds %d peers once the ban ended", n)
	}
}

func (r *Replicator) standingString() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for p, st := range r.standing {
		fmt.Fprintf(&b, "%s: strikes %d failed %d banned %v left %v\n", p, len(st.strikes), len(st.failed), st.banned, st.left)
	}
	return b.String()
}

// TestStalledPeerDropTraced: a peer that says Hello and then nothing is
// dropped after IdleTimeout, reported to the tracer as a stalled drop and
// not as a strike (it may only be slow). Real loopback hosts: mocknet's
// streams have no deadlines.
func TestStalledPeerDropTraced(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	if ha.ID() < hb.ID() {
		ha, hb = hb, ha // the server opens no session to the peer
	}
	tr := &countTracer{}
	r := newReplicator(t, ha, nil, WithConfig(Config{IdleTimeout: 300 * time.Millisecond}), WithTracer(tr))
	space := auth.SpaceID(pub(newKey(t)))
	if err := r.Serve(NewFeedSpace(space, newDB(t), nil, newCap(space))); err != nil {
		t.Fatal(err)
	}
	connect(t, hb, ha)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := hb.NewStream(ctx, ha.ID(), ProtocolFor(space))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	st.SetDeadline(time.Now().Add(testDeadline))
	st.Write(helloFrame(t))
	if _, err := io.Copy(io.Discard, st); !errors.Is(err, network.ErrReset) {
		t.Fatalf("stalled stream ended with %v, want a reset", err)
	}
	eventually(t, testDeadline, func() error {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.drops[DropStalled] != 1 {
			return fmt.Errorf("drops %v, want one %q", tr.drops, DropStalled)
		}
		return nil
	})
	if strikes, _, _ := tr.get(); strikes != 0 || r.Tracked() != 0 {
		t.Fatalf("a stall counted: %d strikes, %d peers tracked", strikes, r.Tracked())
	}
}
