package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/feed"
)

// routerDeadline bounds every wait of the router's tests.
const routerDeadline = 30 * time.Second

// fakeSource is a RouterSource with the spaces and writers a test sets.
type fakeSource struct {
	mu      sync.Mutex
	spaces  []auth.SpaceID
	writers map[feed.PublicKey]bool
	fn      func()
}

func (s *fakeSource) ServedSpaces() []auth.SpaceID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.spaces)
}

func (s *fakeSource) IsWriter(_ auth.SpaceID, k feed.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writers[k]
}

func (s *fakeSource) OnChange(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn = fn
}

func (s *fakeSource) set(spaces []auth.SpaceID) {
	s.mu.Lock()
	s.spaces = spaces
	fn := s.fn
	s.mu.Unlock()
	fn()
}

func loopbackHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// routedPeer is a device on a space's topic that reaches only the relay:
// a raw gossipsub subscriber (no validator of its own, so that it sees
// exactly what the relay forwards) that can publish any bytes.
type routedPeer struct {
	h   host.Host
	pt  *pubsub.Topic
	got chan []byte
}

func newRoutedPeer(t testing.TB, relay host.Host, name string) *routedPeer {
	t.Helper()
	h := loopbackHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, p2p.PubSubOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := ps.Join(name, pubsub.WithTopicMessageIdFn(p2p.MessageID))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := pt.Subscribe(pubsub.WithBufferSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	p := &routedPeer{h: h, pt: pt, got: make(chan []byte, 4096)}
	go func() {
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if m.ReceivedFrom == h.ID() {
				continue
			}
			select {
			case p.got <- m.Data:
			default:
			}
		}
	}()
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if err := h.Connect(cctx, peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *routedPeer) publish(t testing.TB, b []byte) {
	t.Helper()
	if err := p.pt.Publish(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// sender is a device key.
type sender struct{ priv ed25519.PrivateKey }

func newSender(t testing.TB) sender {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sender{priv}
}

func (s sender) key() feed.PublicKey { return feed.PublicKey(s.priv.Public().(ed25519.PublicKey)) }

// envelope seals body for topic t under key kind kind.
func (s sender) envelope(t testing.TB, topic ephemeral.Topic, kind uint32, body string) (*ephemeral.Envelope, []byte) {
	t.Helper()
	e, err := ephemeral.Seal([ephemeral.KeySize]byte{1}, s.priv, ephemeral.Header{Topic: topic, KeyKind: kind, KeyID: make([]byte, 16)}, []byte(body), time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return e, b
}

// routerFixture: a relay host routing one space, with a fake source.
type routerFixture struct {
	relay host.Host
	r     *Router
	src   *fakeSource
	id    auth.SpaceID
	topic ephemeral.Topic
	name  string
}

func newRouterFixture(t testing.TB, lim RouterLimits) *routerFixture {
	t.Helper()
	f := &routerFixture{relay: loopbackHost(t), src: &fakeSource{writers: map[feed.PublicKey]bool{}}}
	rand.Read(f.id[:])
	f.topic = ephemeral.Topic(auth.DiscoveryKey(f.id))
	f.name = p2p.TopicName(f.topic)
	f.src.spaces = []auth.SpaceID{f.id}
	var err error
	if f.r, err = NewRouter(f.relay, f.src, lim, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.r.Close() })
	waitUntil(t, func() error {
		if len(f.r.Routed()) != 1 {
			return fmt.Errorf("routed %d topics", len(f.r.Routed()))
		}
		return nil
	})
	return f
}

func waitUntil(t testing.TB, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(routerDeadline)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", routerDeadline, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// meshed waits until a probe from w's sender, published by from, reaches
// to: the relay's mesh holds both. It returns the probes' count.
func (f *routerFixture) meshed(t testing.TB, w sender, from, to *routedPeer) {
	t.Helper()
	deadline := time.Now().Add(routerDeadline)
	for {
		_, b := w.envelope(t, f.topic, kindMembers, "probe")
		from.publish(t, b)
		select {
		case <-to.got:
			// Let other probes in flight arrive, then forget them.
			time.Sleep(100 * time.Millisecond)
			for len(to.got) > 0 {
				<-to.got
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no probe through the relay after %v", routerDeadline)
		}
	}
}

// receive collects what p gets until it has n messages or quiet passes
// without one.
func (p *routedPeer) receive(n int, quiet time.Duration) [][]byte {
	var out [][]byte
	deadline := time.After(routerDeadline)
	for len(out) < n {
		select {
		case b := <-p.got:
			out = append(out, b)
		case <-time.After(quiet):
			return out
		case <-deadline:
			return out
		}
	}
	return out
}

// TestRouterForwardsBothWays: two devices that reach only the relay
// exchange members' envelopes through it, each way, and the relay counts
// them forwarded.
func TestRouterForwardsBothWays(t *testing.T) {
	f := newRouterFixture(t, RouterLimits{})
	a, b := newRoutedPeer(t, f.relay, f.name), newRoutedPeer(t, f.relay, f.name)
	wa, wb := newSender(t), newSender(t)
	f.src.writers[wa.key()], f.src.writers[wb.key()] = true, true
	f.meshed(t, wa, a, b)
	f.meshed(t, wb, b, a)
	if len(a.h.Network().ConnsToPeer(b.h.ID())) != 0 {
		t.Fatal("the devices are connected to each other")
	}
	before := f.r.RouterCounts()[RouteForwarded]
	for i := range 10 {
		_, ea := wa.envelope(t, f.topic, kindMembers, fmt.Sprint("a", i))
		a.publish(t, ea)
		_, eb := wb.envelope(t, f.topic, kindMembers, fmt.Sprint("b", i))
		b.publish(t, eb)
	}
	if got := b.receive(10, 2*time.Second); len(got) != 10 {
		t.Errorf("B got %d of A's 10 envelopes", len(got))
	}
	if got := a.receive(10, 2*time.Second); len(got) != 10 {
		t.Errorf("A got %d of B's 10 envelopes", len(got))
	}
	if n := f.r.RouterCounts()[RouteForwarded] - before; n != 20 {
		t.Errorf("forwarded %d, want 20", n)
	}
}

// TestRouterDropsAttacks: a neighbour of the relay publishes a forged
// envelope, a replay of a genuine one (re-encoded, so gossipsub's own seen
// cache does not catch it), an oversized one, a members' envelope signed
// by a key that is no writer, another topic's, one of an unknown key kind
// and a flood of sign-in envelopes. The relay forwards none of them but
// the sign-in envelopes within the rate, counts each, and still forwards
// a writer's envelopes.
func TestRouterDropsAttacks(t *testing.T) {
	lim := RouterLimits{SigninPerPeer: 0.001, SigninPerPeerBurst: 4, SigninPerSpace: 100, SigninPerSpaceBurst: 100}
	f := newRouterFixture(t, lim)
	evil, victim := newRoutedPeer(t, f.relay, f.name), newRoutedPeer(t, f.relay, f.name)
	honest := newRoutedPeer(t, f.relay, f.name)
	w, stranger := newSender(t), newSender(t)
	f.src.writers[w.key()] = true
	f.meshed(t, w, evil, victim)
	f.meshed(t, w, honest, victim)
	base := f.r.RouterCounts()

	// Forged: the body changed after signing.
	e, _ := w.envelope(t, f.topic, kindMembers, "genuine")
	e.Ciphertext[0] ^= 1
	forged, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	evil.publish(t, forged)
	// Replayed: a genuine envelope the relay forwarded, sent again with
	// an unknown field appended (other bytes, another gossipsub ID).
	_, genuine := w.envelope(t, f.topic, kindMembers, "once")
	honest.publish(t, genuine)
	if got := victim.receive(1, 5*time.Second); len(got) != 1 {
		t.Fatalf("the genuine envelope did not arrive: %d", len(got))
	}
	replay := protowire.AppendBytes(protowire.AppendTag(slices.Clone(genuine), 99, protowire.BytesType), []byte("again"))
	evil.publish(t, replay)
	// Oversized: a valid envelope padded past MaxEnvelopeSize.
	_, big := w.envelope(t, f.topic, kindMembers, "big")
	big = protowire.AppendBytes(protowire.AppendTag(big, 99, protowire.BytesType), make([]byte, ephemeral.MaxEnvelopeSize))
	evil.publish(t, big)
	// A members' envelope from a key that is no writer.
	_, nw := stranger.envelope(t, f.topic, kindMembers, "let me in")
	evil.publish(t, nw)
	// Another space's envelope on this topic, and an unknown key kind.
	_, other := w.envelope(t, ephemeral.Topic{9}, kindMembers, "elsewhere")
	evil.publish(t, other)
	_, unknown := w.envelope(t, f.topic, 7, "later version")
	evil.publish(t, unknown)
	// A flood of sign-in envelopes, each from a fresh key, from one peer.
	const flood = 40
	for i := range flood {
		_, s := newSender(t).envelope(t, f.topic, kindInvite+uint32(i%2), fmt.Sprint("join ", i))
		evil.publish(t, s)
	}
	// Others' messages still go through.
	for i := range 5 {
		_, b := w.envelope(t, f.topic, kindMembers, fmt.Sprint("after ", i))
		honest.publish(t, b)
	}
	want := map[string]uint64{RouteForged: 1, RouteDuplicate: 1, RouteTooLarge: 1, RouteNotWriter: 1,
		RouteWrongTopic: 1, RouteUnknownKind: 1, RouteSigninRate: flood - 4, RouteForwarded: 1 + 4 + 5}
	waitUntil(t, func() error {
		c := f.r.RouterCounts()
		for k, n := range want {
			if c[k]-base[k] != n {
				return fmt.Errorf("%s: %d, want %d (counts %v)", k, c[k]-base[k], n, c)
			}
		}
		return nil
	})
	got := victim.receive(4+5, 2*time.Second)
	if extra := victim.receive(1, time.Second); len(extra) > 0 {
		got = append(got, extra...)
	}
	signin, after := 0, 0
	for _, b := range got {
		e, err := ephemeral.Parse(b)
		if err != nil {
			t.Fatalf("the victim got an envelope that does not parse: %v", err)
		}
		switch {
		case e.KeyKind == kindInvite || e.KeyKind == kindPassword:
			signin++
		case e.KeyKind == kindMembers && e.Sender == ephemeral.PublicKey(w.key()):
			after++
		default:
			t.Errorf("the victim got an envelope of kind %d from %x", e.KeyKind, e.Sender[:4])
		}
	}
	if signin != 4 || after != 5 {
		t.Errorf("the victim got %d sign-in envelopes (want the burst, 4) and %d of the writer's (want 5)", signin, after)
	}
}

// TestRouterSigninRatePerSpace: many neighbours together are held to the
// space's sign-in rate.
func TestRouterSigninRatePerSpace(t *testing.T) {
	lim := RouterLimits{SigninPerPeer: 0.001, SigninPerPeerBurst: 3, SigninPerSpace: 0.001, SigninPerSpaceBurst: 5}
	f := newRouterFixture(t, lim)
	w := newSender(t)
	f.src.writers[w.key()] = true
	victim := newRoutedPeer(t, f.relay, f.name)
	var evil []*routedPeer
	for range 3 {
		p := newRoutedPeer(t, f.relay, f.name)
		f.meshed(t, w, p, victim)
		evil = append(evil, p)
	}
	base := f.r.RouterCounts()
	for _, p := range evil {
		for i := range 3 {
			_, s := newSender(t).envelope(t, f.topic, kindPassword, fmt.Sprint("join ", i))
			p.publish(t, s)
		}
	}
	waitUntil(t, func() error {
		c := f.r.RouterCounts()
		if fw, rl := c[RouteForwarded]-base[RouteForwarded], c[RouteSigninRate]-base[RouteSigninRate]; fw != 5 || rl != 4 {
			return fmt.Errorf("forwarded %d (want 5), over the rate %d (want 4); every count since: %v", fw, rl, c)
		}
		return nil
	})
}

// TestRouterFollowsSpaces: the router joins the topic of a space the
// source starts serving and leaves one it stops serving.
func TestRouterFollowsSpaces(t *testing.T) {
	f := newRouterFixture(t, RouterLimits{})
	var id2 auth.SpaceID
	rand.Read(id2[:])
	f.src.set([]auth.SpaceID{f.id, id2})
	waitUntil(t, func() error {
		if got := f.r.Routed(); len(got) != 2 {
			return fmt.Errorf("routed %d", len(got))
		}
		return nil
	})
	f.src.set([]auth.SpaceID{id2})
	waitUntil(t, func() error {
		if got := f.r.Routed(); len(got) != 1 || got[0] != id2 {
			return fmt.Errorf("routed %v", got)
		}
		if slices.Contains(f.r.PubSub().GetTopics(), f.name) {
			return fmt.Errorf("still in %s", f.name)
		}
		return nil
	})
}

// TestRouterOnEnvelope: the hook gets each forwarded envelope once, with
// its space.
func TestRouterOnEnvelope(t *testing.T) {
	f := newRouterFixture(t, RouterLimits{})
	var mu sync.Mutex
	var got []Accepted
	f.r.OnEnvelope(func(a Accepted) {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	})
	a, b := newRoutedPeer(t, f.relay, f.name), newRoutedPeer(t, f.relay, f.name)
	w := newSender(t)
	f.src.writers[w.key()] = true
	f.meshed(t, w, a, b)
	mu.Lock()
	got = nil
	mu.Unlock()
	e, env := w.envelope(t, f.topic, kindMembers, "for the mailbox")
	a.publish(t, env)
	// The same envelope from the other device, re-encoded: the seen-set.
	b.publish(t, protowire.AppendBytes(protowire.AppendTag(slices.Clone(env), 99, protowire.BytesType), []byte("again")))
	e2, env2 := w.envelope(t, f.topic, kindMembers, "and another")
	waitUntil(t, func() error {
		if f.r.RouterCounts()[RouteDuplicate] != 1 {
			return fmt.Errorf("duplicates: %d", f.r.RouterCounts()[RouteDuplicate])
		}
		return nil
	})
	a.publish(t, env2)
	waitUntil(t, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || got[0].Space != f.id || got[0].Envelope.ID != e.ID || got[1].Envelope.ID != e2.ID ||
			(got[0].From != a.h.ID() && got[0].From != b.h.ID()) || got[1].From != a.h.ID() {
			return fmt.Errorf("hook got %d envelopes", len(got))
		}
		return nil
	})
}

// TestRouterBansForgers: a neighbour that hands over forged envelopes
// (each a signature check for the relay) is banned at MaxRejects: the
// relay checks no more of them, forwards nothing of it, even a genuine
// envelope, and still forwards another neighbour's.
func TestRouterBansForgers(t *testing.T) {
	f := newRouterFixture(t, RouterLimits{MaxRejects: 5})
	evil, victim, honest := newRoutedPeer(t, f.relay, f.name), newRoutedPeer(t, f.relay, f.name), newRoutedPeer(t, f.relay, f.name)
	w := newSender(t)
	f.src.writers[w.key()] = true
	f.meshed(t, w, evil, victim)
	f.meshed(t, w, honest, victim)
	base := f.r.RouterCounts()
	const flood = 200
	for i := range flood {
		e, _ := w.envelope(t, f.topic, kindMembers, fmt.Sprint("forged ", i))
		e.Ciphertext[0] ^= 1
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := evil.pt.Publish(context.Background(), b); err != nil {
			break // gossipsub may already have dropped the relay
		}
	}
	waitUntil(t, func() error {
		if n := f.r.Bans(); n != 1 {
			return fmt.Errorf("bans: %v", n)
		}
		return nil
	})
	if n := f.r.RouterCounts()[RouteForged] - base[RouteForged]; n != 5 {
		t.Errorf("the relay checked %d forged envelopes, want 5 (MaxRejects)", n)
	}
	// A genuine envelope from the banned neighbour goes nowhere; the
	// honest neighbour's go on.
	_, g := w.envelope(t, f.topic, kindMembers, "from the banned")
	evil.pt.Publish(context.Background(), g)
	_, h := w.envelope(t, f.topic, kindMembers, "from the honest")
	honest.publish(t, h)
	got := victim.receive(2, 2*time.Second)
	if len(got) != 1 || string(got[0]) != string(h) {
		t.Errorf("the victim got %d envelopes, want only the honest one", len(got))
	}
	if n := f.r.RouterCounts()[RouteForged] - base[RouteForged]; n != 5 {
		t.Errorf("the relay checked %d forged envelopes after the ban, want 5", n)
	}
}
