package ephemeral

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newFilter(t *testing.T, store SeenStore, c *clock, max int) *Filter {
	t.Helper()
	// One test signer: it may fill the set (TestFloodOfOutsiderKeys tests
	// the budgets).
	f, err := NewFilter(store, Config{Now: c.Now, MaxSeen: max, MaxPerSender: max})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestWindow: |now − t| ≤ 5 min is delivered, once; beyond is dropped.
func TestWindow(t *testing.T) {
	for _, tc := range []struct {
		skew time.Duration
		ok   bool
	}{
		{0, true},
		{4*time.Minute + 59*time.Second, true},
		{-(4*time.Minute + 59*time.Second), true},
		{5 * time.Minute, true},
		{-5 * time.Minute, true},
		{5*time.Minute + time.Millisecond, false},
		{-5*time.Minute - time.Millisecond, false},
		{5*time.Minute + time.Second, false},
		{-(5*time.Minute + time.Second), false},
		{100 * 365 * 24 * time.Hour, false},
	} {
		f := newFilter(t, NewMemSeenStore(), newClock(t0), 0)
		e := seal(t, "hi", t0.Add(tc.skew))
		err := f.Check(e)
		derr := f.Deliver(e)
		if tc.ok {
			if err != nil || derr != nil {
				t.Errorf("skew %v: check %v, deliver %v", tc.skew, err, derr)
			}
			if err := f.Deliver(e); !errors.Is(err, ErrDuplicate) {
				t.Errorf("skew %v: second delivery: %v", tc.skew, err)
			}
		} else if !errors.Is(err, ErrStale) || !errors.Is(derr, ErrStale) {
			t.Errorf("skew %v: check %v, deliver %v, want ErrStale", tc.skew, err, derr)
		}
	}
}

// TestHostileTimes: extreme timestamps are stale, without overflow.
func TestHostileTimes(t *testing.T) {
	f := newFilter(t, NewMemSeenStore(), newClock(t0), 0)
	for _, ms := range []int64{-1 << 63, 1<<63 - 1, 0, -1} {
		e := seal(t, "hi", t0)
		e.Time = ms
		if err := f.Deliver(e); !errors.Is(err, ErrStale) {
			t.Errorf("time %d: %v", ms, err)
		}
	}
}

func TestDeliverOnce(t *testing.T) {
	f := newFilter(t, NewMemSeenStore(), newClock(t0), 0)
	b := marshal(t, seal(t, "hi", t0))
	if _, err := f.Accept(b); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Accept(b); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second: %v", err)
	}
	if err := f.Check(seal(t, "hi", t0)); err != nil {
		t.Fatalf("another envelope: %v", err)
	}
}

// TestConcurrentDeliver: among concurrent deliveries of one envelope,
// exactly one succeeds.
func TestConcurrentDeliver(t *testing.T) {
	for range 20 {
		f := newFilter(t, NewMemSeenStore(), newClock(t0), 0)
		e := seal(t, "hi", t0)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if f.Deliver(e) == nil {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("delivered %d times", ok.Load())
		}
	}
}

func TestRestart(t *testing.T) {
	store := NewMemSeenStore()
	c := newClock(t0)
	f := newFilter(t, store, c, 0)
	e := seal(t, "hi", t0)
	if err := f.Deliver(e); err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(4 * time.Minute))
	f = newFilter(t, store, c, 0)
	if err := f.Deliver(e); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("after restart: %v", err)
	}
}

// TestRemember: a node's own envelopes are recorded without complaint,
// and never delivered back to it.
func TestRemember(t *testing.T) {
	f := newFilter(t, NewMemSeenStore(), newClock(t0), 0)
	e := seal(t, "mine", t0)
	for range 2 {
		if err := f.Remember(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Deliver(e); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("own envelope delivered: %v", err)
	}
}

// TestRetention: an ID is kept until its time + 10 minutes, then pruned,
// from memory and from the store.
func TestRetention(t *testing.T) {
	store := NewMemSeenStore()
	c := newClock(t0)
	f := newFilter(t, store, c, 0)
	// Delivered at the far edge of the window: its time is 5 min ahead.
	ahead := seal(t, "ahead", t0.Add(5*time.Minute))
	now := seal(t, "now", t0)
	for _, e := range []*Envelope{ahead, now} {
		if err := f.Deliver(e); err != nil {
			t.Fatal(err)
		}
	}
	// Just before now's expiry both are kept.
	c.Set(t0.Add(Retention - time.Millisecond))
	if err := f.Prune(); err != nil {
		t.Fatal(err)
	}
	if f.Len() != 2 || store.Len() != 2 {
		t.Fatalf("at +10 min − 1 ms: %d in memory, %d stored, want 2", f.Len(), store.Len())
	}
	// At now's expiry it goes; ahead stays until its own time + 10 min.
	c.Set(t0.Add(Retention))
	if err := f.Prune(); err != nil {
		t.Fatal(err)
	}
	if f.Len() != 1 || store.Len() != 1 {
		t.Fatalf("at +10 min: %d in memory, %d stored, want 1", f.Len(), store.Len())
	}
	// Still a duplicate, not stale (|now − its time| = 5 min).
	if err := f.Deliver(ahead); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("ahead at +10 min: %v", err)
	}
	c.Set(t0.Add(5*time.Minute + Retention))
	if err := f.Prune(); err != nil {
		t.Fatal(err)
	}
	if f.Len() != 0 || store.Len() != 0 {
		t.Fatalf("at +15 min: %d in memory, %d stored, want 0", f.Len(), store.Len())
	}
	// Deliver prunes memory by itself, every minute.
	f = newFilter(t, NewMemSeenStore(), c, 0)
	if err := f.Deliver(seal(t, "x", c.Now())); err != nil {
		t.Fatal(err)
	}
	c.Set(c.Now().Add(Retention + pruneEvery))
	if err := f.Deliver(seal(t, "y", c.Now())); err != nil {
		t.Fatal(err)
	}
	if f.Len() != 1 {
		t.Fatalf("Deliver did not prune: %d IDs", f.Len())
	}
}

// TestFull: a full set refuses new envelopes and evicts nothing unexpired;
// once IDs expire it accepts again.
func TestFull(t *testing.T) {
	c := newClock(t0)
	f := newFilter(t, NewMemSeenStore(), c, 3)
	var first []*Envelope
	for i := range 3 {
		e := seal(t, "x", t0.Add(time.Duration(i)*time.Minute))
		first = append(first, e)
		if err := f.Deliver(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Deliver(seal(t, "y", t0)); !errors.Is(err, ErrSeenFull) {
		t.Fatalf("full: %v", err)
	}
	for _, e := range first {
		if err := f.Check(e); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("an unexpired ID was evicted: %v", err)
		}
	}
	// The first expires at t0 + 10 min; the set retries pruning when full.
	c.Set(t0.Add(Retention))
	if err := f.Deliver(seal(t, "z", c.Now())); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if f.Len() != 3 {
		t.Fatalf("%d IDs, want the two unexpired and the new one", f.Len())
	}
}

type failingStore struct {
	*MemSeenStore
	fail    bool
	batches int // AddMany calls
}

var errDisk = errors.New("disk on fire")

func (s *failingStore) Add(k SeenKey, exp time.Time) error {
	return s.AddMany([]Seen{{k, exp}})
}

func (s *failingStore) AddMany(entries []Seen) error {
	s.batches++
	if s.fail {
		return errDisk
	}
	return s.MemSeenStore.AddMany(entries)
}

// TestStoreFailure: an envelope that could not be recorded is not
// delivered and not remembered, so a later copy can be.
func TestStoreFailure(t *testing.T) {
	s := &failingStore{MemSeenStore: NewMemSeenStore(), fail: true}
	f := newFilter(t, s, newClock(t0), 0)
	e := seal(t, "hi", t0)
	if err := f.Deliver(e); !errors.Is(err, errDisk) {
		t.Fatalf("store failure: %v", err)
	}
	s.fail = false
	if err := f.Deliver(e); err != nil {
		t.Fatalf("after the store recovered: %v", err)
	}
}

func TestForgedNotDelivered(t *testing.T) {
	f := newFilter(t, NewMemSeenStore(), newClock(t0), 0)
	e := seal(t, "hi", t0)
	e.Signature[0] ^= 1
	if _, err := f.Accept(marshal(t, e)); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged: %v", err)
	}
	e.Signature[0] ^= 1
	if _, err := f.Accept(marshal(t, e)); err != nil {
		t.Fatalf("a forgery kept the genuine one out: %v", err)
	}
}

// TestDeliverMany: each envelope of a batch is judged as Deliver would,
// a copy later in the batch is a duplicate, and the accepted ones are
// stored with one AddMany.
func TestDeliverMany(t *testing.T) {
	s := &failingStore{MemSeenStore: NewMemSeenStore()}
	c := newClock(t0)
	f := newFilter(t, s, c, 0)
	old := seal(t, "old", t0)
	if err := f.Deliver(old); err != nil {
		t.Fatal(err)
	}
	a, b := seal(t, "a", t0), seal(t, "b", t0.Add(-time.Minute))
	stale, future := seal(t, "stale", t0.Add(-Window-time.Millisecond)), seal(t, "future", t0.Add(Window+time.Second))
	s.batches = 0
	errs := f.DeliverMany([]*Envelope{a, old, stale, b, a, future, b})
	want := []error{nil, ErrDuplicate, ErrStale, nil, ErrDuplicate, ErrStale, ErrDuplicate}
	if len(errs) != len(want) {
		t.Fatalf("%d results for 7 envelopes", len(errs))
	}
	for i, err := range errs {
		if want[i] == nil && err != nil || want[i] != nil && !errors.Is(err, want[i]) {
			t.Errorf("envelope %d: %v, want %v", i, err, want[i])
		}
	}
	if s.batches != 1 || s.Len() != 3 || f.Len() != 3 {
		t.Fatalf("%d AddMany calls, %d stored, %d in memory; want 1, 3, 3", s.batches, s.Len(), f.Len())
	}
	// Nothing to store: no write.
	if errs := f.DeliverMany([]*Envelope{a, stale}); errs[0] == nil || errs[1] == nil || s.batches != 1 {
		t.Fatalf("%v, %d AddMany calls", errs, s.batches)
	}
	if errs := f.DeliverMany(nil); len(errs) != 0 || s.batches != 1 {
		t.Fatalf("empty batch: %v, %d AddMany calls", errs, s.batches)
	}
	// After a restart the batch's envelopes are duplicates.
	f = newFilter(t, s, c, 0)
	for i, err := range f.DeliverMany([]*Envelope{a, b}) {
		if !errors.Is(err, ErrDuplicate) {
			t.Errorf("after restart, envelope %d: %v", i, err)
		}
	}
}

// TestDeliverManyFull: a batch stops being accepted where the set fills.
func TestDeliverManyFull(t *testing.T) {
	f := newFilter(t, NewMemSeenStore(), newClock(t0), 2)
	errs := f.DeliverMany([]*Envelope{seal(t, "1", t0), seal(t, "2", t0), seal(t, "3", t0)})
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrSeenFull) {
		t.Fatalf("%v", errs)
	}
}

// TestDeliverManyStoreFailure: when the store fails, none of the batch is
// delivered or remembered — refusals keep their own reasons — and a
// later copy of each can be delivered.
func TestDeliverManyStoreFailure(t *testing.T) {
	s := &failingStore{MemSeenStore: NewMemSeenStore()}
	f := newFilter(t, s, newClock(t0), 0)
	old := seal(t, "old", t0)
	if err := f.Deliver(old); err != nil {
		t.Fatal(err)
	}
	s.fail = true
	a, b := seal(t, "a", t0), seal(t, "b", t0)
	stale := seal(t, "stale", t0.Add(-time.Hour))
	errs := f.DeliverMany([]*Envelope{a, old, b, stale, a})
	for i, want := range []error{errDisk, ErrDuplicate, errDisk, ErrStale, ErrDuplicate} {
		if !errors.Is(errs[i], want) {
			t.Errorf("envelope %d: %v, want %v", i, errs[i], want)
		}
	}
	if f.Len() != 1 {
		t.Fatalf("%d IDs in memory after a failed batch, want 1", f.Len())
	}
	s.fail = false
	for i, err := range f.DeliverMany([]*Envelope{b, a}) {
		if err != nil {
			t.Errorf("after the store recovered, envelope %d: %v", i, err)
		}
	}
	if s.Len() != 3 {
		t.Fatalf("%d stored, want 3", s.Len())
	}
}

// TestConcurrentDeliverMany: batches sharing envelopes, delivered at
// once, deliver each exactly once.
func TestConcurrentDeliverMany(t *testing.T) {
	f := newFilter(t, NewMemSeenStore(), newClock(t0), 0)
	var envs []*Envelope
	for range 32 {
		envs = append(envs, seal(t, "x", t0))
	}
	var mu sync.Mutex
	delivered := make(map[*Envelope]int)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			batch := slices.Clone(envs)
			// Each goroutine in its own order.
			for i := range batch {
				j := (i*(g+1) + g) % len(batch)
				batch[i], batch[j] = batch[j], batch[i]
			}
			for i, err := range f.DeliverMany(batch) {
				if err == nil {
					mu.Lock()
					delivered[batch[i]]++
					mu.Unlock()
				} else if !errors.Is(err, ErrDuplicate) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i, e := range envs {
		if delivered[e] != 1 {
			t.Errorf("envelope %d delivered %d times", i, delivered[e])
		}
	}
}

// TestFloodOfOutsiderKeys: anyone can sign envelopes with keys of their
// own. A flood of them, each from a fresh key, fills at most the untrusted
// budget: a member's message is still delivered, and so is a new outsider's
// once the flood's IDs expire. One sender, trusted or not, holds at most
// MaxPerSender IDs.
func TestFloodOfOutsiderKeys(t *testing.T) {
	const maxSeen = 64
	member := testSigner(1)
	memberKey := PublicKey(member.Public().(ed25519.PublicKey))
	c := newClock(t0)
	f, err := NewFilter(NewMemSeenStore(), Config{Now: c.Now, MaxSeen: maxSeen,
		Trusted: func(topic Topic, k PublicKey) bool { return topic == testTopic && k == memberKey }})
	if err != nil {
		t.Fatal(err)
	}
	from := func(signer ed25519.PrivateKey, text string) *Envelope {
		e, err := Seal(testKey, signer, testHeader(), []byte(text), c.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	refused := 0
	for i := range 10 * maxSeen {
		_, outsider, _ := ed25519.GenerateKey(nil)
		if err := f.Deliver(from(outsider, fmt.Sprint("flood ", i))); errors.Is(err, ErrSeenFull) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if want := 10*maxSeen - maxSeen/4; refused != want {
		t.Errorf("%d of the flood refused, want %d (all beyond the untrusted budget)", refused, want)
	}
	if err := f.Deliver(from(member, "member's message")); err != nil {
		t.Fatalf("after a flood of outsider keys, the member's message: %v", err)
	}
	// One sender alone: at most MaxPerSender (maxSeen/16) IDs.
	sent := 1
	for ; sent < maxSeen; sent++ {
		if err := f.Deliver(from(member, fmt.Sprint("member ", sent))); errors.Is(err, ErrSeenFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if sent != maxSeen/16 {
		t.Errorf("one sender got %d IDs held, want %d", sent, maxSeen/16)
	}
	// The flood expires: outsiders are heard again.
	c.Set(t0.Add(Retention + time.Second))
	_, outsider, _ := ed25519.GenerateKey(nil)
	if err := f.Deliver(from(outsider, "later")); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if f.untrusted != 1 || len(f.perSender) != 1 {
		t.Errorf("after expiry: %d untrusted IDs counted, %d senders", f.untrusted, len(f.perSender))
	}
}

// TestPruneEveryFromConfig: Config.PruneEvery sets how often Deliver
// drops expired IDs from memory: with 2 hours, an ID expired a minute
// past the default's prune is still held, until PruneEvery has passed.
func TestPruneEveryFromConfig(t *testing.T) {
	c := newClock(t0)
	f, err := NewFilter(NewMemSeenStore(), Config{Now: c.Now, PruneEvery: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Deliver(seal(t, "x", c.Now())); err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(Retention + pruneEvery))
	if err := f.Deliver(seal(t, "y", c.Now())); err != nil {
		t.Fatal(err)
	}
	if f.Len() != 2 {
		t.Fatalf("pruned before PruneEvery: %d IDs", f.Len())
	}
	c.Set(t0.Add(2 * time.Hour))
	if err := f.Deliver(seal(t, "z", c.Now())); err != nil {
		t.Fatal(err)
	}
	if f.Len() != 1 {
		t.Fatalf("not pruned after PruneEvery: %d IDs", f.Len())
	}
}
