package node

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
