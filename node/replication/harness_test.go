package replication

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/replication/syncpb"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt transcripts")

var testClock = func() time.Time { return time.Unix(1_700_000_000, 0) }

func testKey(seed byte) ed25519.PrivateKey {
	var s [32]byte
	s[0] = seed
	return ed25519.NewKeyFromSeed(s[:])
}

func pubKey(priv ed25519.PrivateKey) feed.PublicKey {
	return feed.PublicKey(priv.Public().(ed25519.PublicKey))
}

func testCap(seed byte) auth.ReplicationCapability {
	c := auth.ReplicationCapability{Epoch: 1}
	c.Space[0] = 0x5a
	c.Key[0] = seed
	return c
}

// dbModel is the Model of a feed.DB with a fixed set of feeds.
type dbModel struct {
	t     testing.TB
	db    *feed.DB
	space []feed.PublicKey
}

func (m *dbModel) feed(k feed.PublicKey) *feed.Feed {
	f, err := m.db.Feed(k)
	if err != nil {
		m.t.Fatal(err)
	}
	return f
}

func (m *dbModel) Feeds() []feed.PublicKey                       { return m.space }
func (m *dbModel) Head(k feed.PublicKey) (feed.SignedHead, bool) { return m.feed(k).Head() }
func (m *dbModel) Missing(k feed.PublicKey) []feed.Range         { return m.feed(k).Missing() }
func (m *dbModel) Length(k feed.PublicKey) uint64                { return m.feed(k).Length() }
func (m *dbModel) Evidence(k feed.PublicKey) *feed.ForkEvidence  { return m.feed(k).Evidence() }
func (m *dbModel) Batch(k feed.PublicKey, req feed.BatchRequest) (*feed.Batch, error) {
	return m.feed(k).Batch(req)
}

// msgProve is a Prove of one proof of epoch 1 (testCap's).
func msgProve(proof []byte) *syncpb.Message {
	return &syncpb.Message{Body: &syncpb.Message_Prove{Prove: &syncpb.Prove{
		Proofs: []*syncpb.EpochProof{{Epoch: 1, Proof: proof}},
	}}}
}

// node is one end of a harness link: a DB, its writers and its session.
type node struct {
	name    string
	model   *dbModel
	writers map[feed.PublicKey]*feed.Writer
	s       *Session
	pending []Ingest // Ready.Ingest not yet performed
	inbox   []*syncpb.Message
	peer    *node
	err     error
}

// harness joins two sessions in memory and records a transcript.
type harness struct {
	t     testing.TB
	a, b  *node
	names map[feed.PublicKey]string
	log   strings.Builder
}

func newNode(t testing.TB, name string, space []feed.PublicKey) *node {
	db, err := feed.Open(memstore.New(), feed.WithClock(testClock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &node{name: name, model: &dbModel{t: t, db: db, space: space}, writers: make(map[feed.PublicKey]*feed.Writer)}
}

// writer opens (once) the writer of priv on n.
func (n *node) writer(t testing.TB, priv ed25519.PrivateKey) *feed.Writer {
	k := pubKey(priv)
	if w := n.writers[k]; w != nil {
		return w
	}
	w, err := n.model.db.Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	n.writers[k] = w
	return w
}

// appendEntries appends count entries (named by prefix) to priv's feed.
func (n *node) appendEntries(t testing.TB, priv ed25519.PrivateKey, prefix string, count, size int) {
	w := n.writer(t, priv)
	for done := 0; done < count; {
		batch := min(count-done, 1000)
		entries := make([][]byte, batch)
		for i := range entries {
			e := fmt.Appendf(nil, "%s %d ", prefix, w.Length()+uint64(i))
			for len(e) < size {
				e = append(e, '.')
			}
			entries[i] = e
		}
		if _, err := w.Append(context.Background(), entries...); err != nil {
			t.Fatal(err)
		}
		done += batch
	}
}

func newHarness(t testing.TB, a, b *node, capA, capB auth.ReplicationCapability, tweakA, tweakB func(*Config)) *harness {
	h := &harness{t: t, a: a, b: b, names: make(map[feed.PublicKey]string)}
	a.peer, b.peer = b, a
	mk := func(n *node, local, remote string, nonce byte, c auth.ReplicationCapability, tweak func(*Config)) {
		cfg := Config{LocalID: []byte(local), RemoteID: []byte(remote), Creds: Credentials{Caps: []auth.ReplicationCapability{c}}, Verify: VerifyCap(c), Model: n.model}
		// The transcripts and the tests' wants were written with these
		// limits; the defaults are tuned for throughput and may change.
		cfg.WantEntries, cfg.MaxBatchBytes = 1024, 4<<20
		for i := range cfg.Nonce {
			cfg.Nonce[i] = nonce + byte(i)
		}
		if tweak != nil {
			tweak(&cfg)
		}
		n.s = New(cfg)
	}
	mk(a, "peerA", "peerB", 0xa0, capA, tweakA)
	mk(b, "peerB", "peerA", 0xb0, capB, tweakB)
	return h
}

func (h *harness) name(k feed.PublicKey) string {
	if n, ok := h.names[k]; ok {
		return n
	}
	return fmt.Sprintf("%x", k[:4])
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(&h.log, format+"\n", args...)
}

// start starts both sessions.
func (h *harness) start() {
	h.a.s.Start()
	h.b.s.Start()
	h.collect(h.a)
	h.collect(h.b)
}

// collect takes n's Ready: messages go through the frame codec to the
// peer's inbox, ingests are queued, evidence is imported.
func (h *harness) collect(n *node) {
	if !n.s.HasReady() {
		return
	}
	rd := n.s.Ready()
	for _, m := range rd.Send {
		h.logf("%s→%s %s", n.name, n.peer.name, h.describe(m))
		var buf bytes.Buffer
		if err := WriteFrame(&buf, m); err != nil {
			h.t.Fatalf("WriteFrame: %v", err)
		}
		got, err := ReadFrame(&buf, 0)
		if err != nil {
			h.t.Fatalf("ReadFrame: %v", err)
		}
		n.peer.inbox = append(n.peer.inbox, got)
	}
	n.pending = append(n.pending, rd.Ingest...)
	for _, ev := range rd.Evidence {
		f := n.model.feed(ev.A.Key)
		err := f.ImportEvidence(ev)
		h.logf("%s import evidence %s (heads %d/%d): %s", n.name, h.name(ev.A.Key), ev.A.Length, ev.B.Length, result(err))
	}
	if rd.Err != nil && n.err == nil {
		n.err = rd.Err
		h.logf("%s session error: %v", n.name, rd.Err)
	}
	n.s.Advance()
}

// deliver steps the first message of n's inbox into n's session.
func (h *harness) deliver(n *node) bool {
	if len(n.inbox) == 0 {
		return false
	}
	m := n.inbox[0]
	n.inbox = n.inbox[1:]
	if n.err != nil {
		return true // the stream is reset: dropped
	}
	n.s.Step(m)
	h.collect(n)
	return true
}

// ingestOne performs n's oldest pending ingest against its DB.
func (h *harness) ingestOne(n *node) bool {
	if len(n.pending) == 0 {
		return false
	}
	in := n.pending[0]
	n.pending = n.pending[1:]
	if n.err != nil {
		return true
	}
	err := n.model.feed(in.Feed).Ingest(in.Batch)
	h.logf("%s ingest %s head=%d %s: %s", n.name, h.name(in.Feed), in.Batch.Head.Length, runsString(in.Batch), result(err))
	n.s.Ingested(in.Feed, err)
	if err == nil {
		n.s.Appended(in.Feed)
	}
	h.collect(n)
	return true
}

// pump delivers and ingests round-robin until nothing is left.
func (h *harness) pump() {
	for i := 0; ; i++ {
		if i > 1_000_000 {
			h.t.Fatal("pump does not quiesce")
		}
		progress := h.deliver(h.b)
		progress = h.deliver(h.a) || progress
		progress = h.ingestOne(h.a) || progress
		progress = h.ingestOne(h.b) || progress
		if !progress {
			return
		}
	}
}

func result(err error) string {
	var fe *feed.ForkError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, feed.ErrNeedConsistency):
		return "need-consistency"
	case errors.As(err, &fe):
		return "fork"
	}
	return err.Error()
}

func runsString(b *feed.Batch) string {
	var parts []string
	for i := range b.Runs {
		parts = append(parts, fmt.Sprintf("[%d,%d)", b.Runs[i].Start, b.Runs[i].End()))
	}
	if len(parts) == 0 {
		return "runs=none"
	}
	return "runs=" + strings.Join(parts, "")
}

func rangesString(rs []feed.Range) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "[%d,%d)", r.Start, r.End)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// describe renders a message for a transcript.
func (h *harness) describe(m *syncpb.Message) string {
	switch b := m.Body.(type) {
	case *syncpb.Message_Hello:
		return fmt.Sprintf("Hello v%d nonce=%x…", b.Hello.Version, b.Hello.Nonce[:4])
	case *syncpb.Message_Prove:
		var parts []string
		for _, ep := range b.Prove.Proofs {
			parts = append(parts, fmt.Sprintf("epoch %d proof=%x…", ep.Epoch, ep.Proof[:min(4, len(ep.Proof))]))
			if len(ep.SealedWriter) > 0 {
				parts = append(parts, "sealed-writer")
			}
		}
		return "Prove " + strings.Join(parts, " ")
	case *syncpb.Message_Heads:
		var parts []string
		for _, raw := range b.Heads.Heads {
			var hd feed.SignedHead
			if err := hd.UnmarshalBinary(raw); err != nil {
				parts = append(parts, "?")
				continue
			}
			parts = append(parts, fmt.Sprintf("%s:%d", h.name(hd.Key), hd.Length))
		}
		return "Heads " + strings.Join(parts, " ")
	case *syncpb.Message_Want:
		w, err := parseWant(b.Want)
		if err != nil {
			return "Want ?"
		}
		return fmt.Sprintf("Want #%d %s %s base=%d max=%d", w.id, h.name(w.feed), rangesString(w.ranges), w.base, w.maxBytes)
	case *syncpb.Message_Data:
		bt, err := parseData(b.Data)
		if err != nil {
			return "Data ?"
		}
		cons := "-"
		if bt.Consistency != nil {
			cons = fmt.Sprint(bt.Consistency.Base)
		}
		return fmt.Sprintf("Data #%d %s head=%d %s consistency=%s", b.Data.Id, h.name(bt.Head.Key), bt.Head.Length, runsString(bt), cons)
	case *syncpb.Message_Refuse:
		return fmt.Sprintf("Refuse #%d %s", b.Refuse.Id, b.Refuse.Reason)
	case *syncpb.Message_Fork:
		ev, err := parseFork(b.Fork)
		if err != nil {
			return "Fork ?"
		}
		return fmt.Sprintf("Fork %s heads %d/%d", h.name(ev.A.Key), ev.A.Length, ev.B.Length)
	case *syncpb.Message_Done:
		return "Done"
	}
	return "?"
}

// golden compares the transcript with testdata/name.txt (or writes it).
func (h *harness) golden(name string) {
	h.t.Helper()
	path := filepath.Join("testdata", name+".txt")
	got := h.log.String()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		h.t.Errorf("transcript %s differs (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// sameFeed fails unless a and b hold the same head and ranges of k.
func sameFeed(t testing.TB, a, b *node, k feed.PublicKey) {
	t.Helper()
	fa, fb := a.model.feed(k), b.model.feed(k)
	ha, oka := fa.Head()
	hb, okb := fb.Head()
	if oka != okb || ha.Length != hb.Length || ha.Root != hb.Root {
		t.Errorf("feed %x: %s head (%v, %d) vs %s head (%v, %d)", k[:4], a.name, oka, ha.Length, b.name, okb, hb.Length)
	}
	if ra, rb := fa.Ranges(), fb.Ranges(); !slices.Equal(ra, rb) {
		t.Errorf("feed %x: %s holds %v, %s holds %v", k[:4], a.name, ra, b.name, rb)
	}
}

// complete fails unless n holds all of k up to length.
func complete(t testing.TB, n *node, k feed.PublicKey, length uint64) {
	t.Helper()
	f := n.model.feed(k)
	if f.Length() != length || len(f.Missing()) != 0 {
		t.Errorf("%s feed %x: length %d missing %v, want length %d complete", n.name, k[:4], f.Length(), f.Missing(), length)
	}
}
