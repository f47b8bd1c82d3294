package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/messages"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/space"
)

// memberSpace is a space whose origin (seed 9) wrote one put, held by a
// node: what the page holds after a first sync.
func memberSpace(t testing.TB, viewed bool) (n *Node, sp []byte, secrets []Secret) {
	t.Helper()
	sp, _ = PublicKey(seed(9))
	secrets = []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	n, err := NewNode([][]byte{sp})
	if err != nil {
		t.Fatal(err)
	}
	e, err := SealEntry(sp, sp, 0, secrets[0], Op{Kind: "put", Key: "k", Value: []byte("v"), HLC: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Append(seed(9), [][]byte{e}); err != nil {
		t.Fatal(err)
	}
	if viewed {
		v, err := n.View(sp, secrets)
		if err != nil || v.Writers != 1 || len(v.KVs) != 1 {
			t.Fatalf("view: %+v, %v", v, err)
		}
	}
	return n, sp, secrets
}

// envelope seals body as signer's members' message of sp under secret at
// now.
func envelope(t testing.TB, sp []byte, secret Secret, signer []byte, body string, now time.Time) []byte {
	t.Helper()
	return envelopeOfKind(t, sp, secret, signer, messages.KeyKindEpoch, body, now)
}

// envelopeOfKind is envelope with another key kind.
func envelopeOfKind(t testing.TB, sp []byte, secret Secret, signer []byte, keyKind uint32, body string, now time.Time) []byte {
	t.Helper()
	id, _ := auth.SpaceIDFromBytes(sp)
	es, _ := epochSecret(secret)
	key, kid, dk := es.EphemeralKey(id), es.KeyID(id), auth.DiscoveryKey(id)
	b, err := SealEnvelope(key[:], signer, dk[:], keyKind, kid[:], []byte(body), now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMembersOpen: the page opens a writer's presence and app messages and
// refuses a replay, a non-writer's envelope (a removed device's, or anyone
// who signs with a key of their own), one under an epoch it does not hold,
// a stale one, one of another space, and a body out of bounds.
func TestMembersOpen(t *testing.T) {
	n, sp, secrets := memberSpace(t, true)
	m, err := n.Members(sp, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Topic(), EphemeralTopicPrefix) {
		t.Fatalf("topic %s", m.Topic())
	}
	now := time.UnixMilli(1_800_000_000_000)
	pres := envelope(t, sp, secrets[0], seed(9), `{"kind":"presence","name":"laptop"}`, now)
	msg, err := m.Open(pres, now.UnixMilli())
	if err != nil || msg.Kind != "presence" || msg.Name != "laptop" || string(msg.Sender) != string(sp) {
		t.Fatalf("a writer's presence: %+v, %v", msg, err)
	}
	app := envelope(t, sp, secrets[0], seed(9), `{"kind":"app","topic":"chat","data":"aGk="}`, now)
	if msg, err := m.Open(app, now.UnixMilli()+1000); err != nil || msg.Topic != "chat" || string(msg.Data) != "hi" {
		t.Fatalf("a writer's app message: %+v, %v", msg, err)
	}
	otherSpace, _ := PublicKey(seed(8))
	for _, c := range []struct {
		name string
		env  []byte
		at   time.Time
	}{
		{"a replay", pres, now.Add(time.Second)},
		{"a non-writer's", envelope(t, sp, secrets[0], seed(7), `{"kind":"presence","name":"intruder"}`, now), now},
		{"another epoch's", envelope(t, sp, Secret{Epoch: 1, Secret: seed(0x66)}, seed(9), `{"kind":"presence","name":"x"}`, now), now},
		{"a stale one", envelope(t, sp, secrets[0], seed(9), `{"kind":"presence","name":"old"}`, now.Add(-6*time.Minute)), now},
		{"another space's", envelope(t, otherSpace, secrets[0], seed(9), `{"kind":"presence","name":"y"}`, now), now},
		{"an app message without a topic", envelope(t, sp, secrets[0], seed(9), `{"kind":"app","data":"aGk="}`, now), now},
		{"a name over space.MaxNameSize", envelope(t, sp, secrets[0], seed(9), `{"kind":"presence","name":"`+strings.Repeat("n", space.MaxNameSize+1)+`"}`, now), now},
		{"a flipped byte", flip(envelope(t, sp, secrets[0], seed(9), `{"kind":"presence","name":"z"}`, now)), now},
	} {
		if msg, err := m.Open(c.env, c.at.UnixMilli()); err == nil {
			t.Errorf("%s envelope opened: %+v", c.name, msg)
		}
	}

	// Before the page computed a view it knows no writer: it opens nothing.
	n2, _, _ := memberSpace(t, false)
	m2, _ := n2.Members(sp, secrets)
	if _, err := m2.Open(pres, now.UnixMilli()); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("without a view: %v", err)
	}
}

// TestMembersOpenKept: a kept app message (key kind 4) heard live from a
// writer is opened and marked kept; one signed by a non-writer, a kept
// presence, a replay and an unknown key kind are refused.
func TestMembersOpenKept(t *testing.T) {
	n, sp, secrets := memberSpace(t, true)
	m, err := n.Members(sp, secrets)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_800_000_000_000)
	kept := envelopeOfKind(t, sp, secrets[0], seed(9), messages.KeyKindKept, `{"kind":"app","topic":"chat","data":"aGk="}`, now)
	msg, err := m.Open(kept, now.UnixMilli())
	if err != nil || !msg.Kept || msg.Kind != "app" || msg.Topic != "chat" || string(msg.Data) != "hi" || string(msg.Sender) != string(sp) {
		t.Fatalf("a writer's kept app message: %+v, %v", msg, err)
	}
	live := envelope(t, sp, secrets[0], seed(9), `{"kind":"app","topic":"chat","data":"aGk="}`, now)
	if msg, err := m.Open(live, now.UnixMilli()); err != nil || msg.Kept {
		t.Fatalf("a writer's live app message: %+v, %v", msg, err)
	}
	nonWriter := envelopeOfKind(t, sp, secrets[0], seed(7), messages.KeyKindKept, `{"kind":"app","topic":"chat","data":"aGk="}`, now)
	if msg, err := m.Open(nonWriter, now.UnixMilli()); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("a non-writer's kept message: %+v, %v", msg, err)
	}
	for _, c := range []struct {
		name string
		env  []byte
	}{
		{"a replay of the kept message", kept},
		{"a kept presence", envelopeOfKind(t, sp, secrets[0], seed(9), messages.KeyKindKept, `{"kind":"presence","name":"laptop"}`, now)},
		{"key kind 5", envelopeOfKind(t, sp, secrets[0], seed(9), 5, `{"kind":"app","topic":"chat","data":"aGk="}`, now)},
	} {
		if msg, err := m.Open(c.env, now.UnixMilli()+1000); err == nil {
			t.Errorf("%s opened: %+v", c.name, msg)
		}
	}
}

// TestSessionMaxFrame: the page's framer takes the core's bound — the
// opening's 4 KiB until the peer's proof verified, the full frame size
// after.
func TestSessionMaxFrame(t *testing.T) {
	n, sp, secrets := memberSpace(t, false)
	b, _ := NewNode([][]byte{sp})
	sa, _ := n.NewSession(SessionConfig{LocalID: []byte("a"), RemoteID: []byte("b"), Nonce: seed(1), Space: sp, Secrets: secrets})
	sb, _ := b.NewSession(SessionConfig{LocalID: []byte("b"), RemoteID: []byte("a"), Nonce: seed(2), Space: sp, Secrets: secrets})
	if sa.MaxFrame() != replication.MaxOpeningFrameSize {
		t.Fatalf("before the proof: %d", sa.MaxFrame())
	}
	if errA, errB := pump(t, sa, sb); errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if sa.MaxFrame() != replication.MaxFrameSize || sb.MaxFrame() != replication.MaxFrameSize {
		t.Fatalf("after the proof: %d, %d", sa.MaxFrame(), sb.MaxFrame())
	}
	va, _ := n.View(sp, secrets)
	vb, _ := b.View(sp, secrets)
	if string(va.Digest) != string(vb.Digest) || len(vb.KVs) != 1 {
		t.Fatalf("views after replication: %x, %x (%d keys)", va.Digest, vb.Digest, len(vb.KVs))
	}
}

// FuzzMembersOpen opens arbitrary bytes as a members' envelope from
// gossipsub: whatever they hold, Open returns a message or an error, and a
// message it returns is a writer's, of this space's topic.
func FuzzMembersOpen(f *testing.F) {
	n, sp, secrets := memberSpace(f, true)
	now := time.UnixMilli(1_800_000_000_000)
	f.Add(envelope(f, sp, secrets[0], seed(9), `{"kind":"presence","name":"laptop"}`, now))
	f.Add(envelope(f, sp, secrets[0], seed(9), `{"kind":"app","topic":"chat","data":"aGk="}`, now))
	f.Add(envelope(f, sp, secrets[0], seed(7), `{"kind":"presence"}`, now))
	f.Add(envelopeOfKind(f, sp, secrets[0], seed(9), messages.KeyKindKept, `{"kind":"app","topic":"chat","data":"aGk="}`, now))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := n.Members(sp, secrets)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := m.Open(b, now.UnixMilli())
		if err == nil && string(msg.Sender) != string(sp) {
			t.Fatalf("opened a message of a non-writer %x", msg.Sender)
		}
	})
}
