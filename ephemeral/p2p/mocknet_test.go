package p2p

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/mycelsync/mycel/ephemeral"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := new(fakeClock)
	c.ns.Store(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestMocknetPartition runs four Services on go-libp2p's in-memory network
// (mocknet) with one injected clock. A message sent while the network is
// split into {0,1} and {2,3} reaches 1 only; ephemeral means it is not
// delivered on the other side later, even when a peer of the first side
// sends it again after the split heals: the clocks moved past the window,
// and every receiver drops it as stale. A message sent after the heal
// reaches all, once.
func TestMocknetPartition(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	clock := newFakeClock()
	var nodes []*node
	var subs []*Subscription
	for range 4 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		n := newNode(t, h, ephemeral.NewMemSeenStore(), clock.now)
		nodes = append(nodes, n)
		subs = append(subs, subscribe(t, n))
	}
	link := func(i, j int) {
		a, b := nodes[i].h.ID(), nodes[j].h.ID()
		if _, err := mn.LinkPeers(a, b); err != nil {
			t.Fatal(err)
		}
		if _, err := mn.ConnectPeers(a, b); err != nil {
			t.Fatal(err)
		}
	}
	cut := func(i, j int) {
		a, b := nodes[i].h.ID(), nodes[j].h.ID()
		if err := mn.UnlinkPeers(a, b); err != nil {
			t.Fatal(err)
		}
		if err := mn.DisconnectPeers(a, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		for j := i + 1; j < 4; j++ {
			link(i, j)
		}
	}
	// late is a plain gossipsub peer (no Service, no Filter) on the first
	// side, linked to 1 only until the split heals.
	lh, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	ps := newPubSub(t, lh)
	topic, err := ps.Join(TopicName(testTopic), pubsub.WithTopicMessageIdFn(MessageID))
	if err != nil {
		t.Fatal(err)
	}
	lsub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lsub.Cancel)
	late := &raw{h: lh, topic: topic}
	if _, err := mn.LinkPeers(lh.ID(), nodes[1].h.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(lh.ID(), nodes[1].h.ID()); err != nil {
		t.Fatal(err)
	}

	var p probes
	publish := func(e *ephemeral.Envelope) {
		if err := subs[0].Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	waitRoute(t, &p, clock.now, publish, subs[3])

	for _, i := range []int{0, 1} {
		for _, j := range []int{2, 3} {
			cut(i, j)
		}
	}
	split := seal(t, "during the split", clock.now())
	publish(split)
	exactly(t, "1 during the split", collect(t, &p, subs[1], 0, split.ID), split.ID)

	// The clocks move past the window; the split heals.
	clock.advance(ephemeral.Window + time.Minute)
	link(1, 2)
	link(0, 3)
	waitRoute(t, &p, clock.now, publish, subs[3])
	// A peer on the first side sends the split's message again (as one
	// that forwards late, or replays, would; each copy re-encoded past
	// gossipsub's seen cache) straight to 2, now that the split healed,
	// until 2 has had one: too old by every clock now, 2 counts it stale.
	if _, err := mn.LinkPeers(lh.ID(), nodes[2].h.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(lh.ID(), nodes[2].h.ID()); err != nil {
		t.Fatal(err)
	}
	copyOf := encode(t, split)
	eventually(t, "2 counts a late copy as stale", func() bool {
		copyOf = reencode(copyOf)
		late.publish(t, copyOf)
		time.Sleep(50 * time.Millisecond)
		return nodes[2].svc.Stats().Stale > 0
	})
	after := seal(t, "after the heal", clock.now())
	publish(after)
	for i, who := range []string{"1", "2", "3"} {
		got := collect(t, &p, subs[i+1], 500*time.Millisecond, after.ID)
		exactly(t, who+" after the heal", got, after.ID)
	}
}
