// Package relay is the always-on, unprivileged relay that `mycel relay`
// runs: it keeps devices in touch when they cannot reach each other
// directly and never holds a space secret, so it can verify what passes
// through it but read none of it.
//
// # What is built
//
// New starts a libp2p host listening on TCP, QUIC, WebSocket (secure
// WebSocket, /tls/ws, when given a certificate and key), WebTransport and
// WebRTC-direct, with identify, the AutoNAT services (v1 and v2),
// hole-punching support and libp2p's circuit relay v2 service, so that a
// device behind a NAT reserves a slot and others reach it through the
// relay's /p2p-circuit address. The service is started directly rather
// than through libp2p's EnableRelayService, which waits for AutoNAT to
// call the host public.
//
// Config holds the settings and LoadConfig resolves them: flags, then
// MYCEL_RELAY_* environment variables, then config.json in the data
// directory, then the documented defaults. The identity (node.key) is
// loaded by the command with the daemon's code. Limits gathers every limit
// with its default: connections, streams and reserved memory per peer,
// per IP address and overall, enforced by libp2p's resource manager; slots,
// circuits per peer and the bytes and lifetime of one relayed connection,
// enforced by the circuit relay service. Over a limit a peer is refused
// (RESERVATION_REFUSED, RESOURCE_LIMIT_EXCEEDED, a reset stream) and
// nothing else changes.
//
// The ACL is the circuit relay service's access control. It admits
// everyone, held to libp2p's default circuit limits (2 minutes, 128 KiB),
// and keeps the allow-list of peers that belong to a space the relay
// serves, empty for now. Those are to get lifted limits so that a whole
// sync crosses the relay; libp2p's ACLFilter only answers yes or no and
// its circuit limits are one setting for the whole service, so lifting
// them per circuit will need the relay to handle the hop protocol's
// circuits itself (for instance a second service instance for members'
// circuits, or a limiter around the relayed streams).
//
// # Blind mirror
//
// With a data directory, New opens the mirror's store (<data>/mirror, a
// badger store) and starts the Mirror on the host. A member hands it a
// space's mirror token on MirrorProtocol (/mycel/mirror/1.0.0; the client
// is HandMirrorToken, which the daemon calls); the mirror then serves the
// space with a syncnet.Replicator of its own: one syncnet.Space per space
// over the space's namespace of the store (feed.Prefixed, as the daemon
// does), which proves and accepts the replication capability derived from
// the tokens, follows the writer set from the clear headers of add-writer
// and remove-writer ops (space.MirrorWriters), replicates those feeds only,
// verifies every batch and stores it as it is: ciphertext. Members sync
// from it with their own protocol while the writers are offline. A token
// is believed once a writer proves it (bootstrap sessions, shown nothing,
// let the relay find the writer first). FORMAT.md, "Mirror handover",
// gives the wire format, the rules, what a bogus token costs and what the
// relay learns. MirrorLimits bound it (spaces, unconfirmed spaces, pending
// tokens per space, handovers per peer, bytes per space from
// Limits.MirrorBytesPerSpace).
//
// # Many relays per space
//
// Relays find each other, and the spaces each mirrors, through a Kademlia
// DHT of their own (go-libp2p-kad-dht in server mode, protocol prefix
// DHTPrefix, providers only), joined through the relays of Config.Peers
// (--peer). Each round (Config.PeerInterval) a relay provides
// ProviderCID(space) for every space a writer confirmed, looks up the
// other providers and opens a replication session with each: both hold
// the token, so their mirrors converge (peers.go; FORMAT.md, "Relay
// peers"). Devices list several relays (the daemon's --relay) and hand
// each the token; losing one loses nothing.
//
// # Privacy
//
// The relay logs no connection, reservation or circuit, at any level of
// its own log (libp2p's own loggers, set with GOLOG_LOG_LEVEL, could). Its
// metrics (Prometheus, on a loopback address, off by default) are
// aggregate: no label names a peer or an address.
//
// # Goroutines
//
// The host and the circuit relay service own theirs (libp2p's); Close
// closes both. The peering's goroutine (its rounds) and the DHT's are
// owned by the Relay: Close stops the rounds, waits for them and closes
// the DHT first. The mirror's replicator owns the replication sessions
// (node/syncnet "Goroutines"); Mirror.Close, called by Close before the
// host closes, waits for them and then closes the store. The metrics endpoint's server goroutine is owned by the
// Relay, and Close shuts the server down and waits for it.
//
// # Not built yet (issue 12)
//
// (Daemons reserve slots and advertise circuit addresses: node/relays.go.)
// (Daemons hand their relays the mirror token, after each rotation too:
// node/relays_mirror.go.) Lifted circuit limits for members; the mailbox of
// envelopes for offline devices (Limits.MailboxBytesPerSpace,
// MailboxExpiry), which takes effect when it lands; flags for
// MirrorLimits; invite locators
// and aliases; message routing over gossipsub; a space-level list of
// relays (devices take theirs from --relay today); serving the web app on its WebSocket port. See DESIGN.md, "The relay".
package relay
