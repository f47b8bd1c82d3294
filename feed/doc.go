// Package feed implements mycel's feeds: append-only logs, each written by
// one Ed25519 key, committed to by signed RFC 6962 Merkle tree heads, and
// replicated — in whole or in any sparse part — with proofs, so that nothing
// a peer sends is stored before it is verified.
//
// The package knows nothing of spaces, encryption or networks. Entries are
// opaque bytes (at most MaxEntrySize). Storage is reached through the small
// Storage interface; feed/badgerstore implements it on badger for daemons
// and feed/memstore in memory for tests and browsers. Prefixed makes a
// namespace of a Storage, so that many DBs (a node's spaces) share one
// store and each sees only its own keys; every commit the package makes
// leaves room for a prefix of up to MaxPrefixSize bytes per write. The
// package builds for GOOS=js GOARCH=wasm.
//
// # Writing
//
//	db, _ := feed.Open(store)
//	w, _ := db.Writer(privateKey)
//	index, err := w.Append(ctx, entry1, entry2) // durable and signed on return
//
// Appends are group-committed: concurrent callers share one storage commit
// (one fsync) and one signature. The head is signed only after the entries
// and tree nodes are durable, so a signed head never names entries a crash
// could lose, and a writer that restarts never contradicts a head it gave
// out.
//
// # Replicating
//
// A replica asks a peer for what it lacks and ingests what comes back:
//
//	b, _ := peerFeed.Batch(feed.BatchRequest{Want: mine.Missing(), Base: mine.Length()})
//	err := mine.Ingest(b) // verified, then stored atomically
//
// A Batch carries a signed head, runs of entries each with the compact-range
// hashes that prove it against that head (a run of one entry is an
// inclusion proof), and a consistency proof from the receiver's length when
// no run reaches it. Ingest checks the signature, the consistency of the new
// head with the head already held, and every run, and stores nothing unless
// all pass. Errors wrap sentinels (ErrInvalidProof, ErrBadSignature,
// ErrNeedConsistency, …) so a caller can tell a bad peer from a request to
// retry with a proof.
//
// # Forks
//
// Two signed heads of one feed that cannot both be true — a device restored
// from a backup appending again, or a stolen key — are a fork. Ingest keeps
// both heads and the hashes that show the conflict as ForkEvidence, which
// anyone can check with VerifyEvidence knowing only the feed key; the feed is
// frozen (ErrFrozen) and the evidence is meant to be passed on to peers
// (Feed.ImportEvidence) and shown to the person. Feeds never shrink:
// truncation does not exist.
//
// # Checking and restoring
//
// Feed.Verify reads every entry a replica holds and checks them against
// the signed head (signature, and the Merkle root of the entries held
// from the start), for a check of a stored feed. A DB opened
// WithoutAppends refuses Append with ErrAppendsHeld and still ingests: a
// node restoring a lost store fetches its own feed back from peers
// before it may append, since appending to a feed whose signed entries it
// lacks would fork it.
//
// FORMAT.md in this directory documents what is hashed, what is signed, the
// wire encoding and the storage key layout.
package feed
