package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
)

// toLayout1 rewrites a closed node's store as the previous version kept
// it: every space's keys at the top of the store, no layout record.
func toLayout1(t *testing.T, dir string) {
	t.Helper()
	st, err := badgerstore.Open(filepath.Join(dir, StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ws []feed.Write
	err = st.Scan([]byte("S"), feed.PrefixEnd([]byte("S")), func(k, v []byte) error {
		ws = append(ws, feed.Write{Key: bytes.Clone(k[1+auth.SpaceIDSize:]), Value: bytes.Clone(v)},
			feed.Write{Key: bytes.Clone(k), Delete: true})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ws = append(ws, feed.Write{Key: []byte(layoutKey), Delete: true})
	for len(ws) > 0 {
		n := min(len(ws), 4096)
		if err := st.Commit(ws[:n]); err != nil {
			t.Fatal(err)
		}
		ws = ws[n:]
	}
}

// TestMigrateLayout1: a store of the previous version (one feed DB for all
// spaces) opens with every space moved into its namespace, its data and
// its own feed kept — except that a feed one space merely named (here X
// names the feed this device writes in Y) is not copied into it.
func TestMigrateLayout1(t *testing.T) {
	ctx := context.Background()
	cfg := loopbackConfig(t)
	h, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := h.CreateSpace(ctx, "y")
	x, _ := h.CreateSpace(ctx, "x")
	for i := range 10 {
		h.Put(ctx, y.ID, fmt.Sprintf("y%d", i), []byte("Y"))
		h.Put(ctx, x.ID, fmt.Sprintf("x%d", i), []byte("X"))
	}
	dk, _ := auth.GenerateDeviceKey(nil)
	addWriter(t, h, x.ID, y.Feed, "named", dk)
	xd, yd := h.spaceDigest(t, x.ID), h.spaceDigest(t, y.ID)
	h.Close()
	toLayout1(t, cfg.DataDir)

	h = startNode(t, cfg)
	if got := h.spaceDigest(t, x.ID); got != xd {
		t.Fatalf("X's view after migration %s, before %s", got, xd)
	}
	if got := h.spaceDigest(t, y.ID); got != yd {
		t.Fatalf("Y's view after migration %s, before %s", got, yd)
	}
	for _, id := range []string{x.ID, y.ID} {
		if err := h.Put(ctx, id, "after", []byte("1")); err != nil {
			t.Fatalf("write after migration: %v", err)
		}
	}
	var hy feed.PublicKey
	b, _ := hex.DecodeString(y.Feed)
	copy(hy[:], b)
	mx, _ := h.opened(x.ID)
	my, _ := h.opened(y.ID)
	if n := mx.sp.Held(hy); n != 0 {
		t.Fatalf("X's namespace holds %d entries of this device's feed in Y", n)
	}
	if n := my.sp.Held(hy); n != 12 {
		t.Fatalf("Y's namespace holds %d entries of its own feed, want 12", n)
	}
	// Nothing of the old layout is left.
	for _, p := range append(oldFeedPrefixes, []byte("sk"), []byte("v")) {
		h.store.Scan(p, feed.PrefixEnd(p), func(k, _ []byte) error {
			t.Errorf("key of the old layout left: %q", k)
			return feed.ErrStopScan
		})
	}
}

func (n *Node) spaceDigest(t *testing.T, id string) string {
	t.Helper()
	i, err := n.Space(id)
	if err != nil {
		t.Fatal(err)
	}
	return i.Digest
}
