package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
)

// TestTrustedSenders: the node's Filter trusts, on a space's topic, the
// writers of that space only: a key of its own making, or a writer on
// another topic, falls under the untrusted budget.
func TestTrustedSenders(t *testing.T) {
	a := startNode(t, named(loopbackConfig(t), "A"))
	info, err := a.CreateSpace(context.Background(), "chat")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := auth.SpaceIDFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	own, err := hex.DecodeString(info.Feed)
	if err != nil {
		t.Fatal(err)
	}
	topic := ephemeral.Topic(auth.DiscoveryKey(sid))
	writer := ephemeral.PublicKey(own)
	pub, _, _ := ed25519.GenerateKey(nil)
	outsider := ephemeral.PublicKey(pub)
	var other ephemeral.Topic
	other[0] = 1
	for _, tc := range []struct {
		name   string
		topic  ephemeral.Topic
		sender ephemeral.PublicKey
		want   bool
	}{
		{"writer on its space's topic", topic, writer, true},
		{"outsider's key", topic, outsider, false},
		{"writer on another topic", other, writer, false},
	} {
		if got := a.trustedSender(tc.topic, tc.sender); got != tc.want {
			t.Errorf("%s: trusted %v, want %v", tc.name, got, tc.want)
		}
	}
}
