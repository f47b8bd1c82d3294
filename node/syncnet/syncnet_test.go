package syncnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/internal/clock"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/replication/syncpb"
)

// pair is two replicating hosts, A holding one written feed.
type pair struct {
	space      auth.SpaceID
	ha, hb     host.Host
	dbA, dbB   *feed.DB
	wA         *feed.Writer
	kA         feed.PublicKey
	spA, spB   *FeedSpace
	rA, rB     *Replicator
	logA, logB *logBuffer
	capA, capB auth.ReplicationCapability
}

func newPair(t *testing.T, entries int) *pair {
	t.Helper()
	p := &pair{ha: newHost(t), hb: newHost(t), dbA: newDB(t), dbB: newDB(t), logA: new(logBuffer), logB: new(logBuffer)}
	priv := newKey(t)
	p.kA = pub(priv)
	p.space = auth.SpaceID(p.kA)
	var err error
	if p.wA, err = p.dbA.Writer(priv); err != nil {
		t.Fatal(err)
	}
	appendEntries(t, p.wA, entries, 1024)
	p.capA = newCap(p.space)
	p.capB = p.capA
	p.rA = newReplicator(t, p.ha, p.logA.logger())
	// B's clock stands still: every byte received counts in the rate.
	p.rB = newReplicator(t, p.hb, p.logB.logger(), WithClock(clock.NewFake(time.Unix(1_700_000_000, 0))))
	return p
}

func (p *pair) serve(t *testing.T, feeds ...feed.PublicKey) {
	t.Helper()
	feeds = append([]feed.PublicKey{p.kA}, feeds...)
	p.spA = NewFeedSpace(p.space, p.dbA, feeds, p.capA)
	p.spB = NewFeedSpace(p.space, p.dbB, feeds, p.capB)
	if err := p.rA.Serve(p.spA); err != nil {
		t.Fatal(err)
	}
	if err := p.rB.Serve(p.spB); err != nil {
		t.Fatal(err)
	}
}

// TestCatchUp: B, empty, replicates A's 5,000 × 1 KiB feed exactly, and
// reports its progress.
func TestCatchUp(t *testing.T) {
	p := newPair(t, 5000)
	p.serve(t)
	start := time.Now()
	connect(t, p.hb, p.ha)
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, p.kA) })
	t.Logf("5,000 × 1 KiB replicated in %v", time.Since(start))
	eventually(t, 5*time.Second, func() error {
		for _, pr := range p.rB.Progress() {
			if pr.Peer == p.ha.ID() && pr.Feed == p.kA && pr.Have == 5000 && pr.Want == 5000 && pr.BytesIn >= 5000*1024 && pr.Rate == 5000*1024/5 {
				return nil
			}
		}
		return fmt.Errorf("progress: %+v", p.rB.Progress())
	})
}

// TestLivePush: after catching up, B receives A's new entries on the same
// session.
func TestLivePush(t *testing.T) {
	p := newPair(t, 300)
	p.serve(t)
	connect(t, p.hb, p.ha)
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, p.kA) })
	appendEntries(t, p.wA, 100, 1024)
	p.rA.Appended(p.space, p.kA)
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, p.kA) })
	if n := p.logA.count("sync: session") + p.logB.count("sync: session"); n != 0 {
		t.Fatalf("a session ended; logs:\n%s\n%s", p.logA, p.logB)
	}
	if n := p.ha.Network().ConnsToPeer(p.hb.ID()); len(n) != 1 {
		t.Fatalf("%d connections", len(n))
	}
}

// TestBothWrite: each side writes its own feed; both end with both.
func TestBothWrite(t *testing.T) {
	p := newPair(t, 1000)
	privB := newKey(t)
	kB := pub(privB)
	wB, err := p.dbB.Writer(privB)
	if err != nil {
		t.Fatal(err)
	}
	appendEntries(t, wB, 700, 512)
	p.serve(t, kB)
	connect(t, p.ha, p.hb)
	both := func() error {
		if err := sameFeed(p.dbA, p.dbB, p.kA); err != nil {
			return fmt.Errorf("A's feed on B: %w", err)
		}
		if err := sameFeed(p.dbB, p.dbA, kB); err != nil {
			return fmt.Errorf("B's feed on A: %w", err)
		}
		return nil
	}
	eventually(t, testDeadline, both)
	// And live, both ways at once.
	appendEntries(t, p.wA, 50, 512)
	appendEntries(t, wB, 50, 512)
	p.rA.Appended(p.space, p.kA)
	p.rB.Appended(p.space, kB)
	eventually(t, testDeadline, both)
}

// credulous is a peer without the capability that accepts any proof: it
// would take whatever it is sent.
type credulous struct{ Space }

func (credulous) Verify([]byte, replication.Proof) bool { return true }

// TestWrongCapability: B proves another capability (and accepts anything).
// A refuses it after the opening: A's model is never read for it and B
// stores nothing. Failed proofs are not strikes: three of them (a joining
// device trying forged approvals) do not ban B, which replicates once it
// proves the right capability; MaxFailedProofs of them do.
func TestWrongCapability(t *testing.T) {
	p := newPair(t, 100)
	p.capB = newCap(p.space)
	p.spA = NewFeedSpace(p.space, p.dbA, []feed.PublicKey{p.kA}, p.capA)
	p.spB = NewFeedSpace(p.space, p.dbB, []feed.PublicKey{p.kA}, p.capB)
	counted := &countingSpace{Space: p.spA}
	if err := p.rA.Serve(counted); err != nil {
		t.Fatal(err)
	}
	if err := p.rB.Serve(credulous{p.spB}); err != nil {
		t.Fatal(err)
	}
	connect(t, p.hb, p.ha)
	eventually(t, testDeadline, func() error {
		if !strings.Contains(p.logA.String(), "session refused") || !strings.Contains(p.logA.String(), "capability proof rejected") {
			return fmt.Errorf("A did not refuse B; A:\n%s\nB:\n%s", p.logA, p.logB)
		}
		return nil
	})
	// refusedAgain has B ask once more and waits for A's refusal.
	refusedAgain := func() {
		t.Helper()
		eventually(t, testDeadline, func() error {
			if n := p.rB.sessionCount(); n != 0 {
				return fmt.Errorf("B still has %d sessions", n)
			}
			return nil
		})
		n := strings.Count(p.logA.String(), "capability proof rejected")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.rB.Sync(ctx, p.ha.ID(), credulous{p.spB}); err != nil && !p.rA.Banned(p.hb.ID()) {
			t.Fatal(err)
		}
		eventually(t, testDeadline, func() error {
			if p.rA.Banned(p.hb.ID()) || strings.Count(p.logA.String(), "capability proof rejected") > n {
				return nil
			}
			return fmt.Errorf("A did not refuse B again; A:\n%s\nB:\n%s", p.logA, p.logB)
		})
	}
	for range 2 {
		refusedAgain()
	}
	if p.rA.Banned(p.hb.ID()) {
		t.Fatal("A banned B after three failed proofs")
	}
	if n := counted.reads.Load(); n != 0 {
		t.Fatalf("A read its model %d times for an unauthorised peer", n)
	}
	f, err := p.dbB.Feed(p.kA)
	if err != nil {
		t.Fatal(err)
	}
	if f.Length() != 0 || len(f.Ranges()) != 0 {
		t.Fatalf("B holds %d entries", f.Length())
	}
	if feeds, _ := p.dbB.Feeds(); len(feeds) != 0 {
		t.Fatalf("B holds feeds %v", feeds)
	}

	// B now proves the right capability: it replicates.
	if err := p.rB.Serve(NewFeedSpace(p.space, p.dbB, []feed.PublicKey{p.kA}, p.capA)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.rB.Sync(ctx, p.ha.ID(), NewFeedSpace(p.space, p.dbB, []feed.PublicKey{p.kA}, p.capA)); err != nil {
		t.Fatal(err)
	}
	eventually(t, testDeadline, func() error {
		if f.Length() != 100 {
			return fmt.Errorf("B holds %d of 100 entries", f.Length())
		}
		return nil
	})
}

// TestFailedProofsBan: MaxFailedProofs failed proofs within StrikeWindow
// ban the peer.
func TestFailedProofsBan(t *testing.T) {
	p := newPair(t, 10)
	p.rA = newReplicator(t, p.ha, p.logA.logger(), WithConfig(Config{MaxFailedProofs: 3}))
	p.capB = newCap(p.space)
	if err := p.rA.Serve(NewFeedSpace(p.space, p.dbA, []feed.PublicKey{p.kA}, p.capA)); err != nil {
		t.Fatal(err)
	}
	spB := NewFeedSpace(p.space, p.dbB, []feed.PublicKey{p.kA}, p.capB)
	if err := p.rB.Serve(credulous{spB}); err != nil {
		t.Fatal(err)
	}
	connect(t, p.hb, p.ha)
	for i := 0; !p.rA.Banned(p.hb.ID()); i++ {
		if i == 10 {
			t.Fatalf("B not banned after %d failed proofs; A:\n%s", i, p.logA)
		}
		eventually(t, testDeadline, func() error {
			if n := p.rB.sessionCount(); n != 0 {
				return fmt.Errorf("B still has %d sessions", n)
			}
			return nil
		})
		n := strings.Count(p.logA.String(), "capability proof rejected")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p.rB.Sync(ctx, p.ha.ID(), credulous{spB})
		cancel()
		eventually(t, testDeadline, func() error {
			if p.rA.Banned(p.hb.ID()) || strings.Count(p.logA.String(), "capability proof rejected") > n {
				return nil
			}
			return errors.New("A did not refuse B again")
		})
	}
}

// TestMisbehavingStreams: garbage, an oversized length prefix and a Hello
// followed by garbage from a third host are each reset, the host is banned
// after the third, and an honest replication to B completes meanwhile.
func TestMisbehavingStreams(t *testing.T) {
	p := newPair(t, 3000)
	p.serve(t)
	hc := newHost(t)
	connect(t, hc, p.ha)
	connect(t, p.hb, p.ha)
	proto := ProtocolFor(p.space)
	// A may be opening a session to C (C serves nothing, so it is refused):
	// while it is, C's streams meet it and are reset as duplicates, without
	// a strike. Wait for it to end.
	eventually(t, testDeadline, func() error {
		if p.rA.hasSession(hc.ID()) {
			return errors.New("A still has a session with C")
		}
		return nil
	})

	hello := func() []byte {
		var b strings.Builder
		nonce := newNonce()
		replication.WriteFrame(&b, &syncpb.Message{Body: &syncpb.Message_Hello{Hello: &syncpb.Hello{Version: replication.Version, Nonce: nonce[:]}}})
		return []byte(b.String())
	}
	garbage := []byte(strings.Repeat("not a frame ", 20))
	cases := []struct {
		name string
		data []byte
	}{
		{"garbage", garbage},
		{"oversized length", binary.AppendUvarint(nil, replication.MaxFrameSize+1)},
		{"hello then garbage", append(hello(), garbage...)},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := hc.NewStream(ctx, p.ha.ID(), proto)
		cancel()
		if err != nil {
			t.Fatalf("%s: open: %v", c.name, err)
		}
		st.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := st.Write(c.data); err != nil {
			t.Fatalf("%s: write: %v", c.name, err)
		}
		_, err = io.Copy(io.Discard, st)
		if !errors.Is(err, network.ErrReset) {
			t.Fatalf("%s: stream ended with %v, want a reset", c.name, err)
		}
		st.Reset()
	}
	eventually(t, 5*time.Second, func() error {
		if !p.rA.Banned(hc.ID()) {
			return errors.New("C not banned")
		}
		return nil
	})
	if p.rA.Banned(p.hb.ID()) {
		t.Fatal("B banned")
	}
	// Banned: even a valid Hello is reset unread.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := hc.NewStream(ctx, p.ha.ID(), proto); err == nil {
		st.SetDeadline(time.Now().Add(20 * time.Second))
		st.Write(hello())
		if _, err := io.Copy(io.Discard, st); !errors.Is(err, network.ErrReset) {
			t.Fatalf("banned peer's stream ended with %v, want a reset", err)
		}
	}
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, p.kA) })
	if n := p.logA.count("session refused"); n < 3 {
		t.Fatalf("%d refusals logged:\n%s", n, p.logA)
	}
}

// syncnetGoroutines lists the goroutines running this package's code
// (outside tests).
func syncnetGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "node/syncnet.(*") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseWaits: Close returns only after every session, reader and
// watcher ended.
func TestCloseWaits(t *testing.T) {
	p := newPair(t, 2000)
	connect(t, p.hb, p.ha)
	before := runtime.NumGoroutine()
	p.serve(t)
	// Close in the middle of the sync, then once caught up.
	eventually(t, testDeadline, func() error {
		if len(p.rA.Progress())+len(p.rB.Progress()) == 0 {
			return errors.New("no session yet")
		}
		return nil
	})
	p.rA.Close()
	p.rB.Close()
	if g := syncnetGoroutines(); len(g) != 0 {
		// Close waited; only the instant between wg.Done and return may
		// remain.
		eventually(t, time.Second, func() error {
			if g := syncnetGoroutines(); len(g) != 0 {
				return fmt.Errorf("%d goroutines left:\n%s", len(g), strings.Join(g, "\n\n"))
			}
			return nil
		})
	}
	eventually(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before+5 {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
	if err := p.rA.Sync(context.Background(), p.hb.ID(), p.spA); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
}

// TestPeerServesLater: the side that opens (the lower peer ID) starts
// serving first, its open is refused because the peer does not serve the
// space yet; when the peer starts serving it, the session opens anyway.
func TestPeerServesLater(t *testing.T) {
	p := newPair(t, 500)
	connect(t, p.hb, p.ha)
	feeds := []feed.PublicKey{p.kA}
	p.spA = NewFeedSpace(p.space, p.dbA, feeds, p.capA)
	p.spB = NewFeedSpace(p.space, p.dbB, feeds, p.capB)
	first, second := p.rA, p.rB
	spFirst, spSecond := p.spA, p.spB
	logFirst := p.logA
	if p.hb.ID() < p.ha.ID() {
		first, second, spFirst, spSecond, logFirst = p.rB, p.rA, p.spB, p.spA, p.logB
	}
	if err := first.Serve(spFirst); err != nil {
		t.Fatal(err)
	}
	eventually(t, testDeadline, func() error {
		if logFirst.count("open failed") == 0 {
			return errors.New("the opening side has not tried yet")
		}
		return nil
	})
	if err := second.Serve(spSecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, p.kA) })
}

// growing is a Space whose list of feeds can grow, as a space's does when
// a writer is added.
type growing struct {
	*FeedSpace
	mu    sync.Mutex
	extra []feed.PublicKey
}

func (g *growing) Model() replication.Model { return growingModel{g.FeedSpace.Model(), g} }

func (g *growing) add(k feed.PublicKey) {
	g.mu.Lock()
	g.extra = append(g.extra, k)
	g.mu.Unlock()
}

type growingModel struct {
	replication.Model
	g *growing
}

func (m growingModel) Feeds() []feed.PublicKey {
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	return append(m.Model.Feeds(), m.g.extra...)
}

// TestRefresh: a feed added to the space while a session runs is
// announced and replicated after Refresh, on the same session.
func TestRefresh(t *testing.T) {
	p := newPair(t, 200)
	priv := newKey(t)
	kC := pub(priv)
	wC, err := p.dbA.Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	appendEntries(t, wC, 300, 256)
	spA := &growing{FeedSpace: NewFeedSpace(p.space, p.dbA, []feed.PublicKey{p.kA}, p.capA)}
	spB := &growing{FeedSpace: NewFeedSpace(p.space, p.dbB, []feed.PublicKey{p.kA}, p.capB)}
	if err := p.rA.Serve(spA); err != nil {
		t.Fatal(err)
	}
	if err := p.rB.Serve(spB); err != nil {
		t.Fatal(err)
	}
	connect(t, p.ha, p.hb)
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, p.kA) })
	if f, err := p.dbB.Feed(kC); err == nil && f.Length() != 0 {
		t.Fatalf("C's feed replicated before it was in the space: %d entries", f.Length())
	}
	// Each side learns of C in its own time; the later one's refresh
	// completes the exchange.
	spA.add(kC)
	p.rA.Refresh(p.space)
	spB.add(kC)
	p.rB.Refresh(p.space)
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, kC) })
	if n := p.logA.count("sync: session") + p.logB.count("sync: session"); n != 0 {
		t.Fatalf("a session ended; logs:\n%s\n%s", p.logA, p.logB)
	}
}

// revocable is a Space whose acceptance of peers can be withdrawn.
type revocable struct {
	Space
	revoked  *atomic.Bool
	verified *atomic.Int64 // Verify calls that passed
}

func (r revocable) Verify(binding []byte, p replication.Proof) bool {
	ok := !r.revoked.Load() && r.Space.Verify(binding, p)
	if ok && r.verified != nil {
		r.verified.Add(1)
	}
	return ok
}

// TestRecheck: once A's space no longer accepts B's proof (B's device was
// removed), Recheck ends the open session, and B's next one is refused.
func TestRecheck(t *testing.T) {
	p := newPair(t, 50)
	p.spA = NewFeedSpace(p.space, p.dbA, []feed.PublicKey{p.kA}, p.capA)
	p.spB = NewFeedSpace(p.space, p.dbB, []feed.PublicKey{p.kA}, p.capB)
	revoked, verified := new(atomic.Bool), new(atomic.Int64)
	if err := p.rA.Serve(revocable{p.spA, revoked, verified}); err != nil {
		t.Fatal(err)
	}
	if err := p.rB.Serve(p.spB); err != nil {
		t.Fatal(err)
	}
	connect(t, p.hb, p.ha)
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, p.kA) })
	// A recheck that still accepts: once A verified B's proof again, the
	// same session carries A's next entries to B.
	before := verified.Load()
	p.rA.Recheck(p.space)
	eventually(t, testDeadline, func() error {
		if verified.Load() == before {
			return errors.New("A has not verified B's proof again")
		}
		return nil
	})
	appendEntries(t, p.wA, 5, 1024)
	p.rA.Appended(p.space, p.kA)
	eventually(t, testDeadline, func() error { return sameFeed(p.dbA, p.dbB, p.kA) })
	if n := p.rA.sessionCount(); n != 1 || p.logA.count("sync: session") != 0 {
		t.Fatalf("a recheck that still accepts ended the session: %d sessions; A:\n%s", n, p.logA)
	}
	revoked.Store(true)
	p.rA.Recheck(p.space)
	eventually(t, testDeadline, func() error {
		if n := p.rA.sessionCount(); n != 0 {
			return fmt.Errorf("A still has %d sessions", n)
		}
		if !strings.Contains(p.logA.String(), "no longer authorised") {
			return fmt.Errorf("A did not say why; A:\n%s", p.logA)
		}
		return nil
	})
	appendEntries(t, p.wA, 10, 1024)
	// B's side ends once the reset reaches it; until then Sync finds its
	// session running and opens none.
	eventually(t, testDeadline, func() error {
		if p.rB.hasSession(p.ha.ID()) {
			return errors.New("B's side of the session still runs")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.rB.Sync(ctx, p.ha.ID(), p.spB); err != nil {
		t.Fatal(err)
	}
	eventually(t, testDeadline, func() error {
		if !strings.Contains(p.logA.String(), "capability proof rejected") {
			return fmt.Errorf("A did not refuse B's next session; A:\n%s", p.logA)
		}
		return nil
	})
	if f, _ := p.dbB.Feed(p.kA); f.Length() != 55 {
		t.Fatalf("B holds %d entries after its removal, want the 55 from before", f.Length())
	}
}
