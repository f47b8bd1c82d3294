// Package seenstoretest is the contract test suite of ephemeral.SeenStore,
// run against every implementation (the in-memory one and badgerseen).
package seenstoretest

import (
	"sync"
	"testing"
	"time"

	"github.com/mycelsync/mycel/ephemeral"
)

// Open returns a store; reopen returns a store over the same data (after a
// simulated restart), or the same store where there is nothing to reopen.
type Open func(t *testing.T) (s ephemeral.SeenStore, reopen func() ephemeral.SeenStore)

var t0 = time.UnixMilli(1_700_000_000_000)

func key(i int) ephemeral.SeenKey {
	var k ephemeral.SeenKey
	k[0], k[1], k[15] = byte(i), byte(i>>8), 0xee
	return k
}

func load(t *testing.T, s ephemeral.SeenStore, now time.Time) map[ephemeral.SeenKey]time.Time {
	t.Helper()
	got := make(map[ephemeral.SeenKey]time.Time)
	if err := s.Load(now, func(k ephemeral.SeenKey, exp time.Time) error {
		got[k] = exp
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// Run runs the contract tests.
func Run(t *testing.T, open Open) {
	t.Run("AddLoad", func(t *testing.T) {
		s, reopen := open(t)
		for i := range 10 {
			if err := s.Add(key(i), t0.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		s = reopen()
		// Keys expiring at or before now are not loaded.
		got := load(t, s, t0.Add(4*time.Minute))
		if len(got) != 5 {
			t.Fatalf("loaded %d keys, want 5 (expiring after minute 4)", len(got))
		}
		for i := 5; i < 10; i++ {
			if exp, ok := got[key(i)]; !ok || !exp.Equal(t0.Add(time.Duration(i)*time.Minute)) {
				t.Errorf("key %d: %v %v", i, exp, ok)
			}
		}
	})
	t.Run("Prune", func(t *testing.T) {
		s, reopen := open(t)
		for i := range 10 {
			if err := s.Add(key(i), t0.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Prune(t0.Add(5 * time.Minute)); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		// Even a Load that asks for expired keys gets only what Prune kept.
		got := load(t, s, t0.Add(-time.Hour))
		if len(got) != 4 {
			t.Fatalf("after prune: %d keys, want 4", len(got))
		}
		for i := 6; i < 10; i++ {
			if _, ok := got[key(i)]; !ok {
				t.Errorf("key %d pruned before it expired", i)
			}
		}
	})
	t.Run("AddAgainKeepsLater", func(t *testing.T) {
		s, reopen := open(t)
		k := key(1)
		if err := s.Add(k, t0.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(k, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		if got := load(t, s, t0.Add(5*time.Minute)); !got[k].Equal(t0.Add(10 * time.Minute)) {
			t.Fatalf("a second Add shortened the expiry: %v", got[k])
		}
	})
	t.Run("AddMany", func(t *testing.T) {
		s, reopen := open(t)
		var batch []ephemeral.Seen
		for i := range 3000 {
			batch = append(batch, ephemeral.Seen{Key: key(i), Expires: t0.Add(time.Duration(1+i%10) * time.Minute)})
		}
		// A key twice in one batch keeps the later expiry, whichever comes
		// first; one already stored too.
		batch = append(batch,
			ephemeral.Seen{Key: key(0), Expires: t0.Add(time.Hour)},
			ephemeral.Seen{Key: key(1), Expires: t0})
		if err := s.Add(key(2), t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMany(batch); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMany(nil); err != nil {
			t.Fatalf("empty batch: %v", err)
		}
		s = reopen()
		got := load(t, s, t0)
		if len(got) != 3000 {
			t.Fatalf("loaded %d keys, want 3000", len(got))
		}
		for i, want := range map[int]time.Time{
			0: t0.Add(time.Hour), 1: t0.Add(2 * time.Minute), 2: t0.Add(2 * time.Hour),
			2999: t0.Add(10 * time.Minute),
		} {
			if !got[key(i)].Equal(want) {
				t.Errorf("key %d expires %v, want %v", i, got[key(i)], want)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s, reopen := open(t)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					if err := s.Add(key(g*50+i), t0.Add(time.Hour)); err != nil {
						t.Error(err)
					}
				}
			})
			wg.Go(func() {
				for i := 0; i < 50; i += 5 {
					var batch []ephemeral.Seen
					for j := range 5 {
						batch = append(batch, ephemeral.Seen{Key: key(1000 + g*50 + i + j), Expires: t0.Add(time.Hour)})
					}
					if err := s.AddMany(batch); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		s = reopen()
		if got := load(t, s, t0); len(got) != 800 {
			t.Fatalf("loaded %d keys, want 800", len(got))
		}
	})
}
