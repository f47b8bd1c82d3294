package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
)

func captureLog(buf *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestCloseStoresHeads: a node closed cleanly stores its feeds' heads, so
// that the next start does not sign them again as after a crash.
func TestCloseStoresHeads(t *testing.T) {
	cfg := loopbackConfig(t)
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := n.CreateSpace(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := n.Put(ctx, info.ID, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	n, err = New(cfg, captureLog(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if s := logs.String(); strings.Contains(s, "before a crash") {
		t.Fatalf("a clean restart was taken for a crash:\n%s", s)
	}
	if got, err := n.Space(info.ID); err != nil || got.Keys != 3 {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
}

// TestDamagedStoreRefused: a node whose store lost its MANIFEST refuses
// to start, saying so and what to do, and its keys survive in KeysDir.
func TestDamagedStoreRefused(t *testing.T) {
	cfg := loopbackConfig(t)
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.CreateSpace(context.Background(), "s"); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	keys, _ := os.ReadDir(filepath.Join(cfg.DataDir, KeysDir))
	if len(keys) != 2 { // the space record and the keyring
		t.Fatalf("%d key records kept, want 2", len(keys))
	}
	if err := os.Remove(filepath.Join(cfg.DataDir, StoreDir, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, nil)
	if !errors.Is(err, ErrStoreDamaged) || !errors.Is(err, badgerstore.ErrDamaged) ||
		!strings.Contains(err.Error(), "mycel repair") || !strings.Contains(err.Error(), cfg.DataDir) {
		t.Fatalf("New on a damaged store: %v", err)
	}
}

// TestCheckStore: CheckStore passes a healthy store, every feed verified
// and the stored view equal to the one rebuilt from the feeds, and reports
// a view record that changed.
func TestCheckStore(t *testing.T) {
	cfg := loopbackConfig(t)
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := n.CreateSpace(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := n.Put(ctx, info.ID, fmt.Sprintf("k%02d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := CheckStore(cfg.DataDir, nil)
	if err != nil || len(rep.Damaged) > 0 || rep.Feeds != 1 || rep.Entries != 51 || rep.Verified != 51 ||
		len(rep.Views) != 1 || rep.Views[0].Stored != rep.Views[0].Built || rep.Views[0].Keys != 50 {
		t.Fatalf("healthy store: %+v, %v", rep, err)
	}

	st, err := badgerstore.Open(filepath.Join(cfg.DataDir, StoreDir))
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
	views := append(spacePrefix(sid), 'v') // the space's view, in its namespace
	var key, val []byte
	st.Scan(views, feed.PrefixEnd(views), func(k, v []byte) error {
		if i := len(views) + 8; len(k) > i && k[i] == 'r' { // a key's register: "v" ‖ tag (8) ‖ 'r' ‖ …
			key, val = bytes.Clone(k), bytes.Clone(v)
			return feed.ErrStopScan
		}
		return nil
	})
	val[len(val)/2] ^= 1
	if err := st.Commit([]feed.Write{{Key: key, Value: val}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	rep, err = CheckStore(cfg.DataDir, nil)
	if err != nil || len(rep.Damaged) == 0 {
		t.Fatalf("a view record changed: %+v, %v", rep, err)
	}
	t.Logf("found: %v", rep.Damaged)
}
