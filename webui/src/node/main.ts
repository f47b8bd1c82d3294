// The browser node, first step (issue 14): a page that connects to a relay
// and to daemons with js-libp2p and replicates a space read-only with
// mycel's wire protocol, through the wasm core. Bundled by build.mjs into
// dist/node.js apart from the control panel's app.js. It sets
// globalThis.mycelNode, the calls the tests drive (webui/node_browser_test.go);
// the page's own UI for it comes later.
//
// The page holds a member's epoch secrets (from signing in, signin.ts, or
// handed to replicate by the caller), proves them to open replication,
// and stores what it receives in the core's in-memory store; started with
// a store name, it keeps that in IndexedDB too (store.ts) and starts from
// it after a reload: the spaces with their secrets and its own keys,
// every record verified again by the core, and its peer ID. Once a member
// with its own feed key (signed in, or given writer), it writes (put,
// del: appended by the core's node/space Space, stored, then announced)
// and answers other devices' join requests (requests, approve, deny).

import { TopicValidatorResult } from "@libp2p/gossipsub";
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { Core, CoreNode, CoreRequest, Members, Secret, loadCore } from "../wasmcore";
import { BrowserHost, createHost, dial } from "./net";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { Store } from "./store";
import { SignInOptions, signIn, signInState } from "./signin";
import { locateCode, resolveAlias } from "./locate";
import { Flusher, SessionStats, runSession } from "./sync";
import { exchange, mailboxProtocol } from "./mailbox";

function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(s)) throw new Error(`not hex: ${s}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// lessBytes compares like Go's string comparison of peer IDs: the lower
// ID opens a space's session (node/syncnet Replicator.opens).
function lessBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i];
  return a.length < b.length;
}

// PageSession is one running (or ended) session of a space with a peer.
interface PageSession {
  stats: SessionStats;
  outbound: boolean;
  stream: Stream;
  remote: string;
  addr: string;
  transport: string;
  relayed: boolean; // over a relay's circuit (or a connection libp2p limits)
  verifiedAt?: number; // performance.now() when the peer's proof verified
  fl: Flusher;
}

// relayedConn reports whether conn is a relayed connection, as
// node/syncnet's relayedConn: limited, or through a circuit.
function relayedConn(conn: Connection): boolean {
  return conn.limits !== undefined || conn.remoteAddr.toString().includes("/p2p-circuit");
}

// simultaneousOpenMs is node/syncnet's simultaneousOpenWindow: how long
// after its opening verified the peer an outbound session still takes a
// stream the peer opens for one opened at the same time.
const simultaneousOpenMs = 2000;

// replacedBy reports whether a stream the peer opened on conn, while this
// side's outbound session old runs, replaces old rather than being a
// duplicate of a simultaneous open (node/syncnet's replacedBy): it moves
// the session off a relayed connection, or old verified the peer long
// enough ago that the peer, which opens only when it has no session with
// this node, has lost its side of old.
function replacedBy(old: PageSession, conn: Connection): boolean {
  if (old.relayed && !relayedConn(conn)) return true;
  return old.verifiedAt !== undefined && performance.now() - old.verifiedAt >= simultaneousOpenMs;
}

interface SpaceState {
  id: Uint8Array;
  secrets: Secret[];
  node: CoreNode;
  feeds: string[];
  protocol: string;
  sessions: Map<string, PageSession>;
  members?: Members;
  heard: HeardMessage[]; // the newest maxHeard accepted
  refused: Record<string, number>; // refusals by reason
  writer?: Writer; // once a member: its own keys (the node is a member, wasm/core/member.go)
  watchers: Set<() => void>; // onChange's
  changed: number; // the node's change count the watchers were last told of
  writes: Promise<void>; // the page's writes, one after another
  writeFailed?: string; // a write's records were not stored: no more writes (its entry must not be offered)
  gate?: Promise<void>; // while a write is appended but not stored: the sessions wait (sync.ts Flusher.gate)
}

// Writer is a member's own keys in a space: the seed of its feed key and
// its device key (kept sealed in IndexedDB with the secrets).
interface Writer {
  seed: Uint8Array;
  device?: Uint8Array;
}

// HeardMessage is a members' message the page accepted.
interface HeardMessage {
  sender: string; // hex feed key
  time: number;
  kind: string;
  name: string;
  topic: string;
  data: string; // UTF-8 (for the tests; apps get bytes later)
  kept: boolean; // an app message its sender asked relays to keep (key kind 4)
  stored?: boolean; // a relay's mailbox handed it over (fetchMailbox), not heard live
}

// maxHeard bounds the messages kept for status.
const maxHeard = 256;
// maxReasons bounds the distinct refusal reasons counted.
const maxReasons = 32;

let core: Core | undefined;
let host: BrowserHost | undefined;
let moving = false; // moveDirect listens to the host's new connections
let store: Store | undefined; // the page's IndexedDB, when start was given one
let dropped = 0; // records the core's queue dropped before they were stored
const spaces = new Map<string, SpaceState>();

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`${what}: call start first`);
  return v;
}

// transportOf names the transport of a connection by its address.
function transportOf(conn: Connection): string {
  const a = conn.remoteAddr.toString();
  if (/\/webrtc(\/|$)/.test(a)) return "webrtc"; // page to page, signalled through a circuit
  if (a.includes("/p2p-circuit")) return "circuit";
  if (a.includes("/webtransport")) return "webtransport";
  if (a.includes("/webrtc-direct")) return "webrtc-direct";
  if (a.includes("/ws")) return "websocket";
  return "other";
}

export interface StartOptions {
  wasm: string;
  wasmExec?: string;
  store?: string; // keep what the page holds in IndexedDB under this name, and start from it (store.ts)
  // listen: the host's listen addresses, e.g. [relay + "/p2p-circuit", "/webrtc"]
  // to be reached by other pages over WebRTC through that relay.
  listen?: string[];
  compactAt?: number; // records of a space past which they are compacted (store.ts; default compactAt)
}

// Restored is what start read back of one space from IndexedDB.
interface Restored {
  space: string;
  records: number; // records read back
  imported: number; // records the core verified and stored
  refused: number; // records the core refused (damaged or edited)
  reasons: string[]; // the first few refusals' reasons
  truncated: boolean; // reading stopped at store.ts's bounds
  ms: number;
  quarantined?: number; // refused records moved to the quarantine (store.ts)
  compacted?: { before: number; after: number }; // records replaced at start, and by how many
  compactMs?: number;
}

// start loads the core and the libp2p host. With a store, it first reads
// the spaces and records kept in IndexedDB back into the core, which
// verifies each record again: the page holds its data and its view before
// any network.
async function start(o: StartOptions): Promise<{ peerId: string; loadMs: number; restored: Restored[]; refusedSpaces: Record<string, string> }> {
  const t0 = performance.now();
  core ??= await loadCore(o.wasm, o.wasmExec);
  const restored: Restored[] = [];
  let refusedSpaces: Record<string, string> = {};
  if (o.store !== undefined && store === undefined) {
    store = await Store.open(o.store);
    if (o.compactAt !== undefined) store.compactAt = o.compactAt;
    const saved = await store.spaces();
    refusedSpaces = saved.refused;
    for (const ss of saved.spaces) {
      const ts = performance.now();
      const feeds = [...ss.feeds];
      if (ss.writer !== undefined) {
        // The page's own feed is read back like any other (before the
        // Space continues it: a feed that did not read back whole would fork).
        const own = toHex(need(core, "start").publicKey(ss.writer.seed));
        if (!feeds.includes(own)) feeds.push(own);
      }
      const sp = newSpaceState(ss.space, ss.secrets, feeds);
      const r: Restored = { space: ss.space, records: 0, imported: 0, refused: 0, reasons: [], truncated: false, ms: 0 };
      const refusedKeys: { key: IDBValidKey; reason: string }[] = [];
      const rd = await store.records(ss.space, (rec, key) => {
        try {
          sp.node.import(rec);
          r.imported++;
        } catch (e) {
          r.refused++;
          if (r.reasons.length < 8) r.reasons.push((e as Error).message.slice(0, 200));
          refusedKeys.push({ key, reason: (e as Error).message.slice(0, 200) });
        }
      });
      r.records = rd.read;
      r.truncated = rd.truncated;
      if (ss.writer !== undefined) {
        try {
          becomeMember(sp, ss.writer);
        } catch (e) {
          r.reasons.push(`member: ${(e as Error).message.slice(0, 200)}`);
        }
      }
      sp.node.viewSummary(sp.id, sp.secrets);
      r.ms = performance.now() - ts;
      // Refused records move aside (kept, reported: store.ts); then the
      // space's records are compacted once past the store's threshold.
      let aside = refusedKeys.length === 0;
      if (!aside) {
        try {
          await store.quarantine(ss.space, refusedKeys);
          r.quarantined = refusedKeys.length;
          aside = true;
        } catch (e) {
          r.reasons.push(`quarantine: ${(e as Error).message.slice(0, 200)}`);
        }
      }
      if (rd.truncated || !aside) store.noCompaction(ss.space);
      else {
        const tc = performance.now();
        try {
          r.compacted = await store.compactWith(ss.space, rd.read - refusedKeys.length, () => sp.node.compact());
          if (r.compacted !== undefined) r.compactMs = performance.now() - tc;
        } catch (e) {
          r.reasons.push(`compaction: ${(e as Error).message.slice(0, 200)}`);
        }
      }
      restored.push(r);
    }
  }
  if (host === undefined && store !== undefined) {
    // The page keeps its peer ID across reloads (store.ts says how the key is kept).
    const kept = await store.identity();
    const privateKey = kept !== undefined ? privateKeyFromProtobuf(kept) : await generateKeyPair("Ed25519");
    if (kept === undefined) await store.setIdentity(privateKeyToProtobuf(privateKey));
    host = await createHost({ privateKey, listen: o.listen });
  }
  if (host === undefined) host = await createHost({ listen: o.listen });
  if (!moving) {
    moving = true;
    host.addEventListener("connection:open", (e) => void moveDirect(e.detail));
  }
  for (const sp of spaces.values()) if (sp.writer !== undefined) listen(toHex(sp.id));
  return { peerId: host.peerId.toString(), loadMs: performance.now() - t0, restored, refusedSpaces };
}

// compact compacts space's records now (store.ts), whatever their number;
// it resolves with the records before and after.
async function compact(space: string): Promise<{ before: number; after: number }> {
  if (store === undefined) throw new Error("compact: no store");
  return store.compact(space);
}

// persisted reports the page's IndexedDB writes; it resolves once every
// write queued so far is committed.
async function persisted(): Promise<{ written: number; pending: number; dropped: number; error?: string; compactions: number }> {
  const st = need(store, "persisted");
  await st.flush();
  return { written: st.written, pending: st.pending, dropped, error: st.error, compactions: st.compactions };
}

// connect dials addr and waits for identify to list the peer's protocols:
// the connection carried a stream both ways.
async function connect(addr: string, timeoutMs = 15000): Promise<{ transport: string; remoteAddr: string; protocols: string[]; ms: number }> {
  const h = need(host, "connect");
  const t0 = performance.now();
  const conn = await dial(h, multiaddr(addr), timeoutMs);
  const ms = performance.now() - t0;
  let protocols: string[] = [];
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    try {
      protocols = (await h.peerStore.get(conn.remotePeer)).protocols;
    } catch {
      // not in the peer store yet
    }
    if (protocols.length > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { transport: transportOf(conn), remoteAddr: conn.remoteAddr.toString(), protocols, ms };
}

// addrs lists the host's own addresses (a circuit and /webrtc address once
// it holds a reservation on a relay it listens through).
function addrs(): string[] {
  return need(host, "addrs").getMultiaddrs().map((a) => a.toString());
}

// connections lists the host's open connections: the peer, the address,
// the transport and whether the connection is limited (a relayed circuit).
function connections(): { remote: string; remoteAddr: string; transport: string; limited: boolean; status: string }[] {
  return need(host, "connections")
    .getConnections()
    .map((c) => ({ remote: c.remotePeer.toString(), remoteAddr: c.remoteAddr.toString(), transport: transportOf(c), limited: c.limits !== undefined, status: c.status }));
}

async function hangUp(addr: string): Promise<void> {
  await need(host, "hangUp").hangUp(multiaddr(addr));
}

export interface ReplicateOptions {
  addr: string; // the daemon's multiaddr, /p2p/<id> included (a circuit through a relay or direct)
  space: string; // hex
  secrets?: { epoch: number; secret: string }[]; // hex: a member's epoch secrets (kept from before for a space restored)
  feeds?: string[]; // hex: the feeds to replicate (likewise)
  writer?: string; // hex: the ed25519 seed of the page's own feed key, a writer of the space (a test hands it one it added)
  timeoutMs?: number; // bounds the dial and the stream's opening, each (default 15 s)
}

function newSpaceState(space: string, secrets: Secret[], feeds: string[]): SpaceState {
  const c = need(core, "replicate");
  const id = fromHex(space);
  const sp: SpaceState = {
    id,
    secrets,
    node: c.newNode(feeds.map(fromHex)),
    feeds,
    protocol: c.syncProtocol(id),
    sessions: new Map(),
    heard: [],
    refused: {},
    watchers: new Set(),
    changed: 0,
    writes: Promise.resolve(),
  };
  spaces.set(space, sp);
  return sp;
}

async function spaceState(o: ReplicateOptions): Promise<SpaceState> {
  let sp = spaces.get(o.space);
  if (sp === undefined) {
    if (o.secrets === undefined || o.feeds === undefined) throw new Error(`space ${o.space}: not held here; give its secrets and feeds`);
    sp = newSpaceState(
      o.space,
      o.secrets.map((s) => ({ epoch: s.epoch, secret: fromHex(s.secret) })),
      o.feeds,
    );
    // Start the view the core keeps: each batch a session ingests is
    // applied as it arrives, so the view is complete when the sync is.
    sp.node.viewSummary(sp.id, sp.secrets);
    if (o.writer !== undefined) becomeMember(sp, { seed: fromHex(o.writer) });
    await saveSpace(sp);
  }
  return sp;
}

async function saveSpace(sp: SpaceState): Promise<void> {
  await store?.saveSpace({ space: toHex(sp.id), feeds: sp.feeds, secrets: sp.secrets, writer: sp.writer });
}

// becomeMember makes the space's node a member writing with w (the
// core's node/space Space): its feeds are the Space's from then on.
function becomeMember(sp: SpaceState, w: Writer): void {
  sp.node.member({ space: sp.id, seed: w.seed, device: w.device, secrets: sp.secrets }, Date.now());
  sp.writer = w;
  sp.feeds = sp.node.feeds().map(toHex);
}

// changed tells the space's watchers when its view changed, and keeps the
// list of feeds stored current (a new writer's feed is read back after a
// reload only if it is listed).
function changed(sp: SpaceState): void {
  const c = sp.node.changed();
  if (c === sp.changed) return;
  sp.changed = c;
  if (sp.writer !== undefined) {
    const fs = sp.node.feeds().map(toHex);
    if (fs.length !== sp.feeds.length || fs.some((f) => !sp.feeds.includes(f))) {
      sp.feeds = fs;
      void saveSpace(sp);
    }
  }
  for (const cb of sp.watchers) {
    try {
      cb();
    } catch {
      // a watcher's failure is its own
    }
  }
}

// serve runs a session of sp on stream, replacing one with the same peer
// as node/syncnet does: of two streams opened at once, the lower peer ID's
// wins; a stream the peer opens replaces this side's outbound session when
// it moves the session off a relay, or when that session verified the peer
// over 2 s ago (replacedBy). An outbound stream always replaces the
// session (the page opened it to move the session: moveDirect).
function serve(sp: SpaceState, stream: Stream, conn: Connection, outbound: boolean): boolean {
  const h = need(host, "serve");
  if (sp.writeFailed !== undefined) {
    // The core holds an entry of the page's feed that IndexedDB does not:
    // no session may offer it (write).
    stream.abort(new Error("sync: the page could not store its write; reload it"));
    return false;
  }
  const remote = conn.remotePeer;
  const key = remote.toString();
  const old = sp.sessions.get(key);
  const weOpen = lessBytes(h.peerId.toMultihash().bytes, remote.toMultihash().bytes);
  if (old !== undefined && !old.stats.ended) {
    if (!outbound && old.outbound && weOpen && !replacedBy(old, conn)) {
      stream.abort(new Error("sync: duplicate session"));
      return false;
    }
    // Its frames not stepped yet are not: the new session asks for what
    // the core does not hold, and nothing is ingested twice.
    old.fl.stop = "sync: superseded";
    old.stream.abort(new Error("sync: superseded"));
  }
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const s = sp.node.session({
    localID: h.peerId.toMultihash().bytes,
    remoteID: remote.toMultihash().bytes,
    nonce,
    space: sp.id,
    secrets: sp.secrets,
  });
  const stats: SessionStats = { framesIn: 0, framesOut: 0, bytesIn: 0, lastFrameMs: 0, stepMs: 0, ended: false };
  const fl: Flusher = { gate: () => sp.gate };
  const rec: PageSession = { stats, outbound, stream, remote: key, addr: conn.remoteAddr.toString(), transport: transportOf(conn), relayed: relayedConn(conn), fl };
  sp.sessions.set(key, rec);
  {
    // The core takes frames of up to 4 KiB until the peer's proof
    // verified: the first step after which it takes more is when.
    const step = s.step.bind(s);
    s.step = (frame: Uint8Array) => {
      const out = step(frame);
      if (rec.verifiedAt === undefined && s.maxFrame() > 4096) rec.verifiedAt = performance.now();
      return out;
    };
  }
  // What one session ingests, the others announce to their peers (the
  // core marks its feeds grown in every session of the node): a page
  // passes on what it gets, to another page over WebRTC too.
  {
    const step = s.step.bind(s);
    s.step = (frame: Uint8Array) => {
      const out = step(frame);
      for (const o of sp.sessions.values()) if (o.fl !== fl) o.fl.flush?.();
      return out;
    };
  }
  const st = store;
  if (st !== undefined) {
    // After each step, the batches it ingested go to IndexedDB, in order.
    const step = s.step.bind(s);
    s.step = (frame: Uint8Array) => {
      const out = step(frame);
      const t = sp.node.takeRecords();
      dropped += t.dropped;
      void st.compactWith(toHex(sp.id), 0, () => sp.node.compact()); // a space new to the store: compacted past the threshold
      void st.append(toHex(sp.id), t.records);
      return out;
    };
  }
  {
    const step = s.step.bind(s);
    s.step = (frame: Uint8Array) => {
      const out = step(frame);
      changed(sp);
      return out;
    };
  }
  void runSession(stream, s, stats, fl);
  return true;
}

// moveDirect moves the page's sessions with conn's peer that run over a
// relay onto conn, a direct connection that just opened, when the page
// opens (it has the lower peer ID), as node/syncnet's moveDirect: the page
// opens a stream on conn and serve replaces the relayed session with it;
// the peer takes a stream from the lower ID as superseding its session.
// When the peer opens, it moves the session itself, and serve takes its
// stream (replacedBy).
async function moveDirect(conn: Connection): Promise<void> {
  const h = host;
  if (h === undefined || relayedConn(conn)) return;
  if (!lessBytes(h.peerId.toMultihash().bytes, conn.remotePeer.toMultihash().bytes)) return;
  const key = conn.remotePeer.toString();
  for (const sp of spaces.values()) {
    const old = sp.sessions.get(key);
    if (old === undefined || old.stats.ended || !old.relayed) continue;
    let stream: Stream;
    try {
      stream = await conn.newStream(sp.protocol, { signal: AbortSignal.timeout(15000) });
    } catch {
      continue; // the session stays relayed
    }
    // The peer may already have ended old, taking this stream as
    // superseding it: only another session started meanwhile wins.
    if (spaces.get(toHex(sp.id)) !== sp || sp.sessions.get(key) !== old) {
      stream.abort(new Error("sync: the session moved meanwhile"));
      continue;
    }
    serve(sp, stream, conn, true);
  }
}

// replicate opens (or waits for) a session of the space with the daemon at
// addr. It resolves once the session's stream is open; the session goes
// on (status reports it).
async function replicate(o: ReplicateOptions): Promise<{ protocol: string; outbound: boolean; transport: string }> {
  const h = need(host, "replicate");
  const sp = await spaceState(o);
  // Serve the daemon's own opening too: it opens when its peer ID is the
  // lower one, over a relayed connection as well.
  if (!h.getProtocols().includes(sp.protocol)) {
    // The space's state is looked up per stream: sign-in replaces it
    // when it tries another keyring (drop).
    await h.handle(
      sp.protocol,
      (stream, conn) => {
        const cur = spaces.get(o.space);
        if (cur === undefined) stream.abort(new Error("sync: space not replicated here"));
        else serve(cur, stream, conn, false);
      },
      { runOnLimitedConnection: true },
    );
  }
  const ma = multiaddr(o.addr);
  const timeoutMs = o.timeoutMs ?? 15000;
  const conn = await dial(h, ma, timeoutMs);
  const remote: PeerId = conn.remotePeer;
  const key = remote.toString();
  const weOpen = lessBytes(h.peerId.toMultihash().bytes, remote.toMultihash().bytes);
  if (!weOpen) {
    // The daemon opens; give it a moment (it learns of our protocol by
    // identify), then open ourselves: a second opening replaces nothing
    // that runs, and one of the two wins.
    for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
      const cur = sp.sessions.get(key);
      if (cur !== undefined && !cur.stats.ended) return { protocol: sp.protocol, outbound: false, transport: transportOf(conn) };
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const stream = await conn.newStream(sp.protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(timeoutMs) });
  serve(sp, stream, conn, true);
  return { protocol: sp.protocol, outbound: true, transport: transportOf(conn) };
}

// status reports, for each feed of the space, the length of the head the
// page holds and how many entries it holds, and its sessions.
function status(space: string): { lengths: Record<string, number>; held: Record<string, number>; sessions: (SessionStats & { remote: string; addr: string; transport: string; relayed: boolean; outbound: boolean })[] } {
  const sp = spaces.get(space);
  if (sp === undefined) throw new Error(`space ${space}: not replicated here`);
  const lengths: Record<string, number> = {};
  const held: Record<string, number> = {};
  for (const f of sp.node.feeds().map(toHex)) {
    lengths[f] = sp.node.length(fromHex(f));
    held[f] = sp.node.held(fromHex(f));
  }
  const sessions = [...sp.sessions.values()].map((s) => ({ ...s.stats, remote: s.remote, addr: s.addr, transport: s.transport, relayed: s.relayed, outbound: s.outbound }));
  return { lengths, held, sessions };
}

// view returns the digest and counts of the space's view, which the core
// keeps up to date as sessions ingest.
function view(space: string): { digest: string; keys: number; writers: number; invalid: number; waiting: number; ms: number } {
  const sp = spaces.get(space);
  if (sp === undefined) throw new Error(`space ${space}: not replicated here`);
  const t0 = performance.now();
  const v = sp.node.viewSummary(sp.id, sp.secrets);
  return {
    digest: toHex(v.digest),
    keys: v.keys,
    writers: v.writers,
    invalid: v.invalid,
    waiting: v.waiting,
    ms: performance.now() - t0,
  };
}

// listen subscribes to the space's gossipsub topic and opens the members'
// messages that arrive with the wasm core (node/EPHEMERAL.md); a sender
// must be a writer in the view the core keeps (started here if view was
// not called). Messages that do not open are neither delivered nor
// forwarded.
function listen(space: string): { topic: string; writers: number } {
  const h = need(host, "listen");
  const sp = spaces.get(space);
  if (sp === undefined) throw new Error(`space ${space}: not replicated here`);
  const v = sp.node.viewSummary(sp.id, sp.secrets);
  if (sp.members === undefined) {
    const m = sp.node.members(sp.id, sp.secrets, loadSeen(space));
    sp.members = m;
    const topic = m.topic();
    h.services.pubsub.topicValidators.set(topic, (peer, msg) => onTopic(sp, m, topic, peer.toString(), msg.data));
    h.services.pubsub.subscribe(topic);
  }
  if (sp.writer !== undefined && !announcers.has(space)) {
    const m = sp.members;
    const announce = () => {
      try {
        void publishMembers(m.presence(Date.now()), m.topic()).catch(() => {});
      } catch {
        // not a member (any more): nothing to announce
      }
    };
    const fetchNow = () => void fetchMailboxes(sp, m);
    announcers.set(space, [setInterval(announce, announceIntervalMs), setInterval(fetchNow, mailboxEveryMs)]);
    announce();
    fetchNow();
    watchIdentify(h);
  }
  return { topic: sp.members.topic(), writers: v.writers };
}

// A member announces its presence on the space's topic at once and every
// announceIntervalMs, as a daemon does (ephemeral.AnnounceInterval): the
// daemons show the page's device online until ephemeral.OnlineFor (30 s)
// after the last, so a closed tab goes offline as a daemon gone away.
const announceIntervalMs = 10_000;
const announcers = new Map<string, ReturnType<typeof setInterval>[]>();

// A member fetches its space's mailbox at each relay it is connected to
// (a peer that speaks /mycel/mailbox/1.0.0) when it connects and every
// mailboxEveryMs, as a daemon does (node/relays_mailbox.go): the kept app
// messages sent while the tab was closed go through the core's stored
// path (Filter.DeliverStored) into heard, once, with their sender's time.
// At most mailboxRounds fetches in a row while the relay says it holds
// more.
const mailboxEveryMs = 30_000;
const mailboxRounds = 8;
const fetching = new Set<string>(); // space/peer of the fetches running
let identifyWatched = false;

// watchIdentify fetches the mailboxes of the member spaces from a peer
// newly identified as a relay with a mailbox.
function watchIdentify(h: BrowserHost): void {
  if (identifyWatched) return;
  identifyWatched = true;
  h.addEventListener("peer:identify", (evt) => {
    if (!evt.detail.protocols.includes(mailboxProtocol)) return;
    for (const sp of spaces.values()) {
      if (sp.writer !== undefined && sp.members !== undefined) void fetchMailbox(sp, sp.members, evt.detail.connection).catch(() => {});
    }
  });
}

async function fetchMailboxes(sp: SpaceState, m: Members): Promise<void> {
  const h = need(host, "mailbox");
  for (const c of h.getConnections()) {
    if (c.status !== "open") continue;
    const p = await h.peerStore.get(c.remotePeer).catch(() => undefined);
    if (p === undefined || !p.protocols.includes(mailboxProtocol)) continue;
    await fetchMailbox(sp, m, c).catch(() => {});
  }
}

// fetchMailbox fetches the space's mailbox over conn; what the relay
// handed over is heard as stored.
async function fetchMailbox(sp: SpaceState, m: Members, conn: Connection): Promise<void> {
  const key = `${toHex(sp.id)}/${conn.remotePeer.toString()}`;
  if (fetching.has(key) || sp.members !== m) return;
  fetching.add(key);
  try {
    const self = need(host, "mailbox").peerId.toMultihash().bytes;
    const relay = conn.remotePeer.toMultihash().bytes;
    for (let i = 0; i < mailboxRounds && sp.members === m; i++) {
      const reply = await exchange(conn, (hello) => m.mailboxFetch(hello, relay, self));
      if (sp.members !== m) return; // dropped meanwhile: m is freed
      const r = m.stored(reply, Date.now());
      for (const o of r.messages) {
        sp.heard.push({ sender: toHex(o.sender), time: o.time, kind: o.kind, name: o.name, topic: o.topic, data: dec.decode(o.data), kept: o.kept, stored: true });
        if (sp.heard.length > maxHeard) sp.heard.shift();
      }
      keepSeen(toHex(sp.id), m);
      mailboxStats.fetches++;
      mailboxStats.delivered += r.messages.length;
      mailboxStats.refused += r.refused;
      if (!r.more) return;
    }
  } catch (e) {
    mailboxStats.errors++;
    mailboxStats.lastError = (e as Error).message.slice(0, 200);
    throw e;
  } finally {
    fetching.delete(key);
  }
}

// The IDs of the kept messages delivered (the core's seen entries, held
// until a week after their time) are kept in localStorage per space, at
// most maxSeen, so that a reloaded page is not handed the same message
// again by another relay, or by one that kept it anew.
const maxSeen = 8192;
const seenKey = (space: string) => `mycel/kept-seen/${space}`;

function loadSeen(space: string): Uint8Array[] {
  try {
    const raw = JSON.parse(localStorage.getItem(seenKey(space)) ?? "[]") as { e: string; x: number }[];
    return raw.filter((r) => r.x > Date.now()).slice(-maxSeen).map((r) => fromHex(r.e));
  } catch {
    return [];
  }
}

function keepSeen(space: string, m: Members): void {
  const add = m.takeSeen();
  if (add.length === 0) return;
  try {
    const raw = JSON.parse(localStorage.getItem(seenKey(space)) ?? "[]") as { e: string; x: number }[];
    const now = Date.now();
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (const e of add) raw.push({ e: toHex(e), x: Number(dv(e).getBigUint64(16)) });
    localStorage.setItem(seenKey(space), JSON.stringify(raw.filter((r) => r.x > now).slice(-maxSeen)));
  } catch {
    // no storage: a reloaded page may show a kept message once more
  }
}

const mailboxStats = { fetches: 0, delivered: 0, refused: 0, errors: 0, lastError: "" };

// mailbox reports the page's mailbox fetches (tests).
function mailbox(): typeof mailboxStats {
  return mailboxStats;
}

// publishMembers publishes a members' envelope on topic; with no peer
// subscribed yet there is no one to tell, and that is no error (the next
// announcement tells them).
async function publishMembers(envelope: Uint8Array | undefined, topic: string): Promise<number> {
  if (envelope === undefined) return 0;
  try {
    return (await need(host, "publish").services.pubsub.publish(topic, envelope)).recipients.length;
  } catch (e) {
    if (/NoPeersSubscribedToTopic/.test((e as Error).message)) return 0;
    throw e;
  }
}

// send seals an app message of the page's device (a member's) and
// publishes it on the space's topic (node/EPHEMERAL.md): kind 1, or kind 4
// when keep asks the relays' mailboxes to keep it for members away. It
// resolves with how many peers gossipsub handed it to.
export async function send(space: string, topic: string, data: Uint8Array, keep = false): Promise<{ recipients: number }> {
  const sp = memberSpace(space);
  const t = listen(space).topic;
  const e = need(sp.members, "send").send(topic, data, keep, Date.now());
  return { recipients: await publishMembers(e, t) };
}

// sendText is send for the tests (text data).
function sendText(space: string, topic: string, text: string, keep?: boolean): Promise<{ recipients: number }> {
  return send(space, topic, new TextEncoder().encode(text), keep);
}

const dec = new TextDecoder();

// onTopic decides on an envelope of the space's topic (gossipsub's
// validator): a sign-in envelope goes to the member side, a members'
// message is opened by the core; what does not open is counted by reason
// and goes no further.
function onTopic(sp: SpaceState, m: Members, topic: string, from: string, data: Uint8Array): TopicValidatorResult {
  if (signinEnvelope(sp, topic, from, data)) return TopicValidatorResult.Ignore;
  try {
    const o = m.open(data, Date.now());
    sp.heard.push({ sender: toHex(o.sender), time: o.time, kind: o.kind, name: o.name, topic: o.topic, data: dec.decode(o.data), kept: o.kept });
    if (sp.heard.length > maxHeard) sp.heard.shift();
    if (o.kept) keepSeen(toHex(sp.id), m);
    return TopicValidatorResult.Accept;
  } catch (e) {
    const reason = (e as Error).message.slice(0, 120);
    if (reason in sp.refused || Object.keys(sp.refused).length < maxReasons) sp.refused[reason] = (sp.refused[reason] ?? 0) + 1;
    return TopicValidatorResult.Ignore;
  }
}

// signinEnvelope hands an envelope of the space's topic to the member
// side if the page is a member and it is of a sign-in key kind (another
// device's request): it publishes the answers the core asks for and tells
// onRequest's watchers of a request newly kept. It reports whether the
// envelope was a sign-in one (not a members' message).
function signinEnvelope(sp: SpaceState, topic: string, from: string, data: Uint8Array): boolean {
  if (sp.writer === undefined) return false;
  const h = need(host, "listen");
  let r: ReturnType<CoreNode["signinReceive"]>;
  try {
    r = sp.node.signinReceive(data, Date.now(), from);
  } catch (e) {
    r = { handled: true, publish: [], shown: null, error: (e as Error).message };
  }
  if (!r.handled) return false;
  if (r.error !== undefined) {
    const reason = `sign-in: ${r.error.slice(0, 100)}`;
    if (reason in sp.refused || Object.keys(sp.refused).length < maxReasons) sp.refused[reason] = (sp.refused[reason] ?? 0) + 1;
  }
  for (const e of r.publish) void h.services.pubsub.publish(topic, e).catch(() => {});
  if (r.shown !== null) {
    const jr = joinRequest(r.shown);
    for (const cb of requestWatchers) {
      try {
        cb(jr);
      } catch {
        // a watcher's failure is its own
      }
    }
  }
  return true;
}

// gossipHex hands the page an envelope (hex) of the space's topic as
// gossipsub's validator would, for the tests' forged requests; it returns
// the validator's result and the refusals so far.
function gossipHex(space: string, hex: string): { result: string; refused: Record<string, number> } {
  const sp = spaces.get(space);
  if (sp === undefined || sp.members === undefined) throw new Error(`space ${space}: not listened to`);
  return { result: onTopic(sp, sp.members, sp.members.topic(), "test", fromHex(hex)), refused: sp.refused };
}

// heard returns the members' messages accepted so far and the refusals.
function heard(space: string): { heard: HeardMessage[]; refused: Record<string, number>; meshPeers: number } {
  const sp = spaces.get(space);
  if (sp === undefined || sp.members === undefined) throw new Error(`space ${space}: not listened to`);
  const peers = need(host, "heard").services.pubsub.getSubscribers(sp.members.topic()).length;
  return { heard: sp.heard, refused: sp.refused, meshPeers: peers };
}

// drop forgets a space: its sessions end and its node is freed.
function drop(space: string): void {
  const sp = spaces.get(space);
  if (sp === undefined) return;
  spaces.delete(space);
  for (const s of sp.sessions.values()) s.stream.abort(new Error("sync: space dropped"));
  for (const t of announcers.get(space) ?? []) clearInterval(t);
  announcers.delete(space);
  sp.members?.free();
  if (sp.members !== undefined) need(host, "drop").services.pubsub.topicValidators.delete(sp.members.topic());
  sp.node.free();
}

// signin asks to join a space (signin.ts) with the page's node: a
// candidate approval's keyring replaces the space's state, and the page
// replicates with it. It resolves with the safety code; signinState
// follows the request.
function signin(o: SignInOptions): ReturnType<typeof signIn> {
  return signIn(
    {
      core: need(core, "signin"),
      host: need(host, "signin"),
      replicate: async (addr, space, secrets, feeds, timeoutMs) => {
        drop(space);
        await replicate({ addr, space, secrets, feeds, timeoutMs });
        return spaces.get(space)!.node;
      },
      drop,
      approved: (space, seed, device) => {
        const sp = spaces.get(space);
        if (sp === undefined) return;
        becomeMember(sp, { seed, device });
        void saveSpace(sp);
        listen(space);
        changed(sp);
      },
    },
    o,
  );
}

// spaces lists the spaces the page holds state of.
function held(): string[] {
  return [...spaces.keys()];
}

// A page that goes away closes its connections, so that a daemon ends
// its sessions with this peer ID now rather than when its connection times
// out: the reloaded page, the same peer, is not taken for a duplicate.
addEventListener("pagehide", () => void host?.stop());

// ---- The page as a member: writes, reads, devices, approvals ----

function memberSpace(space: string): SpaceState {
  const sp = spaces.get(space);
  if (sp === undefined) throw new Error(`space ${space}: not held here`);
  if (sp.writer === undefined) throw new Error(`space ${space}: not a member here (sign in first)`);
  return sp;
}

// write runs an append of the core (put, del, approve), then stores its
// records and only once they are committed announces the new head to
// every session: a tab closed in between has offered the entry to nobody,
// so its feed continues from what IndexedDB holds after a reload. Writes
// of a space run one after another.
function write<T>(sp: SpaceState, f: (n: CoreNode) => T): Promise<T> {
  const run = async (): Promise<T> => {
    if (sp.writeFailed !== undefined) throw new Error(`the page could not store a write (${sp.writeFailed}); reload the page before writing again`);
    let out: T;
    let err: unknown;
    // Until the write's records are stored, no session steps the core: a
    // peer's request answered now would carry the new head.
    let open = () => {};
    sp.gate = new Promise<void>((r) => (open = r));
    try {
      try {
        out = f(sp.node);
      } catch (e) {
        err = e; // what it appended before failing is kept all the same
      }
      const t = sp.node.takeRecords();
      dropped += t.dropped;
      if (store !== undefined) {
        try {
          await store.appendChecked(toHex(sp.id), t.records);
        } catch (e) {
          // The entry is in the core's feed but not in IndexedDB: offering it
          // would fork the feed after a reload, so nothing more is written or
          // announced here (and the sessions stay shut).
          sp.writeFailed = (e as Error).message;
          for (const s of sp.sessions.values()) s.stream.abort(new Error("sync: the page could not store its write"));
          throw e;
        }
      }
    } finally {
      sp.gate = undefined;
      open();
    }
    sp.node.announce();
    for (const s of sp.sessions.values()) s.fl.flush?.();
    changed(sp);
    if (err !== undefined) throw err;
    return out!;
  };
  const p = sp.writes.then(run);
  sp.writes = p.then(
    () => {},
    () => {},
  );
  return p;
}

// put sets key to value in the space (an entry of the page's own feed).
export async function put(space: string, key: string, value: Uint8Array): Promise<void> {
  await write(memberSpace(space), (n) => n.put(key, value, Date.now()));
}

// del deletes key in the space.
export async function del(space: string, key: string): Promise<void> {
  await write(memberSpace(space), (n) => n.del(key, Date.now()));
}

// Version and Entry are src/node.ts's (the daemon API's list).
export interface Version {
  value: Uint8Array;
  deleted?: boolean;
  hlc: number;
  feed: string;
  index: number;
}
export interface Entry {
  key: string;
  versions: Version[];
}

// list returns a page of the space's keys with prefix after `after`
// (limit: at most 1000), with their versions, winner first.
export function list(space: string, prefix: string, after?: string, limit?: number): { entries: Entry[]; next?: string } {
  const sp = memberSpace(space);
  const r = sp.node.list(prefix, after ?? "", limit ?? 0);
  const entries = r.entries.map((e) => ({
    key: e.key,
    versions: e.versions.map((v) => ({ value: v.value, deleted: v.deleted || undefined, hlc: v.hlc, feed: toHex(v.feed), index: v.index })),
  }));
  return r.next === "" ? { entries } : { entries, next: r.next };
}

// devices lists the space's writers; online: the page has a session with
// a peer whose ... (the page cannot tell a device's peer from its feed
// yet: online is true for itself only).
export function devices(space: string): { feed: string; name: string; self?: boolean; online: boolean; last_seen?: string }[] {
  const sp = memberSpace(space);
  const online = new Set<string>();
  for (const m of sp.heard) if (m.kind === "presence" && Date.now() - m.time < 60_000) online.add(m.sender);
  return sp.node.devices().map((d) => {
    const feed = toHex(d.feed);
    return { feed, name: d.name, self: d.self || undefined, online: d.self || online.has(feed) };
  });
}

// JoinRequest is src/node.ts's (the daemon API's request).
export interface JoinRequest {
  id: string;
  space: string;
  space_name: string;
  name: string;
  feed: string;
  code: string;
  via: string;
  time: string;
}

function joinRequest(r: CoreRequest): JoinRequest {
  return { id: r.id, space: toHex(r.space), space_name: "", name: r.name, feed: toHex(r.feed), code: r.code, via: r.via, time: new Date(r.time).toISOString() };
}

const requestWatchers = new Set<(r: JoinRequest) => void>();

// requests lists the join requests the page heard and keeps for a
// person's answer, in every space it is a member of, oldest first.
export function requests(): JoinRequest[] {
  const out: JoinRequest[] = [];
  for (const sp of spaces.values()) if (sp.writer !== undefined) for (const r of sp.node.requests(Date.now())) out.push(joinRequest(r));
  return out.sort((a, b) => a.time.localeCompare(b.time));
}

// onRequest calls cb with each request newly kept; it returns the
// function that stops it.
export function onRequest(cb: (r: JoinRequest) => void): () => void {
  requestWatchers.add(cb);
  return () => requestWatchers.delete(cb);
}

function requestSpace(id: string): SpaceState {
  const want = id.toLowerCase();
  for (const sp of spaces.values()) {
    if (sp.writer === undefined) continue;
    if (sp.node.requests(Date.now()).some((r) => r.id.startsWith(want))) return sp;
  }
  throw new Error(`no request ${id} waiting`);
}

async function publishAnswer(sp: SpaceState, envelope: Uint8Array): Promise<void> {
  const h = need(host, "approve");
  const topic = listen(toHex(sp.id)).topic;
  try {
    await h.services.pubsub.publish(topic, envelope);
  } catch (e) {
    // No peer on the topic now: the device asks again, and the member side
    // answers again what it answered.
    if (!/NoPeersSubscribedToTopic/.test((e as Error).message)) throw e;
  }
}

// approve approves a waiting request once code is the safety code the
// device shows: the page appends the add-writer op with the keyring
// sealed to the device (stored, then announced) and publishes the
// approval.
export async function approve(requestID: string, code: string): Promise<void> {
  const sp = requestSpace(requestID);
  const env = await write(sp, (n) => n.approve(requestID, code, Date.now()));
  await publishAnswer(sp, env);
}

// deny denies a waiting request.
export async function deny(requestID: string): Promise<void> {
  const sp = requestSpace(requestID);
  const env = await write(sp, (n) => n.deny(requestID, Date.now()));
  await publishAnswer(sp, env);
}

// onChange calls cb after the space's view changed (the page ingested or
// wrote); it returns the function that stops it.
export function onChange(space: string, cb: () => void): () => void {
  const sp = spaces.get(space);
  if (sp === undefined) throw new Error(`space ${space}: not held here`);
  sp.watchers.add(cb);
  return () => sp.watchers.delete(cb);
}

// JSON-friendly variants for the tests (chromedp): values as hex.
async function putHex(space: string, key: string, hex: string): Promise<boolean> {
  await put(space, key, fromHex(hex));
  return true;
}
function listHex(space: string, prefix: string, after?: string, limit?: number): { entries: { key: string; versions: (Omit<Version, "value"> & { value: string })[] }[]; next?: string } {
  const r = list(space, prefix, after, limit);
  return { ...r, entries: r.entries.map((e) => ({ key: e.key, versions: e.versions.map((v) => ({ ...v, value: toHex(v.value) })) })) };
}
// changes counts onChange calls per space since watchChanges (tests).
const changeCounts: Record<string, number> = {};
function watchChanges(space: string): boolean {
  changeCounts[space] ??= 0;
  onChange(space, () => void (changeCounts[space] = (changeCounts[space] ?? 0) + 1));
  return true;
}
function changes(space: string): number {
  return changeCounts[space] ?? 0;
}

// locate asks the relay at relay (a multiaddr) for the invite code's
// locator (locate.ts): the space, expiry and the inviting device's peer.
function locate(relay: string, code: string): ReturnType<typeof locateCode> {
  return locateCode(need(core, "locate"), need(host, "locate"), relay, code);
}

// resolve asks the relay at relay which space the alias names (hex).
function resolve(relay: string, name: string): Promise<string> {
  return resolveAlias(need(core, "resolve"), need(host, "resolve"), relay, name);
}

(globalThis as Record<string, unknown>).mycelNode = {
  start,
  connect,
  hangUp,
  addrs,
  connections,
  replicate,
  status,
  view,
  listen,
  heard,
  persisted,
  compact,
  signin,
  signinState: signInState,
  locate,
  resolve,
  held,
  put,
  del,
  list,
  devices,
  requests,
  onRequest,
  approve,
  deny,
  onChange,
  putHex,
  listHex,
  watchChanges,
  changes,
  gossipHex,
  send,
  sendText,
  mailbox,
};
