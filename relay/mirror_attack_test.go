package relay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/syncnet"
	"github.com/mycelsync/mycel/relay"
)

// mirrored starts a relay and a daemon A that creates a space, writes to
// it and hands the relay its mirror token; it returns once the relay
// mirrors all of A's writes.
func mirrored(t *testing.T) (*relay.Relay, *node.Node, auth.MirrorToken) {
	t.Helper()
	rkey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r := startRelay(t, t.TempDir(), rkey)
	a, tok := handedSpace(t, r)
	return r, a, tok
}

// handedSpace starts daemon A with a space of 20 keys and hands r its
// mirror token; r then holds A's feed.
func handedSpace(t *testing.T, r *relay.Relay) (*node.Node, auth.MirrorToken) {
	t.Helper()
	ctx := context.Background()
	a := startDaemon(t, daemonConfig(t.TempDir(), "A"))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := a.Put(ctx, info.ID, fmt.Sprint("key", i), []byte("value")); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := a.MirrorToken(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := relay.HandMirrorToken(ctx, a.Host(), r.Host().ID(), tok); err != nil {
		t.Fatalf("the member's handover: %v", err)
	}
	relayHolds(t, r, a, tok.Space)
	return a, tok
}

// peerSpace is a space as a bare replicator peer serves it: a FeedSpace
// with its capability and, optionally, a writer key it proves.
type peerSpace struct {
	*syncnet.FeedSpace
	cap    auth.ReplicationCapability
	writer ed25519.PrivateKey
}

func (s *peerSpace) Credentials() replication.Credentials {
	return replication.Credentials{Caps: []auth.ReplicationCapability{s.cap}, Writer: s.writer}
}

// Verify trusts the relay: the test is about what the relay gives away.
func (s *peerSpace) Verify([]byte, replication.Proof) bool { return true }

// bare is a libp2p host with a replicator and a memory feed DB, connected
// to the relay.
type bare struct {
	h    host.Host
	repl *syncnet.Replicator
	db   *feed.DB
}

func newBare(t *testing.T, r *relay.Relay) *bare {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	repl := syncnet.New(h, nil)
	db, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repl.Close(); h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	return &bare{h: h, repl: repl, db: db}
}

// memberFeeds returns the feed keys of the members n shows.
func memberFeeds(t *testing.T, n *node.Node, id auth.SpaceID) map[feed.PublicKey]uint64 {
	t.Helper()
	members, err := n.Members(id.String())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[feed.PublicKey]uint64)
	for _, m := range members {
		k, _ := hex.DecodeString(m.Feed)
		out[feed.PublicKey(k)] = m.Length
	}
	return out
}

func keys(m map[feed.PublicKey]uint64) []feed.PublicKey {
	var out []feed.PublicKey
	for k := range m {
		out = append(out, k)
	}
	return out
}

// holds waits until db holds every entry of want.
func holds(t *testing.T, db *feed.DB, want map[feed.PublicKey]uint64) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		for k, n := range want {
			f, err := db.Feed(k)
			if err != nil {
				return err
			}
			var got uint64
			for _, r := range f.Ranges() {
				got += r.End - r.Start
			}
			if got != n {
				return fmt.Errorf("holds %d of %d entries of %x", got, n, k[:4])
			}
		}
		return nil
	})
}

// TestMirrorBogusTokenGetsNothing: an outsider who knows the space ID
// hands the relay a token of its own making, of a newer epoch, and opens
// replication proving it, as the writer of a feed of its own: the relay
// refuses the opening and sends nothing. A peer holding the real
// capability, opening the same way right after, gets every entry — and so
// does A's next write: the bogus token displaced nothing.
func TestMirrorBogusTokenGetsNothing(t *testing.T) {
	ctx := context.Background()
	r, a, tok := mirrored(t)
	want := memberFeeds(t, a, tok.Space)

	out := newBare(t, r)
	bogus := auth.MirrorToken{Space: tok.Space, Epoch: tok.Epoch + 1}
	rand.Read(bogus.Token[:])
	if err := relay.HandMirrorToken(ctx, out.h, r.Host().ID(), bogus); err != nil {
		t.Fatalf("handover (taken as pending): %v", err)
	}
	_, w, _ := ed25519.GenerateKey(rand.Reader)
	osp := &peerSpace{FeedSpace: syncnet.NewFeedSpace(tok.Space, out.db, keys(want), bogus.ReplicationCapability()),
		cap: bogus.ReplicationCapability(), writer: w}
	before := r.Mirror().Counts().ProofsRefused
	if err := out.repl.Serve(osp); err != nil {
		t.Fatal(err)
	}
	if err := out.repl.Sync(ctx, r.Host().ID(), osp); err != nil {
		t.Logf("sync: %v", err) // the relay may have opened first
	}
	eventually(t, 30*time.Second, func() error {
		if r.Mirror().Counts().ProofsRefused == before {
			return fmt.Errorf("the relay has not refused the outsider's proof yet")
		}
		return nil
	})

	in := newBare(t, r)
	cap := tok.ReplicationCapability()
	isp := &peerSpace{FeedSpace: syncnet.NewFeedSpace(tok.Space, in.db, keys(want), cap), cap: cap}
	if err := in.repl.Serve(isp); err != nil {
		t.Fatal(err)
	}
	in.repl.Sync(ctx, r.Host().ID(), isp)
	holds(t, in.db, want)

	if got, err := out.db.Feeds(); err != nil || len(got) != 0 {
		t.Fatalf("the outsider holds %d feeds of the space (%v)", len(got), err)
	}
	if err := a.Put(ctx, tok.Space.String(), "after", []byte("x")); err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, a, tok.Space)
}

// TestMirrorRefusesNonWriterFeed: a peer holding the space's real
// capability (a member, or anyone the token leaked to) offers the relay a
// feed of its own that no writer added: the relay never takes it, while
// it serves that peer the writers' feeds.
func TestMirrorRefusesNonWriterFeed(t *testing.T) {
	ctx := context.Background()
	r, a, tok := mirrored(t)
	want := memberFeeds(t, a, tok.Space)

	in := newBare(t, r)
	_, x, _ := ed25519.GenerateKey(rand.Reader)
	xw, err := in.db.Writer(x)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := xw.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	cap := tok.ReplicationCapability()
	feeds := append(keys(want), xw.Key())
	isp := &peerSpace{FeedSpace: syncnet.NewFeedSpace(tok.Space, in.db, feeds, cap), cap: cap, writer: x}
	if err := in.repl.Serve(isp); err != nil {
		t.Fatal(err)
	}
	in.repl.Sync(ctx, r.Host().ID(), isp)
	holds(t, in.db, want) // the session ran both ways
	in.repl.Appended(tok.Space, xw.Key())
	if _, err := xw.Append(ctx, []byte("pushed live")); err != nil {
		t.Fatal(err)
	}
	in.repl.Appended(tok.Space, xw.Key())
	if err := a.Put(ctx, tok.Space.String(), "after", []byte("x")); err != nil {
		t.Fatal(err)
	}
	want = memberFeeds(t, a, tok.Space)
	holds(t, in.db, want) // pushed after the non-writer's push
	if n, ok := r.Mirror().Stored(tok.Space)[xw.Key()]; ok {
		t.Fatalf("the relay stored %d entries of a feed no writer added", n)
	}
}

// TestMirrorBootstrapShowsOutsiderNothing: while no token of a space is
// confirmed, an outsider's bogus token opens a bootstrap session with the
// relay. A member then hands the real token and the relay fetches the
// space through it, with the outsider's session open all along: the
// outsider is shown nothing, and its session ends at the confirmation.
func TestMirrorBootstrapShowsOutsiderNothing(t *testing.T) {
	ctx := context.Background()
	rkey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r := startRelay(t, t.TempDir(), rkey)
	a := startDaemon(t, daemonConfig(t.TempDir(), "A"))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := a.Put(ctx, info.ID, fmt.Sprint("key", i), []byte("value")); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := a.MirrorToken(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := memberFeeds(t, a, tok.Space)

	out := newBare(t, r)
	bogus := auth.MirrorToken{Space: tok.Space, Epoch: tok.Epoch}
	rand.Read(bogus.Token[:])
	if err := relay.HandMirrorToken(ctx, out.h, r.Host().ID(), bogus); err != nil {
		t.Fatal(err)
	}
	osp := &peerSpace{FeedSpace: syncnet.NewFeedSpace(tok.Space, out.db, keys(want), bogus.ReplicationCapability()),
		cap: bogus.ReplicationCapability()}
	if err := out.repl.Serve(osp); err != nil {
		t.Fatal(err)
	}
	out.repl.Sync(ctx, r.Host().ID(), osp)
	// The outsider's bootstrap session is open (the relay keeps a session
	// with it: Progress lists the feeds it would fetch).
	eventually(t, 30*time.Second, func() error {
		for _, p := range r.Mirror().Replicator().Progress() {
			if p.Peer == out.h.ID() {
				return nil
			}
		}
		return errors.New("no session with the outsider")
	})
	refused := r.Mirror().Counts().ProofsRefused

	// A hands the real token (in process: A connecting before the relay
	// holds it would open a session that fails, and nothing reopens it
	// until the next connection), then connects.
	if err := r.Mirror().Hand(a.Host().ID(), tok); err != nil {
		t.Fatal(err)
	}
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, a, tok.Space)
	eventually(t, 30*time.Second, func() error {
		if c := r.Mirror().Counts(); c.Confirmed != 1 || c.ProofsRefused == refused {
			return fmt.Errorf("counts %+v: the outsider's session has not ended", c)
		}
		return nil
	})
	if got, err := out.db.Feeds(); err != nil || len(got) != 0 {
		t.Fatalf("the outsider holds %d feeds of the space (%v)", len(got), err)
	}
}

// TestMirrorUnconfirmedFloodE2E: an outsider fills every unconfirmed slot
// of a real relay with spaces of its own making (and keeps handing more);
// a real daemon then hands the token of its new space: the relay takes
// it, the daemon's proof confirms it and the relay mirrors every entry. A
// second flood, once it is confirmed, leaves it in place.
func TestMirrorUnconfirmedFloodE2E(t *testing.T) {
	ctx := context.Background()
	rkey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	cfg := &relay.Config{DataDir: t.TempDir(), LogLevel: "debug", Limits: relay.DefaultLimits(),
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}}
	cfg.MirrorLimits.MaxUnconfirmedSpaces = 4
	r, err := relay.New(cfg, rkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	outsider := newBare(t, r)
	flood := func(n int) {
		t.Helper()
		for i := range n {
			var tok auth.MirrorToken
			rand.Read(tok.Space[:])
			rand.Read(tok.Token[:])
			// Refused or not, the outsider goes on.
			if err := relay.HandMirrorToken(ctx, outsider.h, r.Host().ID(), tok); err != nil && !errors.Is(err, relay.ErrMirrorFull) {
				t.Fatalf("the outsider's space %d: %v", i, err)
			}
		}
	}
	flood(6)

	a, tok := handedSpace(t, r)
	if c := r.Mirror().Counts(); c.Confirmed != 1 {
		t.Fatalf("counts %+v: the member's token is not confirmed", c)
	}

	flood(8)
	if !slices.Contains(r.Mirror().Spaces(), tok.Space) || len(r.Mirror().Spaces()) != 5 {
		t.Fatalf("after a second flood: %d spaces, the member's among them: %v",
			len(r.Mirror().Spaces()), slices.Contains(r.Mirror().Spaces(), tok.Space))
	}
	relayHolds(t, r, a, tok.Space)
}
