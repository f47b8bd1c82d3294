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
// hole-punching support and a circuit relay v2 service, so that a device
// behind a NAT reserves a slot and others reach it through the relay's
// /p2p-circuit address. The service is the relay's own (hop.go: libp2p's
// hop protocol and messages, go-libp2p's circuitv2 pb and proto packages,
// the relay's code), because go-libp2p's applies one circuit limit to
// everyone; it starts at once, where libp2p's EnableRelayService waits for
// AutoNAT to call the host public.
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
// everyone and keeps the allow-list of members: peers that proved, on this
// relay, that they belong to a space it serves — the blind mirror admits
// the peer of every replication session it opens on a confirmed token's
// proof or a writer's signature (not a bootstrap session). A circuit
// between two members gets the members' limits (Limits.MemberCircuitDuration
// and MemberCircuitBytes, 1 hour and 1 GiB), so that a whole sync and the
// message traffic cross the relay; every other circuit, one with a single
// member end included, gets libp2p's defaults (2 minutes, 128 KiB). The
// list is bounded (MaxMembers, the oldest proof dropped) and expires
// (MemberTTL after the last proof, while the peer is not connected); the
// mirror revokes a member at once when it sees its writer removed or a
// newer epoch confirmed that its proof does not reach (ACL.Revoke), and
// the member's lifted circuits are reset. A
// relay without a data directory has no mirror, so no members. FORMAT.md,
// "Circuit relay", gives the protocol's rules and what the relay learns.
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
// tokens per space, handovers per peer, bytes per space), set from
// Limits' Mirror* fields (--mirror-* flags) where a program leaves them
// zero.
//
// # The web app
//
// The WebSocket ports (/ws, and /tls/ws with the certificate) serve the web
// app (webui.Dist) to browsers as well: libp2p's WebSocket transport hands
// every request that is not a WebSocket upgrade to WebApp
// (ws.WithHTTPHandler), so http(s)://relay:4112/ is the app and
// /tcp/4112/(tls/)ws the libp2p address on the same port. GET / is the page,
// GET /<file> its scripts, styles and WebAssembly, GET /hashes.txt the
// build's SHA-256 of each file, GET /relay.json the relay's peer ID (the
// page is the browser node: it dials the relay at its own origin as
// /…/ws/p2p/<that ID>); scripts and WebAssembly go gzipped to a browser
// that accepts it (each compressed once); every answer carries a
// Content-Security-Policy (the relay's own scripts and origin only, no
// framing) and the daemon's UI's other security headers; no session,
// cookie or request log; at most 64 requests at once, headers of 8 KiB,
// idle connections closed after 30 s (webapp.go).
//
// # Mailbox
//
// With a data directory, New also starts the Mailbox over the mirror's
// store (keys "x" ‖ …) on MailboxProtocol (/mycel/mailbox/1.0.0; clients
// DepositMailbox and FetchMailbox, which the daemon calls from
// node/relays_mailbox.go). It keeps envelopes of the spaces the relay
// mirrors for their devices that are offline — sealed, as they are — with
// a delivery pointer per device, and deletes each once every current
// device (the writers the mirror follows, minus the removed) took it, or
// at expiry. A device signing in (no writer yet) deposits its requests and
// gets a bounded pointer of its own that fetches only the answers to them.
// The relay's router hands it the sign-in envelopes and the members'
// kept app messages (key kind 4) it routes through Mailbox.Keep.
// FORMAT.md, "Mailbox", gives the wire format, who may deposit and fetch
// what, the bounds (MailboxLimits; Limits.MailboxBytesPerSpace and
// MailboxExpiry) and what the relay learns.
//
// # Message routing
//
// With a mirror, New starts the Router (router.go): a gossipsub router of
// its own (ephemeral/p2p.PubSubOptions) that joins, without subscribing,
// the ephemeral topic of every space the mirror serves (a confirmed token:
// Mirror.ServedSpaces; Mirror.OnChange tells it when that changes), so
// that devices reaching only the relay get each other's presence, app
// messages and sign-in. Every envelope is checked without a key before it
// is forwarded: size, fields, signature, topic, time window, an in-memory
// seen-set (so a replay, re-encoded or after gossipsub's own cache forgot
// it, is not forwarded again), for members' envelopes (key kind 1) a
// sender that is a writer the mirror follows and has seen no removal of
// (also for kept app messages, key kind 4),
// and for sign-in (key kinds 2 and 3), whose senders are not writers yet,
// a rate per neighbour and per space (RouterLimits); a neighbour that
// hands over too many rejected envelopes is banned for a while (gossipsub's
// blacklist). Router.OnEnvelope is
// the hook through which the mailbox is to be fed accepted envelopes. The
// router sends its neighbours nothing about an envelope before its checks
// (no gossipsub IDONTWANT) and queues 128 RPCs per neighbour.
// BenchmarkRelayFanout measures it in its own process, forwarding to 100
// subscribers in another, with the processes sharing the machine's cores
// and with the relay on a core of its own, and reports where a message's
// time goes (README.md, "Benchmarks"; go test -run '^$' -bench
// BenchmarkRelayFanout -benchtime 3000x ./relay/): 116–151 messages/s to
// 100 one at a time, p50 2.9–3.9 ms (2.2–2.6 ms on its own core);
// 42,400–56,500 deliveries/s with 64 in flight, 13 µs of the relay's CPU
// per delivery, one write(2) each.
// FORMAT.md, "Message routing", gives the rules and what the relay learns.
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
// aggregate: no label names a peer or an address. What it can and cannot
// learn is listed in the README ("What a relay can learn, and what it
// cannot"); TestRelayLearnsNoCanary holds it: canary key names, values,
// device names, message bodies and passwords pass through the relay, and
// none of them, nor any space secret, is in its store, files, debug log or
// metrics.
//
// # Goroutines
//
// The host owns libp2p's. The circuit relay service (hop) counts in its
// WaitGroup each hop stream's handler while it runs, the two copy
// goroutines of each open circuit and the one that reaps them, and its
// reservation expiry loop; its Close resets the open circuits and waits
// for all of them. The Router owns one goroutine (joins and leaves topics,
// prunes its seen-set and rate state every minute) and its gossipsub
// router's; Close, before the mirror's, ends them. The peering's goroutine (its rounds) and the DHT's are
// owned by the Relay: Close stops the rounds, waits for them and closes
// the DHT first. The mirror's replicator owns the replication sessions
// (node/syncnet "Goroutines"); Mirror.Close, called by Close before the
// host closes, waits for them and then closes the store. The mailbox's
// sweeper (every MailboxLimits.SweepEvery) and the goroutine that keeps
// the sign-in envelopes the router hands it are owned by its server; Close
// stops them and waits for them before the mirror closes the store. The
// Directory has no goroutine (each request runs in its stream's handler). The
// metrics endpoint's server goroutine is owned by the Relay, and Close
// shuts the server down and waits for it.
//
// # Not built yet (issue 12)
//
// The fan-out target (20k messages/s to 100 peers, p50 ≤ 1 ms):
// the router's cost is gossipsub's and yamux's per-peer writes, one system
// call and 13–39 µs of CPU per delivery, which no host, gossipsub or
// runtime setting of the relay's was found to cut (Noise for TLS and
// GOGC=400 measured no gain); 20k messages/s to 100 peers is some 26
// cores at that cost (FORMAT.md, "Message routing"; README.md,
// "Benchmarks").
package relay
