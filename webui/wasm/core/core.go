// Package core is the browser node's view of mycel's protocol core: the
// small set of calls the wasm build exposes to JavaScript (../main.go binds
// them with syscall/js), written over plain Go values so that the same calls
// run, and the same test vectors are checked, in Go and in the browser.
//
// It adds no rule of its own: every call is a thin wrapper over feed, auth,
// ephemeral, node/space, node/signin and node/replication. Every byte
// argument may come from a peer and is bounded by the package it reaches.
package core

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/signin"
	"github.com/mycelsync/mycel/node/space"
)

// Head is a verified signed head.
type Head struct {
	Key    []byte
	Length uint64
	Root   []byte
	Time   int64
}

// VerifyHead decodes a signed head (feed FORMAT.md) and checks its signature.
func VerifyHead(b []byte) (Head, error) {
	var h feed.SignedHead
	if err := h.UnmarshalBinary(b); err != nil {
		return Head{}, err
	}
	if err := h.Verify(); err != nil {
		return Head{}, err
	}
	return Head{Key: h.Key[:], Length: h.Length, Root: h.Root[:], Time: h.Time}, nil
}

// BatchInfo is a verified batch: its head and the entries it proves.
type BatchInfo struct {
	Head    Head
	Start   []uint64   // the index of each run's first entry
	Entries [][][]byte // the entries of each run
}

// VerifyBatch decodes a batch and checks its head's signature and every
// run's proof against that head.
func VerifyBatch(b []byte) (BatchInfo, error) {
	var bt feed.Batch
	if err := bt.UnmarshalBinary(b); err != nil {
		return BatchInfo{}, err
	}
	if err := bt.Verify(); err != nil {
		return BatchInfo{}, err
	}
	h := bt.Head
	out := BatchInfo{Head: Head{Key: h.Key[:], Length: h.Length, Root: h.Root[:], Time: h.Time}}
	for _, r := range bt.Runs {
		out.Start = append(out.Start, r.Start)
		out.Entries = append(out.Entries, r.Entries)
	}
	return out, nil
}

// Secret is an epoch secret.
type Secret struct {
	Epoch  uint32
	Secret []byte // auth.SecretSize bytes
}

func epochSecret(s Secret) (auth.EpochSecret, error) {
	if len(s.Secret) != auth.SecretSize {
		return auth.EpochSecret{}, fmt.Errorf("epoch secret of %d bytes, want %d", len(s.Secret), auth.SecretSize)
	}
	return auth.EpochSecret{Epoch: s.Epoch, Secret: [auth.SecretSize]byte(s.Secret)}, nil
}

func spaceID(b []byte) (auth.SpaceID, error) { return auth.SpaceIDFromBytes(b) }

func key32(b []byte, what string) ([32]byte, error) {
	if len(b) != 32 {
		return [32]byte{}, fmt.Errorf("%s of %d bytes, want 32", what, len(b))
	}
	return [32]byte(b), nil
}

// keys returns the space.Keys of secrets.
func keys(id auth.SpaceID, secrets []Secret) (space.Keys, error) {
	m := make(map[[auth.KeyIDSize]byte]auth.EpochSecret, len(secrets))
	for _, s := range secrets {
		es, err := epochSecret(s)
		if err != nil {
			return nil, err
		}
		m[es.KeyID(id)] = es
	}
	return func(k [auth.KeyIDSize]byte) (auth.EpochSecret, bool) { es, ok := m[k]; return es, ok }, nil
}

// Op is the part of a space op the API carries: puts and deletes (the
// writer-set ops are read by the view, not built here).
type Op struct {
	Kind  string // "put", "delete", or the op kind's number for others
	Key   string
	Value []byte
	HLC   uint64
	Seen  []SeenLen
}

// SeenLen is one entry of an op's causal delta.
type SeenLen struct {
	Feed   []byte
	Length uint64
}

func opKind(k space.OpKind) string {
	switch k {
	case space.OpPut:
		return "put"
	case space.OpDelete:
		return "delete"
	}
	return fmt.Sprint(uint8(k))
}

// SealEntry seals a put or delete op as the entry at index of author's feed
// in the space, under secret (node/space FORMAT.md).
func SealEntry(spaceB, author []byte, index uint64, secret Secret, op Op) ([]byte, error) {
	id, err := spaceID(spaceB)
	if err != nil {
		return nil, err
	}
	a, err := key32(author, "author")
	if err != nil {
		return nil, err
	}
	es, err := epochSecret(secret)
	if err != nil {
		return nil, err
	}
	o := &space.Op{Key: op.Key, Value: op.Value, HLC: op.HLC}
	switch op.Kind {
	case "put":
		o.Kind = space.OpPut
	case "delete":
		o.Kind = space.OpDelete
	default:
		return nil, fmt.Errorf("op kind %q: only put and delete are built here", op.Kind)
	}
	for _, s := range op.Seen {
		f, err := key32(s.Feed, "seen feed")
		if err != nil {
			return nil, err
		}
		o.Seen = append(o.Seen, space.Seen{Feed: f, Length: s.Length})
	}
	return space.SealEntry(id, a, index, es, o, nil)
}

// OpenEntry authenticates, decrypts and decodes the entry at index of
// author's feed with one of secrets.
func OpenEntry(spaceB, author []byte, index uint64, data []byte, secrets []Secret) (Op, error) {
	id, err := spaceID(spaceB)
	if err != nil {
		return Op{}, err
	}
	a, err := key32(author, "author")
	if err != nil {
		return Op{}, err
	}
	ks, err := keys(id, secrets)
	if err != nil {
		return Op{}, err
	}
	o, err := space.OpenEntry(id, a, index, data, ks)
	if err != nil {
		return Op{}, err
	}
	out := Op{Kind: opKind(o.Kind), Key: o.Key, Value: o.Value, HLC: o.HLC}
	for _, s := range o.Seen {
		out.Seen = append(out.Seen, SeenLen{Feed: bytes.Clone(s.Feed[:]), Length: s.Length})
	}
	return out, nil
}

// Entry is one feed entry of a space.
type Entry struct {
	Author []byte
	Index  uint64
	Data   []byte
}

// KV is one key's winning value in a view.
type KV struct {
	Key      string
	Value    []byte
	Deleted  bool
	Siblings int // concurrent versions besides the winner
}

// ViewResult is a space view computed from entries.
type ViewResult struct {
	Digest  []byte
	Keys    int  // live keys
	KVs     []KV // sorted by key (none from Node.ViewSummary)
	Writers int
	Invalid int // entries that did not open, or ops the rules voided
	Waiting int // ops whose causal past is missing
}

// ComputeView opens entries and applies them, in the order given, to a new
// view of the space whose origin feed is origin. Entries that do not open
// count as invalid (the view skips them, as a node does).
func ComputeView(spaceB, origin []byte, secrets []Secret, entries []Entry) (ViewResult, error) {
	res, _, err := applyView(spaceB, origin, secrets, entries)
	return res, err
}

func applyView(spaceB, origin []byte, secrets []Secret, entries []Entry) (ViewResult, *space.View, error) {
	id, err := spaceID(spaceB)
	if err != nil {
		return ViewResult{}, nil, err
	}
	o, err := key32(origin, "origin")
	if err != nil {
		return ViewResult{}, nil, err
	}
	ks, err := keys(id, secrets)
	if err != nil {
		return ViewResult{}, nil, err
	}
	v := space.NewView(o)
	for _, e := range entries {
		a, err := key32(e.Author, "author")
		if err != nil {
			return ViewResult{}, nil, err
		}
		if err := applyEntry(v, id, ks, a, e.Index, e.Data); err != nil {
			return ViewResult{}, nil, err
		}
	}
	return viewResult(v), v, nil
}

// viewSummary is v's digest and counts, without its keys.
func viewSummary(v *space.View) ViewResult {
	d := v.Digest()
	return ViewResult{Digest: d[:], Keys: v.Keys(), Writers: len(v.WriterSet().Writers()), Invalid: len(v.Invalid()), Waiting: v.Waiting()}
}

// applyEntry opens an entry and applies it to v; one that does not open
// counts as invalid (the view skips it, as a node does).
func applyEntry(v *space.View, id auth.SpaceID, ks space.Keys, author feed.PublicKey, index uint64, data []byte) error {
	op, err := space.OpenEntry(id, author, index, data, ks)
	if err != nil {
		_, err = v.ApplyInvalid(author, index, err.Error())
		return err
	}
	_, err = v.Apply(author, index, op)
	return err
}

func viewResult(v *space.View) ViewResult {
	res := viewSummary(v)
	for _, k := range v.List("", "", 0) {
		vs := v.Get(k)
		if len(vs) == 0 {
			continue
		}
		res.KVs = append(res.KVs, KV{Key: k, Value: vs[0].Value, Deleted: vs[0].Deleted, Siblings: len(vs) - 1})
	}
	sort.Slice(res.KVs, func(i, j int) bool { return res.KVs[i].Key < res.KVs[j].Key })
	return res
}

// PasswordRequestKey derives the request key of a space's password
// (Argon2id, then the key's public ID): what a device signing in with the
// password seals its request under.
func PasswordRequestKey(password string, spaceB []byte) (id, key []byte, err error) {
	sp, err := spaceID(spaceB)
	if err != nil {
		return nil, nil, err
	}
	if err := auth.ValidatePassword(password); err != nil {
		return nil, nil, err
	}
	rk := auth.PasswordRequestKey(auth.PasswordKey(password, sp), sp)
	return rk.ID[:], rk.Key[:], nil
}

// SafetyCode returns the safety code of an encoded join request.
func SafetyCode(request []byte) (string, error) {
	req, err := auth.UnmarshalJoinRequest(request)
	if err != nil {
		return "", err
	}
	return auth.SafetyCode(req), nil
}

// CheckSafetyCode checks the code a person typed against a join request.
func CheckSafetyCode(request []byte, typed string) error {
	req, err := auth.UnmarshalJoinRequest(request)
	if err != nil {
		return err
	}
	return auth.CheckSafetyCode(req, typed)
}

// EnvelopeInfo is a verified, opened ephemeral envelope.
type EnvelopeInfo struct {
	Topic     []byte
	Sender    []byte
	Time      int64
	KeyKind   uint32
	KeyID     []byte
	Plaintext []byte
}

// SealEnvelope seals plaintext in an ephemeral envelope signed by the ed25519
// key of seed, stamped with nowMs (Unix milliseconds).
func SealEnvelope(key, seed, topic []byte, keyKind uint32, keyID, plaintext []byte, nowMs int64) ([]byte, error) {
	k, err := key32(key, "key")
	if err != nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("signer seed must be 32 bytes")
	}
	tp, err := key32(topic, "topic")
	if err != nil {
		return nil, err
	}
	e, err := ephemeral.Seal(k, ed25519.NewKeyFromSeed(seed), ephemeral.Header{Topic: tp, KeyKind: keyKind, KeyID: keyID}, plaintext, unixMilli(nowMs), nil)
	if err != nil {
		return nil, err
	}
	return e.Marshal()
}

// OpenEnvelope parses an envelope, checks its signature and opens its body
// with key.
func OpenEnvelope(key, b []byte) (EnvelopeInfo, error) {
	k, err := key32(key, "key")
	if err != nil {
		return EnvelopeInfo{}, err
	}
	e, err := ephemeral.Parse(b)
	if err != nil {
		return EnvelopeInfo{}, err
	}
	pt, err := e.Open(k)
	if err != nil {
		return EnvelopeInfo{}, err
	}
	return EnvelopeInfo{Topic: e.Topic[:], Sender: e.Sender[:], Time: e.Time, KeyKind: e.KeyKind, KeyID: e.KeyID, Plaintext: pt}, nil
}

// SigninBody is a decoded sign-in body; for a join request, with the
// request's device name and safety code.
type SigninBody struct {
	Kind       string
	Request    []byte
	Name       string
	SafetyCode string
	Answer     []byte
	Reason     string
}

// DecodeSigninBody decodes the plaintext of a sign-in envelope
// (node/signin FORMAT.md).
func DecodeSigninBody(plain []byte) (SigninBody, error) {
	b, err := signin.DecodeBody(plain)
	if err != nil {
		return SigninBody{}, err
	}
	out := SigninBody{Kind: b.Kind, Request: b.Request, Answer: b.Answer, Reason: b.Reason}
	if b.Kind == signin.KindJoinRequest {
		req, err := auth.UnmarshalJoinRequest(b.Request)
		if err != nil {
			return SigninBody{}, err
		}
		out.Name = req.Name
		out.SafetyCode = auth.SafetyCode(req)
	}
	return out, nil
}

// PublicKey returns the ed25519 public key of seed: the key of the feed a
// writer with that seed appends to.
func PublicKey(seed []byte) ([]byte, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("seed must be 32 bytes")
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}

// Node is an in-memory set of feeds (feed.DB over memstore) that
// replication sessions read and write: the working copy of what the page
// keeps in IndexedDB (persist.go: TakeRecords hands the page each batch
// ingested, Import verifies a record read back).
type Node struct {
	db    *feed.DB
	feeds []feed.PublicKey

	mu      sync.Mutex
	tr      *tracked // the view kept up to date, once View was called
	mem     *member  // once Member: the Space the page writes and reads (member.go)
	pending [][]byte // records of batches ingested, for the page (persist.go)
	dropped int      // records dropped from pending since TakeRecords

	// sessions are the node's open sessions: a batch one of them ingests
	// is announced to the others (Session.Flush returns their frames).
	sessions map[*Session]struct{}
}

// tracked is the view a node keeps of its space.
type tracked struct {
	id      auth.SpaceID
	secrets string // the secrets it was built with, as a fingerprint
	ks      space.Keys
	v       *space.View
	err     error // the view stopped (its storage failed): View rebuilds it
	changed uint64
}

// NewNode returns an empty node replicating the feeds listed.
func NewNode(feeds [][]byte) (*Node, error) {
	db, err := feed.Open(memstore.New())
	if err != nil {
		return nil, err
	}
	n := &Node{db: db}
	for _, f := range feeds {
		k, err := key32(f, "feed")
		if err != nil {
			return nil, err
		}
		n.feeds = append(n.feeds, k)
	}
	return n, nil
}

// Append appends entries to the feed of the ed25519 key of seed and returns
// its new length.
func (n *Node) Append(seed []byte, entries [][]byte) (uint64, error) {
	if len(seed) != ed25519.SeedSize {
		return 0, errors.New("writer seed must be 32 bytes")
	}
	w, err := n.db.Writer(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return 0, err
	}
	return w.Append(context.Background(), entries...)
}

// Length returns how many entries of feed k the node holds a head for.
func (n *Node) Length(k []byte) (uint64, error) {
	kk, err := key32(k, "feed")
	if err != nil {
		return 0, err
	}
	f, err := n.db.Feed(kk)
	if err != nil {
		return 0, err
	}
	return f.Length(), nil
}

// Held returns how many entries of feed k the node holds: its Length
// less the holes a sparse or unfinished download leaves.
func (n *Node) Held(k []byte) (uint64, error) {
	kk, err := key32(k, "feed")
	if err != nil {
		return 0, err
	}
	f, err := n.db.Feed(kk)
	if err != nil {
		return 0, err
	}
	held := f.Length()
	for _, r := range f.Missing() {
		held -= r.Len()
	}
	return held, nil
}

// Get returns entry i of feed k.
func (n *Node) Get(k []byte, i uint64) ([]byte, error) {
	kk, err := key32(k, "feed")
	if err != nil {
		return nil, err
	}
	f, err := n.db.Feed(kk)
	if err != nil {
		return nil, err
	}
	return f.Get(i)
}

// View returns the view of the space from every entry the node holds
// (the space's origin feed is its ID). The first call builds it from the
// entries held, feed by feed (the view does not depend on the order);
// from then on the node keeps it, applying each batch a session ingests as
// it arrives, so that a later call costs only the listing. A call for
// another space or with other secrets builds it anew.
func (n *Node) View(spaceB []byte, secrets []Secret) (ViewResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mem != nil {
		return memberView(n.mem.sp, true), n.mem.sp.Err()
	}
	tr, err := n.track(spaceB, secrets)
	if err != nil {
		return ViewResult{}, err
	}
	return viewResult(tr.v), nil
}

// ViewSummary is View without the keys: the digest and the counts, which
// cost nothing to read from a view the node keeps.
func (n *Node) ViewSummary(spaceB []byte, secrets []Secret) (ViewResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mem != nil {
		return memberView(n.mem.sp, false), n.mem.sp.Err()
	}
	tr, err := n.track(spaceB, secrets)
	if err != nil {
		return ViewResult{}, err
	}
	return viewSummary(tr.v), nil
}

// track returns the view the node keeps of the space, building it from the
// entries held if it keeps none of that space with those secrets. n.mu is
// held.
func (n *Node) track(spaceB []byte, secrets []Secret) (*tracked, error) {
	id, err := spaceID(spaceB)
	if err != nil {
		return nil, err
	}
	fp := fmt.Sprint(secrets)
	if n.tr != nil && n.tr.id == id && n.tr.secrets == fp && n.tr.err == nil {
		return n.tr, nil
	}
	var entries []Entry
	for _, k := range n.feeds {
		f, err := n.db.Feed(k)
		if err != nil {
			return nil, err
		}
		for i := range f.Length() {
			e, err := f.Get(i)
			if err != nil {
				continue // a hole of a sparse replica
			}
			entries = append(entries, Entry{Author: k[:], Index: i, Data: e})
		}
	}
	_, v, err := applyView(spaceB, spaceB, secrets, entries)
	if err != nil {
		return nil, err
	}
	ks, _ := keys(id, secrets) // applyView checked them
	n.tr = &tracked{id: id, secrets: fp, ks: ks, v: v}
	return n.tr, nil
}

// applyBatch applies the entries of a batch just ingested into feed k to
// the view the node keeps, if it keeps one.
func (n *Node) applyBatch(k feed.PublicKey, b *feed.Batch) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m := n.mem; m != nil {
		// The Space reads what its feeds hold beyond what it read; an
		// error stops its view, which its next call opens again.
		_, _ = m.sp.Refresh()
		m.changed++
		return
	}
	tr := n.tr
	if tr == nil || tr.err != nil {
		return
	}
	tr.changed++
	for _, r := range b.Runs {
		for i, e := range r.Entries {
			if err := applyEntry(tr.v, tr.id, tr.ks, k, r.Start+uint64(i), e); err != nil {
				tr.err = err
				return
			}
		}
	}
}

// isWriter reports whether k is a writer in the view the node keeps (none
// before View was first called).
func (n *Node) isWriter(k feed.PublicKey) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mem != nil {
		return n.mem.sp.IsDevice(k)
	}
	return n.tr != nil && n.tr.v.WriterSet().IsWriter(k)
}

func (n *Node) model() replication.Model { return nodeModel{n} }

type nodeModel struct{ n *Node }

func (m nodeModel) feed(k feed.PublicKey) *feed.Feed {
	f, err := m.n.db.Feed(k)
	if err != nil {
		return nil
	}
	return f
}

func (m nodeModel) Feeds() []feed.PublicKey { return m.n.allFeeds() }

func (m nodeModel) Head(k feed.PublicKey) (feed.SignedHead, bool) {
	if f := m.feed(k); f != nil {
		return f.Head()
	}
	return feed.SignedHead{}, false
}

func (m nodeModel) Missing(k feed.PublicKey) []feed.Range {
	if f := m.feed(k); f != nil {
		return f.Missing()
	}
	return nil
}

func (m nodeModel) Length(k feed.PublicKey) uint64 {
	if f := m.feed(k); f != nil {
		return f.Length()
	}
	return 0
}

func (m nodeModel) Batch(k feed.PublicKey, req feed.BatchRequest) (*feed.Batch, error) {
	f := m.feed(k)
	if f == nil {
		return nil, feed.ErrNotFound
	}
	return f.Batch(req)
}

func (m nodeModel) Evidence(k feed.PublicKey) *feed.ForkEvidence {
	if f := m.feed(k); f != nil {
		return f.Evidence()
	}
	return nil
}

// Session drives one replication session of a node with one peer: frames
// in (Step), frames out (Start and Step return them). Batches the peer sends
// are verified and stored in the node before Step returns.
type Session struct {
	n *Node
	s *replication.Session
}

// SessionConfig is what a session proves and accepts.
type SessionConfig struct {
	LocalID, RemoteID []byte
	Nonce             []byte // replication.NonceSize fresh random bytes
	Space             []byte
	Secrets           []Secret // the epochs held: proven, and accepted from the peer (a member's Space decides instead)
}

// NewSession returns a session of n.
func (n *Node) NewSession(cfg SessionConfig) (*Session, error) {
	id, err := spaceID(cfg.Space)
	if err != nil {
		return nil, err
	}
	if len(cfg.Nonce) != replication.NonceSize {
		return nil, fmt.Errorf("nonce of %d bytes, want %d", len(cfg.Nonce), replication.NonceSize)
	}
	var caps []auth.ReplicationCapability
	for _, s := range cfg.Secrets {
		es, err := epochSecret(s)
		if err != nil {
			return nil, err
		}
		caps = append(caps, es.ReplicationCapability(id))
	}
	if len(caps) == 0 {
		return nil, errors.New("a session needs at least one epoch secret")
	}
	verify := func(binding []byte, p replication.Proof) bool {
		for _, c := range caps {
			if replication.VerifyCap(c)(binding, p) {
				return true
			}
		}
		return false
	}
	creds := replication.Credentials{Caps: caps}
	n.mu.Lock()
	m := n.mem
	n.mu.Unlock()
	if m != nil {
		// A member proves and admits as the daemon does (node/spaces.go):
		// the epochs its Space holds (a rotation it learned included), its
		// feed key signing the binding, and a peer admitted by the Space's
		// rule (an older epoch's proof only from a writer not removed).
		mcaps, err := m.sp.Capabilities()
		if err != nil {
			return nil, err
		}
		creds = replication.Credentials{Caps: mcaps, Writer: m.sp.WriterKey()}
		verify = func(binding []byte, p replication.Proof) bool {
			return m.sp.Admits(func(c auth.ReplicationCapability) bool { return replication.VerifyCap(c)(binding, p) }, p.Writer)
		}
	}
	s := replication.New(replication.Config{
		LocalID: cfg.LocalID, RemoteID: cfg.RemoteID, Nonce: [replication.NonceSize]byte(cfg.Nonce),
		Creds: creds, Verify: verify, Model: n.model(),
	})
	ss := &Session{n: n, s: s}
	if n.sessions == nil {
		n.sessions = make(map[*Session]struct{})
	}
	n.sessions[ss] = struct{}{}
	return ss, nil
}

// Close removes the session from its node: it is no longer told of
// batches the node's other sessions ingest.
func (s *Session) Close() { delete(s.n.sessions, s) }

// Flush returns the frames the session has to send without a frame from
// its peer: the heads of feeds that grew through the node's other
// sessions since (a page passes on what it gets to every peer).
func (s *Session) Flush() ([][]byte, error) {
	if s.s.Err() != nil {
		return nil, s.s.Err()
	}
	return s.drain()
}

// Start opens the session and returns the frames to send.
func (s *Session) Start() ([][]byte, error) {
	s.s.Start()
	return s.drain()
}

// Step takes one length-prefixed frame from the peer and returns the frames
// to send. An error ends the session (reset the stream).
func (s *Session) Step(frame []byte) ([][]byte, error) {
	m, err := replication.ReadFrame(bytes.NewReader(frame), replication.MaxFrameSize)
	if err != nil {
		return nil, err
	}
	if err := s.s.Step(m); err != nil {
		return nil, err
	}
	return s.drain()
}

// drain does what the session asks until it asks nothing more: ingests
// into the node, imports evidence, and collects frames to send.
func (s *Session) drain() ([][]byte, error) {
	var out [][]byte
	for i := 0; s.s.HasReady(); i++ {
		if i > 1<<16 {
			return nil, errors.New("replication session does not settle")
		}
		rd := s.s.Ready()
		if rd.Err != nil {
			return nil, rd.Err
		}
		for _, m := range rd.Send {
			var buf bytes.Buffer
			if err := replication.WriteFrame(&buf, m); err != nil {
				return nil, err
			}
			out = append(out, buf.Bytes())
		}
		for _, ev := range rd.Evidence {
			if f, err := s.n.db.Feed(ev.A.Key); err == nil {
				f.ImportEvidence(ev) // the feed freezes; the error says so
			}
		}
		s.s.Advance()
		for _, in := range rd.Ingest {
			f, err := s.n.db.Feed(in.Feed)
			if err == nil {
				err = f.Ingest(in.Batch)
			}
			s.s.Ingested(in.Feed, err)
			if err == nil {
				s.s.Appended(in.Feed)
				for o := range s.n.sessions {
					if o != s {
						o.s.Appended(in.Feed)
					}
				}
				s.n.applyBatch(in.Feed, in.Batch)
				s.n.mu.Lock()
				s.n.keep(in.Batch)
				s.n.mu.Unlock()
			}
		}
	}
	return out, nil
}

// Err returns the error that ended the session, or nil.
func (s *Session) Err() error { return s.s.Err() }

// MaxFrame is the largest frame body to accept from the peer now:
// replication.MaxOpeningFrameSize until the peer's proof verified, then
// replication.MaxFrameSize. The page's framer checks each length prefix
// against it before it buffers the frame.
func (s *Session) MaxFrame() int {
	if s.s.Authenticated() {
		return replication.MaxFrameSize
	}
	return replication.MaxOpeningFrameSize
}

// SyncProtocol is the libp2p protocol ID of a space's replication stream:
// replication.ProtocolID and the first 16 bytes of the space's discovery
// key in hex, as node/syncnet.ProtocolFor names it (a test holds the two
// equal; syncnet itself imports libp2p, which the wasm build does not).
func SyncProtocol(spaceB []byte) (string, error) {
	id, err := spaceID(spaceB)
	if err != nil {
		return "", err
	}
	dk := auth.DiscoveryKey(id)
	return replication.ProtocolID + "/" + hex.EncodeToString(dk[:16]), nil
}

func unixMilli(ms int64) time.Time { return time.UnixMilli(ms) }
