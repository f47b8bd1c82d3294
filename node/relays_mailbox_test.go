package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	dto "github.com/prometheus/client_model/go"

	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/messages"
	"github.com/mycelsync/mycel/relay"
)

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// directAddr is one of n's addresses that is not a circuit through a
// relay (over which gossipsub opens no stream).
func directAddr(t *testing.T, n *Node) string {
	t.Helper()
	for _, a := range n.Addrs() {
		if !strings.Contains(a.String(), "p2p-circuit") {
			return a.String()
		}
	}
	t.Fatalf("no direct address in %v", n.Addrs())
	return ""
}

// TestMailboxRepeatsDropped: an envelope that gossipsub delivered and the
// relay's mailbox delivers again reaches the app once (the Filter drops
// the repeat); one that only the mailbox kept reaches it once, and a
// second fetch brings nothing.
func TestMailboxRepeatsDropped(t *testing.T) {
	ctx := context.Background()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(&relay.Config{DataDir: t.TempDir(), LogLevel: "info", Limits: relay.DefaultLimits(),
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	raddr := r.Addrs()[0].String()
	ca := named(loopbackConfig(t), "A")
	ca.Relays = []string{raddr}
	a := startNode(t, ca)
	cb := named(loopbackConfig(t, directAddr(t, a)), "B")
	cb.Relays = []string{raddr}
	b := startNode(t, cb)
	info, err := a.CreateSpace(ctx, "mailbox")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID, "B")
	ma, err := a.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := b.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	sid := ma.sp.ID()
	eventually(t, 60*time.Second, func() error {
		ws, _ := r.Mirror().Writers(sid)
		if !slices.Contains(ws, ma.sp.Feed()) || !slices.Contains(ws, mb.sp.Feed()) {
			return fmt.Errorf("the relay follows %d writers", len(ws))
		}
		return nil
	})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	atB, _, err := b.Listen(lctx, info.ID, "chat")
	if err != nil {
		t.Fatal(err)
	}
	seal := func(text string) (*ephemeral.Envelope, []byte) {
		plain, err := messages.Body{Kind: messages.KindApp, Topic: "chat", Data: []byte(text)}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		kid, k, err := ma.sp.EphemeralKey()
		if err != nil {
			t.Fatal(err)
		}
		c := ma.channel()
		e, err := ephemeral.Seal(k, ma.sp.WriterKey(), ephemeral.Header{Topic: c.topic, KeyKind: messages.KeyKindEpoch, KeyID: kid[:]}, plain, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return e, raw
	}
	next := func(what string) api.Message {
		select {
		case m := <-atB:
			return m
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: nothing", what)
		}
		return api.Message{}
	}
	nothing := func(what string) {
		select {
		case m := <-atB:
			t.Fatalf("%s: got %q", what, m.Data)
		default:
		}
	}

	// Gossipsub first, then the mailbox.
	e1, raw1 := seal("gossiped")
	eventually(t, 30*time.Second, func() error {
		if len(ma.channel().sub.Peers()) == 0 {
			return fmt.Errorf("A has no peer on the topic")
		}
		return nil
	})
	if err := ma.channel().sub.Publish(ctx, e1); err != nil {
		t.Fatal(err)
	}
	if m := next("gossiped"); string(m.Data) != "gossiped" {
		t.Fatalf("got %q", m.Data)
	}
	errs, err := relay.DepositMailbox(ctx, a.host, r.Host().ID(), sid, [][]byte{raw1})
	if err != nil || errs[0] != nil {
		t.Fatalf("deposit: %v %v", errs, err)
	}
	before := counterValue(t, b.stats.mailboxDelivered)
	b.fetchMailbox(ctx, mb, r.Host().ID())
	if got := counterValue(t, b.stats.mailboxDelivered); got != before {
		t.Fatalf("the mailbox delivered %v envelopes gossipsub had brought", got-before)
	}
	nothing("the gossiped envelope from the mailbox")

	// The mailbox only.
	_, raw2 := seal("kept")
	if errs, err := relay.DepositMailbox(ctx, a.host, r.Host().ID(), sid, [][]byte{raw2}); err != nil || errs[0] != nil {
		t.Fatalf("deposit: %v %v", errs, err)
	}
	b.fetchMailbox(ctx, mb, r.Host().ID())
	if m := next("kept"); string(m.Data) != "kept" || m.Sender != fmt.Sprintf("%x", feed.PublicKey(ma.sp.Feed())) {
		t.Fatalf("got %+v", m)
	}
	b.fetchMailbox(ctx, mb, r.Host().ID())
	nothing("a second fetch")
	if got := counterValue(t, b.stats.mailboxDelivered); got != before+1 {
		t.Fatalf("mailbox deliveries %v, want %v", got, before+1)
	}
	// Once both writers fetched, the relay keeps nothing (B's sign-in
	// envelopes included, which A had not taken yet).
	a.fetchMailbox(ctx, ma, r.Host().ID())
	b.fetchMailbox(ctx, mb, r.Host().ID())
	if k := r.Mailbox().Counts().Kept; k != 0 {
		t.Fatalf("the relay keeps %d envelopes", k)
	}
}

// TestMailboxRelayRestart: through a real relay whose mirror knows the
// writers, an envelope B took is not delivered to B again after the relay
// restarts, and C, which had not fetched, gets it once when it reconnects
// to the restarted relay (the daemon's own fetch on connecting).
func TestMailboxRelayRestart(t *testing.T) {
	ctx := context.Background()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := func(listen string) *relay.Relay {
		r, err := relay.New(&relay.Config{DataDir: dir, LogLevel: "info", Limits: relay.DefaultLimits(),
			Listen: []string{listen}}, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := start("/ip4/127.0.0.1/tcp/0")
	listen := r.Host().Addrs()[0].String()
	raddr := r.Addrs()[0].String()
	var nodes []*Node
	for _, name := range []string{"A", "B", "C"} {
		var peers []string
		if len(nodes) > 0 {
			peers = []string{directAddr(t, nodes[0])}
		}
		cfg := named(loopbackConfig(t, peers...), name)
		cfg.Relays = []string{raddr}
		nodes = append(nodes, startNode(t, cfg))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	info, err := a.CreateSpace(ctx, "restart")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID, "B")
	approve(t, a, c, info.ID, "C")
	var ms []*openSpace
	for _, n := range nodes {
		m, err := n.opened(info.ID)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	sid := ms[0].sp.ID()
	eventually(t, 60*time.Second, func() error {
		ws, _ := r.Mirror().Writers(sid)
		for i, m := range ms {
			if !slices.Contains(ws, m.sp.Feed()) {
				return fmt.Errorf("the relay does not follow writer %d yet", i)
			}
		}
		return nil
	})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	atB, _, err := b.Listen(lctx, info.ID, "chat")
	if err != nil {
		t.Fatal(err)
	}
	atC, _, err := c.Listen(lctx, info.ID, "chat")
	if err != nil {
		t.Fatal(err)
	}
	kid, k, err := ms[0].sp.EphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := messages.Body{Kind: messages.KindApp, Topic: "chat", Data: []byte("kept across a restart")}.Encode()
	e, err := ephemeral.Seal(k, ms[0].sp.WriterKey(), ephemeral.Header{Topic: ms[0].channel().topic, KeyKind: messages.KeyKindEpoch, KeyID: kid[:]}, plain, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := e.Marshal()
	// Deposited only: never published, so the mailbox is its one path.
	if errs, err := relay.DepositMailbox(ctx, a.host, r.Host().ID(), sid, [][]byte{raw}); err != nil || errs[0] != nil {
		t.Fatalf("deposit: %v %v", errs, err)
	}
	b.fetchMailbox(ctx, ms[1], r.Host().ID())
	select {
	case m := <-atB:
		if string(m.Data) != "kept across a restart" {
			t.Fatalf("B got %q", m.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B got nothing from the mailbox")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = start(listen)
	t.Cleanup(func() { r.Close() })
	// C's keeper dials the relay again after backing off, by up to
	// Limits.Net.MaxBackoff between two tries while it was down (a slow
	// restart on a loaded machine is tried late): wait longer than that.
	wait := 2*c.limits.Net.MaxBackoff + c.limits.Net.DialTimeout
	select {
	case m := <-atC:
		if string(m.Data) != "kept across a restart" {
			t.Fatalf("C got %q", m.Data)
		}
	case <-time.After(wait):
		t.Fatalf("C got nothing from the restarted relay in %v", wait)
	}
	// B reconnected and fetched too (as C did); nothing came twice.
	eventually(t, 30*time.Second, func() error {
		return b.host.Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()})
	})
	b.fetchMailbox(ctx, ms[1], r.Host().ID())
	c.fetchMailbox(ctx, ms[2], r.Host().ID())
	select {
	case m := <-atB:
		t.Fatalf("B got %q again", m.Data)
	case m := <-atC:
		t.Fatalf("C got %q again", m.Data)
	default:
	}
}
