package syncnet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// ingestCounter counts the entries handed to Ingest.
type ingestCounter struct {
	Space
	entries atomic.Int64
}

func (c *ingestCounter) Ingest(k feed.PublicKey, b *feed.Batch) error {
	for _, r := range b.Runs {
		c.entries.Add(int64(len(r.Entries)))
	}
	return c.Space.Ingest(k, b)
}

// relayedPair is two hosts that reach each other through a circuit relay
// v2 on loopback only, until the test connects them directly.
type relayedPair struct {
	relay  host.Host
	w, r   host.Host // w writes the feed, r receives it
	db     [2]*feed.DB
	sp     [2]*ingestCounter
	repl   [2]*Replicator
	tr     [2]*countTracer
	logs   [2]*logBuffer
	writer *feed.Writer
	k      feed.PublicKey
}

func newRelayedPair(t *testing.T, entries int) *relayedPair {
	t.Helper()
	rh, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rh.Close() })
	rc := relayv2.DefaultResources()
	rc.Limit = &relayv2.RelayLimit{Duration: 10 * time.Minute, Data: 64 << 20}
	svc, err := relayv2.New(rh, relayv2.WithResources(rc))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	p := &relayedPair{relay: rh}
	for i, h := range []*host.Host{&p.w, &p.r} {
		// A relay client, no hole punching: the direct connection
		// appears only when the test dials it.
		*h, err = libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*h).Close() })
		p.db[i] = newDB(t)
		p.tr[i] = &countTracer{}
		p.logs[i] = &logBuffer{}
	}
	priv := newKey(t)
	p.k = pub(priv)
	p.writer, err = p.db[0].Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	appendEntries(t, p.writer, entries, 1024)
	space := auth.SpaceID(p.k)
	c := newCap(space)
	for i, h := range []host.Host{p.w, p.r} {
		p.sp[i] = &ingestCounter{Space: NewFeedSpace(space, p.db[i], []feed.PublicKey{p.k}, c)}
		p.repl[i] = newReplicator(t, h, p.logs[i].logger(), WithTracer(p.tr[i]))
	}
	return p
}

// viaRelay connects r to w through a circuit only: w reserves a slot,
// r dials w's circuit address and nothing else.
func (p *relayedPair) viaRelay(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ri := peer.AddrInfo{ID: p.relay.ID(), Addrs: p.relay.Addrs()}
	if err := p.w.Connect(ctx, ri); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, p.w, ri); err != nil {
		t.Fatal(err)
	}
	circuit, err := ma.NewMultiaddr(p.relay.Addrs()[0].String() + "/p2p/" + p.relay.ID().String() + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.r.Connect(ctx, peer.AddrInfo{ID: p.w.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.r.Network().ConnsToPeer(p.w.ID()) {
		if !relayedConn(c) {
			t.Fatalf("a direct connection already: %s", c.RemoteMultiaddr())
		}
	}
}

// sessionOn reports whether i's session with the other side runs, and
// over a relayed connection.
func (p *relayedPair) sessionOn(i int) (running, relayed bool, n int) {
	other := []host.Host{p.r, p.w}[i]
	for _, s := range p.repl[i].Sessions() {
		if s.Peer == other.ID() {
			n++
			running, relayed = s.Running, s.Relayed
		}
	}
	return running, relayed, n
}

func (p *relayedPair) received() error {
	return sameFeed(p.db[0], p.db[1], p.k)
}

// TestSessionMovesToDirect: a sync session that started over a relay's
// circuit moves onto the direct connection within 2 s of its appearing,
// while the feed grows; every entry is received once (none ingested
// twice, none missing), only the lower peer ID moved it, no duplicate
// stream was reset and nothing was logged as a failure.
func TestSessionMovesToDirect(t *testing.T) {
	p := newRelayedPair(t, 500)
	p.viaRelay(t)
	for i := range 2 {
		if err := p.repl[i].Serve(p.sp[i]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, testDeadline, p.received)
	for i := range 2 {
		if running, relayed, _ := p.sessionOn(i); !running || !relayed {
			t.Fatalf("side %d: session running %v relayed %v, want over the circuit", i, running, relayed)
		}
	}

	// The feed grows while the direct connection appears.
	var wg sync.WaitGroup
	wg.Add(1)
	grown := make(chan struct{})
	go func() {
		defer wg.Done()
		for i := range 60 {
			if i == 10 {
				close(grown)
			}
			if _, err := p.writer.Append(context.Background(), []byte(fmt.Sprintf("live %d", i))); err != nil {
				t.Error(err)
				return
			}
			p.repl[0].Appended(p.sp[0].ID(), p.k)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	<-grown
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// As the daemon's direct dial and hole punching do: libp2p would
	// take the relayed connection for a connection otherwise.
	if err := p.r.Connect(network.WithForceDirectDial(ctx, "test"), peer.AddrInfo{ID: p.w.ID(), Addrs: p.w.Addrs()}); err != nil {
		t.Fatal(err)
	}
	direct := time.Now()
	eventually(t, 2*time.Second, func() error {
		for i := range 2 {
			if running, relayed, n := p.sessionOn(i); !running || relayed || n != 1 {
				return fmt.Errorf("side %d: %d sessions, running %v, relayed %v; logs:\n%s\n%s", i, n, running, relayed, p.logs[0], p.logs[1])
			}
		}
		return nil
	})
	t.Logf("both sides' sessions on the direct connection %v after it appeared", time.Since(direct).Round(time.Millisecond))
	wg.Wait()
	eventually(t, testDeadline, p.received)

	final := int64(p.writer.Length())
	if got := p.sp[1].entries.Load(); got != final {
		t.Fatalf("the receiver ingested %d entries, want each of the %d once", got, final)
	}
	lo := 0
	if p.r.ID() < p.w.ID() {
		lo = 1
	}
	if p.repl[lo].Moved() != 1 || p.repl[1-lo].Moved() != 0 {
		t.Fatalf("moved: lower ID %d, higher %d; want 1 and 0", p.repl[lo].Moved(), p.repl[1-lo].Moved())
	}
	for i := range 2 {
		p.tr[i].mu.Lock()
		dups := p.tr[i].drops[DropDuplicate]
		p.tr[i].mu.Unlock()
		if dups != 0 {
			t.Errorf("side %d reset %d duplicate streams", i, dups)
		}
		for _, bad := range []string{"refused", "driver bug", "stalled"} {
			if strings.Contains(p.logs[i].String(), bad) {
				t.Errorf("side %d logged %q:\n%s", i, bad, p.logs[i])
			}
		}
	}
}

// TestSessionReopenedByPeerNotReset: a peer whose side of a session ended
// while this side's did not (a browser whose old connection went away)
// opens a new one; the side that opens by the peer-ID rule takes it
// instead of resetting it as a duplicate (it did so only within
// simultaneousOpenWindow of its own session's opening) — each of three
// times — and the sync carries on over it.
func TestSessionReopenedByPeerNotReset(t *testing.T) {
	p := newRelayedPair(t, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.r.Connect(ctx, peer.AddrInfo{ID: p.w.ID(), Addrs: p.w.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := p.repl[i].Serve(p.sp[i]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, testDeadline, p.received)
	lo, hi := 0, 1
	if p.r.ID() < p.w.ID() {
		lo, hi = 1, 0
	}
	others := []host.Host{p.r, p.w}
	for round := range 3 {
		// Past the window in which the peer's stream may be one opened
		// at the same time as this side's.
		eventually(t, 10*time.Second, func() error {
			p.repl[lo].mu.Lock()
			defer p.repl[lo].mu.Unlock()
			for key, s := range p.repl[lo].sessions {
				if at := s.established.Load(); key.peer == others[lo].ID() && at != 0 && time.Since(time.Unix(0, at)) >= simultaneousOpenWindow {
					return nil
				}
			}
			return errors.New("the lower side's session is not established for long enough")
		})
		// The higher side forgets its session (its stream stays open, as
		// a connection that died on one side only) and opens anew.
		var old *session
		p.repl[hi].mu.Lock()
		for key, s := range p.repl[hi].sessions {
			if key.peer == others[hi].ID() {
				old = s
				delete(p.repl[hi].sessions, key)
			}
		}
		p.repl[hi].mu.Unlock()
		if old == nil {
			t.Fatalf("round %d: the higher side has no session", round)
		}
		if err := p.repl[hi].Sync(ctx, others[hi].ID(), p.sp[hi]); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		eventually(t, 5*time.Second, func() error {
			select {
			case <-old.stopped:
			default:
				return errors.New("the forgotten session still runs")
			}
			for _, i := range []int{lo, hi} {
				if running, _, n := p.sessionOn(i); !running || n != 1 {
					return fmt.Errorf("side %d: %d sessions, running %v", i, n, running)
				}
			}
			return nil
		})
		if _, err := p.writer.Append(context.Background(), []byte(fmt.Sprint("round ", round))); err != nil {
			t.Fatal(err)
		}
		p.repl[0].Appended(p.sp[0].ID(), p.k)
		eventually(t, testDeadline, p.received)
	}
	p.tr[lo].mu.Lock()
	dups := p.tr[lo].drops[DropDuplicate]
	p.tr[lo].mu.Unlock()
	if dups != 0 {
		t.Fatalf("the lower side reset %d streams of the peer's new sessions as duplicates", dups)
	}
}
