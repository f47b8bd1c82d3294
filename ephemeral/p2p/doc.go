// Package p2p delivers ephemeral messages over libp2p: a gossipsub topic
// per space and direct streams between two peers. It is the I/O edge
// around the I/O-free ephemeral package, whose Filter decides delivery.
//
//	filter, _ := ephemeral.NewFilter(badgerseen.New(db, badgerseen.DefaultPrefix), ephemeral.Config{})
//	svc, _ := p2p.New(host, filter, p2p.Config{}, p2p.WithLogger(log))
//	sub, _ := svc.Subscribe(discoveryKey)   // join the space's topic
//	sub.Publish(ctx, envelope)              // to everyone in the topic
//	svc.Send(ctx, peerID, envelope)         // to one peer, answered
//	m, _ := sub.Next(ctx)                   // delivered once: m.Envelope, m.From, m.Direct
//	stop, _ := svc.Relay(discoveryKey)      // a relay: route without the key
//	svc.Close()                             // ends everything and waits
//
// # Topic
//
// A space's topic is TopicPrefix ‖ hex(discovery key). A validator runs on
// every message before gossipsub delivers or forwards it. It needs no key,
// so a relay that routes the topic runs it too: it parses the envelope
// (size, fields, signature: ephemeral.Parse) and asks the Filter whether
// it would deliver it (time window, seen-set) without recording anything.
// Malformed, forged or other topics' envelopes are rejected (gossipsub
// counts that against the forwarder), stale or already delivered ones
// ignored; neither goes further. Only delivery to a Subscription records
// an envelope as seen, persisted before Next can return it.
//
// # No gossipsub signatures
//
// Every mycel node runs gossipsub with PubSubOptions: StrictNoSign and no
// author, so messages carry neither a gossipsub signature nor the origin's
// peer ID and sequence number, and a message that does is refused. The
// envelope signature makes gossipsub's redundant: it authenticates the
// sender's node key over every field, and the validator checks it on every
// hop before forwarding, so a forgery dies at the first honest router just
// as with gossipsub's signing. What gossipsub's signature adds — the peer
// ID of the origin — is what we want kept out of messages: it would tell
// every router which host wrote each message, while the envelope names
// only the sender's node key to those who can tell one from another.
// Dropping it saves one signature per publication and one verification
// per hop (secp/Ed25519 over the protobuf message) and keeps messages
// smaller; BenchmarkLine measures the difference.
//
// The message ID is MessageID, a SHA-256 of the message's bytes — not the
// envelope ID, because gossipsub marks an ID seen before the validator
// runs: with the envelope ID, a router could forward a tampered copy of a
// genuine envelope first and get the genuine one dropped as a duplicate.
// Gossipsub's seen cache (2 minutes by default) then only saves work; the
// Filter's seen-set (10 minutes, persisted) is what guarantees that a
// replayed envelope is not delivered twice.
//
// # Direct streams
//
// Protocol ProtocolID, one envelope per stream:
//
//	opener:   uvarint length ‖ envelope (≤ ephemeral.MaxEnvelopeSize), then close-write
//	receiver: status (1 byte), then close
//
// The status is 0 delivered, 1 duplicate, 2 rejected (malformed, forged,
// stale), 3 not subscribed to the topic, 4 busy (seen-set full, store
// error, or the application did not read within the timeout). The length
// is checked before anything is allocated; both sides put the whole
// exchange under Config.StreamTimeout (10 s), and at most
// Config.MaxInboundStreams (64) are handled at once — more are reset
// unread. The receiver delivers through the same Filter into the
// Subscription of the envelope's topic.
//
// # Delivery
//
// At most once, best effort: an envelope is recorded before it is put in
// the Subscription's buffer (Config.Buffer, 256), so one that is lost
// after that — the application did not read it before Close — is never
// delivered again. The Service's own envelopes (Publish, Send) are
// recorded with Filter.Remember and never delivered back to it.
//
// # Metrics and time
//
// WithTracer reports every envelope or stream not delivered, with its
// reason (DropRejected, DropStale, DropDuplicate, DropSeenFull, DropBusy,
// DropStreams), and the seen-set's size after each delivery and each
// prune; the node turns them into Prometheus metrics. Stats counts the
// same in memory. WithClock sets the clock of the prune ticker (the
// Filter has its own, ephemeral.Config.Now); stream deadlines use the
// system clock, which the network stack measures them against.
//
// # Goroutines
//
// Two per Subscription (one reads gossipsub's subscription, the other
// passes what it has read, in batches of up to 128, through
// Filter.DeliverMany: one write to the seen-set for a burst), one
// that prunes the seen-set every Config.PruneInterval, and libp2p's
// handler goroutine per direct stream, which the Service counts. Close
// ends them all and waits; gossipsub's own goroutines stop with its
// context when the Service made the router (otherwise the caller owns it).
package p2p
