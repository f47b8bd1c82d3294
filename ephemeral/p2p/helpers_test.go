package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mycelsync/mycel/ephemeral"
)

// testDeadline bounds every wait of these tests.
const testDeadline = 30 * time.Second

var (
	testTopic = ephemeral.Topic{0xd1, 0x5c, 0x0e}
	testKey   = [ephemeral.KeySize]byte{0x6b, 0x65, 0x79}
)

func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// newPubSub starts gossipsub on h with the package's options and extra,
// stopped at cleanup.
func newPubSub(t testing.TB, h host.Host, extra ...pubsub.Option) *pubsub.PubSub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, append(PubSubOptions(), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// node is a host with a Service over its own gossipsub router.
type node struct {
	h      host.Host
	svc    *Service
	filter *ephemeral.Filter
}

func newNode(t testing.TB, h host.Host, store ephemeral.SeenStore, now func() time.Time, extra ...pubsub.Option) *node {
	t.Helper()
	f, err := ephemeral.NewFilter(store, ephemeral.Config{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ps := newPubSub(t, h, extra...)
	svc, err := New(h, f, Config{}, WithPubSub(ps))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &node{h: h, svc: svc, filter: f}
}

func subscribe(t testing.TB, n *node) *Subscription {
	t.Helper()
	sub, err := n.svc.Subscribe(testTopic)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// raw is a peer on the topic that publishes whatever bytes it is given:
// gossipsub with the package's options, no validator, no Filter. It stands
// for any other node, honest or not.
type raw struct {
	h     host.Host
	topic *pubsub.Topic
}

func newRaw(t testing.TB, extra ...pubsub.Option) *raw {
	t.Helper()
	h := newHost(t)
	ps := newPubSub(t, h, extra...)
	topic, err := ps.Join(TopicName(testTopic), pubsub.WithTopicMessageIdFn(MessageID))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe() // in the mesh; nobody reads, gossipsub drops
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	return &raw{h: h, topic: topic}
}

func (r *raw) publish(t testing.TB, b []byte) {
	t.Helper()
	if err := r.topic.Publish(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

var (
	signerOnce sync.Once
	signer     ed25519.PrivateKey
)

func testSigner() ed25519.PrivateKey {
	signerOnce.Do(func() { _, signer, _ = ed25519.GenerateKey(rand.Reader) })
	return signer
}

func seal(t testing.TB, body string, at time.Time) *ephemeral.Envelope {
	t.Helper()
	e, err := ephemeral.Seal(testKey, testSigner(), ephemeral.Header{Topic: testTopic, KeyKind: 1}, []byte(body), at, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func encode(t testing.TB, e *ephemeral.Envelope) []byte {
	t.Helper()
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reencode returns another valid encoding of the same envelope (an unknown
// field appended): a different gossipsub message ID, the same envelope.
// Replays this way get past gossipsub's seen cache, as after it expired.
func reencode(b []byte) []byte {
	b = protowire.AppendTag(slices.Clone(b), 99, protowire.BytesType)
	return protowire.AppendBytes(b, []byte("again"))
}

// probes remembers the envelopes sent to find out when the mesh works;
// receive skips them.
type probes struct {
	mu  sync.Mutex
	ids map[ephemeral.ID]bool
}

func (p *probes) add(id ephemeral.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids == nil {
		p.ids = make(map[ephemeral.ID]bool)
	}
	p.ids[id] = true
}

func (p *probes) has(id ephemeral.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ids[id]
}

// waitRoute publishes probes (sealed at now()) with publish until sub
// delivers one, within testDeadline.
func waitRoute(t testing.TB, p *probes, now func() time.Time, publish func(*ephemeral.Envelope), sub *Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	for {
		e := seal(t, "probe", now())
		p.add(e.ID)
		publish(e)
		wait, cancelWait := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := sub.Next(wait)
		cancelWait()
		if err == nil && p.has(m.Envelope.ID) {
			return
		}
		if err == nil {
			t.Fatalf("unexpected message %s before the route was up", m.Envelope.ID)
		}
		if ctx.Err() != nil {
			t.Fatal("no route through the line within the deadline")
		}
	}
}

// collect returns the messages sub delivers, probes left out, until every
// envelope of want was delivered (within testDeadline) and then for linger
// more: gossip does not keep order, so a copy may come late.
func collect(t testing.TB, p *probes, sub *Subscription, linger time.Duration, want ...ephemeral.ID) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	var got []Message
	missing := func() bool {
		for _, id := range want {
			if !slices.Contains(ids(got), id) {
				return true
			}
		}
		return false
	}
	for missing() {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v (got %v)", want, err, ids(got))
		}
		if !p.has(m.Envelope.ID) {
			got = append(got, m)
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), linger)
	defer cancel()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return got
		}
		if !p.has(m.Envelope.ID) {
			got = append(got, m)
		}
	}
}

// exactly checks that got holds each of want once and nothing else.
func exactly(t testing.TB, who string, got []Message, want ...ephemeral.ID) {
	t.Helper()
	g := ids(got)
	slices.SortFunc(g, func(a, b ephemeral.ID) int { return bytes.Compare(a[:], b[:]) })
	w := slices.Clone(want)
	slices.SortFunc(w, func(a, b ephemeral.ID) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(g, w) {
		t.Errorf("%s received %v, want each of %v once", who, ids(got), want)
	}
}

// eventually polls cond every 20 ms until it holds or testDeadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(ms []Message) []ephemeral.ID {
	var out []ephemeral.ID
	for _, m := range ms {
		out = append(out, m.Envelope.ID)
	}
	return out
}
