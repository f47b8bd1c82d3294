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
// # Directory: invite locators and aliases
//
// With the mirror, New starts the Directory on LocatorProtocol
// (/mycel/locator/1.0.0), in the mirror's store under keys of its own. A
// member deposits the locator of an invite it made (DepositLocator: opaque
// bytes sealed under a key only the invite's code gives, kept until the
// invite's expiry or until a member removes it with the invite's removal
// secret), so that a device holding only the code finds the space and its
// members while none is online (LookupLocator). A writer names its space
// at the relay (RegisterAlias), first come first served, so that a device
// joins name@relay by password (ResolveAlias). Writes are signed by a feed
// the mirror follows for the space, bound to this relay and to a time
// within MaxClockSkew, so that neither an outsider nor a replay counts;
// everything is bounded per space, per peer and overall (DirectoryLimits).
// FORMAT.md, "Locators and aliases", gives the wire format, the rules and
// what the relay learns.
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
// closes both. The mirror's replicator owns the replication sessions
// (node/syncnet "Goroutines"); Close closes the Directory (it has no
// goroutine: each request runs in its stream's handler) and then the
// Mirror, which waits for the sessions and closes the store they share,
// before the host closes. The metrics endpoint's server goroutine is owned by the
// Relay, and Close shuts the server down and waits for it.
//
// # Not built yet (issue 12)
//
// (Daemons reserve slots and advertise circuit addresses: node/relays.go.)
// (Daemons hand their relays the mirror token, after each rotation too:
// node/relays_mirror.go.) Lifted circuit limits for members; the mailbox of
// envelopes for offline devices (Limits.MailboxBytesPerSpace,
// MailboxExpiry), which takes effect when it lands; flags for
// MirrorLimits and DirectoryLimits; message routing over gossipsub; many relays per space;
// serving the web app on its WebSocket port. See DESIGN.md, "The relay".
package relay
