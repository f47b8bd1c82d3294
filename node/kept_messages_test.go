package node

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/internal/clock"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/messages"
	"github.com/mycelsync/mycel/relay"
)

// offsetClock is the real clock shifted by d: a device that comes back
// d later, while the relay and the other devices stay on the real clock.
type offsetClock struct{ d time.Duration }

func (c offsetClock) Now() time.Time                         { return time.Now().Add(c.d) }
func (c offsetClock) NewTicker(d time.Duration) clock.Ticker { return clock.Real().NewTicker(d) }

// apiOf serves n's API over loopback and returns a client of it.
func apiOf(t *testing.T, n *Node) *api.Client {
	t.Helper()
	srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: n, Token: "t"}))
	t.Cleanup(srv.Close)
	c, err := api.NewClient(srv.URL, "t", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// listenAPI opens an SSE listener of topic on c once the space is served.
func listenAPI(t *testing.T, ctx context.Context, c *api.Client, id, topic string) <-chan api.Message {
	t.Helper()
	var ch <-chan api.Message
	eventually(t, 60*time.Second, func() error {
		var err error
		ch, _, err = c.Listen(ctx, id, topic)
		return err
	})
	return ch
}

func nextMsg(t *testing.T, ch <-chan api.Message, what string) api.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the stream ended", what)
		}
		return m
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: nothing after 60 s", what)
	}
	return api.Message{}
}

// TestKeptMessagesWhileOffline: A sends 3 kept app messages (API keep:
// true) and one that is not while B's daemon is stopped; B comes back an
// hour later (by its clock) with only the relay in common, and its API's
// SSE stream delivers the 3 kept messages once, in order, with their
// original time and stored: true, and not the other. A kept envelope
// replayed into the mailbox (re-deposited once B took it) is not
// delivered again after B restarts once more, a day later.
func TestKeptMessagesWhileOffline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	raddr, rid := r.Addrs()[0].String(), r.Host().ID()
	ca := named(loopbackConfig(t), "A")
	ca.Relays = []string{raddr}
	a := startNode(t, ca)
	cb := named(loopbackConfig(t, directAddr(t, a)), "B")
	cb.Relays = []string{raddr}
	b, err := New(cb, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := a.CreateSpace(ctx, "kept")
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
	sid, bFeed := ma.sp.ID(), mb.sp.Feed()
	eventually(t, 60*time.Second, func() error {
		ws, _ := r.Mirror().Writers(sid)
		if !slices.Contains(ws, ma.sp.Feed()) || !slices.Contains(ws, bFeed) {
			return fmt.Errorf("the relay follows %d writers", len(ws))
		}
		return nil
	})
	// B goes offline; A clears what the mailbox held of sign-in.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitRelay(t, a, "reserved", func(r api.Relay) bool { return r.Connected && r.ReservedUntil != nil })
	a.fetchMailbox(ctx, ma, rid)
	before := r.Mailbox().Counts().Kept

	ac := apiOf(t, a)
	if err := ac.Send(ctx, info.ID, "chat", []byte("not kept")); err != nil {
		t.Fatal(err)
	}
	var sent []time.Time
	for i := range 3 {
		sent = append(sent, time.Now().Truncate(time.Millisecond))
		if err := ac.SendKept(ctx, info.ID, "chat", fmt.Appendf(nil, "kept %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	sent = append(sent, time.Now())
	// And one deposited by hand, to be replayed later.
	_, raw := sealKept(t, ma, "deposited")
	if errs, err := relay.DepositMailbox(ctx, a.host, rid, sid, [][]byte{raw}); err != nil || errs[0] != nil {
		t.Fatalf("deposit: %v %v", errs, err)
	}
	eventually(t, 30*time.Second, func() error {
		if k := r.Mailbox().Counts().Kept; k < before+4 {
			return fmt.Errorf("the relay keeps %d envelopes, %d before", k, before)
		}
		return nil
	})

	// B comes back an hour later, alone with the relay.
	cb2 := *cb
	cb2.Peers = nil
	b2, err := New(&cb2, nil, WithClock(offsetClock{time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	got := listenAPI(t, ctx, apiOf(t, b2), info.ID, "chat")
	var last time.Time
	for i := range 3 {
		m := nextMsg(t, got, fmt.Sprintf("kept %d", i))
		if want := fmt.Sprintf("kept %d", i); string(m.Data) != want || !m.Stored || !m.Kept || m.Name != "A" {
			t.Fatalf("message %d: %+v, want %q stored and kept from A", i, m, want)
		}
		if m.Time.Before(sent[i]) || m.Time.After(sent[i+1]) || m.Time.Before(last) {
			t.Fatalf("message %d at %v, sent between %v and %v", i, m.Time, sent[i], sent[i+1])
		}
		last = m.Time
	}
	if m := nextMsg(t, got, "deposited"); string(m.Data) != "deposited" || !m.Stored {
		t.Fatalf("then %+v, want the deposited message", m)
	}
	// What A takes from here on, and B's taking of the 3, empty the mailbox.
	eventually(t, 30*time.Second, func() error {
		a.fetchMailbox(ctx, ma, rid)
		if k := r.Mailbox().Counts().Kept; k != 0 {
			return fmt.Errorf("the relay keeps %d envelopes", k)
		}
		return nil
	})
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}

	// A replay: the kept envelope B took, deposited again (the relay
	// deleted it once B took it, and it is still within the relay's
	// window), then a new one.
	_, rawFresh := sealKept(t, ma, "fresh")
	if errs, err := relay.DepositMailbox(ctx, a.host, rid, sid, [][]byte{raw, rawFresh}); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("deposit: %v %v", errs, err)
	}

	// B back a day later: the replay is dropped, the new one delivered,
	// and none of the 3 again.
	b3, err := New(&cb2, nil, WithClock(offsetClock{24 * time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b3.Close() })
	got = listenAPI(t, ctx, apiOf(t, b3), info.ID, "chat")
	if m := nextMsg(t, got, "after a restart"); string(m.Data) != "fresh" || !m.Stored {
		t.Fatalf("after a restart B got %+v first, want the fresh message", m)
	}
	select {
	case m := <-got:
		t.Fatalf("then %+v", m)
	default:
	}
}

// sealKept seals an app message of A as a kept one (key kind 4), stamped
// now, and returns it with its encoding.
func sealKept(t *testing.T, m *openSpace, text string) (*ephemeral.Envelope, []byte) {
	t.Helper()
	plain, err := messages.Body{Kind: messages.KindApp, Topic: "chat", Data: []byte(text)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	kid, k, err := m.sp.EphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ephemeral.Seal(k, m.sp.WriterKey(), ephemeral.Header{Topic: m.channel().topic, KeyKind: messages.KeyKindKept, KeyID: kid[:]}, plain, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return e, raw
}

// TestStoredHeldForListener: a message from a mailbox that arrives while
// no app listens (the daemon fetches on connecting, before the app is
// back) goes to the next listener of its topic, once; a live one is not
// held; at most ListenBuffer are held, the oldest dropped first.
func TestStoredHeldForListener(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := startNode(t, loopbackConfig(t))
	info, err := n.CreateSpace(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	_, c, err := n.servedChannel(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	buf := n.limits.Ephemeral.ListenBuffer
	c.deliver(api.Message{Topic: "chat", Data: []byte("live")})
	c.deliver(api.Message{Topic: "chat", Data: []byte("stored"), Stored: true})
	ch, _, err := n.Listen(ctx, info.ID, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 1 {
		t.Fatalf("the listener got %d held messages, want the stored one", len(ch))
	}
	if m := <-ch; string(m.Data) != "stored" || !m.Stored {
		t.Fatalf("held: %+v", m)
	}
	// Another topic's, while "chat" has a listener: held for its own
	// topic's; beyond the bound the oldest goes.
	for i := range buf + 1 {
		c.deliver(api.Message{Topic: "other", Data: fmt.Appendf(nil, "stored %d", i), Stored: true})
	}
	other, _, err := n.Listen(ctx, info.ID, "other")
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != buf || len(ch) != 0 {
		t.Fatalf("the other topic's listener got %d held messages, want %d; the first %d", len(other), buf, len(ch))
	}
	for i := range buf {
		if m, want := <-other, fmt.Sprintf("stored %d", i+1); string(m.Data) != want {
			t.Fatalf("held message %d: %q, want %q", i, m.Data, want)
		}
	}
	again, _, err := n.Listen(ctx, info.ID, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("a second listener got %d held messages again", len(again))
	}
}

// TestStoredWaitsForSender: a kept message that a mailbox hands over
// from a device this one does not know as a member yet (C was added while
// B was offline, and B fetched before it synced) is not lost: it waits
// and is delivered, once, when the sync brings C's add.
func TestStoredWaitsForSender(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := startNode(t, named(loopbackConfig(t), "A"))
	cb := named(loopbackConfig(t, directAddr(t, a)), "B")
	b, err := New(cb, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := a.CreateSpace(ctx, "waits")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID, "B")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := startNode(t, named(loopbackConfig(t, directAddr(t, a)), "C"))
	approve(t, a, c, info.ID, "C")
	mc, err := c.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	var e *ephemeral.Envelope
	eventually(t, 30*time.Second, func() error {
		if mc.channel() == nil {
			return fmt.Errorf("C does not serve the space yet")
		}
		return nil
	})
	e, _ = sealKept(t, mc, "from C")

	// B back with no peer: it knows nothing of C yet.
	cb2 := *cb
	cb2.Peers = nil
	b2 := startNode(t, &cb2)
	mb, err := b2.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ch *channel
	eventually(t, 30*time.Second, func() error {
		if ch = mb.channel(); ch == nil {
			return fmt.Errorf("B does not serve the space yet")
		}
		return nil
	})
	if mb.sp.IsDevice(mc.sp.Feed()) {
		t.Fatal("B knows C already")
	}
	got, _, err := b2.Listen(ctx, info.ID, "chat")
	if err != nil {
		t.Fatal(err)
	}
	b2.takeStored(ch, a.host.ID(), []*ephemeral.Envelope{e})
	if len(got) != 0 {
		t.Fatalf("delivered from a device B does not know: %+v", <-got)
	}
	if err := b2.host.Connect(ctx, peer.AddrInfo{ID: a.host.ID(), Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		if !mb.sp.IsDevice(mc.sp.Feed()) {
			return fmt.Errorf("B has not synced C's add yet")
		}
		return nil
	})
	b2.takeStored(ch, a.host.ID(), nil) // the next fetch, empty
	if len(got) != 1 {
		t.Fatalf("after the sync B delivered %d messages, want C's", len(got))
	}
	if m := <-got; string(m.Data) != "from C" || !m.Stored || m.Name != "C" {
		t.Fatalf("got %+v", m)
	}
	b2.takeStored(ch, a.host.ID(), []*ephemeral.Envelope{e}) // from another relay
	if len(got) != 0 {
		t.Fatal("delivered twice")
	}
}
