package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/replication/syncpb"
	"github.com/mycelsync/mycel/node/space"
	"github.com/mycelsync/mycel/node/syncnet"
)

// daemon is a real `mycel daemon` process on loopback and the way to its
// API.
type daemon struct {
	t      testing.TB
	dir    string
	extra  []string
	cmd    *exec.Cmd
	addrs  []string
	stderr *syncBuffer
	api    string // host:port
	token  string
	// netns is the network namespace the daemon runs in ("": the test's),
	// and client the HTTP client that reaches its API there (nil:
	// http.DefaultClient).
	netns  string
	client *http.Client
}

func (d *daemon) httpClient() *http.Client {
	if d.client != nil {
		return d.client
	}
	return http.DefaultClient
}

func newDaemon(t testing.TB, extra ...string) *daemon {
	d := &daemon{t: t, dir: t.TempDir(), extra: extra}
	d.start()
	return d
}

func (d *daemon) start() {
	t := d.t
	t.Helper()
	d.cmd, d.addrs, d.stderr = startDaemonIn(t, d.netns, d.dir, d.extra...)
	addr, err := os.ReadFile(filepath.Join(d.dir, "api.addr"))
	if err != nil {
		t.Fatalf("api.addr: %v; stderr:\n%s", err, d.stderr)
	}
	token, err := os.ReadFile(filepath.Join(d.dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	d.api, d.token = strings.TrimSpace(string(addr)), strings.TrimSpace(string(token))
}

// peerAddr is the daemon's TCP address with its peer ID (not a circuit
// address through its relay, which it prints too once it reserved a slot
// before printing: gossipsub opens no stream over a relayed connection).
func (d *daemon) peerAddr() string {
	for _, a := range d.addrs {
		if strings.Contains(a, "/tcp/") && !strings.Contains(a, "/p2p-circuit") {
			return a
		}
	}
	d.t.Fatalf("no TCP address in %v", d.addrs)
	return ""
}

func (d *daemon) kill() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
}

// request sends an API request with the daemon's token and decodes a JSON
// answer into out (if not nil). It returns the status.
func (d *daemon) request(method, path string, body, out any) int {
	d.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			d.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+d.api+path, r)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.httpClient().Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v; stderr:\n%s", method, path, err, d.stderr)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			d.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	if resp.StatusCode >= 300 && out != nil {
		d.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

func (d *daemon) space(id string) api.SpaceInfo {
	var info api.SpaceInfo
	d.request("GET", "/v1/spaces/"+id, nil, &info)
	return info
}

func (d *daemon) put(id, key string, value []byte) {
	d.t.Helper()
	if code := d.request("PUT", "/v1/spaces/"+id+"/keys/"+key, map[string]any{"value": value}, nil); code != http.StatusNoContent {
		d.t.Fatalf("put %s: status %d", key, code)
	}
}

// tryPut is put for other goroutines than the test's: it returns what
// went wrong instead of failing the test.
func (d *daemon) tryPut(id, key string, value []byte) error {
	body, err := json.Marshal(map[string]any{"value": value})
	if err != nil {
		return err
	}
	req, err := http.NewRequest("PUT", "http://"+d.api+"/v1/spaces/"+id+"/keys/"+key, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("put %s: status %d", key, resp.StatusCode)
	}
	return nil
}

// metric returns the value of a counter on the daemon's /metrics.
func (d *daemon) metric(name string) float64 {
	d.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				d.t.Fatal(err)
			}
			return v
		}
	}
	d.t.Fatalf("no metric %s", name)
	return 0
}

// signInEntries is what signing a device in with an invite writes to the
// inviting member's feed: the invite's record, its use, and the
// add-writer op.
const signInEntries = 3

// createSpace makes a space on d and signs the others in as writers: each
// joins with an invite of d's, and d approves it.
func createSpace(t testing.TB, d *daemon, others ...*daemon) string {
	t.Helper()
	var info api.SpaceInfo
	d.request("POST", "/v1/spaces", map[string]string{"name": "e2e"}, &info)
	for _, o := range others {
		approveOn(t, d, o, info.ID)
	}
	return info.ID
}

// approveOn signs o in to space id with an invite of member's: o joins
// with the link, member approves the request that shows o's safety code,
// and o waits until it holds the space's keys.
func approveOn(t testing.TB, member, o *daemon, id string) {
	t.Helper()
	signIn(t, o, id, func() api.Invite {
		var inv api.Invite
		member.request("POST", "/v1/spaces/"+id+"/invites", api.InviteParams{}, &inv)
		return inv
	}, func() []api.Request {
		var rs []api.Request
		member.request("GET", "/v1/requests", nil, &rs)
		return rs
	}, func(req, code string) {
		if st := member.request("POST", "/v1/requests/"+req+"/approve", api.ApproveParams{Code: code}, nil); st != http.StatusNoContent && st != http.StatusOK {
			t.Fatalf("approve %s: status %d", req, st)
		}
	})
}

// approveByNode signs o in to space id with an invite of nd, a node run
// in this process (fill's). o is restarted with nd as its peer (a node's
// invite carries no hints; the daemon's API adds them), and keeps its
// other flags for a later start.
func approveByNode(t testing.TB, nd *node.Node, o *daemon, id string) {
	t.Helper()
	ctx := context.Background()
	extra := o.extra
	o.kill()
	o.extra = append(append([]string(nil), extra...), "--peer", nd.Addrs()[0].String())
	o.start()
	o.extra = extra
	signIn(t, o, id, func() api.Invite {
		inv, err := nd.CreateInvite(ctx, id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}, nd.Requests, func(req, code string) {
		if err := nd.Approve(ctx, req, code); err != nil {
			t.Fatal(err)
		}
	})
}

// signIn runs the sign-in of o to space id: invite makes the member's
// invite, requests lists the member's waiting requests, approve approves
// one by its ID and safety code.
func signIn(t testing.TB, o *daemon, id string, invite func() api.Invite, requests func() []api.Request, approve func(req, code string)) {
	t.Helper()
	inv := invite()
	var st api.JoinState
	o.request("POST", "/v1/join", api.JoinWith{Invite: inv.Link}, &st)
	if st.Code == "" {
		t.Fatalf("join: %+v", st)
	}
	var req api.Request
	waitFor(t, 60*time.Second, func() error {
		for _, r := range requests() {
			if r.Code == st.Code {
				req = r
				return nil
			}
		}
		return fmt.Errorf("no request with code %s on the member", st.Code)
	})
	approve(req.ID, st.Code)
	waitFor(t, 60*time.Second, func() error {
		info := o.space(id)
		if info.Join != nil && info.Join.State != api.JoinWaiting && info.Join.State != api.JoinApproved {
			t.Fatalf("join: %+v", info.Join)
		}
		if !info.Approved {
			return fmt.Errorf("not approved yet: %+v", info.Join)
		}
		return nil
	})
}

func waitFor(t testing.TB, d time.Duration, cond func() error) {
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
		time.Sleep(50 * time.Millisecond)
	}
}

// converged reports whether every daemon shows the same digest and entry
// count for the space, and that count is want (if not 0).
func converged(id string, want uint64, ds ...*daemon) error {
	first := ds[0].space(id)
	for _, d := range ds[1:] {
		if in := d.space(id); in.Digest != first.Digest || in.Entries != first.Entries {
			return fmt.Errorf("%d entries %.8s… vs %d entries %.8s…", first.Entries, first.Digest, in.Entries, in.Digest)
		}
	}
	if want != 0 && first.Entries != want {
		return fmt.Errorf("%d entries, want %d", first.Entries, want)
	}
	return nil
}

// TestE2EThreeDaemonsConverge: A creates a space and adds B and C as
// writers; all three write concurrently; all converge to one digest.
func TestE2EThreeDaemonsConverge(t *testing.T) {
	a := newDaemon(t)
	b := newDaemon(t, "--peer", a.peerAddr())
	c := newDaemon(t, "--peer", a.peerAddr(), "--peer", b.peerAddr())
	id := createSpace(t, a, b, c)
	for _, d := range []*daemon{a, b, c} {
		waitFor(t, 30*time.Second, func() error {
			if !d.space(id).Writer {
				return fmt.Errorf("%s not a writer yet", d.dir)
			}
			return nil
		})
	}
	const puts = 60
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errc := make(chan error, 3)
	for i, d := range []*daemon{a, b, c} {
		go func() {
			for j := 0; j < puts && ctx.Err() == nil; j++ {
				// Shared keys, so that registers get concurrent siblings.
				key := fmt.Sprintf("k%d", j%7)
				body, _ := json.Marshal(map[string]any{"value": []byte(fmt.Sprintf("%d/%d", i, j))})
				req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+d.api+"/v1/spaces/"+id+"/keys/"+key, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+d.token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errc <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errc <- fmt.Errorf("daemon %d: put: %s", i, resp.Status)
					return
				}
			}
			errc <- nil
		}()
	}
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// A's create, two adds, and every put.
	waitFor(t, 60*time.Second, func() error { return converged(id, 1+2*signInEntries+3*puts, a, b, c) })
	var e api.Entry
	b.request("GET", "/v1/spaces/"+id+"/keys/k0", nil, &e)
	if len(e.Versions) == 0 {
		t.Fatal("k0 has no version")
	}
	t.Logf("k0: %d version(s), winner %q by %.8s", len(e.Versions), e.Versions[0].Value, e.Versions[0].Feed)
}

// fill makes a space in a fresh data directory with n entries of size
// bytes, written in bulk by the node package, and returns the directory
// and the space ID; a daemon started on it serves the space. before, if
// not nil, runs on the node after the space is created, before the bulk.
func fill(t testing.TB, n, size int, before func(nd *node.Node, id string)) (dir, id string) {
	t.Helper()
	dir = t.TempDir()
	no := false
	nd, err := node.New(&node.Config{DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, MDNS: &no, LogLevel: "info", API: node.DefaultAPI}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := nd.CreateSpace(ctx, "bulk")
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(nd, info.ID)
	}
	value := bytes.Repeat([]byte{'v'}, size)
	per := min(feed.MaxAppendEntries, feed.MaxAppendBytes/(size+256))
	for i := 0; i < n; i += per {
		kvs := make([]space.KV, 0, per)
		for j := i; j < min(n, i+per); j++ {
			kvs = append(kvs, space.KV{Key: fmt.Sprintf("bulk/%08d", j), Value: value})
		}
		if err := nd.PutMany(ctx, info.ID, kvs); err != nil {
			t.Fatal(err)
		}
	}
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, info.ID
}

// TestE2EKillMidSync: B is SIGKILLed in the middle of a large sync and
// restarted. It converges with A; the writes its API acknowledged before
// the kill are there; and after the restart it fetches none of the entries
// it already had.
func TestE2EKillMidSync(t *testing.T) {
	const n = 100000
	b := newDaemon(t)
	// B is approved before A's bulk, so that it can write as soon as it
	// holds the first entries of A's feed.
	dirA, id := fill(t, n, 512, func(nd *node.Node, id string) { approveByNode(t, nd, b, id) })
	a := &daemon{t: t, dir: dirA}
	a.start()
	// B learns A's address now (no mDNS in tests).
	b.kill()
	b.extra = []string{"--peer", a.peerAddr()}
	b.start()
	total := uint64(n + 1 + signInEntries) // A's create and B's sign-in, then the puts

	// Kill B once it holds part of A's feed, while it also writes: as
	// soon as it is a writer holding a few hundred entries (the whole
	// catch-up takes about a second here), after five puts made at once.
	waitFor(t, 60*time.Second, func() error {
		if sp := b.space(id); !sp.Writer || sp.Entries < 500 {
			return fmt.Errorf("B holds %d entries, writer %v", sp.Entries, sp.Writer)
		}
		return nil
	})
	acked := []string{"b/0", "b/1", "b/2", "b/3", "b/4"}
	errs := make(chan error, len(acked))
	for _, key := range acked {
		go func() { errs <- b.tryPut(id, key, []byte("acked")) }()
	}
	for range acked {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	held := b.space(id).Entries
	b.kill()
	if held >= total {
		t.Fatalf("B had everything (%d entries) before the kill: make the sync larger", held)
	}
	t.Logf("B killed holding %d of %d entries (%d own writes acknowledged)", held, total, len(acked))

	b.start()
	total += uint64(len(acked))
	waitFor(t, 120*time.Second, func() error { return converged(id, total, a, b) })
	for _, key := range acked {
		var e api.Entry
		a.request("GET", "/v1/spaces/"+id+"/keys/"+key, nil, &e)
		if len(e.Versions) == 0 || string(e.Versions[0].Value) != "acked" {
			t.Fatalf("acknowledged write %s lost: %+v", key, e)
		}
	}
	if dup := b.metric("mycel_sync_entries_duplicate_total"); dup != 0 {
		t.Fatalf("B fetched %v entries it already had", dup)
	}
	// Everything B received after the restart, it lacked: at most what it
	// did not hold when it was killed.
	if got := b.metric("mycel_sync_entries_received_total"); got > float64(total-held) {
		t.Fatalf("B received %v entries after the restart; it lacked at most %d", got, total-held)
	}
}

// TestE2EMaliciousPeers: a peer without the capability, and peers sending
// garbage, an oversized frame or frames out of order, are each refused
// with a reset and learn no head; the daemon keeps syncing with B.
func TestE2EMaliciousPeers(t *testing.T) {
	a := newDaemon(t)
	b := newDaemon(t, "--peer", a.peerAddr())
	id := createSpace(t, a, b)
	a.put(id, "before", []byte("1"))
	waitFor(t, 30*time.Second, func() error { return converged(id, 2+signInEntries, a, b) })

	sid, err := auth.SpaceIDFromBytes(mustHex(t, id))
	if err != nil {
		t.Fatal(err)
	}
	proto := syncnet.ProtocolFor(sid)
	target, err := peer.AddrInfoFromString(a.peerAddr())
	if err != nil {
		t.Fatal(err)
	}
	frame := func(m *syncpb.Message) []byte {
		var buf bytes.Buffer
		if err := replication.WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	nonce := make([]byte, replication.NonceSize)
	hello := frame(&syncpb.Message{Body: &syncpb.Message_Hello{Hello: &syncpb.Hello{Version: replication.Version, Nonce: nonce}}})
	wrongProof := frame(&syncpb.Message{Body: &syncpb.Message_Prove{Prove: &syncpb.Prove{Proofs: []*syncpb.EpochProof{{Epoch: 0, Proof: make([]byte, 32)}}}}})
	heads := frame(&syncpb.Message{Body: &syncpb.Message_Heads{Heads: &syncpb.Heads{}}})
	cases := []struct {
		name string
		data []byte
	}{
		{"no capability", append(hello, wrongProof...)},
		{"garbage", bytes.Repeat([]byte("not a frame "), 20)},
		{"oversized frame", binary.AppendUvarint(nil, replication.MaxFrameSize+1)},
		{"heads before hello", heads},
	}
	for _, c := range cases {
		// A fresh host each time: the daemon bans a peer after three
		// faults, and each case must be judged on its own.
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := h.Connect(ctx, *target); err != nil {
			t.Fatal(err)
		}
		st, err := h.NewStream(ctx, target.ID, proto)
		cancel()
		if err != nil {
			t.Fatalf("%s: open: %v", c.name, err)
		}
		st.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := st.Write(c.data); err != nil {
			t.Fatalf("%s: write: %v", c.name, err)
		}
		// Read what the daemon answers until it resets the stream: at
		// most its Hello and Prove, never a head.
		var got []string
		for {
			m, err := replication.ReadFrame(st, replication.MaxFrameSize)
			if err != nil {
				if !errors.Is(err, network.ErrReset) {
					t.Fatalf("%s: stream ended with %v, want a reset", c.name, err)
				}
				break
			}
			if m.GetHeads() != nil || m.GetData() != nil {
				t.Fatalf("%s: the daemon sent %T to a peer that proved nothing", c.name, m.Body)
			}
			got = append(got, fmt.Sprintf("%T", m.Body))
		}
		t.Logf("%s: reset after %v", c.name, got)
		h.Close()
	}
	// The daemon is unaffected: B still syncs, live.
	a.put(id, "after", []byte("2"))
	b.put(id, "from-b", []byte("3"))
	waitFor(t, 30*time.Second, func() error { return converged(id, 4+signInEntries, a, b) })
	if !strings.Contains(a.stderr.String(), "session refused") {
		t.Errorf("A logged no refusal:\n%s", a.stderr)
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestE2EAPIRefusals: requests without the right token, from a foreign
// Host or Origin, with an oversized body or bad JSON are refused with the
// documented status and a JSON error, and none of them writes anything.
func TestE2EAPIRefusals(t *testing.T) {
	d := newDaemon(t)
	id := createSpace(t, d)
	d.put(id, "k", []byte("v"))
	before := d.space(id)
	put := "/v1/spaces/" + id + "/keys/k"
	good := `{"value":"d3JpdHRlbg=="}`
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		code                     string
	}{
		{"no token", "PUT", put, good, map[string]string{"Authorization": ""}, 401, "unauthorized"},
		{"wrong token", "PUT", put, good, map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, 401, "unauthorized"},
		{"foreign host", "PUT", put, good, map[string]string{"Host": "evil.example:4103"}, 403, "forbidden"},
		{"rebinding host", "POST", "/v1/spaces", `{"name":"x"}`, map[string]string{"Host": "attacker.example"}, 403, "forbidden"},
		{"foreign origin", "PUT", put, good, map[string]string{"Origin": "https://evil.example"}, 403, "forbidden"},
		{"oversized body", "PUT", put, `{"value":"` + strings.Repeat("A", 8<<20) + `"}`, nil, 413, "too_large"},
		{"bad json", "PUT", put, `{"value":`, nil, 400, "bad_json"},
		{"unknown field", "POST", "/v1/spaces", `{"nmae":"x"}`, nil, 400, "bad_json"},
		{"wrong type", "PUT", put, `{"value": 12}`, nil, 400, "bad_json"},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, "http://"+d.api+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+d.token)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range c.header {
			if k == "Host" {
				req.Host = v
				continue
			}
			if v == "" {
				req.Header.Del(k)
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var e api.Error
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.status || err != nil || e.Code != c.code || e.Message == "" {
			t.Errorf("%s: %d %+v (%v), want %d %s", c.name, resp.StatusCode, e, err, c.status, c.code)
		}
	}
	after := d.space(id)
	if after.Entries != before.Entries || after.Digest != before.Digest {
		t.Fatalf("refused requests wrote: %+v → %+v", before, after)
	}
	var spaces []api.SpaceInfo
	d.request("GET", "/v1/spaces", nil, &spaces)
	if len(spaces) != 1 {
		t.Fatalf("%d spaces after refused creates", len(spaces))
	}
}
