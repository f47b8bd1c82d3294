package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/relay"
)

// TestRelayCannotChangeHistory: the relay's operator edits its mirror —
// one byte of each of the last 10 entries of A's feed — while A is
// offline. B, catching up from the relay alone, refuses what it is served
// (a strike against the relay: the entries do not match A's signed head)
// and never shows a value A did not write; once A is back, B converges to
// A's view.
func TestRelayCannotChangeHistory(t *testing.T) {
	ctx := context.Background()
	dirA, dirB, dirR := t.TempDir(), t.TempDir(), t.TempDir()
	rkey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, dirR, rkey)
	a := startDaemon(t, daemonConfig(dirA, "A"))
	b := startDaemon(t, daemonConfig(dirB, "B", a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	const n = 20
	value := func(i int) []byte { return []byte(fmt.Sprintf("written by A: %d", i)) }
	for i := range n {
		if err := a.Put(ctx, info.ID, fmt.Sprint("k", i), value(i)); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := a.Space(info.ID)
	tok, err := a.MirrorToken(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := relay.HandMirrorToken(ctx, a.Host(), r.Host().ID(), tok); err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, a, tok.Space)
	own := ownFeed(t, a, info.ID)
	members, err := a.Members(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	var length uint64
	for _, m := range members {
		if m.Feed == hex.EncodeToString(own[:]) {
			length = m.Length
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// The operator's edit, in the relay's own store.
	st, err := badgerstore.Open(filepath.Join(dirR, relay.MirrorDir))
	if err != nil {
		t.Fatal(err)
	}
	first := length - 10
	var writes []feed.Write
	for i := first; i < length; i++ {
		key := append(append(append([]byte("S"), tok.Space[:]...), "fe"...), own[:]...)
		key = binary.BigEndian.AppendUint64(key, i)
		var v []byte
		if err := st.Scan(key, append(bytes.Clone(key), 0), func(_, val []byte) error { v = bytes.Clone(val); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(v) == 0 {
			t.Fatalf("the relay's store has no entry %d of A's feed", i)
		}
		v[len(v)/2] ^= 0x01
		writes = append(writes, feed.Write{Key: key, Value: v})
	}
	if err := st.Commit(writes); err != nil {
		t.Fatal(err)
	}
	st.Close()
	r = startRelay(t, dirR, rkey)

	reg := prometheus.NewRegistry()
	b, err = node.New(daemonConfig(dirB, "B", r.Addrs()[0].String()+"/p2p/"+r.Host().ID().String()), nil, node.WithMetrics(reg, reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	eventually(t, 60*time.Second, func() error {
		if s := strikes(t, reg); s == 0 {
			return errors.New("B has not refused the relay's edited entries yet")
		}
		return nil
	})
	bm, err := b.Members(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range bm {
		if m.Feed == hex.EncodeToString(own[:]) && m.Length > first {
			t.Fatalf("B holds %d entries of A's feed, past the first edited one (%d)", m.Length, first)
		}
	}
	for i := range n {
		e, err := b.Get(info.ID, fmt.Sprint("k", i))
		if err == nil && len(e.Versions) > 0 && !bytes.Equal(e.Versions[0].Value, value(i)) {
			t.Fatalf("B shows k%d = %q, which A never wrote", i, e.Versions[0].Value)
		}
	}

	// A is back: B gets the true history from it.
	a = startDaemon(t, daemonConfig(dirA, "A"))
	if err := b.Host().Connect(ctx, peer.AddrInfo{ID: a.Host().ID(), Addrs: a.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		if got, _ := b.Space(info.ID); got.Digest != want.Digest {
			return fmt.Errorf("B's view: %d entries, A's %d", got.Entries, want.Entries)
		}
		return nil
	})
	for i := range n {
		e, err := b.Get(info.ID, fmt.Sprint("k", i))
		if err != nil || len(e.Versions) == 0 || !bytes.Equal(e.Versions[0].Value, value(i)) {
			t.Fatalf("B's k%d: %+v %v", i, e, err)
		}
	}
}

// strikes is the total of mycel_sync_strikes_total in reg.
func strikes(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() == "mycel_sync_strikes_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
