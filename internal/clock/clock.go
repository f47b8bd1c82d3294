// Package clock is the time source injected into mycel's long-running
// services (the replicator's standing, the ephemeral Service's pruning, the
// node's timers): Real in production, Fake in tests, which then drive
// expiry by advancing it instead of sleeping.
//
// Stream deadlines are not the clock's concern: the network stack measures
// them against the wall clock.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes tickers.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that sends on C every d, as
	// time.NewTicker does (a slow reader misses ticks, it does not queue
	// them). d must be positive.
	NewTicker(d time.Duration) Ticker
}

// Ticker is a time.Ticker behind an interface.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real returns the system clock.
func Real() Clock { return realClock{} }

// OrReal returns c, or the system clock if c is nil.
func OrReal(c Clock) Clock {
	if c == nil {
		return realClock{}
	}
	return c
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// Fake is a Clock that moves only when told to. Safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

// NewFake returns a Fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTicker returns a ticker that fires as Advance passes its period.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker period")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{f: f, period: d, next: f.now.Add(d), c: make(chan time.Time, 1)}
	f.tickers = append(f.tickers, t)
	return t
}

// Tickers returns how many tickers are running: a test waits for a
// service's ticker to exist before it advances the clock.
func (f *Fake) Tickers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tickers)
}

// Advance moves the clock forward by d and fires every ticker whose next
// tick it passed (once, however many periods passed, as a time.Ticker
// whose reader is slow).
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	sort.SliceStable(f.tickers, func(i, j int) bool { return f.tickers[i].next.Before(f.tickers[j].next) })
	for _, t := range f.tickers {
		if t.next.After(f.now) {
			continue
		}
		select {
		case t.c <- f.now:
		default:
		}
		for !t.next.After(f.now) {
			t.next = t.next.Add(t.period)
		}
	}
}

type fakeTicker struct {
	f      *Fake
	period time.Duration
	next   time.Time // guarded by f.mu
	c      chan time.Time
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }

func (t *fakeTicker) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, o := range t.f.tickers {
		if o == t {
			t.f.tickers = append(t.f.tickers[:i], t.f.tickers[i+1:]...)
			return
		}
	}
}
