package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
)

// TestSpacesApart plays the cross-space leak over real hosts: H is in
// spaces X and Y, M only in X. M writes an add-writer op in X naming the
// feed key H writes with in Y. The op counts (M is a writer of X), so H
// reads that key as a feed of X — but X's feeds live in X's namespace of
// H's store, where H's Y feed is not: H offers and serves none of it, and M
// gets nothing of Y, while X itself still replicates.
func TestSpacesApart(t *testing.T) {
	ctx := context.Background()
	h := startNode(t, loopbackConfig(t))
	m := startNode(t, loopbackConfig(t, h.Addrs()[0].String()))

	y, err := h.CreateSpace(ctx, "y")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := h.Put(ctx, y.ID, fmt.Sprintf("y/%d", i), []byte("secret of Y")); err != nil {
			t.Fatal(err)
		}
	}
	x, err := h.CreateSpace(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, h, m, x.ID, "M")
	waitWriters(t, x.ID, m)

	// M names H's Y feed in X.
	dk, err := auth.GenerateDeviceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	addWriter(t, m, x.ID, y.Feed, "not a device", dk)
	var hy feed.PublicKey
	b, _ := hex.DecodeString(y.Feed)
	copy(hy[:], b)
	hx, err := h.opened(x.ID)
	if err != nil {
		t.Fatal(err)
	}
	// H applies M's add: the key is a feed of X for H now.
	eventually(t, 30*time.Second, func() error {
		if !hx.sp.HasFeed(hy) {
			return fmt.Errorf("H has not applied M's add yet")
		}
		return nil
	})
	// X goes on replicating: a write of H after that reaches M.
	if err := h.Put(ctx, x.ID, "x/after", []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		e, _ := m.Get(x.ID, "x/after")
		if len(e.Versions) == 0 {
			return fmt.Errorf("M lacks H's write in X: %s", feedLengths(m, x.ID))
		}
		return nil
	})
	mx, err := m.opened(x.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := mx.sp.Held(hy); n != 0 {
		t.Fatalf("M holds %d entries of H's feed of space Y through space X", n)
	}
	if n := hx.sp.Held(hy); n != 0 {
		t.Fatalf("H's space X holds %d entries of H's feed of space Y", n)
	}
	// And M's store holds no entry of that feed under any key.
	if n := storeEntriesOf(t, m, hy); n != 0 {
		t.Fatalf("M's store holds %d records of H's feed of space Y", n)
	}
}

// storeEntriesOf counts the keys of n's store that hold entries of feed k,
// in any namespace.
func storeEntriesOf(t *testing.T, n *Node, k feed.PublicKey) int {
	t.Helper()
	count := 0
	err := n.store.Scan(nil, nil, func(key, _ []byte) error {
		for i := 0; i+2+len(k) <= len(key); i++ {
			if key[i] == 'f' && key[i+1] == 'e' && string(key[i+2:i+2+len(k)]) == string(k[:]) {
				count++
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return count
}

// TestIngestRefusesOtherFeeds: a batch of a feed that is not one of the
// space's is refused at ingest and nothing of it is stored.
func TestIngestRefusesOtherFeeds(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, loopbackConfig(t))
	x, err := n.CreateSpace(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	other, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	w, err := other.Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(ctx, []byte("not of x")); err != nil {
		t.Fatal(err)
	}
	b, err := w.Batch(feed.BatchRequest{Want: []feed.Range{{Start: 0, End: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := n.opened(x.ID)
	if err := m.Ingest(w.Key(), b); !errors.Is(err, errNotOfSpace) {
		t.Fatalf("ingest of a feed not of the space: %v", err)
	}
	if n := m.sp.Held(w.Key()); n != 0 {
		t.Fatalf("%d entries stored", n)
	}
}
