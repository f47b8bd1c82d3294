package relay

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/feed"
)

// TestRouterSendsNothingBeforeChecks: a neighbour hands the relay forged
// envelopes of 2 KiB and one over MaxEnvelopeSize. Gossipsub v1.2 would tell every other neighbour in
// the mesh, before any validator runs, not to send it those messages
// (IDONTWANT, for messages of 1 KiB and more): one RPC to each of them per
// envelope the relay has not checked, which also names an unchecked
// message to them all. The relay sends its neighbours nothing about an
// envelope that does not pass its checks — and, for one that does, only
// the envelope (in a star of devices that reach only the relay, an
// IDONTWANT saves nothing: there is no other copy to avoid).
func TestRouterSendsNothingBeforeChecks(t *testing.T) {
	f := newRouterFixture(t, RouterLimits{})
	evil := newRoutedPeer(t, f.relay, f.name)
	w := newSender(t)
	f.src.writers[w.key()] = true

	// The watcher: a device speaking gossipsub v1.2, counting what the
	// relay sends it.
	var msgs, idontwant atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	watcher := loopbackHost(t)
	err := lightSubscribe(ctx, watcher, peer.AddrInfo{ID: f.relay.ID(), Addrs: f.relay.Addrs()}, f.name, func(rpc *pb.RPC) {
		msgs.Add(int64(len(rpc.Publish)))
		if rpc.Control != nil {
			idontwant.Add(int64(len(rpc.Control.Idontwant)))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() error {
		_, b := w.envelope(t, f.topic, kindMembers, "probe")
		evil.publish(t, b)
		if msgs.Load() == 0 {
			return fmt.Errorf("the watcher is not in the relay's mesh")
		}
		return nil
	})
	base := f.r.RouterCounts()
	idontwant0 := idontwant.Load()

	const forgeries = 5 // under MaxRejects: the forger stays
	big := strings.Repeat("x", 2048)
	for i := range forgeries {
		e, _ := w.envelope(t, f.topic, kindMembers, fmt.Sprint(i, big))
		e.Ciphertext[0] ^= 1
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		evil.publish(t, b)
	}
	// And one past MaxEnvelopeSize (gossipsub takes up to 1 MiB).
	_, over := w.envelope(t, f.topic, kindMembers, "over")
	over = protowire.AppendBytes(protowire.AppendTag(over, 99, protowire.BytesType), make([]byte, ephemeral.MaxEnvelopeSize))
	evil.publish(t, over)
	waitUntil(t, func() error {
		c := f.r.RouterCounts()
		if n := c[RouteForged] - base[RouteForged]; n != forgeries {
			return fmt.Errorf("forged: %d, want %d", n, forgeries)
		}
		if n := c[RouteTooLarge] - base[RouteTooLarge]; n != 1 {
			return fmt.Errorf("too large: %d, want 1", n)
		}
		return nil
	})
	// A genuine large envelope after them: when it arrives, anything the
	// relay sent about the forgeries (queued before it) has too.
	_, genuine := w.envelope(t, f.topic, kindMembers, "genuine"+big)
	m0 := msgs.Load()
	evil.publish(t, genuine)
	deadline := time.Now().Add(routerDeadline)
	for msgs.Load() == m0 {
		if time.Now().After(deadline) {
			t.Fatal("the genuine envelope did not arrive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := idontwant.Load() - idontwant0; n != 0 {
		t.Errorf("the relay sent the watcher %d IDONTWANT for %d forged envelopes, an oversized one and a genuine one, want 0", n, forgeries)
	}
}

// TestRouterKeepsBurstForSlowNeighbour: writers' envelopes reach the relay
// in a burst (100 of 60 KiB) while a device reads nothing for a moment (a
// busy CPU, a phone waking). Gossipsub queues at most its peer outbound
// queue's RPCs for a neighbour beyond what the stream's flow-control window
// holds (yamux: 256 KiB) and drops the rest; with its default of 32 the
// device lost two thirds of the burst. The relay's queue holds the burst
// and the device gets every envelope once it reads again.
func TestRouterKeepsBurstForSlowNeighbour(t *testing.T) {
	f := newRouterFixture(t, RouterLimits{})
	w := newSender(t)
	f.src.writers[w.key()] = true
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	relay := peer.AddrInfo{ID: f.relay.ID(), Addrs: f.relay.Addrs()}
	pub, err := lightPeer(ctx, loopbackHost(t), relay, f.name, func(*pb.RPC) {})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(b []byte) {
		t.Helper()
		out, err := proto.Marshal(&pb.RPC{Publish: []*pb.Message{{Data: b, Topic: &f.name}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.WriteMsg(out); err != nil {
			t.Fatal(err)
		}
	}
	var got atomic.Int64
	var hold atomic.Bool
	release := make(chan struct{})
	err = lightSubscribe(ctx, loopbackHost(t), relay, f.name, func(rpc *pb.RPC) {
		if hold.Load() {
			<-release
		}
		got.Add(int64(len(rpc.Publish)))
	})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() error {
		_, b := w.envelope(t, f.topic, kindMembers, "probe")
		publish(b)
		if got.Load() == 0 {
			return fmt.Errorf("the device is not in the relay's mesh")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // probes in flight
	hold.Store(true)
	got0 := got.Load()
	base := f.r.RouterCounts()[RouteForwarded]

	const burst = 100
	big := strings.Repeat("x", 60<<10)
	for i := range burst {
		_, b := w.envelope(t, f.topic, kindMembers, fmt.Sprint(i, big))
		publish(b)
	}
	waitUntil(t, func() error { // a late probe may be counted too
		if n := f.r.RouterCounts()[RouteForwarded] - base; n < burst {
			return fmt.Errorf("forwarded %d of %d", n, burst)
		}
		return nil
	})
	// Gossipsub queues each envelope for the device right after the
	// router accepts it; then the device reads again.
	time.Sleep(200 * time.Millisecond)
	close(release)
	deadline := time.Now().Add(routerDeadline)
	for got.Load()-got0 < burst && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := got.Load() - got0; n < burst {
		t.Errorf("the device got %d of a burst of %d envelopes", n, burst)
	}
}

// TestRouterBanHoldsUnderParallelChecks: a forger's envelopes arrive in a
// burst at a relay that validates on 16 goroutines (TestRouterBansForgers
// failed 3 times in 40 under -race on the 2 shared cores before the fix). It is banned at
// MaxRejects, and the relay checks no more of its envelopes than that —
// not one more per goroutine that had started on one while the strike
// that bans it was being counted.
func TestRouterBanHoldsUnderParallelChecks(t *testing.T) {
	const maxRejects = 5
	src := &fakeSource{writers: map[feed.PublicKey]bool{}}
	relayHost := loopbackHost(t)
	var id auth.SpaceID
	id[0] = 7
	src.spaces = []auth.SpaceID{id}
	topic := ephemeral.Topic(auth.DiscoveryKey(id))
	name := p2p.TopicName(topic)
	// A slow clock (the router reads it as it starts a check and as it
	// counts a strike) widens the window in which checks overlap, as a
	// busy machine does.
	slow := func() time.Time { time.Sleep(time.Millisecond); return time.Now() }
	r, err := newRouter(relayHost, src, RouterLimits{MaxRejects: maxRejects}, nil, func(o *routerOpts) {
		o.now = slow
		o.psOp = append(o.psOp, pubsub.WithValidateWorkers(16))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	waitUntil(t, func() error {
		if len(r.Routed()) != 1 {
			return fmt.Errorf("routed %d topics", len(r.Routed()))
		}
		return nil
	})
	w := newSender(t)
	src.mu.Lock()
	src.writers[w.key()] = true
	src.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	evil, err := lightPeer(ctx, loopbackHost(t), peer.AddrInfo{ID: relayHost.ID(), Addrs: relayHost.Addrs()}, name, func(*pb.RPC) {})
	if err != nil {
		t.Fatal(err)
	}
	// The whole burst in few RPCs, so that it waits in the validation
	// queue together.
	const flood = 200
	var rpc pb.RPC
	for i := range flood {
		e, _ := w.envelope(t, topic, kindMembers, fmt.Sprint("forged ", i))
		e.Ciphertext[0] ^= 1
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rpc.Publish = append(rpc.Publish, &pb.Message{Data: b, Topic: &name})
		if len(rpc.Publish) == 50 {
			out, err := proto.Marshal(&rpc)
			if err != nil {
				t.Fatal(err)
			}
			if evil.WriteMsg(out) != nil {
				break // the relay may already have dropped the stream
			}
			rpc.Publish = nil
		}
	}
	waitUntil(t, func() error {
		if r.Bans() == 0 {
			return fmt.Errorf("not banned")
		}
		return nil
	})
	// What was queued before the ban is validated after it (counted
	// banned, unparsed): watch the count for a while.
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if r.RouterCounts()[RouteForged] > maxRejects {
			break
		}
	}
	if n := r.RouterCounts()[RouteForged]; n != maxRejects {
		t.Errorf("the relay checked %d forged envelopes of the banned neighbour, want %d (MaxRejects)", n, maxRejects)
	}
	if n := r.Bans(); n != 1 {
		t.Errorf("the neighbour was banned %d times, want once", n)
	}
}
