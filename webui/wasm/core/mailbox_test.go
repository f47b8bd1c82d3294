package core

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/messages"
)

// fetchReply encodes a relay's fetch reply (relay/FORMAT.md, "Mailbox").
func fetchReply(more bool, envs ...[]byte) []byte {
	out := []byte{0, 0}
	if more {
		out[1] = 1
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(envs)))
	for _, e := range envs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out
}

// originSeal seals an app message of the origin's device at t.
func originSeal(t *testing.T, o *origin, kind uint32, body messages.Body, at time.Time) []byte {
	t.Helper()
	plain, err := body.Encode()
	if err != nil {
		t.Fatal(err)
	}
	kid, key, err := o.sp.EphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ephemeral.Seal(key, o.sp.WriterKey(), ephemeral.Header{Topic: ephemeral.Topic(auth.DiscoveryKey(o.sp.ID())), KeyKind: kind, KeyID: kid[:]}, plain, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMembersStored: a page member takes a relay's fetch reply: the
// writers' kept app messages, up to a week old, come out once, oldest
// first, Stored and Kept, with their sender's time; a second reply with
// the same envelopes delivers nothing; a presence (key kind 1), a kept
// presence, an envelope of a non-writer and one older than a mailbox
// keeps are refused. Its fetch request is signed by its feed key over
// relay/FORMAT.md's bytes.
func TestMembersStored(t *testing.T) {
	o := newOrigin(t)
	seed := bytes.Repeat([]byte{5}, 32)
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
	now := time.Now()
	app := func(s string) messages.Body {
		return messages.Body{Kind: messages.KindApp, Topic: "chat", Data: []byte(s)}
	}
	newer := originSeal(t, o, messages.KeyKindKept, app("second"), now.Add(-time.Hour))
	older := originSeal(t, o, messages.KeyKindKept, app("first"), now.Add(-48*time.Hour))
	presence := originSeal(t, o, messages.KeyKindEpoch, messages.Body{Kind: messages.KindPresence, Name: "daemon"}, now)
	keptPresence := originSeal(t, o, messages.KeyKindKept, messages.Body{Kind: messages.KindPresence, Name: "daemon"}, now)
	tooOld := originSeal(t, o, messages.KeyKindKept, app("too old"), now.Add(-ephemeral.KeptFor-time.Hour))
	// A stranger's kept message under the space's key.
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	plain, _ := app("stranger").Encode()
	kid, key, _ := o.sp.EphemeralKey()
	se, _ := ephemeral.Seal(key, stranger, ephemeral.Header{Topic: ephemeral.Topic(auth.DiscoveryKey(o.sp.ID())), KeyKind: messages.KeyKindKept, KeyID: kid[:]}, plain, now, nil)
	strangerB, _ := se.Marshal()

	got, more, refused, err := m.Stored(fetchReply(true, newer, presence, older, keptPresence, strangerB, tooOld), now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	of := o.sp.Feed()
	if !more || refused != 4 || len(got) != 2 || string(got[0].Data) != "first" || string(got[1].Data) != "second" {
		t.Fatalf("stored: %d messages %+v, more %v, %d refused", len(got), got, more, refused)
	}
	for _, g := range got {
		if !g.Stored || !g.Kept || !bytes.Equal(g.Sender, of[:]) || g.Kind != messages.KindApp {
			t.Fatalf("stored message %+v", g)
		}
	}
	if got[0].Time != now.Add(-48*time.Hour).UnixMilli() {
		t.Fatalf("the stored message's time %d is not its sender's", got[0].Time)
	}
	again, _, refused, err := m.Stored(fetchReply(false, older, newer), now.UnixMilli())
	if err != nil || len(again) != 0 || refused != 2 {
		t.Fatalf("the same envelopes again: %d delivered, %d refused, %v", len(again), refused, err)
	}
	// Reloaded: the page hands the kept IDs back, and a relay that hands
	// the same envelopes again delivers nothing.
	seen := m.TakeSeen()
	if len(seen) != 3 || len(m.TakeSeen()) != 0 { // the two and the kept presence refused after the Filter
		t.Fatalf("%d seen entries to keep", len(seen))
	}
	for _, e := range seen {
		if ms, err := SeenExpiry(e); err != nil || ms < now.Add(ephemeral.KeptFor-48*time.Hour).UnixMilli() {
			t.Fatalf("seen entry %x: expiry %d, %v", e, ms, err)
		}
	}
	m2, err := n.Members(o.id(), o.secrets(t), seen...)
	if err != nil {
		t.Fatal(err)
	}
	if again, _, _, err := m2.Stored(fetchReply(false, older, newer), now.UnixMilli()); err != nil || len(again) != 0 {
		t.Fatalf("after a reload the same envelopes delivered again: %d, %v", len(again), err)
	}
	fresh, _ := n.Members(o.id(), o.secrets(t))
	if again, _, _, err := fresh.Stored(fetchReply(false, older, newer), now.UnixMilli()); err != nil || len(again) != 2 {
		t.Fatalf("a page without the seen entries: %d delivered, %v", len(again), err)
	}
	if _, err := n.Members(o.id(), o.secrets(t), []byte{1, 2}); err == nil {
		t.Fatal("a malformed seen entry taken")
	}
	if _, _, _, err := m.Stored([]byte{3}, now.UnixMilli()); err == nil {
		t.Fatal("a refusal read as a reply")
	}

	hello := append([]byte{1}, bytes.Repeat([]byte{0xcc}, 32)...)
	relayID, selfID := []byte("relay-peer"), []byte("page-peer")
	req, err := m.MailboxFetch(hello, relayID, selfID)
	if err != nil {
		t.Fatal(err)
	}
	id := o.sp.ID()
	if len(req) != 2+32+32+64 || req[0] != 1 || req[1] != 2 || !bytes.Equal(req[2:34], id[:]) || !bytes.Equal(req[34:66], own) {
		t.Fatalf("fetch request %x", req)
	}
	signed := append([]byte("mycel/mailbox/1\x00"), id[:]...)
	signed = append(append(signed, byte(len(relayID))), relayID...)
	signed = append(append(signed, byte(len(selfID))), selfID...)
	signed = append(signed, hello[1:]...)
	if !ed25519.Verify(ed25519.PublicKey(own), signed, req[66:]) {
		t.Fatal("the fetch request's signature does not verify over relay/FORMAT.md's bytes")
	}
	if _, err := m.MailboxFetch(append([]byte{2}, hello[1:]...), relayID, selfID); err == nil {
		t.Fatal("a hello of another version answered")
	}
}

// TestDecodeMailboxReplyBounds: counts and lengths beyond the bounds, or
// beyond the bytes there are, are refused before anything is allocated.
func TestDecodeMailboxReplyBounds(t *testing.T) {
	for _, b := range [][]byte{
		{},
		{0, 0},
		{0, 2, 0, 0},
		{0, 0, 1, 1},                      // 257 envelopes
		{0, 0, 0, 1, 0, 0, 0, 0},          // an empty envelope
		{0, 0, 0, 1, 0xff, 0xff, 0xff, 1}, // over MaxEnvelopeSize
		{0, 0, 0, 1, 0, 0, 0, 5, 1},       // more than there is
		{0, 0, 0, 0, 9},                   // trailing bytes
	} {
		if _, _, err := DecodeMailboxReply(b); err == nil {
			t.Fatalf("reply %x decoded", b)
		}
	}
	if envs, more, err := DecodeMailboxReply(fetchReply(false, []byte("x"))); err != nil || more || len(envs) != 1 {
		t.Fatalf("a well-formed reply: %v %v %v", envs, more, err)
	}
}

func FuzzDecodeMailboxReply(f *testing.F) {
	f.Add(fetchReply(true, []byte("abc"), []byte("d")))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{4})
	f.Fuzz(func(t *testing.T, b []byte) {
		envs, _, err := DecodeMailboxReply(b)
		if err != nil {
			return
		}
		if len(envs) > mailboxMaxFetch {
			t.Fatalf("%d envelopes", len(envs))
		}
		total := 4
		for _, e := range envs {
			if len(e) == 0 || len(e) > ephemeral.MaxEnvelopeSize {
				t.Fatalf("an envelope of %d bytes", len(e))
			}
			total += 4 + len(e)
		}
		if total != len(b) {
			t.Fatalf("%d bytes accounted for of %d", total, len(b))
		}
	})
}
