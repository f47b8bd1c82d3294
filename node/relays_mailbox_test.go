package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
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
	cb := named(loopbackConfig(t, a.Addrs()[0].String()), "B")
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
	// Both writers took both envelopes: the relay keeps none.
	if k := r.Mailbox().Counts().Kept; k != 0 {
		t.Fatalf("the relay keeps %d envelopes", k)
	}
}
