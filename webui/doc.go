// Package webui is mycel's web app — the daemon's control panel, and the
// browser node's page — and its embedding into the mycel binary. The page
// is written against one Node interface (src/node.ts) with two
// implementations: HttpNode (src/http.ts), a daemon's HTTP API, and
// BrowserNode (src/browsernode.ts), the browser node (DESIGN.md, "The
// browser node"), whose networking is src/node/ (below).
//
// The app is TypeScript in src/, built by build.mjs into dist/: index.html,
// app.css, app.js (the page), node.js (the browser node, apart), core.wasm
// (wasm/, GOOS=js GOARCH=wasm) with Go's wasm_exec.js, and hashes.txt
// (the SHA-256 of each). `make build` (and make run, make test) runs `npm
// ci` and build.mjs before compiling Go. The build is reproducible: esbuild
// depends only on its inputs, and the core is built with -trimpath,
// -buildvcs=false and -ldflags=-s -w, so two builds of one commit with the
// same Go and lockfile give the same bytes (page_browser_test.go,
// TestRelayServesHashes, rebuilds and compares what the relay serves). The
// build is not committed: dist/ holds one committed file,
// placeholder.html, so that `go build ./...` on a clean clone compiles; a
// binary built that way serves the placeholder, which says to run make
// build (Built reports it).
//
// # Which node the page is
//
// At start the page (src/main.ts, chooseNode) fetches relay.json from its
// origin. A relay answers it with its peer ID (relay/webapp.go): the page
// is then a BrowserNode that dials that relay at the page's own origin
// (/ip4|ip6|dns/<host>/tcp/<port>/ws, /tls/ws under https, /p2p/<ID>). A
// daemon does not answer it, and the page is its control panel
// (HttpNode, behind the login's session) — except at the daemon's
// /node?relay=<multiaddr> (node/api/ui.go), served without a session,
// where the page is a BrowserNode dialling the relay named. BrowserNode
// loads node.js, core.wasm and wasm_exec.js from its origin, starts the
// browser node on the IndexedDB store "mycel" (one per origin: the
// relay's page and a daemon's /node page are two devices), and keeps in
// localStorage, per space it asked to join (forgotten if the request is
// refused or denied), its feed, its local name and the member it
// replicates with, which it dials again after a reload and whenever no
// session of a space the node holds runs (every 3 s). Sign-in: with an invite link, the
// member is the peer its hints name (auth FORMAT.md, "Hints"; the page
// reads only the peer ID, the core checks the whole link), reached as
// <relay>/p2p-circuit/p2p/<peer>; with an invite code alone, the page asks
// the relay that served it for the invite's locator (relay FORMAT.md,
// "Locators and aliases", /mycel/locator/1.0.0; src/node/locate.ts moves
// the bytes, the wasm core's locate.go encodes the request and opens the
// reply with the code through auth.OpenRelayLocator, the daemon's own
// opening), which gives the space and the inviting member, reached the
// same way; with a password, the space is its ID, or its alias
// "name@relay" or "name" (at the relay that served the page), which the
// relay resolves. No member's address is needed when the relay serves the
// space (a member handed it the mirror token): the request and the
// approval cross the relay's router on the space's topic, and the page
// replicates the approved keyring from the relay's mirror (/mycel/sync
// with the relay itself), which holds the approving member's add of the
// page; the relay is also the fallback of a member (a locator's, or the
// address given) that cannot be reached. A request no peer on the topic
// hears within 20 s (the relay does not serve the space, and no member
// was reached) ends as refused: "no member reached through this relay".
// A member's address stays possible for a relay that does not serve the
// space. What the browser node
// cannot do (Node.supports: create a space, invite, set the password,
// remove a device, list the space's relays) the page hides; it writes,
// sends app messages, lists the
// devices and approves others' requests (the prompt, with the safety code)
// through src/node's put, del, list, devices, requests, approve and deny.
// The key browser reads list again whenever the space changes (onChange,
// and the view's digest polled each second).
//
// The control panel's Relays section (main.ts, refreshRelays) shows a
// space's relays (GET /v1/spaces/{space}/relays, node/space/FORMAT.md
// "The space's relays") with this device's use of each, every 2 s; to a
// writer it offers Add (POST, the multiaddr with /p2p/<ID>: the daemon
// connects, hands the mirror token and lists it, or says why not, shown
// under the field, which keeps the address to correct) and Remove (DELETE,
// after a confirmation). The list is written by any writer: the page puts
// what it holds in text nodes only.
//
// What this adds to what the browser node reveals (below): to the relay
// that serves the page, that this browser loaded it, when, and its IP
// address; localStorage holds, in the clear, the IDs of the spaces the
// tab signed in to, its feed keys and its members' addresses.
//
// The browser node's protocol core is wasm/: mycel's core packages
// compiled with GOOS=js GOARCH=wasm behind a small JavaScript API
// (wasm/core holds the calls and their test vectors, wasm/main.go binds them
// with syscall/js, src/wasmcore.ts types and loads them; `make wasm` builds
// bin/core.wasm and prints its gzip size). wasm_browser_test.go checks the
// vectors through it in headless chromium.
//
// # The browser node's networking (src/node)
//
// src/node is the browser node's networking, bundled apart into
// dist/node.js (build.mjs prints both bundles' sizes) so that the control
// panel does not carry js-libp2p. It is the first step of issue 14: a page
// that connects to a relay and to daemons and replicates a space
// as a member once it signed in (signin.ts), keeps what it holds in
// IndexedDB, writes, and approves other devices (below, "The page as a
// member"); the page's UI is src/main.ts's.
//
//   - net.ts: the js-libp2p host — WebSocket, WebTransport and
//     WebRTC-direct (no ICE servers: a closed network has none, and
//     WebRTC-direct needs none) to a relay or a reachable daemon, circuit
//     relay v2 to reach a daemon through a relay, WebRTC (private to
//     private: started with listen [<relay>/p2p-circuit, /webrtc] a page
//     reserves a slot on the relay and is reached by another page at
//     <relay>/p2p-circuit/webrtc/p2p/<page>; the SDP offer and answer go
//     over the relayed connection, within the relay's default circuit
//     limits for non-members, then the data flows over the WebRTC
//     connection, which outlives the relay; no ICE servers, so only host
//     candidates), noise, yamux, identify,
//     and gossipsub with mycel's options (ephemeral/p2p.PubSubOptions:
//     StrictNoSign, SHA-256 of the bytes as message ID). The browser's
//     default refusal to dial private addresses is off: relays and daemons
//     on a LAN or on this machine are the point.
//   - frames.ts: /mycel/sync's framing (node/replication FORMAT.md):
//     uvarint length, checked against the core session's current bound (4
//     KiB until the peer's proof verified, then 16 MiB + 64 KiB) before any
//     of the frame is buffered; a varint over 10 bytes is refused.
//   - sync.ts: one session over a stream — frames to the wasm core's
//     Session.step, its frames back, with the stream's backpressure; what
//     one session ingests, the page's other sessions of the space announce
//     (the core marks the feed grown in each, Session.flush sends their
//     heads), so a page passes what it gets from a daemon on to a page
//     replicating from it; the
//     peer is dropped after 2 minutes of silence (the daemon's IdleTimeout).
//   - store.ts: the page's IndexedDB (below, "Storage").
//   - main.ts: globalThis.mycelNode, the calls the tests drive: start
//     (with store: the name of the page's IndexedDB store, read back first),
//     persisted (the store's writes, once committed), connect, hangUp, replicate (one session per peer and space; the
//     lower peer ID opens, as node/syncnet; the page serves the daemon's
//     opening too, over relayed connections as well; a session over a
//     relay's circuit moves onto a direct connection to the same peer as
//     soon as one opens — the lower peer ID opens a stream there, which the
//     other side takes as replacing its session — and a stream the peer
//     opens replaces the page's own outbound session when it leaves a relay
//     or that session verified the peer over 2 s ago, as node/syncnet's
//     replacedBy; a replaced session steps no frame more, so nothing is
//     ingested twice), status (each session's address and transport), view, listen
//     (the space's gossipsub topic; envelopes checked and opened by the
//     core's Members), heard, signin and signinState (below), held.
//   - signin.ts: sign-in, the asking side. The protocol is node/signin's
//     Device run in the wasm core (core.Asker, wasm/core/signin.go): the
//     page makes a device key and a feed key, builds the join request
//     with a device name ("Chromium on Linux"), and this file drives it as
//     node/signin.go drives the daemon's: it subscribes to the space's
//     gossipsub topic, publishes the request the core seals (signed by the
//     new feed key, key kind 2 for an invite, 3 for the password), hands
//     the core every envelope of the topic (the core keeps those under
//     this request's key ID, through its own seen-set), and tries each
//     approval the core opened by replicating the space with the
//     keyring's secrets and the approving member's feed; the request is
//     approved once the page's view holds its own feed as a writer. A
//     used or expired invite, a wrong password (after node/signin's
//     RefusalGrace) and a denial end it with node/signin's reason, and the
//     page drops any state of the space. What the request reveals is what
//     a daemon's does (node/signin FORMAT.md): to the relay and every peer
//     on the topic, the topic (the space's discovery key), the page's new
//     feed key and when it asks; only holders of the invite or password
//     key read the request.
//
// It speaks the daemons' protocols unchanged: /mycel/sync/2.0.0/<prefix>
// with the same framing and schema, checked by interop tests against the
// real daemon and relay (node_browser_test.go). What it guarantees is what
// those protocols do: nothing is stored that does not verify (the core's
// feed ingest), a peer learns nothing about the space before its proof
// verifies, and a members' message is opened only if it is within ±5
// minutes of the page's clock, not seen before (the core's filter, in
// memory: it does not outlive the tab yet), sealed under an epoch key the
// page holds and signed by a writer in the view the core keeps.
// What it reveals: to the relay, the page's peer ID (kept across reloads
// when the page has a store: the relay and daemons can tell it is the same
// tab's profile), IP address, the daemons it opens circuits to, and the sizes and timing of what crosses
// them; to every peer it connects to, through identify and gossipsub, the
// sync protocol ID and the gossip topic of each space it replicates or
// listens to, both named by the space's discovery key (as for daemons:
// node/replication FORMAT.md, "What the opening does not hide").
//
// # Storage (src/node/store.ts, wasm/core/persist.go)
//
// The core's store stays in memory: feed.DB's storage interface is
// synchronous and IndexedDB is not. After each step of a session the page
// takes the core's records — each batch the step ingested, encoded as it
// was verified (signed head, runs, proofs) — and puts them in IndexedDB in
// one transaction, queued after the previous ones, so IndexedDB holds a
// prefix of what the core ingested; a tab closed between a step and its
// write loses only the newest batches, which the next session fetches
// again (what the page wrote itself is stored before it is offered: below).
// At start the page reads the records
// back in order, at most 200,000 and 512 MiB per space, and the core's
// Import ingests each through feed.Ingest: the signature and proofs are
// checked again, as for a peer's batch, so a damaged or edited record is
// refused and reported (start's restored[].refused and reasons), not
// shown; its entries are fetched again by replication. The view is rebuilt
// from what imported, before any network.
//
// A refused record is then moved to the store's "quarantine" (one
// transaction: added there with its reason, deleted from the records;
// restored[].quarantined counts them): it is not refused again at each
// start, and compaction never drops it. The page keeps it rather than
// delete it, whatever its feed: a record of the page's own feed may be the
// only copy of its own writes, and nothing tells a damaged own record from
// one a peer could send again. Nothing reads the quarantine back yet.
//
// Compaction: once a space holds more than compactAt records (64, counted
// at start and at each write; start's compactAt option sets it), the core's
// Compact returns per feed the entries it holds with one proof up to the
// feed's latest signed head (feed.Feed.Batch, as for a peer: one record
// per 8 MiB of entries), version 1 records like any other, verified the
// same way at start; in ONE readwrite transaction, queued after every
// write before it, the page deletes every record of the space and adds
// those. IndexedDB commits a transaction whole or not at all, so a tab
// closed or a transaction aborted mid-compaction leaves the old records,
// never neither. A space read back only in part (a bound reached) or whose
// refused records could not be moved aside is not compacted: the core does
// not hold all its records. The threshold is a count, not bytes: a start
// costs per record (a read, a decode, a signature and proofs checked),
// while compaction saves only the repeated heads and proofs. Start reports
// restored[].compacted ({before, after}) and compactMs.
//
// Keys: a non-extractable AES-GCM-256 WebCrypto key kept in IndexedDB
// seals the member's epoch secrets with, once a member, the seed of its
// feed key and its device key (bound to the space's ID), and the page's
// libp2p identity key (the page keeps its peer ID across reloads).
// Neither can be a non-extractable WebCrypto key itself: the core derives
// keys from the epoch secrets in Go, and js-libp2p signs noise handshakes
// with the raw Ed25519 key. What this guards: page scripts can use the
// wrapping key but not export it, and a reader of IndexedDB's values sees
// only sealed bytes. What it does not: the browser keeps the wrapping key's
// material in the profile, so whoever holds the profile's files and runs
// the page's origin opens them. Records themselves are not sealed: they
// are the batches peers send, entries sealed under the space's epoch keys
// (node/space FORMAT.md), with signed heads and feed keys in the clear.
//
// With a kept peer ID, a daemon that still runs a session with the tab that
// went away takes the reloaded page's new stream as replacing it
// (node/syncnet Replicator.handle: a stream from the peer replaces an
// outbound session that verified the peer more than 2 s before, and any
// inbound one). The page also stops its host on pagehide, so that the
// daemon sees its connections close.
//
// The page gets a member's epoch secrets by signing in (signin.ts), or
// from its caller (replicate's secrets: the older tests read them from a
// daemon's data directory); it proves them to open replication, stores
// what it receives in the core's in-memory store. Nothing of a sign-in in
// progress is stored: a page that reloads asks again; once signed in, the
// space, its secrets and the page's own keys are kept (Storage).
// Gossipsub does not run over the relay's limited circuits: the page
// reaches the space's topic over a direct connection to a daemon, or
// through the relay's router (relay/router.go), which routes the topics
// of the spaces it mirrors.
//
// # The page as a member (wasm/core/member.go, src/node/main.ts)
//
// Once the page holds a member's keys and its own feed key — approved
// (signin.ts hands main.ts the request's feed seed and device key), or
// given them (replicate's writer, for tests) — the core's Node.Member opens
// node/space's Space over the page's feeds: the code the daemon writes and
// reads with. The view, the feeds replicated (origin, own, every writer
// the view names) and every rule are the Space's; the page adds none. Its
// sessions prove the epochs the Space holds (a rotation sealed to the
// page's device key included) with its feed key signing the binding, and
// admit a peer by Space.Admits, as a daemon's do.
//
// Writes: put(space, key, value) and del(space, key) (exported by
// src/node/main.ts and on mycelNode) append one entry each to the page's
// own feed, sealed under the epoch the Space picks, with its HLC and
// causal delta. The core hands the page the append as a record, as it
// hands an ingested batch; the page commits it to IndexedDB (after the
// records queued before it) and only then calls Announce, which makes
// every open session offer the new head to its peer; put resolves after
// that. So a tab closed before the commit offered the entry to nobody,
// and after a reload the records rebuild the feed and the Space continues
// it at the next index: the feed never forks. Between the append and the
// commit no session steps the core (sync.ts waits on the write's gate
// before a start, a peer's frame or a flush), so no peer is offered the
// entry early either, not even as the head of a batch it asked for. A
// commit that fails stops the space's writes and sessions until a reload
// (the entry is in the core only). No test plays that window yet.
// Writes of one space run one after another. list, devices and onChange
// (called after each step that changed the view, and after each write)
// read the Space's view; a device is online when the page heard its
// presence within the last minute (itself always).
//
// Presence, messages and the mailbox (src/node/main.ts, src/node/mailbox.ts,
// wasm/core/messages.go and mailbox.go): a member page announces its
// presence on the space's topic at once and every 10 s as a daemon does
// (the body names its device and its approver, sealed under the epoch it
// writes with, signed by its feed key), so the daemons' devices show it
// online until 30 s after the tab closed; send(space, topic, data, keep)
// seals an app message (key kind 4 with keep) the same way. At each relay
// it is connected to that speaks /mycel/mailbox/1.0.0 (seen at identify,
// then every 30 s) it fetches the space's mailbox as a writer (the
// request signed by its feed key over the relay's challenge and both peer
// IDs, relay/FORMAT.md "Mailbox"); the reply (bounded, fuzzed:
// core.DecodeMailboxReply) goes through the Filter's stored path, and the
// writers' kept app messages are heard once, stored, with their sender's
// time. The IDs of the kept messages delivered are kept in localStorage
// until a week after their time and handed back to the core after a
// reload: a relay that hands one again (another relay, or a relay that
// kept a late deposit of an envelope it had deleted) delivers nothing.
// What it reveals: to the relay, that this feed key fetches now (as a
// daemon's fetch does); the page's own messages reveal to the topic's
// peers what a daemon's do (node/EPHEMERAL.md). Not yet: sign-in
// envelopes from the mailbox (a member page hears requests live only),
// kept messages of a writer or an epoch the page learns after the fetch
// (refused, not held back as the daemon holds them), deposits (the page
// publishes a kept message on gossipsub; the relay's router keeps it).
//
// Approvals: the page hears other devices' join requests on the space's
// topic (listen's validator hands envelopes of a sign-in key kind to the
// core's SigninReceive instead of the members' receiver) and runs
// node/signin's Members, as a daemon does: a request under the space's
// password key (which the view holds) or under any member's invite (the
// invite's record is in the view) that verifies, signed by the feed it
// names, within the clock's window and not seen before, is kept for a
// person (requests, onRequest) and acknowledged; a wrong password is
// refused at Members' rate. approve(id, code) checks the code against the
// request's safety code, spends the invite, appends the add-writer op with
// the keyring sealed to the device's key (stored, then announced, as a
// put) and publishes the approval; deny publishes a denial. The new device
// then replicates the page's feed from the page or from any member that
// has it. What this reveals is what a daemon member's answers reveal
// (node/signin FORMAT.md): the answer's envelope, signed by the page's
// feed key, on the space's topic.
//
// The daemon's API server (package node/api) serves Dist at / behind a
// session cookie: see node/api/ui.go for the login link that makes one.
package webui
