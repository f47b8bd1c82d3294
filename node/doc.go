// Package node is the mycel daemon: the libp2p host, the spaces this device
// holds, their replication, discovery, and the backend of the local HTTP
// API (node/api) that the CLI and the web UI use.
//
// Protocol logic lives in sub-packages free of sockets, timers and badger,
// so that the browser node can run it compiled to WebAssembly: node/space
// (the multiwriter database), node/replication (the replication state
// machine), node/signin (both sides of sign-in) and node/messages (the
// bodies of members' ephemeral messages). This package is the I/O around
// them, in files named by concern:
//
//	node.go, lifecycle.go   the Node: New, Shutdown, Close; the owners of
//	                        its goroutines
//	conns.go                connections: mDNS, static peers, resync
//	relays.go               reservations on the circuit relays
//	                        (Config.Relays) and their circuit addresses
//	relays_space.go         the relays the spaces list: the list's entry
//	                        codec, the keepers started and released as
//	                        the lists change, the API (list, add, remove)
//	relays_mirror.go,       what the node hands its relays: mirror tokens;
//	relays_locators.go      invite locators (deposited, removed once spent,
//	                        looked up by join <code>) and aliases
//	config.go, limits.go    settings and every bound (Config, Limits)
//	datadir_*.go            the data directory: identity and device key,
//	                        key records kept outside the store, space
//	                        records, layout migration, check and repair
//	spaces*.go              open spaces: opening, serving to the
//	                        replicator, refreshing; leaving; learning a
//	                        removal; sharing keys after a rotation
//	api*.go                 the API adapter (api.Backend): keys and
//	                        spaces, sign-in, messages
//	signin*.go              the driver of node/signin; the password key's
//	                        renewal
//	messages.go, locate.go  the drivers of the ephemeral channel
//	                        (presence, app messages) and of locate
//	metrics.go              what the node counts, and the tracers
//
// # Data directory
//
//	node.key     libp2p identity (0600)
//	device.key   the device's HPKE key: keyrings are sealed to it, and the
//	             local keys it derives seal what spaces store at rest (0600)
//	store/       badger: a namespace per space ('S' ‖ space ID, then the
//	             space's own keys: its feeds 'f', its view 'v', its
//	             sealed keyring 'sk'; feed.Prefixed), a record per space
//	             ('ns' ‖ space ID: its local name, this device's feed key
//	             seed and, while it asks to join, its join request and
//	             request key, sealed under the device's local key of the
//	             space), the store's layout ('layout': "2"), the
//	             ephemeral seen-set ('eph/seen/')
//	keys/        a copy of the 'ns' and 'sk' records, one file each (0600,
//	             named by the store key in hex, written before the store's
//	             commit): the only records peers cannot give back
//	config.json  settings (see Config)
//	api.token, api.addr   the API's bearer token, and where it listens
//	store.damaged-<time>/  a damaged store set aside by mycel repair
//	repair.pending  a repair not finished: New refuses to start
//
// # A damaged store
//
// badgerstore.Open checks the store's files before badger may change them
// (feed/badgerstore: the record of the last clean close, the MANIFEST,
// every table's checksums, the logs read to their end); damage makes New
// fail with ErrStoreDamaged, a message naming the data directory, the
// damage and mycel repair, and nothing changed on disk. Repair sets the
// store aside, opens a fresh one with the records of keys/ (syncKeys) and
// replicates every space from the static peers with the feeds opened
// feed.WithoutAppends, until every approved space has a peer session and
// nothing is left to fetch; repair.pending, written before the store is
// moved and removed last, keeps the daemon from starting (and appending to
// its own feeds, which would fork them) before that. CheckStore verifies a
// stopped daemon's store: the files, every feed against its signed head
// (feed.Feed.Verify), and every view against one rebuilt from the feeds.
// Close closes the feeds before the store, so that their writers' heads are
// stored and a restart is not taken for a crash.
//
// # Spaces and replication
//
// Spaces stay apart: each has its own feed.DB over its namespace, and a
// session of a space serves, fetches and accepts only that space's feeds
// (space.Space.Feeds: the writers whose adds count and their causal past),
// from that namespace — never a feed of another space, even one an
// add-writer op names. A store of the previous layout (every space's feeds
// in one DB at the top of the store) is moved into namespaces when the
// node opens it (datadir_migrate.go), keeping each space's own feed; a feed one
// space only named, that belongs to another, is not copied into it.
//
// Leaving a space (LeaveSpace, spaces_leave.go) writes this device's removal of
// itself when it is a writer, waits up to 10 s for a session to serve it
// to a peer (and says so when none did), stops the space's goroutines and
// deletes its namespace and record; the record is marked first, so a leave
// cut short finishes at the next open. Leaving a space the device asked to
// join gives up the request.
//
// Each space the device created, or asked to join, has its own feed key.
// A space is replicated (syncnet.Replicator.Serve) once the device holds
// its keys: created here, or approved by a member over the ephemeral
// channel (Join, Approve: signin.go driving node/signin, its FORMAT.md) — the one way
// a device joins. Until then the device has nothing to prove to peers.
//
// A session's opening proves the capabilities of the newest epochs this
// device holds, signed by its feed key; the space admits the newest
// epoch's from anyone and an older one only from a writer not removed
// (space.Space.Admits), and open sessions are checked again when a writer
// is removed or an epoch starts. Each
// ingested batch wakes the space's refresher, which applies the new
// entries to the view (one Refresh for however many batches arrived) and,
// when the space gained a feed (a writer was added), tells the replicator
// to announce and fetch it. Local writes are pushed to every session at
// once. Every 10 s the node reopens, with connected peers it opens sessions
// with, those that ended. A device that only tries an approval's keyring
// (space.Space.TryKeyring: an approval is a candidate until the device
// fetches its own add-writer entry with it, node/signin/FORMAT.md "Checking an
// approval") does not serve the space: it opens one session with each
// peer that serves it, once per candidate.
//
// A device approved concurrently with a rotation (typically a removal's)
// holds a keyring older than the new epoch, which no box seals to it: it
// can neither read that epoch nor write. After each refresh, and when the
// space opens, the refresher asks space.Space.ShareDue whether a writer
// that counts lacks the secret new entries are written with; the holder
// with the lowest feed key among the writers that hold it shares it at
// once (space.Space.ShareKeys: one rotation op per such writer, naming the
// same secret), each later-ranked holder only after 10 s per rank before
// it (at most 120 s) and if the gap is still there, in case the ones
// before it are offline (spaces_sharekeys.go). A removed device never gets a box.
//
// A removed device is refused by every peer, so it never replicates its
// removal: a member that hears it on the topic shows it the signed
// removal (spaces_removed.go, EPHEMERAL.md "Removal"), after which it stops
// serving the space, answering join requests and writing. A device that
// such a removed device approved before it was told is shown its
// approver's removal likewise; it then asks to join again (EPHEMERAL.md,
// "Approved by a removed device").
//
// # Goroutines and shutdown
//
// Every goroutine the node starts has an owner (lifecycle.go): an owner
// starts it (owner.start(func(ctx))), counts it until it returns, and
// refuses to start one, reporting false, once it is closed; the count and
// the closed flag are under one mutex, so nothing starts after a closer
// saw the count reach zero. Owners nest, a child's goroutines counting in
// its parent too and its context ending with the parent's:
//
//   - Node.life, the root, owns resync, keepConnected (one per static
//     peer), keepRelay (one per relay of Config.Relays), keepSpaceRelays
//     and the dials of peers mDNS found (HandlePeerFound, which
//     mDNS may call while and after the node closes: refused then);
//     each relay a space lists gets a child owner for its keepRelay,
//     closed when no list names the relay any longer (relays_space.go);
//   - Node.streams owns the API's streams (Watch, Listen): closing it ends
//     each with api.ErrClosed, the server's unavailable event;
//   - Node.calls counts API calls in flight (Node.call: put, delete,
//     remove, create, leave, send, get, list): a hold, not a goroutine,
//     whose context ends with the caller's or the node's;
//   - each open space's openSpace.life owns its refresher, its asker and
//     its ephemeral reader and announcer; leaving the space (dropSpace)
//     closes it and waits, and so does closing the node (closeSpaces).
//
// To add a goroutine: n.life.start (node-wide), m.life.start (per space),
// n.streams.start (an API stream), and n.call(ctx) around an API call
// that writes; check the result (false or api.ErrClosed: the node or the
// space is closing). Sign-in's API calls (invite, password, join, approve,
// deny) are calls too, and WatchRequests is a stream.
//
// Shutdown(ctx) drains: the API refuses new calls (api.ErrClosed) and no
// owner starts anything, mDNS and LocateProtocol stop, the streams end
// with their last event and are waited for, then the calls in flight;
// then replication stops, the goroutines are cancelled and waited for,
// and the node closes as Close does. If ctx ends first it returns ctx's
// error and leaves the node to Close. Close stops at once: it cancels
// everything (a leave waiting for a peer included: the copy is then
// deleted at the next start), waits for every goroutine, then closes the
// ephemeral Service, the spaces (flushing their views), the feeds (storing
// their heads), the store and the host. Close is idempotent. The daemon
// calls Shutdown with a 15 s bound on the first signal, then Close.
//
// # Ephemeral messages
//
// The node runs one gossipsub router (ephemeral/p2p.PubSubOptions) and one
// ephemeral/p2p Service, whose Filter keeps its seen-set in the store
// ('eph/seen/' keys, ephemeral/badgerseen). Every open space subscribes to
// its topic: before approval it carries the device's join request and the
// members' answers; once served, the space announces presence every 10 s,
// tracks who is online, and hands app messages to the API's listeners.
// A device holding only an invite's code asks its peers for the space over
// LocateProtocol. Envelopes are sealed with the
// epoch's ephemeral key and signed with the device's feed key; messages
// from anyone but a current writer are dropped. EPHEMERAL.md has the body
// format.
//
// # Limits and collaborators
//
// Config.Limits (limits.go) holds every bound, timeout and interval the
// node applies to peers and clients, each field's zero value meaning its
// documented default: the replicator's (syncnet.Config: timeouts, strikes,
// bans, the standing table), the ephemeral messages' (seen-set budgets,
// direct streams, gossipsub queues, listeners, presence), the API's
// (streams, body, keep-alive; the daemon passes them to api.NewServer)
// and the connections' (dial, backoff, resync, locate, leave), and
// sign-in's (node/signin.Limits). New takes options for its
// collaborators: WithClock (internal/clock; the replicator's standing and
// the ephemeral window, seen-set and presence run on it, so tests drive
// expiry by advancing a clock.Fake) and WithMetrics (a
// prometheus.Registerer and the Gatherer that Metrics returns; by default
// a registry of the node's own, with the Go runtime's and the process's
// collectors).
//
// # Metrics
//
// Beside libp2p's own, the node counts entries and bytes received from
// peers, entries received that it already held (a sync that fetches twice
// shows here), and ops written: mycel_sync_entries_received_total,
// mycel_sync_entry_bytes_received_total, mycel_sync_entries_duplicate_total,
// mycel_space_ops_written_total. The replicator and the ephemeral Service
// report through their Tracers (metrics.go):
// mycel_sync_strikes_total{kind="fault"|"proof"}, mycel_sync_bans_total,
// mycel_sync_drops_total{reason="banned"|"duplicate"|"stalled"},
// mycel_sync_standing_peers (peers whose strikes or ban are remembered),
// mycel_ephemeral_drops_total{reason="rejected"|"stale"|"duplicate"|
// "seen_full"|"busy"|"streams_full"} and mycel_ephemeral_seen_ids. No
// label carries a peer or a space.
package node
