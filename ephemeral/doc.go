// Package ephemeral holds mycel's ephemeral messages: envelopes that are
// encrypted, signed by the sender and deduplicated, and the rules that
// decide their delivery. Join requests, approvals, presence, "new data"
// nudges and apps' own messages travel this way. Delivery over libp2p
// (gossipsub and direct streams) is in ephemeral/p2p; the seen-set's
// badger store in ephemeral/badgerseen.
//
// It is plain code over plain inputs: no I/O but the SeenStore interface,
// no goroutines, time passed in (Seal's now, Config.Now), randomness as an
// io.Reader. It imports neither libp2p nor badger and builds with
// GOOS=js GOARCH=wasm for the browser node.
//
// # Envelopes
//
// An envelope carries a topic (the space's discovery key), the sender's
// Ed25519 public key, a random 16-byte ID, the sender's time in unix
// milliseconds, which key sealed the body (KeyKind and KeyID, opaque to
// this package), an XChaCha20-Poly1305 body and the sender's signature.
// The body's additional data is the canonical header, and the signature
// covers every field in a canonical, length-prefixed layout (never the
// protobuf bytes, which are not canonical). FORMAT.md has the byte
// layouts, the bounds and a test vector.
//
//	e, err := ephemeral.Seal(key, nodeKey, ephemeral.Header{Topic: dk, KeyKind: 1, KeyID: kid}, body, time.Now(), nil)
//	b, err := e.Marshal()            // ≤ MaxEnvelopeSize (64 KiB)
//
//	e, err := ephemeral.Parse(b)     // sizes and signature: anyone can, a relay too
//	body, err := e.Open(key)         // members only
//
// # Delivery
//
// A Filter delivers an envelope at most once: it drops envelopes whose
// time is more than Window (5 minutes) from its clock, either way, and
// those whose ID (for that topic and sender) it delivered before. Its
// seen-set keeps each ID until the envelope's time plus Retention (10
// minutes, twice the window: gossipsub's own 2-minute cache is not enough),
// is bounded (Config.MaxSeen; when full, new envelopes are refused until
// IDs expire, and no unexpired ID is ever evicted), budgeted by sender (one
// sender holds at most Config.MaxPerSender IDs, and the senders
// Config.Trusted does not vouch for at most Config.MaxUntrusted together,
// so that envelopes signed by throwaway keys cannot crowd out members') and
// is written through to a SeenStore before Deliver returns, so that neither a restart nor a
// crash right after Deliver lets an envelope be delivered twice. That is
// one synchronous write per call: a receiver with several envelopes
// waiting passes them to DeliverMany, which records them with one.
//
// Envelopes a relay's mailbox keeps for devices that are offline (those
// Config.Kept marks, of a sender Config.Trusted vouches for: for a node,
// members' kept app messages, key kind 4) may be handed over up to a week
// later: DeliverStored, the mailbox's path only, accepts them up to
// KeptFor + Window (a week and 5 minutes) old, and their IDs — also when
// they came live — are kept until their time + KeptFor + Window +
// Retention, under budgets of their own (Config.MaxKept,
// Config.MaxKeptPerSender), so that neither a replay over the topic nor
// the same envelope from another mailbox or after a restart is delivered
// twice. The live path keeps its window.
//
//	f, err := ephemeral.NewFilter(store, ephemeral.Config{})
//	e, err := f.Accept(b)  // Parse + Deliver: nil error means hand it on, once
//	err = f.Check(e)       // would Deliver accept it? for routers; records nothing
//	errs := f.DeliverMany(es) // a burst: one result each, one write to the store
//	errs = f.DeliverStored(es) // from a mailbox: kept envelopes up to KeptFor old
//	err = f.Remember(e)    // an envelope we send: never deliver it back to us
//	err = f.Prune()        // now and then: drop expired IDs from the store
//
// # Presence
//
// Presence tracks when each sender was last heard from. Nodes announce
// themselves every AnnounceInterval (10 s); a sender counts as online for
// OnlineFor (30 s) after its last announcement. The announcement's body is
// the caller's; feed the tracker with the receipt time of what the Filter
// delivered and the key opened.
package ephemeral
