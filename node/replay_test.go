package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/node/messages"
)

// TestEphemeralReplay: a member's message replayed to a node — directly,
// over gossip, and after the node restarted — is delivered to its apps
// once.
func TestEphemeralReplay(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, named(loopbackConfig(t), "A"))
	bCfg := named(loopbackConfig(t, a.Addrs()[0].String()), "B")
	b := startNode(t, bCfg)
	info, err := a.CreateSpace(ctx, "chat")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	approve(t, a, b, id, "B")
	waitWriters(t, id, a, b)

	m, err := a.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(data string) *ephemeral.Envelope {
		kid, key, err := m.sp.EphemeralKey()
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := json.Marshal(messages.Body{Kind: messages.KindApp, Topic: "t", Data: []byte(data)})
		e, err := ephemeral.Seal(key, m.sp.WriterKey(), ephemeral.Header{
			Topic: ephemeral.Topic(auth.DiscoveryKey(m.sp.ID())), KeyKind: messages.KeyKindEpoch, KeyID: kid[:],
		}, plain, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	listen := func(n *Node) (<-chan string, context.CancelFunc) {
		lctx, cancel := context.WithCancel(ctx)
		var msgs <-chan string
		eventually(t, 30*time.Second, func() error {
			ch, _, err := n.Listen(lctx, id, "t")
			if err != nil {
				return err
			}
			out := make(chan string, 16)
			go func() {
				for msg := range ch {
					out <- string(msg.Data)
				}
			}()
			msgs = out
			return nil
		})
		return msgs, cancel
	}
	expect := func(msgs <-chan string, want string) {
		t.Helper()
		select {
		case got := <-msgs:
			if got != want {
				t.Fatalf("delivered %q, want %q", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%q not delivered", want)
		}
	}
	nothing := func(msgs <-chan string) {
		t.Helper()
		select {
		case got := <-msgs:
			t.Fatalf("delivered %q again", got)
		case <-time.After(time.Second):
		}
	}

	msgs, cancel := listen(b)
	e := seal("once")
	if err := a.eph.Send(ctx, b.host.ID(), e); err != nil {
		t.Fatal(err)
	}
	expect(msgs, "once")
	if err := a.eph.Send(ctx, b.host.ID(), e); !errors.Is(err, ephemeral.ErrDuplicate) {
		t.Fatalf("replayed directly: %v", err)
	}
	if err := m.channel().sub.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	nothing(msgs)
	cancel()

	// B restarts from its data directory: its seen-set remembers.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startNode(t, bCfg)
	msgs, cancel = listen(b)
	defer cancel()
	// Both sides: A sends on its own connection to B (B listens on a new
	// port, which A's peerstore does not hold, so A cannot dial it), and
	// the listener sees a connection a moment after the dialer.
	eventually(t, 30*time.Second, func() error {
		if len(b.host.Network().ConnsToPeer(a.host.ID())) == 0 || len(a.host.Network().ConnsToPeer(b.host.ID())) == 0 {
			return fmt.Errorf("B not reconnected")
		}
		return nil
	})
	if err := a.eph.Send(ctx, b.host.ID(), e); !errors.Is(err, ephemeral.ErrDuplicate) {
		t.Fatalf("replayed after B's restart: %v", err)
	}
	nothing(msgs)
	if err := a.eph.Send(ctx, b.host.ID(), seal("fresh")); err != nil {
		t.Fatal(err)
	}
	expect(msgs, "fresh")
}
