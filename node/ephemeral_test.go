package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/messages"
)

// TestEphemeralMessages: A, B and C are members; B and C are connected to
// A only. B sees A and C online; an app message sent on A arrives once at
// B and at C with A as its sender; a message sealed with the space's key
// but signed by a key that is not a writer's is delivered to nobody.
func TestEphemeralMessages(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, named(loopbackConfig(t), "A"))
	peer := a.Addrs()[0].String()
	b := startNode(t, named(loopbackConfig(t, peer), "B"))
	c := startNode(t, named(loopbackConfig(t, peer), "C"))

	info, err := a.CreateSpace(ctx, "chat")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	approve(t, a, b, id, "B")
	approve(t, a, c, id, "C")

	feedOf := func(n *Node) string {
		i, err := n.Space(id)
		if err != nil {
			t.Fatal(err)
		}
		return i.Feed
	}
	fa, fb, fc := feedOf(a), feedOf(b), feedOf(c)
	eventually(t, 60*time.Second, func() error {
		ds, err := b.Devices(id)
		if err != nil {
			return err
		}
		online := map[string]bool{}
		for _, d := range ds {
			if d.Online {
				online[d.Feed] = true
			}
			if d.Online && d.LastSeen == nil {
				return fmt.Errorf("online without last seen: %+v", d)
			}
		}
		if len(ds) != 3 || !online[fa] || !online[fb] || !online[fc] {
			return fmt.Errorf("B's devices: %+v", ds)
		}
		return nil
	})
	for _, d := range mustDevices(t, b, id) {
		if want := map[string]string{fa: "A", fb: "B", fc: "C"}[d.Feed]; d.Name != want || d.Self != (d.Feed == fb) {
			t.Errorf("device %+v: want name %q", d, want)
		}
	}

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	atB, _, err := b.Listen(lctx, id, "chat")
	if err != nil {
		t.Fatal(err)
	}
	atC, _, err := c.Listen(lctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	// A's own listener gets nothing of A's.
	atA, _, err := a.Listen(lctx, id, "")
	if err != nil {
		t.Fatal(err)
	}

	// A non-member that holds the space's ephemeral key (a removed device
	// would) signs with its own key: B and C drop it.
	ma, _ := a.opened(id)
	_, forger, _ := ed25519.GenerateKey(nil)
	kid, key, err := ma.sp.EphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(messages.Body{Kind: messages.KindApp, Topic: "chat", Data: []byte("forged")})
	forged, err := ephemeral.Seal(key, forger, ephemeral.Header{Topic: ephemeral.Topic(auth.DiscoveryKey(ma.sp.ID())), KeyKind: messages.KeyKindEpoch, KeyID: kid[:]}, plain, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ma.channel().sub.Publish(ctx, forged); err != nil {
		t.Fatal(err)
	}

	if err := a.Send(ctx, id, "chat", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan api.Message{"B": atB, "C": atC} {
		select {
		case m := <-ch:
			if m.Sender != fa || m.Topic != "chat" || string(m.Data) != "hello" || m.Name == "" {
				t.Errorf("%s got %+v, want hello from %s", name, m, fa)
			}
			if d := time.Since(m.Time); d < -time.Minute || d > time.Minute {
				t.Errorf("%s: message time %v", name, m.Time)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no message", name)
		}
	}
	// Once: nothing more arrives (no second copy, not the forgery, not
	// A's own message at A). Markers from B and C, sent after, close the
	// window: a listener that gets anything but the markers it expects,
	// before it has them all, got something it should not have.
	for _, m := range []struct {
		n    *Node
		data string
	}{{b, "marker-b"}, {c, "marker-c"}} {
		if err := m.n.Send(ctx, id, "chat", []byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	for name, w := range map[string]struct {
		ch   <-chan api.Message
		want []string
	}{"A": {atA, []string{"marker-b", "marker-c"}}, "B": {atB, []string{"marker-c"}}, "C": {atC, []string{"marker-b"}}} {
		left := map[string]bool{}
		for _, m := range w.want {
			left[m] = true
		}
		for len(left) > 0 {
			select {
			case m := <-w.ch:
				if !left[string(m.Data)] {
					t.Fatalf("%s got %q from %s, want only %v", name, m.Data, m.Sender, w.want)
				}
				delete(left, string(m.Data))
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: markers %v did not arrive", name, left)
			}
		}
	}

	// Bad input is refused before anything is sent.
	if err := a.Send(ctx, id, "", []byte("x")); err == nil {
		t.Error("empty topic accepted")
	}
	if err := a.Send(ctx, id, "t", make([]byte, api.MaxMessageData+1)); err == nil {
		t.Error("oversized message accepted")
	}
}

func mustDevices(t *testing.T, n *Node, id string) []api.Device {
	t.Helper()
	ds, err := n.Devices(id)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
