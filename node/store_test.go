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
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node/api"
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
	cfg, info := stoppedNodeWith50Keys(t)
	rep, err := CheckStore(cfg.DataDir, nil)
	if err != nil || len(rep.Damaged) > 0 || rep.Feeds != 1 || rep.Entries != 51 || rep.Verified != 51 ||
		len(rep.Views) != 1 || rep.Views[0].Stored != rep.Views[0].Built || rep.Views[0].Keys != 50 {
		t.Fatalf("healthy store: %+v, %v", rep, err)
	}

	alterRegister(t, cfg.DataDir, info.ID)
	rep, err = CheckStore(cfg.DataDir, nil)
	if err != nil || len(rep.Damaged) == 0 {
		t.Fatalf("a view record changed: %+v, %v", rep, err)
	}
	t.Logf("found: %v", rep.Damaged)
}

// TestRepairNeedsKeys: without a space record in KeysDir there is nothing
// to fetch back; Repair says so and leaves the store where it is.
func TestRepairNeedsKeys(t *testing.T) {
	cfg := loopbackConfig(t, "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWRBdjMfdg1cXVJt8s5hBx2MbCPY6fJ5ZXTJbBZdo3db9P")
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, StoreDir), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Repair(context.Background(), cfg, nil, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "no space record") {
		t.Fatalf("Repair without keys: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, StoreDir)); err != nil {
		t.Fatalf("the store was moved: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, RepairPendingFile)); err == nil {
		t.Fatal("a repair was marked pending")
	}
}

// TestRepairFromPeer: B, a writer, loses its store's MANIFEST; New
// refuses; Repair fetches everything back from A with B's appends held;
// B then holds A's view and its own feed at the length A holds of it, and
// a write of B's after the repair reaches A (no fork).
func TestRepairFromPeer(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, loopbackConfig(t))
	info, err := a.CreateSpace(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	cfgB := loopbackConfig(t, a.Addrs()[0].String())
	b, err := New(cfgB, nil)
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID, "b")
	for i := range 20 {
		if err := a.Put(ctx, info.ID, fmt.Sprintf("a%02d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() error {
		if sp, _ := b.Space(info.ID); !sp.Writer {
			return fmt.Errorf("B not a writer yet")
		}
		return nil
	})
	for i := range 10 {
		if err := b.Put(ctx, info.ID, fmt.Sprintf("b%02d", i), []byte("y")); err != nil {
			t.Fatal(err)
		}
	}
	same := func(want uint64) error {
		x, _ := a.Space(info.ID)
		y, _ := b.Space(info.ID)
		if x.Digest != y.Digest || x.Entries != want || y.Entries != want {
			return fmt.Errorf("A %d entries %.8s, B %d entries %.8s, want %d", x.Entries, x.Digest, y.Entries, y.Digest, want)
		}
		return nil
	}
	total := uint64(1 + signInEntries + 20 + 10)
	eventually(t, 30*time.Second, func() error { return same(total) })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfgB.DataDir, StoreDir, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfgB, nil); !errors.Is(err, ErrStoreDamaged) {
		t.Fatalf("New on the damaged store: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last RepairProgress
	aside, err := Repair(rctx, cfgB, nil, time.Second, func(p RepairProgress) { last = p })
	if err != nil {
		t.Fatalf("Repair: %v (last progress %+v)", err, last)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Fatalf("damaged store not kept: %v", err)
	}
	b = startNode(t, cfgB)
	eventually(t, 30*time.Second, func() error { return same(total) })
	if err := b.Put(ctx, info.ID, "after", []byte("z")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error { return same(total + 1) })
}

// alterRegister changes a byte of one stored register of space id in a
// stopped node's store, through badger: its checksums hold, the record no
// longer opens.
func alterRegister(t *testing.T, dataDir, id string) {
	t.Helper()
	st, err := badgerstore.Open(filepath.Join(dataDir, StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(id)
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
}

// stoppedNodeWith50Keys returns the config of a stopped node whose space
// info holds k00…k49 = "v".
func stoppedNodeWith50Keys(t *testing.T) (*Config, api.SpaceInfo) {
	t.Helper()
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
	return cfg, info
}

// TestReadOfDamagedView: a stored register that no longer opens makes Get
// and List fail, naming the damage, instead of answering the key as absent
// (a subset of the keys as if it were all of them).
func TestReadOfDamagedView(t *testing.T) {
	cfg, info := stoppedNodeWith50Keys(t)
	alterRegister(t, cfg.DataDir, info.ID)
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	failed := 0
	for i := range 50 {
		e, err := n.Get(info.ID, fmt.Sprintf("k%02d", i))
		switch {
		case err != nil:
			failed++
		case len(e.Versions) != 1 || string(e.Versions[0].Value) != "v":
			t.Errorf("k%02d: %d versions and no error", i, len(e.Versions))
		}
	}
	if failed == 0 {
		t.Error("no Get failed after a register was damaged")
	}
	if page, err := n.List(info.ID, "", "", 100); err == nil {
		t.Errorf("List answered %d of 50 keys without an error", len(page.Entries))
	} else if !strings.Contains(err.Error(), "mycel check") {
		t.Errorf("List: %v, want the damage named", err)
	}
}
