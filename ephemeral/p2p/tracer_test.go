package p2p

import (
	"bufio"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/internal/clock"
)

// countTracer counts what a Service reports.
type countTracer struct {
	mu    sync.Mutex
	drops map[string]int
	seen  int
}

func (c *countTracer) Drop(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drops == nil {
		c.drops = map[string]int{}
	}
	c.drops[reason]++
}

func (c *countTracer) SeenSize(n int) { c.mu.Lock(); c.seen = n; c.mu.Unlock() }

func (c *countTracer) get(reason string) (drops, seen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drops[reason], c.seen
}

// TestTracerStreamCapAndPrune: a forged envelope is reported as rejected,
// a replay as a duplicate; the seen-set's size is reported as it grows;
// with Config.MaxInboundStreams 1, a second direct stream while one is
// handled is reset unread and reported as a drop; and the injected clock's ticker drives the prune
// that empties it once the envelope's retention passed — no sleeping.
func TestTracerStreamCapAndPrune(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	ha, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	hb, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	f, err := ephemeral.NewFilter(ephemeral.NewMemSeenStore(), ephemeral.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tr := &countTracer{}
	svc, err := New(ha, f, Config{MaxInboundStreams: 1, PruneInterval: time.Minute}, WithPubSub(newPubSub(t, ha)), WithClock(clk), WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	sub, err := svc.Subscribe(testTopic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()

	// A forged envelope: rejected. A good one: delivered, the seen-set
	// holds one ID.
	forged := seal(t, "forged", clk.Now())
	forged.Signature[5] ^= 1
	send := func(e *ephemeral.Envelope) byte {
		// The receiver answers before it frees its slot.
		eventually(t, "the slot to be free", func() bool { return len(svc.inbound) == 0 })
		st, err := hb.NewStream(ctx, ha.ID(), ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st.SetDeadline(time.Now().Add(testDeadline))
		writeFrame(st, encode(t, e))
		st.CloseWrite()
		status, err := bufio.NewReader(st).ReadByte()
		if err != nil {
			t.Fatalf("status: %v; drops %v, inbound %d", err, tr.drops, len(svc.inbound))
		}
		return status
	}
	if s := send(forged); s != statusRejected {
		t.Fatalf("forged: status %d", s)
	}
	if n, _ := tr.get(DropRejected); n != 1 {
		t.Fatalf("%d %q drops reported, want 1", n, DropRejected)
	}
	e := seal(t, "kept", clk.Now())
	if s := send(e); s != statusDelivered {
		t.Fatalf("good envelope: status %d", s)
	}
	if m, err := sub.Next(ctx); err != nil || m.Envelope.ID != e.ID {
		t.Fatalf("Next: %v", err)
	}
	if _, seen := tr.get(""); seen != 1 {
		t.Fatalf("seen-set size reported %d, want 1", seen)
	}
	if s := send(e); s != statusDuplicate {
		t.Fatalf("replay: status %d", s)
	}
	if n, _ := tr.get(DropDuplicate); n != 1 {
		t.Fatalf("%d %q drops reported, want 1", n, DropDuplicate)
	}

	// One stream that sends half a length and stalls holds the only slot.
	eventually(t, "the slot to be free", func() bool { return len(svc.inbound) == 0 })
	st1, err := hb.NewStream(ctx, ha.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st1.Reset()
	st1.Write([]byte{0x80})
	eventually(t, "the first stream to be handled", func() bool { return len(svc.inbound) == 1 })
	st2, err := hb.NewStream(ctx, ha.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	st2.SetDeadline(time.Now().Add(testDeadline))
	st2.Write(encode(t, seal(t, "over the cap", clk.Now())))
	if _, err := bufio.NewReader(st2).ReadByte(); !errors.Is(err, network.ErrReset) {
		t.Fatalf("stream over the cap: %v, want a reset", err)
	}
	if n, _ := tr.get(DropStreams); n != 1 {
		t.Fatalf("%d %q drops reported, want 1", n, DropStreams)
	}

	// Retention later, the prune ticker (on the fake clock) empties it.
	eventually(t, "the prune ticker", func() bool { return clk.Tickers() == 1 })
	clk.Advance(ephemeral.Retention + time.Minute)
	eventually(t, "the seen-set to be pruned", func() bool {
		_, seen := tr.get("")
		return seen == 0 && f.Len() == 0
	})
	if s := svc.Stats(); s.Rejected != 1 || s.Duplicate != 1 || s.Delivered != 1 {
		t.Fatalf("stats %+v", s)
	}
}
