package replication

import (
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mycelsync/mycel/feed"
)

var (
	randomSeed  = flag.Uint64("seed", 0, "seed of TestRandomInterleavings (0: time-based)")
	randomRuns  = flag.Int("runs", 30, "runs of TestRandomInterleavings")
	randomSteps = flag.Int("steps", 400, "random steps per run before draining")
)

// TestRandomInterleavings appends on both sides while messages and ingest
// results are delivered in random order; after draining, both nodes hold
// the same heads and entries of both feeds.
func TestRandomInterleavings(t *testing.T) {
	seed := *randomSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -seed=%d)", seed, seed)
	for run := range *randomRuns {
		runSeed := seed + uint64(run)
		if !t.Run("", func(t *testing.T) { randomRun(t, runSeed) }) {
			t.Fatalf("failed with seed %d (rerun with -seed=%d -runs=1)", runSeed, runSeed)
		}
	}
}

func randomRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	space := []feed.PublicKey{keyA, keyB}
	a := newNode(t, "A", space)
	b := newNode(t, "B", space)
	tweak := func(c *Config) {
		c.WantEntries = uint64(1 + rng.IntN(40))
		c.MaxInflightWants = 1 + rng.IntN(4)
		c.MaxBatchBytes = 64 + rng.IntN(2000)
		c.MaxInflightBytes = c.MaxBatchBytes * (1 + rng.IntN(4))
	}
	a.appendEntries(t, privA, "a", rng.IntN(100), 1+rng.IntN(64))
	b.appendEntries(t, privB, "b", rng.IntN(100), 1+rng.IntN(64))
	h := newHarness(t, a, b, testCap(1), testCap(1), tweak, tweak)
	h.start()
	for range *randomSteps {
		switch rng.IntN(8) {
		case 0:
			a.appendEntries(t, privA, "a", 1+rng.IntN(20), 1+rng.IntN(64))
			a.s.Appended(keyA)
			h.collect(a)
		case 1:
			b.appendEntries(t, privB, "b", 1+rng.IntN(20), 1+rng.IntN(64))
			b.s.Appended(keyB)
			h.collect(b)
		case 2:
			h.deliver(a)
		case 3:
			h.deliver(b)
		case 4:
			h.ingestOne(a)
		case 5:
			h.ingestOne(b)
		default:
			// Deliver a burst.
			for range rng.IntN(10) {
				h.deliver(a)
				h.deliver(b)
			}
		}
	}
	h.pump()
	for _, n := range []*node{a, b} {
		if n.err != nil {
			t.Fatalf("%s: %v\n%s", n.name, n.err, h.log.String())
		}
	}
	sameFeed(t, a, b, keyA)
	sameFeed(t, a, b, keyB)
	complete(t, b, keyA, a.model.Length(keyA))
	complete(t, a, keyB, b.model.Length(keyB))
	if t.Failed() {
		t.Logf("transcript:\n%s", h.log.String())
	}
}
