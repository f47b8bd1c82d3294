package space

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
)

var errFault = errors.New("injected storage fault")

// faultStore is a feed.Storage that fails on demand: the nth commit from
// now, once (failCommit), or every read and commit until heal (breakAll).
type faultStore struct {
	feed.Storage
	mu      sync.Mutex
	nth     int  // the nth commit from now fails; 0: none
	broken  bool // every Get, Scan and Commit fails
	commits int  // commits that failed
}

func (f *faultStore) failCommit(nth int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nth = nth
}

func (f *faultStore) breakAll(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken = b
}

func (f *faultStore) Commit(ws []feed.Write) error {
	f.mu.Lock()
	fail := f.broken
	if f.nth > 0 {
		f.nth--
		fail = fail || f.nth == 0
	}
	if fail {
		f.commits++
	}
	f.mu.Unlock()
	if fail {
		return errFault
	}
	return f.Storage.Commit(ws)
}

func (f *faultStore) Get(k []byte) ([]byte, error) {
	f.mu.Lock()
	broken := f.broken
	f.mu.Unlock()
	if broken {
		return nil, errFault
	}
	return f.Storage.Get(k)
}

func (f *faultStore) Scan(start, end []byte, fn func(k, v []byte) error) error {
	f.mu.Lock()
	broken := f.broken
	f.mu.Unlock()
	if broken {
		return errFault
	}
	return f.Storage.Scan(start, end, fn)
}

// withLimits makes every view opened in the test use lim.
func withLimits(t *testing.T, lim kvLimits) {
	old := defaultKVLimits
	defaultKVLimits = lim
	t.Cleanup(func() { defaultKVLimits = old })
}

// flushEveryOp: every op applied flushes the view, and checkpoints come
// every few ops, so that a failing commit lands in the writes of Put.
var flushEveryOp = kvLimits{
	flushBytes:      1,
	pageBytes:       700,
	commitBytes:     3000,
	commitWrites:    6,
	checkpointOps:   3,
	checkpointBytes: 16 << 10,
	dirtyMax:        25,
	regCacheMax:     16,
}

// faultyDevice is a device whose view (and keyring) are kept in a
// faultStore over the storage that holds its feeds.
func faultyDevice(t *testing.T, name string) (*device, *faultStore) {
	d := newDevice(t, name, nil)
	fs := &faultStore{Storage: d.store}
	d.store = fs
	return d, fs
}

// rebuiltDigest opens the space of d again from its feeds alone, with
// only its keyring copied into a fresh store: the view built from scratch.
func rebuiltDigest(t *testing.T, d *device) ([32]byte, int) {
	t.Helper()
	fresh := memstore.New()
	kr, err := d.store.Get(keyringKey(d.sp.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Commit([]feed.Write{{Key: keyringKey(d.sp.ID()), Value: kr}}); err != nil {
		t.Fatal(err)
	}
	cfg := d.config()
	cfg.Store = fresh
	sp, err := Open(cfg, d.sp.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	return sp.Digest(), sp.Keys()
}

// checkView holds d's view to its feeds: the same digest as a view built
// from scratch, after reopening from storage too, and no error.
func checkView(t *testing.T, d *device, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := value(d.sp, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if err := d.sp.Err(); err != nil {
		t.Fatalf("Err after the storage healed: %v", err)
	}
	digest, keys := rebuiltDigest(t, d)
	if d.sp.Digest() != digest || d.sp.Keys() != keys {
		t.Fatalf("view differs from one rebuilt from the feeds (%d keys, rebuilt %d)", d.sp.Keys(), keys)
	}
	if err := d.sp.Close(); err != nil {
		t.Fatal(err)
	}
	join(t, d, d.sp.ID())
	if d.sp.Digest() != digest || d.sp.Keys() != keys {
		t.Fatal("view reopened from storage differs from one rebuilt from the feeds")
	}
}

// TestPutReportsFailedViewWrite: a commit of the view that fails during a
// Put (the Nth commit from the Put on: the log, a checkpoint's registers,
// the checkpoint's meta) reaches the Put's caller as an error, naming the
// storage's error. Reads refuse until the view is read again; once the
// storage heals, the next Put succeeds and the view holds every entry in
// the feed (the failed Put's too), as a view rebuilt from the feeds does.
func TestPutReportsFailedViewWrite(t *testing.T) {
	withLimits(t, flushEveryOp)
	ctx := context.Background()
	for nth := 1; nth <= 4; nth++ {
		t.Run(fmt.Sprint("commit", nth), func(t *testing.T) {
			d, fs := faultyDevice(t, "Laptop")
			create(t, d)
			want := map[string]string{}
			for i := range 5 {
				k, v := fmt.Sprint("k", i), fmt.Sprint("v", i)
				if err := d.sp.Put(ctx, k, []byte(v)); err != nil {
					t.Fatal(err)
				}
				want[k] = v
			}
			fs.failCommit(nth)
			var err error
			for i := 0; err == nil && i < 10; i++ {
				k, v := fmt.Sprint("f", i), fmt.Sprint("w", i)
				err = d.sp.Put(ctx, k, []byte(v))
				want[k] = v // in the feed, failed or not
			}
			if !errors.Is(err, ErrViewStorage) || !errors.Is(err, errFault) {
				t.Fatalf("Put with the view's %dth commit failing: %v, want ErrViewStorage and the storage's error", nth, err)
			}
			t.Logf("Put: %v", err)
			if err := d.sp.Err(); !errors.Is(err, errFault) {
				t.Fatalf("Err after a failed write: %v, want the storage's error", err)
			}
			if err := d.sp.Put(ctx, "after", []byte("x")); err != nil {
				t.Fatalf("Put once the storage healed: %v", err)
			}
			want["after"] = "x"
			checkView(t, d, want)
		})
	}
}

// TestWritesReportBrokenViewStorage: every write (Put, PutMany, Delete,
// AddWriter, RemoveWriter, Rotate) reports a view whose storage fails
// both reads and writes, the membership ops too, which read the op log
// back to recompute what a removal voids. Once the storage heals, the
// view is the one rebuilt from the feeds.
func TestWritesReportBrokenViewStorage(t *testing.T) {
	withLimits(t, flushEveryOp)
	ctx := context.Background()
	a, fs := faultyDevice(t, "Laptop")
	create(t, a)
	b, c := newDevice(t, "Phone", nil), newDevice(t, "Tablet", nil)
	want := map[string]string{}
	writes := []struct {
		name string
		do   func() error
	}{
		{"Put", func() error { want["p"] = "1"; return a.sp.Put(ctx, "p", []byte("1")) }},
		{"PutMany", func() error {
			want["m1"], want["m2"] = "1", "2"
			return a.sp.PutMany(ctx, []KV{{"m1", []byte("1")}, {"m2", []byte("2")}})
		}},
		{"Delete", func() error { want["p"] = ""; return a.sp.Delete(ctx, "p") }},
		{"AddWriter", func() error { return a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()) }},
		{"AddWriter", func() error { return a.sp.AddWriter(ctx, c.feedKey(), c.name, c.key.Public()) }},
		{"Rotate", func() error { return a.sp.Rotate(ctx) }},
		{"RemoveWriter", func() error { return a.sp.RemoveWriter(ctx, b.feedKey()) }},
	}
	for i, w := range writes {
		// Some data between the membership ops, for a removal to void.
		k := fmt.Sprint("d", i)
		if err := a.sp.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		want[k] = k
		fs.breakAll(true)
		err := w.do()
		fs.breakAll(false)
		if !errors.Is(err, ErrViewStorage) || !errors.Is(err, errFault) {
			t.Fatalf("%s with the view's storage failing: %v, want ErrViewStorage and the storage's error", w.name, err)
		}
	}
	checkView(t, a, want)
	devices := a.sp.Devices()
	if len(devices) != 2 || devices[1].Feed != c.feedKey() {
		t.Fatalf("writers after the failed writes: %+v, want the origin and the tablet", devices)
	}
}

// TestRefreshReportsFailedViewWrite: a Refresh whose flush of the view
// fails returns the storage's error (it was logged and dropped); a later
// Refresh, once the storage heals, brings the view to the writer's.
func TestRefreshReportsFailedViewWrite(t *testing.T) {
	withLimits(t, flushEveryOp)
	ctx := context.Background()
	a := newDevice(t, "Laptop", nil)
	b, fs := faultyDevice(t, "Phone")
	create(t, a)
	join(t, b, a.sp.ID())
	if err := a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, b, a)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		for i := range 20 {
			k := fmt.Sprint("k", rng.IntN(30))
			if err := a.sp.Put(ctx, k, []byte(fmt.Sprint(round, i))); err != nil {
				t.Fatal(err)
			}
		}
		copyFeeds(t, b, a)
		fs.failCommit(1 + round)
		if _, err := b.sp.Refresh(); !errors.Is(err, ErrViewStorage) || !errors.Is(err, errFault) {
			t.Fatalf("Refresh with the view's commit %d failing: %v, want the storage's error", 1+round, err)
		}
		if b.sp.Digest() != a.sp.Digest() {
			t.Fatal("views differ after the storage healed")
		}
		if _, err := b.sp.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	checkView(t, b, nil)
}

// TestViewStopsOnStorageError: a persisted View whose storage fails stops
// (Apply and Flush return the error, Err reports it) instead of going on
// without the op that failed; reopened, and given the ops again from
// Applied, it equals a view in memory.
func TestViewStopsOnStorageError(t *testing.T) {
	withLimits(t, tinyLimits)
	rng := rand.New(rand.NewPCG(3, 4))
	origin, ops := workload(rng, 4, 400, 40)
	mem := NewView(origin)
	for _, g := range ops {
		mem.Apply(g.feed, g.index, g.op)
	}
	st := &faultStore{Storage: memstore.New()}
	key := [32]byte{7}
	v, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	stops := 0
	for i, g := range ops {
		if i%50 == 25 {
			st.failCommit(1) // the next commit, in this Apply or a later one
		}
		_, err := v.Apply(g.feed, g.index, g.op)
		if err == nil {
			continue
		}
		stops++
		if !errors.Is(err, ErrViewStorage) || !errors.Is(v.Err(), errFault) {
			t.Fatalf("Apply: %v, Err: %v", err, v.Err())
		}
		if _, again := v.Apply(g.feed, g.index, g.op); !errors.Is(again, errFault) {
			t.Fatal("a stopped view applied an op")
		}
		if v, err = OpenView(origin, st, key, nil); err != nil {
			t.Fatal(err)
		}
		// Give again what storage lacks: every op of each feed from
		// Applied on (the ops of a feed come in order in the workload).
		for _, h := range ops[:i+1] {
			if h.index >= v.Applied(h.feed) {
				if _, err := v.Apply(h.feed, h.index, h.op); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if stops == 0 {
		t.Fatal("no commit failed")
	}
	t.Logf("%d ops, the view stopped %d times", len(ops), stops)
	st.failCommit(0)
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	if v.Digest() != mem.Digest() || v.Keys() != mem.Keys() || v.Err() != nil {
		t.Fatalf("after %d stops the view differs from one in memory", stops)
	}
}

// TestDamageStaysReported: once a read of the stored view found a record
// that does not open, Err reports it for as long as the space is open,
// also after a failed flush made the space open its view again (which
// then answers the keys it can read without touching the damage).
func TestDamageStaysReported(t *testing.T) {
	ctx := context.Background()
	d := newDevice(t, "Laptop", nil)
	create(t, d)
	for i := range 10 {
		if err := d.sp.Put(ctx, fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	id := d.sp.ID()
	if err := d.sp.Close(); err != nil {
		t.Fatal(err)
	}
	// Flip a byte in one stored register.
	regs := append(StorePrefixes(id)[1], 'r')
	var w feed.Write
	err := d.store.Scan(regs, feed.PrefixEnd(regs), func(k, v []byte) error {
		w = feed.Write{Key: bytes.Clone(k), Value: bytes.Clone(v)}
		return feed.ErrStopScan
	})
	if err != nil || w.Key == nil {
		t.Fatalf("no register stored: %v", err)
	}
	w.Value[len(w.Value)/2] ^= 1
	if err := d.store.Commit([]feed.Write{w}); err != nil {
		t.Fatal(err)
	}
	join(t, d, id)
	missed := 0
	for i := range 10 {
		if value(d.sp, fmt.Sprint("k", i)) != "v" {
			missed++
		}
	}
	if missed != 1 || d.sp.Err() == nil {
		t.Fatalf("%d keys missed, Err %v: want the damaged one missed and reported", missed, d.sp.Err())
	}
	// No record is written after the damage was read: the flush refuses,
	// and the view stops.
	if _, err := d.sp.Refresh(); !errors.Is(err, ErrViewStorage) {
		t.Fatalf("Refresh after the damage was read: %v", err)
	}
	if value(d.sp, "k0") == "" && value(d.sp, "k1") == "" {
		t.Fatal("the view opened again answers nothing")
	}
	if err := d.sp.Err(); err == nil || !strings.Contains(err.Error(), "mycel check") {
		t.Fatalf("Err after the view was opened again: %v, want the damage still reported", err)
	}
}
