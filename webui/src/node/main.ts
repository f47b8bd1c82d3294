// The browser node, first step (issue 14): a page that connects to a relay
// and to daemons with js-libp2p and replicates a space read-only with
// mycel's wire protocol, through the wasm core. Bundled by build.mjs into
// dist/node.js apart from the control panel's app.js. It sets
// globalThis.mycelNode, the calls the tests drive (webui/node_browser_test.go);
// the page's own UI for it comes later.
//
// Read-only: the page holds a member's epoch secrets (from signing in,
// signin.ts, or handed to replicate by the caller), proves them to open
// replication, and stores what it receives in the core's in-memory store;
// started with a store name, it keeps that in IndexedDB too (store.ts) and
// starts from it after a reload: the spaces with their secrets, every
// record verified again by the core, and its peer ID. It appends nothing.

import { TopicValidatorResult } from "@libp2p/gossipsub";
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { Core, CoreNode, Members, Secret, loadCore } from "../wasmcore";
import { BrowserHost, createHost } from "./net";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { Store } from "./store";
import { SignInOptions, signIn, signInState } from "./signin";
import { Flusher, SessionStats, runSession } from "./sync";

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

interface SpaceState {
  id: Uint8Array;
  secrets: Secret[];
  node: CoreNode;
  feeds: string[];
  protocol: string;
  sessions: Map<string, { stats: SessionStats; outbound: boolean; stream: Stream; remote: string; addr: string; fl: Flusher }>;
  members?: Members;
  heard: HeardMessage[]; // the newest maxHeard accepted
  refused: Record<string, number>; // refusals by reason
}

// HeardMessage is a members' message the page accepted.
interface HeardMessage {
  sender: string; // hex feed key
  time: number;
  kind: string;
  name: string;
  topic: string;
  data: string; // UTF-8 (for the tests; apps get bytes later)
}

// maxHeard bounds the messages kept for status.
const maxHeard = 256;
// maxReasons bounds the distinct refusal reasons counted.
const maxReasons = 32;

let core: Core | undefined;
let host: BrowserHost | undefined;
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
    const saved = await store.spaces();
    refusedSpaces = saved.refused;
    for (const ss of saved.spaces) {
      const ts = performance.now();
      const sp = newSpaceState(ss.space, ss.secrets, ss.feeds);
      const r: Restored = { space: ss.space, records: 0, imported: 0, refused: 0, reasons: [], truncated: false, ms: 0 };
      const rd = await store.records(ss.space, (rec) => {
        try {
          sp.node.import(rec);
          r.imported++;
        } catch (e) {
          r.refused++;
          if (r.reasons.length < 8) r.reasons.push((e as Error).message.slice(0, 200));
        }
      });
      r.records = rd.read;
      r.truncated = rd.truncated;
      sp.node.viewSummary(sp.id, sp.secrets);
      r.ms = performance.now() - ts;
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
  host ??= await createHost({ listen: o.listen });
  return { peerId: host.peerId.toString(), loadMs: performance.now() - t0, restored, refusedSpaces };
}

// persisted reports the page's IndexedDB writes; it resolves once every
// write queued so far is committed.
async function persisted(): Promise<{ written: number; pending: number; dropped: number; error?: string }> {
  const st = need(store, "persisted");
  await st.flush();
  return { written: st.written, pending: st.pending, dropped, error: st.error };
}

// connect dials addr and waits for identify to list the peer's protocols:
// the connection carried a stream both ways.
async function connect(addr: string, timeoutMs = 15000): Promise<{ transport: string; remoteAddr: string; protocols: string[]; ms: number }> {
  const h = need(host, "connect");
  const t0 = performance.now();
  const conn = await h.dial(multiaddr(addr), { signal: AbortSignal.timeout(timeoutMs) });
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
    await store?.saveSpace({ space: toHex(sp.id), feeds: sp.feeds, secrets: sp.secrets });
  }
  return sp;
}

// serve runs a session of sp on stream, replacing one with the same peer
// as node/syncnet does: of two streams opened at once, the lower peer ID's
// wins.
function serve(sp: SpaceState, stream: Stream, conn: Connection, outbound: boolean): boolean {
  const h = need(host, "serve");
  const remote = conn.remotePeer;
  const key = remote.toString();
  const old = sp.sessions.get(key);
  const weOpen = lessBytes(h.peerId.toMultihash().bytes, remote.toMultihash().bytes);
  if (old !== undefined && !old.stats.ended) {
    if (!outbound && old.outbound && weOpen) {
      stream.abort(new Error("sync: duplicate session"));
      return false;
    }
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
  const fl: Flusher = {};
  sp.sessions.set(key, { stats, outbound, stream, remote: key, addr: conn.remoteAddr.toString(), fl });
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
      void st.append(toHex(sp.id), t.records);
      return out;
    };
  }
  void runSession(stream, s, stats, fl);
  return true;
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
  const conn = await h.dial(ma, { signal: AbortSignal.timeout(timeoutMs) });
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
function status(space: string): { lengths: Record<string, number>; held: Record<string, number>; sessions: (SessionStats & { remote: string; addr: string; outbound: boolean })[] } {
  const sp = spaces.get(space);
  if (sp === undefined) throw new Error(`space ${space}: not replicated here`);
  const lengths: Record<string, number> = {};
  const held: Record<string, number> = {};
  for (const f of sp.feeds) {
    lengths[f] = sp.node.length(fromHex(f));
    held[f] = sp.node.held(fromHex(f));
  }
  const sessions = [...sp.sessions.values()].map((s) => ({ ...s.stats, remote: s.remote, addr: s.addr, outbound: s.outbound }));
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
    const m = sp.node.members(sp.id, sp.secrets);
    sp.members = m;
    const topic = m.topic();
    const dec = new TextDecoder();
    h.services.pubsub.topicValidators.set(topic, (_peer, msg) => {
      try {
        const o = m.open(msg.data, Date.now());
        sp.heard.push({ sender: toHex(o.sender), time: o.time, kind: o.kind, name: o.name, topic: o.topic, data: dec.decode(o.data) });
        if (sp.heard.length > maxHeard) sp.heard.shift();
        return TopicValidatorResult.Accept;
      } catch (e) {
        const reason = (e as Error).message.slice(0, 120);
        if (reason in sp.refused || Object.keys(sp.refused).length < maxReasons) sp.refused[reason] = (sp.refused[reason] ?? 0) + 1;
        return TopicValidatorResult.Ignore;
      }
    });
    h.services.pubsub.subscribe(topic);
  }
  return { topic: sp.members.topic(), writers: v.writers };
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

(globalThis as Record<string, unknown>).mycelNode = { start, connect, hangUp, addrs, connections, replicate, status, view, listen, heard, persisted, signin, signinState: signInState, held };

// viewKeys: the space's keys as the view the core keeps holds them, for the
// page's key browser (src/browsernode.ts) until list is here.
(globalThis as unknown as { mycelNode: Record<string, unknown> }).mycelNode.viewKeys = (space: string) => {
  const sp = spaces.get(space);
  if (sp === undefined) throw new Error(`space ${space}: not replicated here`);
  return sp.node.view(sp.id, sp.secrets).kvs;
};
