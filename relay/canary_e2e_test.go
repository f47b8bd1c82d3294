package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/space"
	"github.com/mycelsync/mycel/relay"
)

// spaceSecrets are the secrets of space id on the daemon in dir: each
// epoch's secret with the content and message keys derived from it, read
// from the daemon's sealed keyring (node.KeysDir) with its device key.
func spaceSecrets(t *testing.T, dir string, id auth.SpaceID, own feed.PublicKey) [][]byte {
	t.Helper()
	dk, err := node.LoadDeviceKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(filepath.Join(dir, node.KeysDir))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		sealed, err := os.ReadFile(filepath.Join(dir, node.KeysDir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		kr, err := auth.OpenKeyring(dk, sealed, auth.Binding{Space: id, Feed: own})
		if err != nil {
			continue // not the keyring
		}
		for _, es := range append(kr.Epochs, kr.Concurrent...) {
			ck, ek := es.ContentKey(id), es.EphemeralKey(id)
			out = append(out, bytes.Clone(es.Secret[:]), ck[:], ek[:])
		}
	}
	if len(out) == 0 {
		t.Fatalf("no keyring of space %s in %s", id, dir)
	}
	return out
}

// TestRelayLearnsNoCanary plays the README's privacy claims. A and B are
// members whose device names are canaries; B reaches A only through the
// relay's circuit (no direct connection). A sets 3 canary passwords, writes
// 1,000 canary key names with 1,000 canary values, and hands the relay the
// mirror token; A sends B 1,000 canary message bodies, which cross the
// relay's circuit, and B receives every one. Then no key or value of the
// relay's store, no byte of any file under its data directory, no line of
// its debug log and no metric holds any canary — key, value, device name,
// message body, password — nor any secret of the space (epoch secrets,
// content and message keys, password keys). Positive control: the same
// scans find every one of them once planted in the clear in a store under
// the relay's directory, in its log and in a metric-like text.
//
// The relay's circuits are unlimited here (relay.LiftCircuitLimits, what
// its ACL is to grant members), so gossipsub runs over B's relayed
// connection to A.
func TestRelayLearnsNoCanary(t *testing.T) {
	ctx := context.Background()
	dirA, dirB, dirR := t.TempDir(), t.TempDir(), t.TempDir()
	rkey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys, values, bodies := canaries(t, 1000), canaries(t, 1000), canaries(t, 1000)
	names, passwords := canaries(t, 2), canaries(t, 3)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := startRelayLog(t, dirR, rkey, log)
	if err := relay.LiftCircuitLimits(r); err != nil {
		t.Fatal(err)
	}
	raddr := r.Addrs()[0].String()

	// B signs in directly, then reaches A only through the relay.
	cfgA := daemonConfig(dirA, string(names[0]))
	cfgA.Relays = []string{raddr}
	a := startDaemon(t, cfgA)
	b := startDaemon(t, daemonConfig(dirB, string(names[1]), a.Addrs()[0].String()))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var circuit ma.Multiaddr
	eventually(t, 30*time.Second, func() error {
		for _, addr := range a.Addrs() {
			if strings.Contains(addr.String(), "/p2p-circuit") {
				circuit = addr
				return nil
			}
		}
		return errors.New("A holds no reservation on the relay yet")
	})
	b = startDaemon(t, daemonConfig(dirB, string(names[1]), circuit.String()))

	for _, pw := range passwords {
		if err := a.SetPassword(ctx, info.ID, string(pw)); err != nil {
			t.Fatal(err)
		}
	}
	var kvs []space.KV
	for i := range keys {
		kvs = append(kvs, space.KV{Key: string(keys[i]), Value: values[i]})
	}
	for i := 0; i < len(kvs); i += 50 {
		if err := a.PutMany(ctx, info.ID, kvs[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := a.MirrorToken(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.HandMirrorToken(ctx, a.Host(), r.Host().ID(), tok); err != nil {
		t.Fatal(err)
	}
	relayHolds(t, r, a, tok.Space)
	want, _ := a.Space(info.ID)
	eventually(t, 60*time.Second, func() error {
		if got, _ := b.Space(info.ID); got.Digest != want.Digest {
			return fmt.Errorf("B's view: %d entries, A's %d", got.Entries, want.Entries)
		}
		return nil
	})

	// The message bodies cross the relay: A publishes them to its
	// gossipsub peers on the space's topic, the relay's router among them,
	// which checks and forwards each (counted), whether B then reaches A
	// only through the relay or also directly (a relayed-only peer dials
	// direct addresses too).
	forwarded0 := forwarded(t, r)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	got, _, err := b.Listen(lctx, info.ID, "canary")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	received := map[string]bool{}
	go func() {
		for m := range got {
			mu.Lock()
			received[string(m.Data)] = true
			mu.Unlock()
		}
	}()
	has := func(body []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		return received[string(body)]
	}
	// In chunks, within the listener's buffer (Limits.Ephemeral.ListenBuffer);
	// what is missing is sent again.
	deadline := time.Now().Add(90 * time.Second)
	sendAll := func() {
		for missing := bodies; len(missing) > 0; {
			if time.Now().After(deadline) {
				t.Fatalf("B received %d of %d messages", len(bodies)-len(missing), len(bodies))
			}
			chunk := missing[:min(32, len(missing))]
			for _, body := range chunk {
				if err := a.Send(ctx, info.ID, "canary", body); err != nil {
					t.Fatal(err)
				}
			}
			for wait := time.Now().Add(2 * time.Second); time.Now().Before(wait) && slices.ContainsFunc(chunk, func(b []byte) bool { return !has(b) }); {
				time.Sleep(5 * time.Millisecond)
			}
			missing = slices.DeleteFunc(slices.Clone(missing), has)
		}
	}
	sendAll()
	// B may have a message from A directly while gossipsub dropped the
	// relay's copy under load (976 of 1,000 crossed it once in a full run
	// of the package): then every body is sent once more, each a new
	// envelope, so that the bodies cross the relay.
	if n := forwarded(t, r) - forwarded0; n < float64(len(bodies)) {
		t.Logf("the relay forwarded %v envelopes of the %d messages; sending each again", n, len(bodies))
		mu.Lock()
		clear(received)
		mu.Unlock()
		sendAll()
	}
	if n := forwarded(t, r) - forwarded0; n < float64(len(bodies)) {
		t.Fatalf("the relay forwarded %v envelopes while %d messages were sent twice: they need not have crossed it", n, len(bodies))
	}

	id := tok.Space
	secrets := spaceSecrets(t, dirA, id, ownFeed(t, a, info.ID))
	for g := range uint32(len(passwords)) {
		for _, pw := range passwords {
			k := auth.PasswordKeyAt(string(pw), id, g)
			secrets = append(secrets, k[:])
		}
	}
	for _, s := range secrets[:len(secrets):len(secrets)] {
		secrets = append(secrets, []byte(hex.EncodeToString(s))) // as a log would print it
	}
	metrics := gatherText(t, r)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	metrics += gatherText(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, "mycel_relay_mirror_entries_stored_total") || !bytes.Contains(logs.Bytes(), []byte("level=DEBUG")) {
		t.Fatal("the relay's metrics or debug logs were not captured")
	}

	all := map[string][][]byte{"key name": keys, "value": values, "message body": bodies,
		"device name": names, "password": passwords, "space secret": secrets}
	planted := 0
	for kind, cs := range all {
		planted += len(cs)
		if found := scanAll(t, filepath.Join(dirR, relay.MirrorDir), dirR, logs.Bytes(), []byte(metrics), cs); len(found) != 0 {
			t.Errorf("the relay holds %d of the %d %ss, e.g. %s", len(found), len(cs), kind, found[0])
		}
	}
	t.Logf("planted %d canaries and secrets; found none in the relay's store, files, debug log or metrics", planted)

	// Positive control: each scan finds what is planted in the clear.
	ctl := filepath.Join(dirR, "control")
	st, err := badgerstore.Open(ctl)
	if err != nil {
		t.Fatal(err)
	}
	for kind, cs := range all {
		if err := st.Commit([]feed.Write{{Key: []byte(kind), Value: bytes.Join(cs, []byte(" "))}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	for kind, cs := range all {
		if found := scanStore(t, ctl, dirR, cs); len(found) < len(cs) {
			t.Fatalf("control: the store scan found %d of %d %ss", len(found), len(cs), kind)
		}
		clear := bytes.Join(cs, []byte(" "))
		if found := scanText(clear, nil, cs); len(found) < len(cs) {
			t.Fatalf("control: the log scan found %d of %d %ss", len(found), len(cs), kind)
		}
		if found := scanText(nil, clear, cs); len(found) < len(cs) {
			t.Fatalf("control: the metrics scan found %d of %d %ss", len(found), len(cs), kind)
		}
	}
}

// scanAll is scanStore over the store in dir and the files under root,
// and scanText over the log and the metrics.
func scanAll(t *testing.T, dir, root string, log, metrics []byte, cans [][]byte) []string {
	t.Helper()
	return append(scanStore(t, dir, root, cans), scanText(log, metrics, cans)...)
}

// scanText reports the canaries found in the log and metrics texts.
func scanText(log, metrics []byte, cans [][]byte) []string {
	var found []string
	for _, c := range cans {
		if bytes.Contains(log, c) {
			found = append(found, "log: "+hex.EncodeToString(c))
		}
		if bytes.Contains(metrics, c) {
			found = append(found, "metrics: "+hex.EncodeToString(c))
		}
	}
	return found
}

// ownFeed is n's feed in space id.
func ownFeed(t *testing.T, n *node.Node, id string) feed.PublicKey {
	t.Helper()
	info, err := n.Space(id)
	if err != nil {
		t.Fatal(err)
	}
	k, err := hex.DecodeString(info.Feed)
	if err != nil || len(k) != len(feed.PublicKey{}) {
		t.Fatalf("feed %q: %v", info.Feed, err)
	}
	return feed.PublicKey(k)
}

// forwarded is the number of envelopes r's message router forwarded.
func forwarded(t *testing.T, r *relay.Relay) float64 {
	t.Helper()
	mfs, err := r.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "mycel_relay_router_envelopes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "forwarded" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
