// Package syncnet runs mycel's replication protocol (node/replication) over
// libp2p streams: the thin driver around the I/O-free replication.Session, as
// etcd's node.go is around raft's rawnode.
//
//	r := syncnet.New(host, log)
//	r.Serve(space)               // handle the space's protocol, sync with peers
//	r.Appended(space.ID(), feed) // after a local write: push it live
//	r.Progress()                 // per peer and feed: have, want, bytes, rate
//	r.Close()                    // ends every session and waits for it
//
// # Protocol per space
//
// Each space has its own protocol ID, ProtocolFor(id):
// replication.ProtocolID + "/" + hex of the first 16 bytes of auth.DiscoveryKey(id).
// A node registers a handler only for the spaces it serves, so a peer
// asking for another space is refused by multistream and learns nothing
// more; the discovery key does not reveal the space ID.
//
// # Who opens
//
// One session per peer and space. When a connection appears (the host's
// EvtPeerConnectednessChanged), when a connected peer starts serving the
// space (EvtPeerProtocolsUpdated, from identify: an earlier open was refused
// because the peer did not serve it yet) and when Serve is called, only the
// side with the lower peer ID opens a stream; the other serves. Sync opens one now
// from either side. If both streams meet while this side's session is still
// in its opening, the one opened by the lower peer ID is kept and the other
// reset (DropDuplicate). A new inbound stream from a peer replaces an
// inbound session, and an outbound one too once that verified the peer
// more than 2 s ago (the peer's stream of a simultaneous open may arrive
// that late) or when the new stream leaves a relayed connection for a
// direct one: the peer opens only when its side of the session is gone (a
// browser whose old connection died), or to move it. A replacing session
// starts once the one it replaces stopped, its running Ingest included,
// and a session that ends is forgotten only after its Ingest finished: a
// new session asks only for what is not stored, nothing is ingested twice.
// Streams are opened with network.WithAllowLimitedConn, so relayed
// connections work, and a peer reached through a relay only
// (network.Limited) counts as connected. A session that ends is not
// reopened until the next connection, protocol update or Sync.
//
// # Moving off a relay
//
// When a direct connection to a peer appears (its connectedness becomes
// Connected: hole punching, a direct dial) while a session with it runs
// over a relayed connection (limited, or a /p2p-circuit address), the side
// with the lower peer ID opens a new stream without WithAllowLimitedConn —
// libp2p puts it on a connection that is not limited — and replaces the
// session by one over it; the peer takes that stream as superseding its
// side. The other side never moves, so the two do not fight. Sessions
// shows each session's connection, Moved counts the moves.
//
// # Deadlines and limits
//
// Every frame is read with replication.ReadFrame, its length checked before
// anything is allocated and its buffer grown only as its bytes arrive.
// Until the peer's proof verified, only frames of up to
// replication.MaxOpeningFrameSize (4 KiB: Hello and Prove) are read, and after
// the peer's Prove the reader reads nothing more until the session has
// verified it, through 4 KiB buffers each way: a peer that proved nothing
// makes this node hold a few KiB per stream, however large the length it
// sends.
//
// Every read a peer controls has a deadline:
//
//   - waiting for the start of a frame while this side waits for the
//     peer — during the opening, and while any of its wants is unanswered
//     — is bounded by Config.IdleTimeout (default 2 minutes), refreshed by
//     every frame; a peer that stalls is dropped (not counted against its
//     standing: it may be slow);
//   - a caught-up session waits for the start of the next frame (a live
//     push) without a deadline: the muxer's keepalive notices a dead
//     connection;
//   - once a frame's first byte arrived, the whole frame must arrive
//     within Config.FrameTimeout (default 2 minutes), in any state: a peer
//     that starts a frame and stalls is dropped.
//
// The two deadlines are set by two goroutines (the session's idle one, the
// reader's frame one) through one readDeadline, which applies the earlier.
// The frames of one Ready are written with a write deadline of
// Config.WriteTimeout (default 30 s). Opening a stream is bounded by
// Config.OpenTimeout (default 15 s) or the caller's context. The session's
// own bounds (wants in flight, batch bytes, pending answers, feeds) are in
// replication.Config, settable through Config.Session.
//
// # Forks
//
// When a session's ingest finds a fork, or it imports evidence a peer sent
// (Space.ImportEvidence), every other session of the space is told, as of
// an append: each sends the evidence to its peer and freezes the feed, so
// the evidence reaches every connected peer; a session opened later sends
// it in its opening (replication.Model.Evidence).
//
// # Standing
//
// A session that ends through the peer's fault — a malformed or oversized
// frame, a protocol violation, a wrong version, a proof that does not
// verify, data that does not verify on ingest — is reset at once and
// logged at Info with the peer and the reason, and the peer gets a strike.
// Config.MaxStrikes (3) strikes within Config.StrikeWindow (1 hour) ban the
// peer for Config.BanDuration (1 hour): its streams are reset unread, none
// is opened to it, and its running sessions end. A proof that does not
// verify is counted apart, against Config.MaxFailedProofs (30) in the same
// window: an honest device can fail one (a joining device trying a keyring
// someone forged in an approval, a member behind on rotations), and three
// strikes would lock it out for an hour, while an outsider gains nothing
// from more guesses. Other peers are unaffected. Standing is kept in
// memory only, in a table bounded by Config.MaxTracked (4096 peers): a
// peer's marks are forgotten Config.ForgetAfter (10 minutes) after it
// disconnected, or once they all left StrikeWindow; a ban when it ends.
// When the table is full, a new peer's first mark evicts the peer that
// left longest ago, then the connected peer with the oldest mark, then
// the ban that ends soonest — so a crowd of throwaway peers that strike
// once and leave cannot grow it, nor push out a connected peer that goes
// on striking.
//
// # Clock and tracer
//
// WithClock sets the clock (internal/clock) of standing and rates; stream
// deadlines are the network stack's, on the system clock. WithTracer
// reports every strike (and failed proof), ban and drop (DropBanned,
// DropDuplicate, DropStalled) and the standing table's size; the node
// turns them into Prometheus metrics.
//
// # Goroutines
//
// Every goroutine is counted in the Replicator's WaitGroup and stops when
// its context (a child of the Replicator's) is cancelled:
//
//   - one watcher of the event bus, started by the first Serve;
//   - one per session: libp2p's handler goroutine for inbound streams (the
//     handler runs the session and returns when it ends), a goroutine of
//     ours for outbound ones. It owns the replication.Session: it steps frames,
//     hands local appends in (Appended only queues them and never blocks),
//     writes, verifies received batches (feed.Batch.Verify) and answers
//     Progress requests;
//   - one reader per session, which reads frames and passes them on (and
//     sets the frame deadline); the session goroutine closes its stop
//     channel and resets the stream to stop it, and waits for it;
//   - one ingester per session, which stores the verified batches through
//     Space.Ingest one at a time, in order, and hands each result back.
//     While it waits for a storage commit, the session goroutine goes on
//     reading and verifying the next batches (at most the session's wants
//     in flight, replication.Config.MaxInflightWants). The session goroutine
//     stops it and waits for it, a running Ingest included.
//
// Close removes the handlers, cancels, and returns only when all of them
// ended.
package syncnet
