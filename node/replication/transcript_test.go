package replication

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

var (
	privA = testKey(1) // written on node A
	privB = testKey(2) // written on node B
	keyA  = pubKey(privA)
	keyB  = pubKey(privB)
)

func pair(t *testing.T, space []feed.PublicKey, tweakA, tweakB func(*Config)) *harness {
	a := newNode(t, "A", space)
	b := newNode(t, "B", space)
	h := newHarness(t, a, b, testCap(1), testCap(1), tweakA, tweakB)
	h.names[keyA], h.names[keyB] = "wA", "wB"
	return h
}

// (a) A fresh replica catches up a 10k-entry feed in pipelined batches.
func TestTranscriptCatchUp(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA}, nil, nil)
	h.a.appendEntries(t, privA, "a", 10_000, 16)
	h.start()
	h.pump()
	complete(t, h.b, keyA, 10_000)
	sameFeed(t, h.a, h.b, keyA)
	// Pipelining: four wants were outstanding before the first answer.
	if !strings.Contains(h.log.String(), "Want #4 wA [3072,4096) base=0") {
		t.Error("wants were not pipelined")
	}
	p := h.b.s.Progress()[keyA]
	if p.Have != 10_000 || p.Want != 10_000 || p.BytesIn != 10_000*16 {
		t.Errorf("progress %+v", p)
	}
	h.golden("catchup")
}

// (b) Each side writes its own feed; both end with both.
func TestTranscriptExchange(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA, keyB}, nil, nil)
	h.a.appendEntries(t, privA, "a", 5, 8)
	h.b.appendEntries(t, privB, "b", 3, 8)
	h.start()
	h.pump()
	complete(t, h.a, keyB, 3)
	complete(t, h.b, keyA, 5)
	sameFeed(t, h.a, h.b, keyA)
	sameFeed(t, h.a, h.b, keyB)
	h.golden("exchange")
}

// (c) After catching up, new entries are pushed as they are written.
func TestTranscriptLivePush(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA}, nil, nil)
	h.a.appendEntries(t, privA, "a", 100, 8)
	h.start()
	h.pump()
	complete(t, h.b, keyA, 100)
	h.logf("-- A appends 5")
	h.a.appendEntries(t, privA, "a", 5, 8)
	h.a.s.Appended(keyA)
	h.collect(h.a)
	h.pump()
	complete(t, h.b, keyA, 105)
	h.logf("-- A appends 1, twice")
	for range 2 {
		h.a.appendEntries(t, privA, "a", 1, 8)
		h.a.s.Appended(keyA)
		h.collect(h.a)
	}
	h.pump()
	complete(t, h.b, keyA, 107)
	sameFeed(t, h.a, h.b, keyA)
	h.golden("livepush")
}

// (d) A sparse replica fetches chosen ranges only; asking a replica that
// lacks them is refused.
func TestTranscriptSparseFetch(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA}, nil, func(c *Config) { c.Sparse = true })
	h.a.appendEntries(t, privA, "a", 1000, 8)
	h.b.s.Fetch(keyA, []feed.Range{{Start: 10, End: 20}, {Start: 500, End: 502}})
	h.start()
	h.pump()
	f := h.b.model.feed(keyA)
	if got, want := f.Ranges(), []feed.Range{{Start: 10, End: 20}, {Start: 500, End: 502}}; !slices.Equal(got, want) || f.Length() != 1000 {
		t.Errorf("B holds %v of %d, want %v of 1000", got, f.Length(), want)
	}
	h.logf("-- B fetches [998,1000)")
	h.b.s.Fetch(keyA, []feed.Range{{Start: 998, End: 1000}})
	h.collect(h.b)
	h.pump()
	if got := f.Ranges(); len(got) != 3 || got[2] != (feed.Range{Start: 998, End: 1000}) {
		t.Errorf("B holds %v", got)
	}

	// C is a sparse replica of B: what B lacks is refused.
	h.logf("-- C (sparse) fetches [0,12) from B")
	c := newNode(t, "C", []feed.PublicKey{keyA})
	h2 := newHarness(t, h.b, c, testCap(1), testCap(1), nil, func(c *Config) { c.Sparse = true })
	h2.names = h.names
	h2.log = strings.Builder{}
	c.s.Fetch(keyA, []feed.Range{{Start: 0, End: 12}})
	h2.start()
	h2.pump()
	if got := c.model.feed(keyA).Ranges(); !slices.Equal(got, []feed.Range{{Start: 10, End: 12}}) {
		t.Errorf("C holds %v, want [10,12)", got)
	}
	h2.logf("-- C fetches [600,610), which B lacks")
	c.s.Fetch(keyA, []feed.Range{{Start: 600, End: 610}})
	h2.collect(c)
	h2.pump()
	if !strings.Contains(h2.log.String(), "Refuse #3 not-held") {
		t.Error("B did not refuse")
	}
	if p := c.s.Progress()[keyA]; p.Have != 2 || p.Want != 2 {
		t.Errorf("C progress %+v", p)
	}
	h.logf("%s", strings.TrimSuffix(h2.log.String(), "\n"))
	h.golden("sparse")
}

// (e) A peer without the capability is refused and learns nothing.
func TestTranscriptWrongCapability(t *testing.T) {
	a := newNode(t, "A", []feed.PublicKey{keyA})
	b := newNode(t, "B", []feed.PublicKey{keyA})
	a.appendEntries(t, privA, "a", 10, 8)
	h := newHarness(t, a, b, testCap(1), testCap(9), nil, nil)
	h.names[keyA] = "wA"
	h.start()
	h.pump()
	if !errors.Is(a.err, ErrUnauthorized) {
		t.Errorf("A: %v, want ErrUnauthorized", a.err)
	}
	if !errors.Is(b.err, ErrUnauthorized) {
		t.Errorf("B: %v, want ErrUnauthorized", b.err)
	}
	if strings.Contains(h.log.String(), "Heads") || strings.Contains(h.log.String(), "Data") {
		t.Error("a peer without the capability was sent heads or data")
	}
	if b.model.feed(keyA).Length() != 0 {
		t.Error("B got entries")
	}
	h.golden("wrongcap")
}

// (f) A batch whose head outgrew the replica's base lacks the consistency
// proof; the replica asks again from its length and converges.
func TestTranscriptNeedConsistency(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA}, nil, nil)
	h.a.appendEntries(t, privA, "a", 3000, 8)
	h.start()
	// Opening and heads, one message at a time.
	for _, n := range []*node{h.a, h.b, h.a, h.b, h.b} {
		h.deliver(n)
	}
	if len(h.a.inbox) != 3 {
		t.Fatalf("A has %d messages waiting, want 3 wants", len(h.a.inbox))
	}
	h.deliver(h.a) // want #1 answered at length 3000
	h.logf("-- A appends 10")
	h.a.appendEntries(t, privA, "a", 10, 8)
	h.a.s.Appended(keyA)
	h.collect(h.a)
	h.deliver(h.a) // want #2 answered at length 3010, proof from base 0
	h.deliver(h.a)
	h.pump()
	if !strings.Contains(h.log.String(), "need-consistency") {
		t.Error("the need-consistency path was not taken")
	}
	complete(t, h.b, keyA, 3010)
	sameFeed(t, h.a, h.b, keyA)
	h.golden("needconsistency")
}

// (g) A replica with a conflicting history: the fork is detected, the
// evidence sent, and both freeze the feed.
func TestTranscriptFork(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA}, nil, nil)
	h.a.appendEntries(t, privA, "a", 10, 8)
	// B restored the writer's key from a backup and wrote other entries.
	h.b.appendEntries(t, privA, "restored", 5, 8)
	h.start()
	h.pump()
	for _, n := range []*node{h.a, h.b} {
		if n.model.feed(keyA).Evidence() == nil {
			t.Errorf("%s did not freeze the feed", n.name)
		}
		if n.err != nil {
			t.Errorf("%s: %v", n.name, n.err)
		}
	}
	if !strings.Contains(h.log.String(), "B→A Fork wA") {
		t.Error("B did not send the evidence")
	}
	h.golden("fork")
}

// A feed that joins the space later (Refresh) is announced and fetched;
// before that, heads and appends of it are ignored.
func TestRefreshAddsFeeds(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA, keyB}, nil, nil)
	h.b.model.space = []feed.PublicKey{keyA}
	h.a.appendEntries(t, privA, "a", 5, 8)
	h.a.appendEntries(t, privB, "b", 7, 8)
	h.start()
	h.pump()
	complete(t, h.b, keyA, 5)
	if h.b.model.feed(keyB).Length() != 0 {
		t.Fatal("B fetched a feed outside its space")
	}
	h.logf("-- wB joins B's space")
	h.b.model.space = []feed.PublicKey{keyA, keyB}
	h.b.s.Refresh()
	h.collect(h.b)
	h.pump()
	complete(t, h.b, keyB, 7)
	sameFeed(t, h.a, h.b, keyB)
	if n := strings.Count(h.log.String(), "Heads"); n != 1 {
		t.Errorf("%d Heads messages, want 1 (B has nothing to show)", n)
	}
	h.golden("refresh")
}

// (h) A replica that knows a longer head than it holds (it is still
// fetching the entries from their writer) refuses what it lacks; once it
// holds them it pushes the same head again, and the peer asks again.
func TestTranscriptRefusedUntilHeld(t *testing.T) {
	w := newNode(t, "W", []feed.PublicKey{keyA})
	w.appendEntries(t, privA, "a", 100, 8)
	relay := func(ranges ...feed.Range) *feed.Batch {
		b, err := w.model.feed(keyA).Batch(feed.BatchRequest{Want: ranges})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	h := pair(t, []feed.PublicKey{keyA}, nil, nil)
	if err := h.a.model.feed(keyA).Ingest(relay(feed.Range{Start: 0, End: 40})); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.pump()
	if got := h.b.model.feed(keyA).Ranges(); !slices.Equal(got, []feed.Range{{Start: 0, End: 40}}) {
		t.Fatalf("B holds %v, want [0,40)", got)
	}
	if !strings.Contains(h.log.String(), "not-held") {
		t.Error("A did not refuse what it lacks")
	}
	h.logf("-- A gets [40,100) from the writer")
	if err := h.a.model.feed(keyA).Ingest(relay(feed.Range{Start: 40, End: 100})); err != nil {
		t.Fatal(err)
	}
	h.a.s.Appended(keyA)
	h.collect(h.a)
	h.pump()
	complete(t, h.b, keyA, 100)
	sameFeed(t, h.a, h.b, keyA)
	h.golden("refused-until-held")
}

// (i) The opening proves the newest epochs and epoch 0, and a writer's
// signature: the verifier sees which epochs and which writer, and decides.
func TestProveEpochsAndWriter(t *testing.T) {
	var caps []auth.ReplicationCapability
	for e := range uint32(12) {
		c := testCap(1)
		c.Epoch = e
		c.Key[1] = byte(e)
		caps = append(caps, c)
	}
	var seen Proof
	for _, tc := range []struct {
		name   string
		writer ed25519.PrivateKey
		accept bool
	}{{"writer", privB, true}, {"no writer", nil, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := pair(t, []feed.PublicKey{keyA}, func(c *Config) {
				c.Verify = func(binding []byte, p Proof) bool {
					seen = p
					// This side holds epoch 0 only of those proven: as
					// an old epoch, it opens the session only with a
					// writer's signature.
					return VerifyCap(caps[0])(binding, p) && p.Writer != nil
				}
				// It holds epoch 0's capability, which opens the writer
				// sealed under it.
				c.Creds.Caps = append(c.Creds.Caps, caps[0])
			}, func(c *Config) {
				c.Creds = Credentials{Caps: caps, Writer: tc.writer}
			})
			h.a.appendEntries(t, privA, "a", 3, 8)
			h.start()
			h.pump()
			var epochs []uint32
			for _, ep := range seen.Epochs {
				epochs = append(epochs, ep.Epoch)
			}
			if want := []uint32{11, 10, 9, 8, 7, 6, 5, 0}; !slices.Equal(epochs, want) {
				t.Errorf("epochs proven %v, want %v", epochs, want)
			}
			if tc.writer != nil && (seen.Writer == nil || *seen.Writer != keyB) {
				t.Errorf("writer %v, want %x", seen.Writer, keyB[:4])
			}
			if got := h.b.model.feed(keyA).Length(); (got == 3) != tc.accept {
				t.Errorf("B holds %d entries; accepted %v", got, tc.accept)
			}
		})
	}
}

// TestTranscriptForkEqualLength: the writer gave A one branch and B another
// of the same length. When they meet, both see a fork in the heads alone,
// exchange the evidence and freeze the feed with the same evidence; a third
// replica that meets A later is served the evidence and freezes too.
func TestTranscriptForkEqualLength(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA}, nil, nil)
	h.a.appendEntries(t, privA, "one", 6, 8)
	h.b.appendEntries(t, privA, "two", 6, 8)
	h.start()
	h.pump()
	evidence := func(n *node) []byte {
		t.Helper()
		ev := n.model.feed(keyA).Evidence()
		if ev == nil {
			t.Fatalf("%s did not freeze the feed:\n%s", n.name, h.log.String())
		}
		b, err := ev.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, n := range []*node{h.a, h.b} {
		if n.err != nil {
			t.Errorf("%s: %v", n.name, n.err)
		}
	}
	evA, evB := evidence(h.a), evidence(h.b)
	if !bytes.Equal(evA, evB) {
		t.Fatal("A and B hold different evidence")
	}
	h.golden("fork-equal-length")

	// C holds A's branch, not frozen; A serves it the evidence.
	c := newNode(t, "C", []feed.PublicKey{keyA})
	c.appendEntries(t, privA, "one", 6, 8)
	h2 := newHarness(t, h.a, c, testCap(1), testCap(1), nil, nil)
	h2.names = h.names
	h2.start()
	h2.pump()
	if !bytes.Equal(evidence(c), evA) {
		t.Fatal("C holds other evidence than A")
	}
	if c.err != nil || h.a.err != nil {
		t.Fatalf("errors: A %v, C %v", h.a.err, c.err)
	}
	if !strings.Contains(h2.log.String(), "A→C Fork wA") {
		t.Fatalf("A did not serve the evidence:\n%s", h2.log.String())
	}
}

// TestForkEqualLengthAfterAppend: B, a sparse replica, saw A's head of
// branch one without fetching it; then B gets branch two of the same length
// from elsewhere. Its session with A finds the fork as soon as B's head
// reaches the length A showed, and both freeze.
func TestForkEqualLengthAfterAppend(t *testing.T) {
	h := pair(t, []feed.PublicKey{keyA}, nil, func(c *Config) { c.Sparse = true })
	h.a.appendEntries(t, privA, "one", 6, 8)
	h.start()
	h.pump()
	if h.b.model.feed(keyA).Length() != 0 {
		t.Fatal("the sparse replica fetched the feed")
	}
	// Branch two reaches B from another peer.
	other := newNode(t, "O", []feed.PublicKey{keyA})
	other.appendEntries(t, privA, "two", 6, 8)
	if err := h.b.model.feed(keyA).Ingest(batchOf(t, other, keyA, feed.Range{Start: 0, End: 6})); err != nil {
		t.Fatal(err)
	}
	h.b.s.Appended(keyA)
	h.collect(h.b)
	h.pump()
	evA, evB := h.a.model.feed(keyA).Evidence(), h.b.model.feed(keyA).Evidence()
	if evA == nil || evB == nil {
		t.Fatalf("frozen: A %v, B %v\n%s", evA != nil, evB != nil, h.log.String())
	}
	a, _ := evA.MarshalBinary()
	b, _ := evB.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Fatal("A and B hold different evidence")
	}
}
