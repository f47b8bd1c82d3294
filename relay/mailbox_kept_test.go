package relay

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed/memstore"
)

// keptEnv seals a members' kept app message (key kind 4) for space id.
func keptEnv(t testing.TB, f *mbFixture, id auth.SpaceID, d *device, body string) []byte {
	return envelope(t, id, d, kindKept, memberKID, f.clock.now(), body)
}

// TestMailboxKeptMessages: a writer's kept message is kept and fetched
// once by the other writer; one of a key that is no writer is refused; one
// older than the window is refused (an old envelope cannot be brought
// back); a flood from one member stops at its share, while another member
// of the space and another space still deposit.
func TestMailboxKeptMessages(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{MaxEnvelopesPerSpace: 80})
	id := randomSpace()
	other := randomSpace()
	a, b, c, outsider := newDevice(), newDevice(), newDevice(), newDevice()
	f.spaces.set(id, a, b, c)
	f.spaces.set(other, a, b)

	first := keptEnv(t, f, id, a, "kept")
	f.mustDeposit(t, id, first)
	if errs := f.deposit(t, id, envelope(t, id, outsider, kindKept, memberKID, f.clock.now(), "x")); !errors.Is(errs[0], ErrMailboxForbidden) {
		t.Fatalf("a non-writer's kept message: %v, want forbidden", errs[0])
	}
	if errs := f.deposit(t, id, envelope(t, id, a, kindKept, memberKID, f.clock.now().Add(-ephemeral.Window-time.Millisecond), "old")); !errors.Is(errs[0], ErrMailboxStale) {
		t.Fatalf("a kept message older than the window: %v, want stale", errs[0])
	}
	kept := 1
	for i := range 30 {
		if errs := f.deposit(t, id, keptEnv(t, f, id, a, fmt.Sprint("flood ", i))); errs[0] == nil {
			kept++
		} else if !errors.Is(errs[0], ErrMailboxFull) {
			t.Fatal(errs[0])
		}
	}
	if kept != 10 {
		t.Fatalf("one member kept %d messages, want 10 (an eighth of 80)", kept)
	}
	fromB := keptEnv(t, f, id, b, "another member")
	f.mustDeposit(t, id, fromB)
	f.mustDeposit(t, other, envelope(t, other, a, kindKept, memberKID, f.clock.now(), "another space"))
	got := f.fetchAll(t, id, c)
	if len(got) != 11 || string(got[0]) != string(first) || string(got[10]) != string(fromB) {
		t.Fatalf("C fetched %d envelopes, want A's 10 then B's", len(got))
	}
	if again := f.fetchAll(t, id, c); len(again) != 0 {
		t.Fatalf("C fetched %d again", len(again))
	}
}

// TestMailboxOfferKeepsKept: the router's hook keeps sign-in and kept
// messages, not members' other envelopes (presence, app messages not
// kept).
func TestMailboxOfferKeepsKept(t *testing.T) {
	f := newMailboxFixture(t, memstore.New(), MailboxLimits{})
	id := randomSpace()
	a, b := newDevice(), newDevice()
	f.spaces.set(id, a, b)
	s := serveMailbox(f.mb, loopbackHost(t))
	t.Cleanup(func() { s.Close() })
	parse := func(raw []byte) *ephemeral.Envelope {
		e, err := ephemeral.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	raw := keptEnv(t, f, id, a, "kept")
	s.offer(Accepted{Space: id, Envelope: parse(member(t, id, a, f.clock.now(), "presence"))})
	s.offer(Accepted{Space: id, Envelope: parse(raw)})
	waitUntil(t, func() error {
		if k := f.mb.Counts().Kept; k != 1 {
			return fmt.Errorf("kept %d", k)
		}
		return nil
	})
	sameEnvelopes(t, "B", f.fetchAll(t, id, b), raw)
}

// TestRouterForwardsKept: the router forwards a writer's kept message
// (key kind 4) as it does the members' others, and drops one signed by a
// key that is no writer.
func TestRouterForwardsKept(t *testing.T) {
	f := newRouterFixture(t, RouterLimits{})
	a, b := newRoutedPeer(t, f.relay, f.name), newRoutedPeer(t, f.relay, f.name)
	w, stranger := newSender(t), newSender(t)
	f.src.writers[w.key()] = true
	f.meshed(t, w, a, b)
	base := f.r.RouterCounts()
	_, bad := stranger.envelope(t, f.topic, kindKept, "not a writer")
	a.publish(t, bad)
	_, good := w.envelope(t, f.topic, kindKept, "kept")
	a.publish(t, good)
	got := b.receive(1, 2*time.Second)
	if len(got) != 1 || string(got[0]) != string(good) {
		t.Fatalf("B got %d envelopes, want the writer's kept message", len(got))
	}
	waitUntil(t, func() error {
		c := f.r.RouterCounts()
		if c[RouteNotWriter]-base[RouteNotWriter] != 1 || c[RouteForwarded]-base[RouteForwarded] != 1 {
			return fmt.Errorf("not writer %d, forwarded %d", c[RouteNotWriter]-base[RouteNotWriter], c[RouteForwarded]-base[RouteForwarded])
		}
		return nil
	})
}
