package p2p

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/ephemeral"
)

// TestOutsiderKeyFlood: a peer on the topic publishes a flood of validly
// signed envelopes, each by a fresh key of its own, enough to fill the
// receiver's seen-set; then a member's message follows. The receiver's
// Filter trusts the space's writers only (as the node's does), so the
// flood fills the untrusted budget and the member's message is delivered.
func TestOutsiderKeyFlood(t *testing.T) {
	const maxSeen = 64
	member := PublicKeyOf(testSigner())
	f, err := ephemeral.NewFilter(ephemeral.NewMemSeenStore(), ephemeral.Config{
		MaxSeen:      maxSeen,
		MaxPerSender: maxSeen, // the route's probes are the member's too
		Trusted:      func(_ ephemeral.Topic, k ephemeral.PublicKey) bool { return k == member },
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	svc, err := New(h, f, Config{}, WithPubSub(newPubSub(t, h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	c := &node{h: h, svc: svc, filter: f}
	a := newRaw(t)
	connect(t, a.h, c.h)
	sub := subscribe(t, c)
	var p probes
	waitRoute(t, &p, time.Now, func(e *ephemeral.Envelope) { a.publish(t, encode(t, e)) }, sub)

	for i := range 4 * maxSeen {
		_, outsider, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ephemeral.Seal(testKey, outsider, ephemeral.Header{Topic: testTopic, KeyKind: 1}, fmt.Appendf(nil, "flood %d", i), time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		a.publish(t, encode(t, e))
	}
	// The flood reached the Filter: its budget (or, without one, the whole
	// set) is spent, and it refuses more.
	eventually(t, "the flood fills the seen-set's room for outsiders", func() bool { return svc.Stats().Dropped > 0 })
	msg := seal(t, "member's message", time.Now())
	a.publish(t, encode(t, msg))
	got := collect(t, &p, sub, 0, msg.ID)
	var found bool
	for _, m := range got {
		found = found || m.Envelope.ID == msg.ID
	}
	if !found {
		t.Fatal("the member's message was not delivered")
	}
	t.Logf("seen-set: %d IDs after %d flood envelopes; dropped %d", f.Len(), 4*maxSeen, svc.Stats().Dropped)
}

// PublicKeyOf is the ephemeral key of an Ed25519 private key.
func PublicKeyOf(priv ed25519.PrivateKey) ephemeral.PublicKey {
	return ephemeral.PublicKey(priv.Public().(ed25519.PublicKey))
}
