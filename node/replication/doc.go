// Package replication is mycel's replication protocol, /mycel/sync/2.0.0: the
// logic of one session between two peers replicating the feeds of one
// space, as a state machine without I/O, and the frame codec of its wire
// format (syncpb, documented in FORMAT.md).
//
// The package dials nothing, starts no goroutine and reads no clock: a
// driver owns the stream, reads frames (ReadFrame) and steps them into a
// Session, and carries out what the session outputs. It builds for
// GOOS=js GOARCH=wasm so that the browser node runs the same code.
//
// # Protocol
//
//	A                                          B
//	|-- Hello{v2, nonceA} ------------------->|   both sides at once
//	|<------------------- Hello{v2, nonceB} --|
//	|-- Prove{proof A→B} -------------------->|   each after the peer's Hello
//	|<------------------- Prove{proof B→A} ---|
//	|   (each side verifies the peer's proof; a peer that fails gets
//	|    nothing more and the session ends with ErrUnauthorized)
//	|-- Heads{signed heads of the space} ---->|   only after the proof verified
//	|-- Fork{evidence} ---------------------->|   instead, for a feed frozen here
//	|<---------------------------- Heads{…} --|
//	|<------ Want{id, feed, ranges, base} ----|   for every head longer than
//	|<------ Want{…} -------------------------|   what B holds: pipelined,
//	|-- Data{id, batch} --------------------->|   ≤ MaxInflightWants and
//	|-- Data{id, batch} / Refuse{id} -------->|   ≤ MaxInflightBytes
//	|            … until caught up …           |
//	|-- Heads{new head} --------------------->|   live push after each append
//	|<------ Want{…} -------------------------|
//	|-- Data{…} ----------------------------->|
//	|<---------------------- Fork{evidence} --|   if B's ingest found a fork, or
//	|                                          |   B's head of a feed has the
//	|                                          |   length of A's, another root
//
// The proof binds the connection: HMAC of the space's replication
// capability (auth.ReplicationCapability.Proof) over Binding(prover ID,
// verifier ID, prover nonce, verifier nonce). It cannot be replayed (fresh
// nonces), reflected (prover and verifier named in order) or used on another
// connection (peer IDs, which libp2p authenticates). A writer's feed key
// and its signature of the binding travel sealed under each proven
// capability (a key derived from the capability and the binding), so a
// peer that holds no capability learns no feed key — for the creator of a
// space, its ID. FORMAT.md lists what the opening still reveals.
//
// # Forks
//
// Two heads of one feed that cannot both be true are a fork: a batch that
// does not prove consistency with the held head (found by Feed.Ingest), or
// a peer's head of the same length with another root (found by the session
// from the heads alone; EqualLengthEvidence orders the two heads so that
// both sides build the same evidence). The evidence goes to the peer and
// into Ready.Evidence, the feed freezes in the session, and the session
// serves any feed the node holds evidence of (Model.Evidence) with its
// evidence instead of its head; Appended re-checks it, so a driver that
// calls Appended on every session of a space when a feed freezes passes
// the evidence on to all its peers.
//
// # Contract: Step, Ready, Advance
//
// As in etcd's raft (rawnode.go):
//
//	s := sync.New(cfg)
//	s.Start()
//	for {
//		if s.HasReady() {
//			rd := s.Ready()
//			if rd.Err != nil { reset the stream; return }
//			write every rd.Send message in order (WriteFrame)
//			for each rd.Ingest: err := feed.Ingest(batch); later s.Ingested(feed, err)
//			for each rd.Evidence: feed.ImportEvidence(ev)
//			s.Advance()
//		}
//		wait for: a frame (s.Step(m); an error means reset the stream),
//		a local append (s.Appended(k)), an ingest result, a Fetch
//	}
//
// Inputs are Start, Step, Appended, Ingested, Fetch and Refresh; outputs
// accumulate until Ready hands them out and Advance drops them. The driver
// must call Ingested once per Ready.Ingest, in the order given for each
// feed, with Feed.Ingest's error: ErrNeedConsistency makes the session ask
// again from its new length, a fork sends the evidence to the peer, an
// error wrapping ErrNotStored (the driver refused to store a verified
// batch for its own reasons, such as a relay's quota) leaves the ranges
// unasked until the peer's head grows, any other error ends the session
// (the peer sent data that does not verify).
// Ingestion may happen asynchronously (a batch may wait for a storage
// commit), but the session is not safe for concurrent use: one goroutine,
// or a lock, around all calls.
//
// An error from Step, or Ready.Err, ends the session for good. Errors wrap
// ErrMalformed, ErrProtocol, ErrUnauthorized, ErrVersion or ErrFrameTooLarge
// (the peer's fault: lower its standing) or ErrMisuse (the driver's).
//
// # Bounds
//
// Everything a peer controls is bounded: frame size (MaxFrameSize, checked
// before allocation, the buffer grown as bytes arrive; MaxOpeningFrameSize
// until the peer's proof verified, which the driver passes to ReadFrame),
// heads per message, ranges per Want, feeds tracked
// (Config.MaxFeeds), answers pending for the peer (Config.MaxPendingAnswers,
// beyond which wants are refused "busy"), entry bytes per answer (asked for
// in Want.max_bytes and checked on receipt), and this side's own wants in
// flight, which bound the batches waiting to be ingested.
package replication
