package syncnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/replication"
)

const testDeadline = 60 * time.Second

func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func newDB(t testing.TB) *feed.DB {
	t.Helper()
	db, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func pub(priv ed25519.PrivateKey) feed.PublicKey {
	return feed.PublicKey(priv.Public().(ed25519.PublicKey))
}

func newCap(space auth.SpaceID) auth.ReplicationCapability {
	c := auth.ReplicationCapability{Space: space, Epoch: 1}
	rand.Read(c.Key[:])
	return c
}

// appendEntries appends n entries of size bytes to w.
func appendEntries(t testing.TB, w *feed.Writer, n, size int) {
	t.Helper()
	for done := 0; done < n; {
		batch := min(n-done, 500)
		entries := make([][]byte, batch)
		for i := range entries {
			e := fmt.Appendf(nil, "entry %d ", w.Length()+uint64(i))
			entries[i] = append(e, bytes.Repeat([]byte{'.'}, size-len(e))...)
		}
		if _, err := w.Append(context.Background(), entries...); err != nil {
			t.Fatal(err)
		}
		done += batch
	}
}

// sameFeed reports how feed k of got differs from want: head, ranges and
// every entry.
func sameFeed(want, got *feed.DB, k feed.PublicKey) error {
	fw, err := want.Feed(k)
	if err != nil {
		return err
	}
	fg, err := got.Feed(k)
	if err != nil {
		return err
	}
	hw, _ := fw.Head()
	hg, ok := fg.Head()
	if !ok || hg.Length != hw.Length || hg.Root != hw.Root {
		return fmt.Errorf("head: have %d, want %d", hg.Length, hw.Length)
	}
	if !slices.Equal(fw.Ranges(), fg.Ranges()) {
		return fmt.Errorf("ranges: have %v, want %v", fg.Ranges(), fw.Ranges())
	}
	ew, err := fw.GetRange(0, hw.Length)
	if err != nil {
		return err
	}
	eg, err := fg.GetRange(0, hw.Length)
	if err != nil {
		return err
	}
	for i := range ew {
		if !bytes.Equal(ew[i], eg[i]) {
			return fmt.Errorf("entry %d differs", i)
		}
	}
	return nil
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logBuffer collects a replicator's logs for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

func newReplicator(t testing.TB, h host.Host, log *slog.Logger, opts ...Option) *Replicator {
	opts = append([]Option{WithConfig(Config{IdleTimeout: 20 * time.Second, WriteTimeout: 10 * time.Second})}, opts...)
	r := New(h, log, opts...)
	t.Cleanup(func() { r.Close() })
	return r
}

// countingSpace counts the calls that reveal the space's content.
type countingSpace struct {
	Space
	reads atomic.Int64
}

func (c *countingSpace) Model() replication.Model { return countingModel{c.Space.Model(), &c.reads} }

type countingModel struct {
	replication.Model
	reads *atomic.Int64
}

func (m countingModel) Head(k feed.PublicKey) (feed.SignedHead, bool) {
	m.reads.Add(1)
	return m.Model.Head(k)
}

func (m countingModel) Batch(k feed.PublicKey, req feed.BatchRequest) (*feed.Batch, error) {
	m.reads.Add(1)
	return m.Model.Batch(k, req)
}

func (r *Replicator) sessionCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

func (r *Replicator) hasSession(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key := range r.sessions {
		if key.peer == p {
			return true
		}
	}
	return false
}
