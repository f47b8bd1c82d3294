package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/space"
	"github.com/mycelsync/mycel/relay"
)

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

func daemonConfig(dir, name string, peers ...string) *node.Config {
	no := false
	return &node.Config{
		DataDir:  dir,
		Listen:   []string{"/ip4/127.0.0.1/tcp/0"},
		Peers:    peers,
		MDNS:     &no,
		LogLevel: "error",
		Name:     name,
	}
}

func startDaemon(t testing.TB, cfg *node.Config) *node.Node {
	t.Helper()
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// startRelay starts a relay on loopback with identity key in dir.
func startRelay(t *testing.T, dir string, key crypto.PrivKey) *relay.Relay {
	return startRelayLog(t, dir, key, nil)
}

// startRelayLog starts a relay that logs to log.
func startRelayLog(t *testing.T, dir string, key crypto.PrivKey, log *slog.Logger) *relay.Relay {
	return startRelayWith(t, dir, key, log, 0)
}

// startRelayWith starts a relay with a mirror quota per space (0: the
// default).
func startRelayWith(t *testing.T, dir string, key crypto.PrivKey, log *slog.Logger, quota int64) *relay.Relay {
	t.Helper()
	cfg := &relay.Config{DataDir: dir, LogLevel: "debug", Limits: relay.DefaultLimits(),
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}}
	cfg.MirrorLimits.BytesPerSpace = quota
	r, err := relay.New(cfg, key, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// approve makes b a writer of space id through an invite of a's.
func approve(t testing.TB, a, b *node.Node, id string) {
	t.Helper()
	ctx := context.Background()
	inv, err := a.CreateInvite(ctx, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Join(ctx, api.JoinWith{Invite: inv.Link})
	if err != nil {
		t.Fatal(err)
	}
	var req api.Request
	eventually(t, 30*time.Second, func() error {
		for _, r := range a.Requests() {
			if r.Code == st.Code {
				req = r
				return nil
			}
		}
		return errors.New("no request yet")
	})
	if err := a.Approve(ctx, req.ID, st.Code); err != nil {
		t.Fatal(err)
	}
	eventually(t, 45*time.Second, func() error {
		if i, _ := b.Space(id); !i.Writer {
			return errors.New("not a writer yet")
		}
		return nil
	})
}

// relayHolds waits until the relay's mirror holds every entry of every
// member feed that n shows.
func relayHolds(t *testing.T, r *relay.Relay, n *node.Node, id auth.SpaceID) {
	t.Helper()
	eventually(t, 60*time.Second, func() error {
		members, err := n.Members(id.String())
		if err != nil {
			return err
		}
		stored := r.Mirror().Stored(id)
		for _, m := range members {
			k, _ := hex.DecodeString(m.Feed)
			if got := stored[feed.PublicKey(k)]; got != m.Length {
				return fmt.Errorf("relay holds %d of %d entries of %s's feed", got, m.Length, m.Name)
			}
		}
		return nil
	})
}

// syncBuffer is a bytes.Buffer safe for the relay's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// gatherText returns the relay's metrics as text.
func gatherText(t *testing.T, r *relay.Relay) string {
	t.Helper()
	mfs, err := r.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, mf := range mfs {
		sb.WriteString(mf.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// canaries are random values, each planted as a key name and as a value.
func canaries(t *testing.T, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, 12)
		rand.Read(b)
		out[i] = []byte("canary-" + hex.EncodeToString(b))
	}
	return out
}

// scanStore reports the canaries found in any key or value of the badger
// store in dir, and in the raw bytes of every file under root.
func scanStore(t *testing.T, dir, root string, cans [][]byte) []string {
	t.Helper()
	var found []string
	st, err := badgerstore.Open(dir, badgerstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	pairs := 0
	err = st.Scan(nil, nil, func(k, v []byte) error {
		pairs++
		for _, c := range cans {
			if bytes.Contains(k, c) || bytes.Contains(v, c) {
				found = append(found, fmt.Sprintf("store %s: %s", dir, c))
			}
		}
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if pairs == 0 {
		t.Fatalf("store %s is empty", dir)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, c := range cans {
			if bytes.Contains(b, c) {
				found = append(found, fmt.Sprintf("file %s: %s", p, c))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestMirrorStoreAndForward: A and B are members, their device names
// canaries; B goes offline; A writes 1,000 canary keys and values, hands the space's mirror token to the
// relay, which mirrors A's writes, and goes offline. The relay restarts.
// B comes back knowing only the relay and gets everything from the
// mirror while A is down: the same view digest as A's, every canary
// readable — so the canaries did pass through the relay's store. Yet
// no key or value of that store, and no byte of any file under the
// relay's data directory, holds one of them. Positive control: the same
// scan finds every canary once they are written in the clear to a store
// under the relay's directory. (The daemon's own store holds them
// encrypted too, so it cannot serve as the control.)
func TestMirrorStoreAndForward(t *testing.T) {
	ctx := context.Background()
	dirA, dirB, dirR := t.TempDir(), t.TempDir(), t.TempDir()
	rkey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cans := canaries(t, 1000)
	nameA, nameB := string(cans[0]), string(cans[1]) // device names are canaries too
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := startRelayLog(t, dirR, rkey, log)
	a := startDaemon(t, daemonConfig(dirA, nameA))
	b := startDaemon(t, daemonConfig(dirB, nameB, a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	var kvs []space.KV
	for i, c := range cans {
		kvs = append(kvs, space.KV{Key: string(c), Value: cans[(i+1)%len(cans)]})
	}
	for i := 0; i < len(kvs); i += 50 {
		if err := a.PutMany(ctx, info.ID, kvs[i:i+50]); err != nil {
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
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// The relay restarts: the mirror is still there.
	metrics := gatherText(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = startRelayLog(t, dirR, rkey, log)
	if got := r.Mirror().Stored(tok.Space); len(got) == 0 {
		t.Fatal("the mirror is gone after a restart")
	}

	b = startDaemon(t, daemonConfig(dirB, nameB, r.Addrs()[0].String()))
	eventually(t, 60*time.Second, func() error {
		got, err := b.Space(info.ID)
		if err != nil {
			return err
		}
		if got.Digest != want.Digest {
			return fmt.Errorf("B's view: %d entries, A's %d", got.Entries, want.Entries)
		}
		return nil
	})
	for i, c := range cans {
		e, err := b.Get(info.ID, string(c))
		if err != nil || len(e.Versions) == 0 || !bytes.Equal(e.Versions[0].Value, cans[(i+1)%len(cans)]) {
			t.Fatalf("B's %s: %+v %v", c, e, err)
		}
	}
	// The restarted relay still follows B (its add was read before the
	// restart): B's write reaches the mirror.
	if err := b.Put(ctx, info.ID, string(cans[2]), cans[3]); err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, b, tok.Space)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	metrics += gatherText(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, "mycel_relay_mirror_handovers_total") || !bytes.Contains(logs.Bytes(), []byte("relay started")) {
		t.Fatal("the relay's metrics or logs were not captured")
	}
	for _, c := range cans {
		if bytes.Contains(logs.Bytes(), c) || strings.Contains(metrics, string(c)) {
			t.Fatalf("the relay's logs or metrics hold %s", c)
		}
	}

	if found := scanStore(t, filepath.Join(dirR, relay.MirrorDir), dirR, cans); len(found) != 0 {
		t.Fatalf("the relay holds %d canaries in the clear, e.g. %s", len(found), found[0])
	}
	// Positive control: the same scan finds the canaries when they are in
	// the clear — a value written to a store under the relay's directory.
	ctl := filepath.Join(dirR, "control")
	st, err := badgerstore.Open(ctl)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit([]feed.Write{{Key: []byte("k"), Value: bytes.Join(cans, []byte(" "))}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if found := scanStore(t, ctl, dirR, cans); len(found) < len(cans) {
		t.Fatalf("control: the scan found %d of %d canaries", len(found), len(cans))
	}
}

// TestMirrorBootstrapFromMember: the member who hands a new relay the
// token is not the space's creator, and the creator is offline: the relay
// cannot tell yet that the member is a writer, so it fetches the creator's
// feed from the member in a session that shows the member nothing, finds
// the member's add in it, and the member's proof then confirms the token.
// The relay ends up with everything.
func TestMirrorBootstrapFromMember(t *testing.T) {
	ctx := context.Background()
	rkey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r := startRelay(t, t.TempDir(), rkey)
	a := startDaemon(t, daemonConfig(t.TempDir(), "A"))
	b := startDaemon(t, daemonConfig(t.TempDir(), "B", a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	for i := range 10 {
		if err := a.Put(ctx, info.ID, fmt.Sprint("a", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := a.Space(info.ID)
	eventually(t, 30*time.Second, func() error {
		if got, _ := b.Space(info.ID); got.Digest != want.Digest {
			return errors.New("B has not caught up with A")
		}
		return nil
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	tok, err := b.MirrorToken(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Host().Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := relay.HandMirrorToken(ctx, b.Host(), r.Host().ID(), tok); err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, b, tok.Space)
	eventually(t, 30*time.Second, func() error {
		if c := r.Mirror().Counts(); c.Confirmed != 1 {
			return fmt.Errorf("counts %+v", c)
		}
		return nil
	})
}

// TestMirrorQuota: a space over its mirror quota is refused what goes
// beyond it, and its writer is not held at fault for it: after many
// refused batches the relay still mirrors the writer's other space.
func TestMirrorQuota(t *testing.T) {
	ctx := context.Background()
	rkey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r := startRelayWith(t, t.TempDir(), rkey, nil, 64<<10)
	a := startDaemon(t, daemonConfig(t.TempDir(), "A"))
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	var toks []auth.MirrorToken
	for _, name := range []string{"big", "small"} {
		info, err := a.CreateSpace(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Put(ctx, info.ID, "first", []byte("x")); err != nil {
			t.Fatal(err)
		}
		tok, err := a.MirrorToken(info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := relay.HandMirrorToken(ctx, a.Host(), r.Host().ID(), tok); err != nil {
			t.Fatal(err)
		}
		relayHolds(t, r, a, tok.Space)
		toks = append(toks, tok)
	}
	big, small := toks[0], toks[1]
	value := bytes.Repeat([]byte("v"), 30<<10)
	for i := range 6 {
		before := r.Mirror().Counts().QuotaRefused
		if err := a.Put(ctx, big.Space.String(), fmt.Sprint("big", i), value); err != nil {
			t.Fatal(err)
		}
		if i >= 2 { // the third value passes the quota
			eventually(t, 30*time.Second, func() error {
				if r.Mirror().Counts().QuotaRefused == before {
					return errors.New("no refusal yet")
				}
				return nil
			})
		}
	}
	if err := a.Put(ctx, small.Space.String(), "after", []byte("x")); err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, a, small.Space)
	if r.Mirror().Replicator().Banned(a.Host().ID()) {
		t.Fatal("the writer is banned for the relay's quota")
	}
}

// TestDaemonHandsMirrorToken: a daemon that names a relay (Config.Relays)
// hands it the mirror token of its space by itself, and the new one after
// a removal rotated the keys: the relay mirrors the space, and confirms the
// second epoch's token too.
func TestDaemonHandsMirrorToken(t *testing.T) {
	ctx := context.Background()
	rkey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r := startRelay(t, t.TempDir(), rkey)
	relayAddr := r.Addrs()[0].String() + "/p2p/" + r.Host().ID().String()
	cfg := daemonConfig(t.TempDir(), "A")
	cfg.Relays = []string{relayAddr}
	a := startDaemon(t, cfg)
	b := startDaemon(t, daemonConfig(t.TempDir(), "B", a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	for i := range 10 {
		if err := a.Put(ctx, info.ID, fmt.Sprint("a", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := hex.DecodeString(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := auth.SpaceIDFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, a, sid)
	eventually(t, 30*time.Second, func() error {
		if c := r.Mirror().Counts(); c.Confirmed != 1 {
			return fmt.Errorf("counts %+v", c)
		}
		return nil
	})
	// B removed: a new epoch, whose token A hands by itself.
	bi, err := b.Space(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveMember(ctx, info.ID, bi.Feed); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, info.ID, "after", []byte("y")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if c := r.Mirror().Counts(); c.Confirmed != 2 {
			return fmt.Errorf("counts %+v: the new epoch's token is not confirmed", c)
		}
		return nil
	})
	relayHolds(t, r, a, sid)
}
