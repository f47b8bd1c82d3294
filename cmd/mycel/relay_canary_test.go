package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
)

// canaryStrings are n random strings, each marked as a canary.
func canaryStrings(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, 12)
		rand.Read(b)
		out[i] = []byte("canary-" + hex.EncodeToString(b))
	}
	return out
}

// relayScan returns where the canaries are found: any key or value of the
// badger store in dir (read through badger, its files being compressed),
// the raw bytes of every file under root, and the texts.
func relayScan(t *testing.T, dir, root string, texts [][]byte, cans [][]byte) []string {
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
				found = append(found, "store: "+hex.EncodeToString(c))
			}
		}
		return nil
	})
	st.Close()
	if err != nil || pairs == 0 {
		t.Fatalf("store %s: %d pairs, %v", dir, pairs, err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		texts = append(texts, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range texts {
		for _, c := range cans {
			if bytes.Contains(text, c) {
				found = append(found, "text: "+hex.EncodeToString(c))
			}
		}
	}
	return found
}

// TestE2ERelayCanaries: real processes. A (a canary device name) creates
// a space, signs C (another) in, and, restarted naming a real `mycel relay`
// run at debug level, sets 3 canary passwords and puts 1,000 canary keys
// with canary values; the relay mirrors them all, and C, started with the
// relay as its only peer while A is down, gets every one from it. With the
// relay stopped, no key or value of its store, no byte of any file under
// its data directory, of its log (stderr at debug level, libp2p's loggers
// included) or of its /metrics holds a canary or a space secret (each
// epoch's secret, content and message keys, the password keys; raw and in
// hex), nor the devices' peer IDs (no per-peer log). Positive control: the
// scans find each one planted in the clear in a store and in a text.
func TestE2ERelayCanaries(t *testing.T) {
	keys, values, names, passwords := canaryStrings(1000), canaryStrings(1000), canaryStrings(2), canaryStrings(3)
	rdir := t.TempDir()
	rlisten := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freeTCPPort(t))
	r := startRelay(t, rdir, "--listen", rlisten, "--metrics", "127.0.0.1:0", "--log-level", "debug")
	raddr := rlisten + "/p2p/" + r.id

	a := newDaemon(t, "--name", string(names[0]))
	c := newDaemon(t, "--name", string(names[1]), "--peer", a.peerAddr())
	id := createSpace(t, a, c)
	c.kill()
	a.kill()
	a.extra = []string{"--name", string(names[0]), "--relay", raddr}
	a.start()
	for _, pw := range passwords {
		if st := a.request("PUT", "/v1/spaces/"+id+"/password", api.PasswordParams{Password: string(pw)}, nil); st != http.StatusNoContent && st != http.StatusOK {
			t.Fatalf("set password: %d", st)
		}
	}
	for i := range keys {
		a.put(id, string(keys[i]), values[i])
	}
	want := a.space(id)
	total := feedEntries(a, id)
	waitFor(t, 60*time.Second, func() error {
		if got := relayMetric(t, r, "mycel_relay_mirror_entries_stored_total"); uint64(got) != total {
			return fmt.Errorf("the relay's mirror stored %v of the space's %d entries", got, total)
		}
		return nil
	})
	var info api.SpaceInfo
	a.request("GET", "/v1/spaces/"+id, nil, &info)
	var stA, stC api.Status
	a.request("GET", "/v1/status", nil, &stA)
	a.kill()

	c.extra = []string{"--name", string(names[1]), "--relay", raddr}
	c.start()
	waitFor(t, 60*time.Second, func() error {
		if got := c.space(id); got.Digest != want.Digest {
			return fmt.Errorf("C's view: %d entries, A's %d", got.Entries, want.Entries)
		}
		return nil
	})
	if got := getValue(c, id, string(keys[999])); !bytes.Equal(got, values[999]) {
		t.Fatalf("C's last canary: %q", got)
	}
	c.request("GET", "/v1/status", nil, &stC)
	c.kill()
	resp, err := http.Get(r.metrics)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.stop(t)
	logs := []byte(r.stderr.String())
	if !bytes.Contains(logs, []byte("relay started")) {
		t.Fatalf("the relay's output was not captured:\n%s", logs)
	}

	raw, err := hex.DecodeString(id)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := auth.SpaceIDFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	secrets := daemonSecrets(t, a.dir, sid, info.Feed)
	for g := range uint32(len(passwords)) {
		for _, pw := range passwords {
			k := auth.PasswordKeyAt(string(pw), sid, g)
			secrets = append(secrets, k[:])
		}
	}
	for _, s := range secrets[:len(secrets):len(secrets)] {
		secrets = append(secrets, []byte(hex.EncodeToString(s)))
	}
	all := map[string][][]byte{"key name": keys, "value": values, "device name": names, "password": passwords, "space secret": secrets,
		"device peer ID": {[]byte(stA.PeerID), []byte(stC.PeerID)}}
	planted := 0
	for kind, cs := range all {
		planted += len(cs)
		if found := relayScan(t, filepath.Join(rdir, "mirror"), rdir, [][]byte{logs, metrics}, cs); len(found) != 0 {
			t.Errorf("the relay holds %d of the %d %ss, e.g. %s", len(found), len(cs), kind, found[0])
		}
	}
	t.Logf("planted %d canaries and secrets; none in the relay's store, files, output (%d bytes) or metrics (%d bytes)", planted, len(logs), len(metrics))

	// Positive control, in a store and a file under the relay's directory.
	ctl := filepath.Join(rdir, "control")
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
		if found := relayScan(t, ctl, t.TempDir(), nil, cs); len(found) < len(cs) {
			t.Fatalf("control: the store scan found %d of %d %ss", len(found), len(cs), kind)
		}
		if found := relayScan(t, ctl, t.TempDir(), [][]byte{bytes.Join(cs, nil)}, cs); len(found) < 2*len(cs) {
			t.Fatalf("control: the text scan found %d of %d %ss", len(found)-len(cs), len(cs), kind)
		}
	}
}

// daemonSecrets are space id's secrets on the daemon in dir, whose feed in
// the space is feedHex: each epoch's secret with its content and message
// keys, from the sealed keyring in node.KeysDir.
func daemonSecrets(t *testing.T, dir string, id auth.SpaceID, feedHex string) [][]byte {
	t.Helper()
	dk, err := node.LoadDeviceKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	own, err := hex.DecodeString(feedHex)
	if err != nil || len(own) != len(feed.PublicKey{}) {
		t.Fatalf("feed %q: %v", feedHex, err)
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
		kr, err := auth.OpenKeyring(dk, sealed, auth.Binding{Space: id, Feed: feed.PublicKey(own)})
		if err != nil {
			continue // not this space's keyring
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
