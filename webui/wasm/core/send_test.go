package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/messages"
)

// daemonOpens opens an envelope as a daemon of the space does: parse,
// signature, the space's topic, a key of the space, a body.
func daemonOpens(t *testing.T, o *origin, b []byte) (*ephemeral.Envelope, messages.Body) {
	t.Helper()
	e, err := ephemeral.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if e.Topic != ephemeral.Topic(auth.DiscoveryKey(o.sp.ID())) {
		t.Fatal("envelope of another topic")
	}
	key, ok := o.sp.EphemeralKeyFor([auth.KeyIDSize]byte(e.KeyID))
	if !ok {
		t.Fatal("sealed under a key the daemon does not hold")
	}
	plain, err := e.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	body, err := messages.Decode(plain)
	if err != nil {
		t.Fatal(err)
	}
	return e, body
}

// TestMembersSendsPresenceAndApp: a page member seals its presence (its
// device name, its approver) and app messages (plain and kept) that a
// daemon of the space opens with the page's feed key as sender and the
// page's time; what the API would refuse is refused here too.
func TestMembersSendsPresenceAndApp(t *testing.T) {
	o := newOrigin(t)
	seed := bytes.Repeat([]byte{9}, 32)
	own, _ := PublicKey(seed)
	dk, _ := auth.GenerateDeviceKey(rand.Reader)
	if err := o.sp.AddWriter(context.Background(), feed.PublicKey(own), "tab", dk.Public()); err != nil {
		t.Fatal(err)
	}
	n := pageMember(t, o, seed, dk, recordOf(t, o.db, o.sp.Feed(), 0, o.sp.Held(o.sp.Feed())))
	if _, err := n.View(o.id(), o.secrets(t)); err != nil {
		t.Fatal(err)
	}
	m, err := n.Members(o.id(), o.secrets(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	b, err := m.Presence(now)
	if err != nil {
		t.Fatal(err)
	}
	e, body := daemonOpens(t, o, b)
	if !bytes.Equal(e.Sender[:], own) || e.Time != now || e.KeyKind != messages.KeyKindEpoch {
		t.Fatalf("presence: sender %x time %d kind %d", e.Sender[:], e.Time, e.KeyKind)
	}
	of := o.sp.Feed()
	if body.Kind != messages.KindPresence || body.Name != "tab" || !bytes.Equal(body.By, of[:]) || messages.CheckPresence(body) != nil {
		t.Fatalf("presence body %+v", body)
	}
	for _, keep := range []bool{false, true} {
		b, err := m.Send("chat", []byte("hi"), keep, now)
		if err != nil {
			t.Fatal(err)
		}
		e, body := daemonOpens(t, o, b)
		want := uint32(messages.KeyKindEpoch)
		if keep {
			want = messages.KeyKindKept
		}
		if e.KeyKind != want || body.Kind != messages.KindApp || body.Topic != "chat" || string(body.Data) != "hi" || !bytes.Equal(e.Sender[:], own) {
			t.Fatalf("keep %v: kind %d body %+v", keep, e.KeyKind, body)
		}
	}
	if _, err := m.Send("", []byte("x"), false, now); err == nil {
		t.Fatal("an app message without a topic was sealed")
	}
	if _, err := m.Send("chat", make([]byte, messages.MaxData+1), false, now); err == nil {
		t.Fatal("an app message over MaxData was sealed")
	}
	if _, err := m.Send(strings.Repeat("t", messages.MaxTopic+1), nil, false, now); err == nil {
		t.Fatal("an app message with a topic over MaxTopic was sealed")
	}
}

// TestMembersSendNotMember: a node that is no member has nothing to
// announce or send.
func TestMembersSendNotMember(t *testing.T) {
	n, sp, secrets := memberSpace(t, true)
	m, err := n.Members(sp, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Presence(time.Now().UnixMilli()); err == nil {
		t.Fatal("a node that is no member announced itself")
	}
	if _, err := m.Send("chat", []byte("x"), false, time.Now().UnixMilli()); err == nil {
		t.Fatal("a node that is no member sent")
	}
}
