package replication

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/replication/syncpb"
)

// Model is the session's read-only view of the node's feeds of one space.
// Ingestion is not a Model call: the session outputs batches to ingest
// (Ready.Ingest) and the driver reports each result with Session.Ingested.
type Model interface {
	// Feeds lists the feeds of the space to replicate. Heads, wants and
	// evidence about other feeds are ignored or refused.
	Feeds() []feed.PublicKey
	// Head returns the latest signed head of feed k, if any.
	Head(k feed.PublicKey) (feed.SignedHead, bool)
	// Missing returns the ranges of [0, Length(k)) not held.
	Missing(k feed.PublicKey) []feed.Range
	// Length returns the length of the latest head of k (0 if none).
	Length(k feed.PublicKey) uint64
	// Batch builds a batch for the peer (feed.Feed.Batch).
	Batch(k feed.PublicKey, req feed.BatchRequest) (*feed.Batch, error)
	// Evidence returns the fork evidence that froze feed k on this node,
	// whoever found it (feed.Feed.Evidence), or nil.
	Evidence(k feed.PublicKey) *feed.ForkEvidence
}

// Config configures a Session. Limits left zero take their defaults.
type Config struct {
	// LocalID and RemoteID name the two ends of the connection (libp2p
	// peer IDs); they are bound into the capability proofs.
	LocalID, RemoteID []byte
	// Nonce is this side's fresh random nonce. Never reuse one.
	Nonce [NonceSize]byte
	// Creds are what this side proves.
	Creds Credentials
	// Verify decides whether the peer's proof over binding opens the
	// session (VerifyCap for one capability).
	Verify func(binding []byte, p Proof) bool
	// Model is the node's feeds.
	Model Model
	// Sparse: fetch only what Fetch asks for, not everything the peer has.
	Sparse bool

	// MaxInflightWants bounds this side's outstanding wants, counting
	// those whose batches wait for Ingested. Default 4.
	MaxInflightWants int
	// MaxInflightBytes bounds the entry bytes those wants may bring.
	// Default 16 MiB.
	MaxInflightBytes int
	// MaxBatchBytes bounds the entry bytes of one answer, both those this
	// side asks for and those it sends. Default 3.5 MiB: with their keys
	// and the tree nodes proven, the entries of a full batch fit in one
	// storage commit (feed.MaxCommitBytes, 4 MiB) when they are 1 KiB or
	// more, so ingesting it costs one fsync, not two.
	MaxBatchBytes int
	// WantEntries is the most entries one Want asks for. Default 4096:
	// small entries still make batches of a useful size (every batch is a
	// storage commit on the receiver, and commits are what replication
	// waits for).
	WantEntries uint64
	// MaxPendingAnswers bounds the peer's wants answered but not yet
	// handed to the driver (Ready/Advance); more are refused "busy".
	// Default 8.
	MaxPendingAnswers int
	// MaxFeeds bounds the feeds the session tracks state for. Default
	// 16384.
	MaxFeeds int
}

func (c *Config) setDefaults() {
	if c.MaxInflightWants <= 0 {
		c.MaxInflightWants = 4
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = 16 << 20
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 3584 << 10
	}
	c.MaxBatchBytes = min(c.MaxBatchBytes, feed.MaxBatchBytes/2)
	c.MaxInflightBytes = max(c.MaxInflightBytes, c.MaxBatchBytes)
	if c.WantEntries == 0 {
		c.WantEntries = 4096
	}
	if c.MaxPendingAnswers <= 0 {
		c.MaxPendingAnswers = 8
	}
	if c.MaxFeeds <= 0 {
		c.MaxFeeds = 16384
	}
}

// Ingest is a batch the driver must pass to Feed.Ingest, then report with
// Session.Ingested(Feed, err), in the order given per feed.
type Ingest struct {
	Feed  feed.PublicKey
	Batch *feed.Batch
}

// Ready is what the session wants done: messages to send (in order),
// batches to ingest, verified fork evidence to import
// (Feed.ImportEvidence), and the error that ended the session.
type Ready struct {
	Send     []*syncpb.Message
	Ingest   []Ingest
	Evidence []*feed.ForkEvidence
	// Err, once set, stays set: the session is over, Send and Ingest are
	// empty, and the driver resets the stream.
	Err error
}

// FeedProgress is the replication progress of one feed with this peer.
type FeedProgress struct {
	Have    uint64 // entries held
	Want    uint64 // entries held plus those still to get from this peer
	BytesIn uint64 // entry bytes received from this peer
}

// feedState is what the session knows of one feed.
type feedState struct {
	remoteLen    uint64           // longest head the peer showed
	remote       *feed.SignedHead // that head (nil if none)
	sentLen      uint64           // longest head we showed the peer
	unavailable  []feed.Range     // not held by the peer at remoteLen
	fetch        []feed.Range     // asked for with Fetch
	frozen       bool             // forked: nothing more is asked or answered
	evidenceSent bool             // the peer has the fork evidence
	dirty        bool             // local head grew: push it when caught up
	owed         bool             // the peer was refused entries: push the head again once more may be held or answered
	bytesIn      uint64
}

// want is one of our outstanding wants.
type want struct {
	id       uint32
	feed     feed.PublicKey
	ranges   []feed.Range
	base     uint64
	maxBytes int
	headLen  uint64 // of the batch that answered it
}

// Session is one replication session of one space with one peer: the
// protocol without I/O. See the package documentation for the contract.
type Session struct {
	cfg Config

	started, gotHello, authed bool
	binding                   []byte // the peer's proof covered it (once authed)
	proof                     Proof
	remoteNonce               [NonceSize]byte
	err                       error

	feeds     map[feed.PublicKey]*feedState
	wants     map[uint32]*want           // sent, not yet answered
	ingesting map[feed.PublicKey][]*want // answered, awaiting Ingested
	inflight  int                        // len(wants) + ingesting
	inBytes   int                        // maxBytes of those
	nextID    uint32
	cursor    feed.PublicKey // round-robin position among feeds

	send     []*syncpb.Message
	ingest   []Ingest
	evidence []*feed.ForkEvidence
	readyN   [3]int // lengths handed out by the last Ready
	answers  int    // Data/Refuse answers in send
}

// New returns a session; call Start to open it. It panics without a Model
// or Verify, which are programming errors.
func New(cfg Config) *Session {
	if cfg.Model == nil || cfg.Verify == nil {
		panic("sync: Config needs Model and Verify")
	}
	cfg.setDefaults()
	return &Session{
		cfg:       cfg,
		feeds:     make(map[feed.PublicKey]*feedState),
		wants:     make(map[uint32]*want),
		ingesting: make(map[feed.PublicKey][]*want),
		nextID:    1,
	}
}

// Start sends Hello. Call it once, before Step.
func (s *Session) Start() {
	if s.started || s.err != nil {
		return
	}
	s.started = true
	s.queue(&syncpb.Message{Body: &syncpb.Message_Hello{Hello: &syncpb.Hello{Version: Version, Nonce: s.cfg.Nonce[:]}}})
}

// Err returns the error that ended the session, or nil.
func (s *Session) Err() error { return s.err }

// Authenticated reports whether the peer's proof verified.
func (s *Session) Authenticated() bool { return s.authed }

// PeerProof returns the binding and the proof the peer opened the session
// with (none before Authenticated), so that a driver can check it again
// when what it accepts changes (a device was removed).
func (s *Session) PeerProof() ([]byte, Proof) { return s.binding, s.proof }

// Step processes one message from the peer. An error ends the session:
// the driver resets the stream. Step does not retain m.
func (s *Session) Step(m *syncpb.Message) error {
	if s.err != nil {
		return s.err
	}
	if !s.started {
		return s.fail(errorf(ErrMisuse, "Step before Start"))
	}
	if err := s.step(m); err != nil {
		return s.fail(err)
	}
	s.afterInput()
	return s.err
}

// Appended tells the session that local feed k grew (written here or
// ingested from any peer). Its head is pushed to the peer once this session
// has no wants outstanding.
func (s *Session) Appended(k feed.PublicKey) {
	if s.err != nil {
		return
	}
	if st := s.state(k); st != nil {
		st.dirty = true
		if st.remote != nil && s.space()[k] {
			// Our head may now have the length of the peer's.
			s.checkFork(k, st, st.remote)
		} else {
			s.frozenHere(k, st)
		}
	}
	s.afterInput()
}

// Refresh re-reads Model.Feeds: heads of feeds new to the space are sent,
// and what the peer showed of them is wanted.
func (s *Session) Refresh() {
	if s.err != nil {
		return
	}
	for _, k := range s.cfg.Model.Feeds() {
		if st := s.state(k); st != nil {
			st.dirty = true
		}
	}
	s.afterInput()
}

// Fetch asks for the entries of ranges of feed k (sparse replication),
// as far as the peer's head reaches and holds them.
func (s *Session) Fetch(k feed.PublicKey, ranges []feed.Range) {
	if s.err != nil {
		return
	}
	if st := s.state(k); st != nil {
		st.fetch = union(st.fetch, clipAll(ranges))
	}
	s.afterInput()
}

// Ingested reports the result of the oldest pending Ingest of feed k.
func (s *Session) Ingested(k feed.PublicKey, err error) {
	if s.err != nil {
		return
	}
	q := s.ingesting[k]
	if len(q) == 0 {
		s.fail(errorf(ErrMisuse, "Ingested(%x) without a pending ingest", k[:8]))
		return
	}
	w := q[0]
	if len(q) == 1 {
		delete(s.ingesting, k)
	} else {
		s.ingesting[k] = q[1:]
	}
	s.release(w)
	st := s.feeds[k]
	var fe *feed.ForkError
	switch {
	case err == nil:
	case errors.Is(err, feed.ErrNeedConsistency):
		l := s.cfg.Model.Length(k)
		switch {
		case w.headLen <= l:
			// An older head than ours that this replica cannot check:
			// the peer cannot help with these ranges.
			st.unavailable = union(st.unavailable, w.ranges)
		case w.base == l:
			s.fail(errorf(ErrProtocol, "feed %x: batch lacks the consistency proof from %d that was asked for", k[:8], l))
			return
		default:
			// Our head moved since we asked (an earlier batch extended
			// it): ask again from where we are now.
			s.sendWant(k, w.ranges, l)
		}
	case errors.As(err, &fe):
		s.freeze(k, fe.Evidence, true)
	case errors.Is(err, ErrNotStored):
		st.unavailable = union(st.unavailable, w.ranges)
	default:
		s.fail(errorf(ErrProtocol, "feed %x: ingest: %v", k[:8], err))
		return
	}
	if len(st.fetch) > 0 {
		st.fetch = intersect(st.fetch, s.notHeld(k))
	}
	s.afterInput()
}

// HasReady reports whether Ready has anything new.
func (s *Session) HasReady() bool {
	return len(s.send) > 0 || len(s.ingest) > 0 || len(s.evidence) > 0 || s.err != nil
}

// Ready returns what the driver must do now. The driver does it — sends
// the messages in order, ingests, imports evidence — then calls Advance.
func (s *Session) Ready() Ready {
	s.readyN = [3]int{len(s.send), len(s.ingest), len(s.evidence)}
	return Ready{
		Send:     s.send[:len(s.send):len(s.send)],
		Ingest:   s.ingest[:len(s.ingest):len(s.ingest)],
		Evidence: s.evidence[:len(s.evidence):len(s.evidence)],
		Err:      s.err,
	}
}

// Advance acknowledges the last Ready: its outputs were handled.
func (s *Session) Advance() {
	s.send = slices.Clone(s.send[min(s.readyN[0], len(s.send)):])
	s.ingest = slices.Clone(s.ingest[min(s.readyN[1], len(s.ingest)):])
	s.evidence = slices.Clone(s.evidence[min(s.readyN[2], len(s.evidence)):])
	s.readyN = [3]int{}
	s.answers = 0
	for _, m := range s.send {
		if m.GetData() != nil || m.GetRefuse() != nil {
			s.answers++
		}
	}
}

// Progress returns, for every feed of the space the peer has shown, what is
// held and what is still wanted from this peer.
func (s *Session) Progress() map[feed.PublicKey]FeedProgress {
	space := s.space()
	out := make(map[feed.PublicKey]FeedProgress)
	for k, st := range s.feeds {
		if !space[k] {
			continue
		}
		l := s.cfg.Model.Length(k)
		have := l - size(clip(s.cfg.Model.Missing(k), l))
		target := s.target(k, st, space)
		out[k] = FeedProgress{Have: have, Want: have + size(target), BytesIn: st.bytesIn}
	}
	return out
}

func (s *Session) fail(err error) error {
	if s.err == nil {
		s.err = err
		s.send, s.ingest, s.evidence = nil, nil, nil
		s.readyN = [3]int{}
	}
	return s.err
}

func (s *Session) queue(m *syncpb.Message) { s.send = append(s.send, m) }

// state returns the state of feed k, creating it; nil once MaxFeeds are
// tracked.
func (s *Session) state(k feed.PublicKey) *feedState {
	st := s.feeds[k]
	if st == nil {
		if len(s.feeds) >= s.cfg.MaxFeeds {
			return nil
		}
		st = new(feedState)
		s.feeds[k] = st
	}
	return st
}

func (s *Session) space() map[feed.PublicKey]bool {
	set := make(map[feed.PublicKey]bool)
	for _, k := range s.cfg.Model.Feeds() {
		set[k] = true
	}
	return set
}

func (s *Session) step(m *syncpb.Message) error {
	if m == nil || m.Body == nil {
		return errorf(ErrMalformed, "empty message")
	}
	switch b := m.Body.(type) {
	case *syncpb.Message_Hello:
		return s.onHello(b.Hello)
	case *syncpb.Message_Prove:
		return s.onProve(b.Prove)
	}
	if !s.authed {
		return errorf(ErrProtocol, "%T before the peer's proof", m.Body)
	}
	switch b := m.Body.(type) {
	case *syncpb.Message_Heads:
		return s.onHeads(b.Heads)
	case *syncpb.Message_Want:
		return s.onWant(b.Want)
	case *syncpb.Message_Data:
		return s.onData(b.Data)
	case *syncpb.Message_Refuse:
		return s.onRefuse(b.Refuse)
	case *syncpb.Message_Fork:
		return s.onFork(b.Fork)
	case *syncpb.Message_Done:
		return nil
	}
	return errorf(ErrMalformed, "unknown message %T", m.Body)
}

func (s *Session) onHello(h *syncpb.Hello) error {
	if s.gotHello {
		return errorf(ErrProtocol, "second Hello")
	}
	nonce, err := parseHello(h)
	if err != nil {
		return err
	}
	if nonce == s.cfg.Nonce {
		return errorf(ErrProtocol, "peer reflected our nonce")
	}
	s.gotHello, s.remoteNonce = true, nonce
	prove := s.cfg.Creds.prove(Binding(s.cfg.LocalID, s.cfg.RemoteID, s.cfg.Nonce, nonce))
	s.queue(&syncpb.Message{Body: &syncpb.Message_Prove{Prove: prove}})
	return nil
}

func (s *Session) onProve(p *syncpb.Prove) error {
	switch {
	case !s.gotHello:
		return errorf(ErrProtocol, "Prove before Hello")
	case s.authed:
		return errorf(ErrProtocol, "second Prove")
	}
	binding := Binding(s.cfg.RemoteID, s.cfg.LocalID, s.remoteNonce, s.cfg.Nonce)
	proof, err := parseProve(p, binding, s.cfg.Creds.Caps)
	if err != nil {
		return err
	}
	if !s.cfg.Verify(binding, proof) {
		return errorf(ErrUnauthorized, "peer %x", s.cfg.RemoteID)
	}
	s.authed = true
	s.binding, s.proof = binding, proof
	// Only now does the peer learn anything about the space. A feed
	// frozen here is served with its evidence instead of its head.
	var heads [][]byte
	for _, k := range s.cfg.Model.Feeds() {
		st := s.state(k)
		if st == nil {
			break
		}
		st.dirty = false
		if s.frozenHere(k, st) {
			continue
		}
		if b := s.headToSend(k, st, true); b != nil {
			heads = append(heads, b)
		}
	}
	s.queueHeads(heads)
	return nil
}

// headToSend returns the encoded local head of k if the peer has not seen
// it (or always, when all), and records it as sent.
func (s *Session) headToSend(k feed.PublicKey, st *feedState, all bool) []byte {
	h, ok := s.cfg.Model.Head(k)
	if !ok || st.frozen || !all && h.Length <= max(st.remoteLen, st.sentLen) {
		return nil
	}
	b, err := h.MarshalBinary()
	if err != nil {
		return nil
	}
	st.sentLen = max(st.sentLen, h.Length)
	return b
}

func (s *Session) queueHeads(heads [][]byte) {
	for len(heads) > 0 {
		n := min(len(heads), MaxHeadsPerMessage)
		s.queue(&syncpb.Message{Body: &syncpb.Message_Heads{Heads: &syncpb.Heads{Heads: heads[:n]}}})
		heads = heads[n:]
	}
}

func (s *Session) onHeads(h *syncpb.Heads) error {
	heads, err := parseHeads(h)
	if err != nil {
		return err
	}
	var space map[feed.PublicKey]bool
	for i := range heads {
		st := s.state(heads[i].Key)
		if st == nil {
			return errorf(ErrProtocol, "heads of more than %d feeds", s.cfg.MaxFeeds)
		}
		// A head is pushed again at the same length after this side was
		// refused entries of it: the peer holds more now, or is less busy.
		if heads[i].Length >= st.remoteLen {
			st.unavailable = nil
			st.remote = &heads[i]
		}
		s.seeRemote(st, heads[i].Length)
		if space == nil {
			space = s.space()
		}
		if space[heads[i].Key] {
			s.checkFork(heads[i].Key, st, &heads[i])
		}
	}
	return nil
}

// checkFork freezes feed k if it is frozen here, or if the peer's head h
// has the length of ours and another root: a fork, proven by the two
// heads alone. (Heads of different lengths are checked on ingest, by
// whichever side holds the shorter one.)
func (s *Session) checkFork(k feed.PublicKey, st *feedState, h *feed.SignedHead) {
	if s.frozenHere(k, st) {
		return
	}
	own, ok := s.cfg.Model.Head(k)
	if !ok || own.Length != h.Length || own.Root == h.Root {
		return
	}
	ev := EqualLengthEvidence(own, *h)
	s.freeze(k, ev, true)
	s.evidence = append(s.evidence, ev)
}

// EqualLengthEvidence returns the fork evidence of two heads of one feed
// with the same length and different roots, in the one order both sides
// of a session build: the lower root first. Two replicas that find the
// same fork so hold the same evidence.
func EqualLengthEvidence(a, b feed.SignedHead) *feed.ForkEvidence {
	if bytes.Compare(a.Root[:], b.Root[:]) > 0 {
		a, b = b, a
	}
	return &feed.ForkEvidence{A: a, B: b}
}

// frozenHere reports whether feed k is frozen in this session, or on this
// node (Model.Evidence): then it freezes it in the session too and passes
// the evidence on.
func (s *Session) frozenHere(k feed.PublicKey, st *feedState) bool {
	if st.frozen {
		return true
	}
	ev := s.cfg.Model.Evidence(k)
	if ev == nil || ev.A.Key != k {
		return false
	}
	s.freeze(k, ev, true)
	return true
}

// seeRemote records that the peer holds a head of length n.
func (s *Session) seeRemote(st *feedState, n uint64) {
	if n > st.remoteLen {
		st.remoteLen = n
		st.unavailable = nil // a new head: the peer may hold more
	}
}

func (s *Session) onWant(p *syncpb.Want) error {
	w, err := parseWant(p)
	if err != nil {
		return err
	}
	refuse := func(reason string) error {
		// Pushing the head again tells the peer to ask again: once this
		// side holds more of the feed (a not-held refusal waits for an
		// append), or as soon as it is caught up (busy).
		if st := s.feeds[w.feed]; st != nil && (reason == ReasonBusy || reason == ReasonNotHeld) {
			st.owed = true
			st.dirty = st.dirty || reason == ReasonBusy
		}
		s.queue(&syncpb.Message{Body: &syncpb.Message_Refuse{Refuse: &syncpb.Refuse{Id: w.id, Reason: reason}}})
		s.answers++
		return nil
	}
	if s.answers >= s.cfg.MaxPendingAnswers {
		return refuse(ReasonBusy)
	}
	if !s.space()[w.feed] {
		return refuse(ReasonUnknownFeed)
	}
	st := s.state(w.feed)
	if st == nil {
		return refuse(ReasonBusy)
	}
	if s.frozenHere(w.feed, st) {
		return refuse(ReasonFrozen)
	}
	maxBytes := s.cfg.MaxBatchBytes
	if w.maxBytes > 0 && int64(w.maxBytes) < int64(maxBytes) {
		maxBytes = int(w.maxBytes)
	}
	b, err := s.cfg.Model.Batch(w.feed, feed.BatchRequest{Want: w.ranges, Base: w.base, MaxBytes: maxBytes})
	switch {
	case errors.Is(err, feed.ErrNotHeld):
		return refuse(ReasonNotHeld)
	case err != nil:
		return refuse(ReasonError)
	case len(w.ranges) > 0 && len(b.Runs) == 0:
		return refuse(ReasonNotHeld)
	}
	data, err := b.MarshalBinary()
	if err != nil || len(data) > feed.MaxBatchBytes {
		return refuse(ReasonError)
	}
	st.sentLen = max(st.sentLen, b.Head.Length)
	s.queue(&syncpb.Message{Body: &syncpb.Message_Data{Data: &syncpb.Data{Id: w.id, Batch: data}}})
	s.answers++
	return nil
}

func (s *Session) onData(d *syncpb.Data) error {
	w := s.wants[d.GetId()]
	if w == nil {
		return errorf(ErrProtocol, "Data for unknown want %d", d.GetId())
	}
	b, err := parseData(d)
	if err != nil {
		return err
	}
	if b.Head.Key != w.feed {
		return errorf(ErrProtocol, "Data %d for feed %x, wanted %x", w.id, b.Head.Key[:8], w.feed[:8])
	}
	var got []feed.Range
	var n int
	for i := range b.Runs {
		r := &b.Runs[i]
		got = append(got, feed.Range{Start: r.Start, End: r.End()})
		for _, e := range r.Entries {
			n += len(e)
		}
	}
	got = union(got, nil)
	if len(subtract(got, w.ranges)) > 0 {
		return errorf(ErrProtocol, "Data %d carries entries not asked for", w.id)
	}
	if n > max(w.maxBytes, feed.MaxEntrySize) {
		return errorf(ErrProtocol, "Data %d carries %d entry bytes, asked for at most %d", w.id, n, w.maxBytes)
	}
	delete(s.wants, w.id)
	st := s.feeds[w.feed]
	s.seeRemote(st, b.Head.Length)
	// A responder holding none of the wanted entries refuses; one that
	// answers with none at all is treated alike. (Entries skipped inside an
	// answer may just not have fit its byte budget: they are asked again.)
	if len(got) == 0 {
		st.unavailable = union(st.unavailable, w.ranges)
	}
	// Nor can it send entries beyond the head it answered with.
	st.unavailable = union(st.unavailable, subtract(w.ranges, clip(w.ranges, b.Head.Length)))
	if st.frozen {
		s.release(w)
		return nil
	}
	st.bytesIn += uint64(n)
	w.headLen = b.Head.Length
	s.ingesting[w.feed] = append(s.ingesting[w.feed], w)
	s.ingest = append(s.ingest, Ingest{Feed: w.feed, Batch: b})
	return nil
}

func (s *Session) onRefuse(r *syncpb.Refuse) error {
	if err := parseRefuse(r); err != nil {
		return err
	}
	w := s.wants[r.GetId()]
	if w == nil {
		return errorf(ErrProtocol, "Refuse for unknown want %d", r.GetId())
	}
	delete(s.wants, w.id)
	s.release(w)
	st := s.feeds[w.feed]
	st.unavailable = union(st.unavailable, w.ranges)
	return nil
}

func (s *Session) onFork(f *syncpb.Fork) error {
	ev, err := parseFork(f)
	if err != nil {
		return err
	}
	k := ev.A.Key
	if !s.space()[k] {
		return nil
	}
	st := s.state(k)
	if st == nil || st.frozen {
		return nil
	}
	st.evidenceSent = true // the peer has it
	s.freeze(k, ev, false)
	s.evidence = append(s.evidence, ev)
	return nil
}

// freeze stops replicating feed k and, if send, passes the evidence on.
func (s *Session) freeze(k feed.PublicKey, ev *feed.ForkEvidence, send bool) {
	st := s.feeds[k]
	st.frozen = true
	if !send || st.evidenceSent || ev == nil {
		return
	}
	st.evidenceSent = true
	data, err := ev.MarshalBinary()
	if err != nil || len(data) > feed.MaxEvidenceBytes {
		return
	}
	s.queue(&syncpb.Message{Body: &syncpb.Message_Fork{Fork: &syncpb.Fork{Evidence: data}}})
}

func (s *Session) release(w *want) {
	s.inflight--
	s.inBytes -= w.maxBytes
}

func (s *Session) sendWant(k feed.PublicKey, ranges []feed.Range, base uint64) {
	w := &want{id: s.nextID, feed: k, ranges: ranges, base: base, maxBytes: s.cfg.MaxBatchBytes}
	s.nextID++
	if s.nextID == 0 {
		s.nextID = 1
	}
	s.wants[w.id] = w
	s.inflight++
	s.inBytes += w.maxBytes
	s.queue(&syncpb.Message{Body: &syncpb.Message_Want{Want: &syncpb.Want{
		Feed: bytes.Clone(k[:]), Ranges: pbRanges(ranges), Base: base, Id: w.id, MaxBytes: uint32(w.maxBytes),
	}}})
}

// afterInput sends the wants there is room for and, once caught up, the
// heads of feeds that grew.
func (s *Session) afterInput() {
	if s.err != nil || !s.authed {
		return
	}
	s.plan()
	if s.inflight > 0 {
		return
	}
	var heads [][]byte
	var space map[feed.PublicKey]bool
	for _, k := range s.sortedFeeds() {
		st := s.feeds[k]
		if !st.dirty {
			continue
		}
		st.dirty = false
		if space == nil {
			space = s.space()
		}
		if !space[k] {
			continue
		}
		if b := s.headToSend(k, st, st.owed); b != nil {
			st.owed = false
			heads = append(heads, b)
		}
	}
	s.queueHeads(heads)
}

func (s *Session) sortedFeeds() []feed.PublicKey {
	keys := make([]feed.PublicKey, 0, len(s.feeds))
	for k := range s.feeds {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b feed.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	return keys
}

// plan sends wants, one feed at a time round-robin, while the limits allow.
func (s *Session) plan() {
	space := s.space()
	keys := s.sortedFeeds()
	// Start after the feed served last.
	i, found := slices.BinarySearchFunc(keys, s.cursor, func(a, b feed.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	if found {
		i++
	}
	keys = append(keys[i:], keys[:i]...)
	for progress := true; progress; {
		progress = false
		for _, k := range keys {
			if s.inflight >= s.cfg.MaxInflightWants || s.inBytes+s.cfg.MaxBatchBytes > s.cfg.MaxInflightBytes {
				return
			}
			st := s.feeds[k]
			need := subtract(s.target(k, st, space), s.outstanding(k))
			if len(need) == 0 {
				continue
			}
			s.sendWant(k, take(need, s.cfg.WantEntries, MaxRangesPerWant), s.cfg.Model.Length(k))
			s.cursor = k
			progress = true
		}
	}
}

// notHeld returns the indices of k this replica lacks: holes below its
// length and everything from its length on.
func (s *Session) notHeld(k feed.PublicKey) []feed.Range {
	l := s.cfg.Model.Length(k)
	return union(clip(s.cfg.Model.Missing(k), l), []feed.Range{{Start: l, End: feed.MaxLength}})
}

// target returns what to get of feed k from the peer, in flight or not.
func (s *Session) target(k feed.PublicKey, st *feedState, space map[feed.PublicKey]bool) []feed.Range {
	if st.frozen || st.remoteLen == 0 || !space[k] {
		return nil
	}
	notHeld := s.notHeld(k)
	var t []feed.Range
	if !s.cfg.Sparse {
		t = clip(notHeld, st.remoteLen)
	}
	if len(st.fetch) > 0 {
		t = union(t, clip(intersect(st.fetch, notHeld), st.remoteLen))
	}
	return subtract(t, st.unavailable)
}

func (s *Session) outstanding(k feed.PublicKey) []feed.Range {
	var out []feed.Range
	for _, w := range s.wants {
		if w.feed == k {
			out = append(out, w.ranges...)
		}
	}
	for _, w := range s.ingesting[k] {
		out = append(out, w.ranges...)
	}
	return union(out, nil)
}

// clipAll normalizes ranges from the caller to [0, MaxLength).
func clipAll(rs []feed.Range) []feed.Range {
	return clip(union(rs, nil), feed.MaxLength)
}

func (s *Session) String() string {
	return fmt.Sprintf("sync.Session{local %x, remote %x, authed %v}", s.cfg.LocalID, s.cfg.RemoteID, s.authed)
}
