// BrowserNode: the Node of a tab that is itself a node (issue 14), over the
// browser node's calls (globalThis.mycelNode, src/node/main.ts, bundled
// apart into node.js). The page loads node.js, core.wasm and wasm_exec.js
// from its own origin, dials the relay that served it at that origin's
// WebSocket, keeps what it holds in IndexedDB (store "mycel": a reload is
// still a member) and reaches the space's members through the relay's
// circuits. What it cannot do (create a space, make invites, set the
// password, remove a device) it says through supports(),
// and the page hides those controls.

import type {
  Device, Entry, Feature, Invite, JoinRequest, JoinState, JoinWith, Message, Node, Page, Peer,
  Progress, SpaceInfo, SpaceRelay, Status, StreamHandlers, Subscription,
} from "./node";
import { NodeError } from "./node";

/* eslint-disable @typescript-eslint/no-explicit-any */

// The browser node's calls this file uses. Those marked optional came
// with the page's writes (src/node/main.ts); a node.js without them makes
// the methods over them throw NodeError("unsupported").
interface MycelNode {
  start(o: { wasm: string; wasmExec?: string; store?: string }): Promise<{
    peerId: string;
    restored?: { space: string; refused: number; quarantined?: number }[];
    refusedSpaces?: Record<string, string>;
  }>;
  connect(addr: string, timeoutMs?: number): Promise<unknown>;
  addrs(): string[];
  connections(): { remote: string; remoteAddr: string; transport: string; limited: boolean; status: string }[];
  replicate(o: { addr: string; space: string; timeoutMs?: number }): Promise<unknown>;
  status(space: string): { lengths: Record<string, number>; held: Record<string, number>; sessions: { remote: string; addr: string; ended: boolean; bytesIn: number }[] };
  view(space: string): { digest: string; keys: number; writers: number; invalid: number; waiting: number };
  listen(space: string): unknown;
  heard(space: string): { heard: { sender: string; time: number; kind: string; name: string; topic: string; data: string }[] };
  signin(o: { invite?: string; space?: string; password?: string; name?: string; addr: string; fallback?: string; timeoutMs?: number }): Promise<SignIn>;
  signinState(space: string): SignIn;
  locate?(relay: string, code: string): Promise<{ space: string; expires: number; peer: string }>;
  resolve?(relay: string, name: string): Promise<string>;
  held(): string[];
  put?(space: string, key: string, value: Uint8Array): Promise<unknown>;
  del?(space: string, key: string): Promise<unknown>;
  list?(space: string, prefix: string, after?: string, limit?: number): Promise<{ entries: any[]; next?: string }> | { entries: any[]; next?: string };
  devices?(space: string): Promise<Device[]> | Device[];
  requests?(): Promise<JoinRequest[]> | JoinRequest[];
  approve?(requestID: string, code: string): Promise<unknown>;
  deny?(requestID: string): Promise<unknown>;
  onChange?(space: string, cb: () => void): () => void; // returns the function that stops it
  send?(space: string, topic: string, data: Uint8Array, keep?: boolean): Promise<unknown>;
}

interface SignIn {
  space: string;
  feed: string;
  safetyCode: string;
  state: string;
  reason: string;
}

// What the page keeps of a space it signed in to, beside the node's own
// store: its feed, the name it was given, and the member (or the relay's
// mirror) it replicates with (to dial again after a reload).
// localStorage, this origin only.
interface Kept {
  feed: string;
  name: string;
  member: string;
}

const keptKey = "mycel.browser.spaces";

function loadKept(): Record<string, Kept> {
  try {
    const v = JSON.parse(localStorage.getItem(keptKey) ?? "{}");
    return v !== null && typeof v === "object" ? v : {};
  } catch {
    return {};
  }
}

function unsupported(what: string): NodeError {
  return new NodeError("unsupported", `${what}: not possible in the browser node; use a daemon's web UI (mycel ui)`);
}

// Crockford base32, as auth/FORMAT.md's invite link.
const b32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function base32Decode(s: string): Uint8Array | null {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of s) {
    const v = b32.indexOf(c);
    if (v < 0) return null;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return new Uint8Array(out);
}

const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function base58(b: Uint8Array): string {
  const digits: number[] = [];
  for (const byte of b) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] << 8;
      digits[i] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let s = "";
  for (const byte of b) {
    if (byte !== 0) break;
    s += "1";
  }
  for (let i = digits.length - 1; i >= 0; i--) s += b58[digits[i]];
  return s;
}

// invitePeer returns the peer ID an invite link's hints name (auth/FORMAT.md,
// "Hints": version 1, peer ID length, peer ID, …), or "" when the text is
// not a link with hints. Only the peer ID is read: the page dials it
// through the relay that served it. The link itself, checksums included,
// is parsed and checked by the wasm core when the page signs in; a peer ID
// damaged here only makes a dial fail.
export function invitePeer(link: string): string {
  const s = link.replace(/\s+/g, "").toUpperCase();
  if (s.length > 2048 || !s.startsWith("MYCEL://JOIN/")) return "";
  const parts = s.slice("MYCEL://JOIN/".length).split("/");
  if (parts.length !== 2) return "";
  const h = base32Decode(parts[1]);
  if (h === null || h.length < 3 || h[0] !== 1) return "";
  const n = h[1];
  if (n < 1 || n > 64 || h.length < 2 + n) return "";
  return base58(h.subarray(2, 2 + n));
}

// relayAddrOf returns the multiaddr of the relay's WebSocket at the page's
// origin (the relay serves the page on that port).
export function relayAddrOf(loc: Location, peerID: string): string {
  const host = loc.hostname;
  let proto: string;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) proto = `/ip4/${host}`;
  else if (host.startsWith("[")) proto = `/ip6/${host.slice(1, -1)}`;
  else proto = `/dns/${host}`;
  const tls = loc.protocol === "https:";
  const port = loc.port || (tls ? "443" : "80");
  return `${proto}/tcp/${port}${tls ? "/tls/ws" : "/ws"}/p2p/${peerID}`;
}

// loadNode loads node.js (which sets globalThis.mycelNode) from the page's
// origin.
async function loadNode(): Promise<MycelNode> {
  const g = globalThis as unknown as { mycelNode?: MycelNode };
  if (g.mycelNode === undefined) {
    const url = new URL("node.js", location.href).href;
    await import(url);
  }
  if (g.mycelNode === undefined) throw new Error("node.js did not start the browser node");
  return g.mycelNode;
}

const errMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

// startWarnings says in words what the node's start refused: records of a
// space that did not verify (damaged or edited in IndexedDB), moved to the
// quarantine and synced again from the space's members, and spaces whose
// saved state could not be read at all.
function startWarnings(st: Awaited<ReturnType<MycelNode["start"]>>): string[] {
  const out: string[] = [];
  for (const r of st.restored ?? []) {
    if (r.refused === 0) continue;
    const aside = r.quarantined === r.refused ? "moved aside" : "left in place";
    out.push(`${r.refused} stored record${r.refused === 1 ? "" : "s"} of space ${r.space.slice(0, 8)}… did not verify (damaged or edited) and ${r.refused === 1 ? "was" : "were"} ${aside}; the space syncs ${r.refused === 1 ? "it" : "them"} again from its members`);
  }
  for (const [space, why] of Object.entries(st.refusedSpaces ?? {})) {
    out.push(`space ${space.slice(0, 8)}…: its stored state could not be read (${why})`);
  }
  return out;
}

export class BrowserNode implements Node {
  readonly kind = "browser";
  private started = new Date().toISOString();
  private kept: Record<string, Kept> = loadKept();
  private pending = new Map<string, { member: string; name: string }>();
  private keeper = 0;
  private dialing = new Set<string>(); // spaces whose replicate is in flight
  private warnings: string[] = []; // what start refused (status shows it)

  private constructor(private n: MycelNode, private peerID: string, readonly relay: string) {}

  // open loads the browser node, starts it on its IndexedDB store (the
  // spaces it signed in to, verified again), connects to the relay, and
  // keeps a session with each space's member.
  static async open(relay: string): Promise<BrowserNode> {
    const n = await loadNode();
    const st = await n.start({ wasm: "core.wasm", wasmExec: "wasm_exec.js", store: "mycel" });
    const b = new BrowserNode(n, st.peerId, relay);
    b.warnings = startWarnings(st);
    await n.connect(relay).catch(() => {}); // the keeper dials again
    b.keep();
    b.keeper = setInterval(() => b.keep(), 3000) as unknown as number;
    return b;
  }

  supports(f: Feature): boolean {
    switch (f) {
      case "write": return this.n.put !== undefined && this.n.del !== undefined;
      case "devices": return this.n.devices !== undefined;
      case "approve": return this.n.requests !== undefined && this.n.approve !== undefined;
      case "join": return true;
      case "send": return this.n.send !== undefined;
      default: return false; // create, invite, password, remove, leave, logout, relays
    }
  }

  // keep opens a session of each kept space with its member when none
  // runs (after a reload, or after a daemon reset the page's stream as a
  // duplicate of the tab that went away).
  private keep() {
    const held = new Set(this.n.held());
    for (const [space, k] of Object.entries(this.kept)) {
      if (!held.has(space) || !k.member) continue;
      let live = false;
      try {
        live = this.n.status(space).sessions.some((s) => !s.ended);
      } catch {
        continue;
      }
      if (live || this.dialing.has(space)) continue;
      this.dialing.add(space);
      void this.n.replicate({ addr: k.member, space, timeoutMs: 15000 })
        .catch(() => {})
        .finally(() => this.dialing.delete(space));
    }
  }

  private saveKept() {
    localStorage.setItem(keptKey, JSON.stringify(this.kept));
  }

  private signinOf(id: string): SignIn | undefined {
    try {
      return this.n.signinState(id);
    } catch {
      return undefined;
    }
  }

  async status(): Promise<Status> {
    const peers = new Set(this.n.connections().map((c) => c.remote));
    return {
      version: "browser node", peer_id: this.peerID, addrs: this.n.addrs(), device: this.peerID,
      data_dir: "IndexedDB", started: this.started, spaces: this.n.held().length, peers: peers.size,
      warnings: this.warnings,
    };
  }

  async spaces(): Promise<SpaceInfo[]> {
    const ids = new Set(this.n.held());
    for (const [id] of this.pending) ids.add(id);
    const out: SpaceInfo[] = [];
    for (const id of ids) out.push(await this.space(id));
    return out;
  }

  async createSpace(): Promise<SpaceInfo> { throw unsupported("creating a space"); }

  async space(id: string): Promise<SpaceInfo> {
    const si = this.signinOf(id);
    const p = this.pending.get(id);
    if (si !== undefined && si.state !== "waiting" && p !== undefined) {
      // Ended: an approved space stays kept (join kept it already), a
      // refused or denied one is forgotten.
      this.pending.delete(id);
      if (si.state !== "approved") {
        delete this.kept[id];
        this.saveKept();
      }
    }
    const k = this.kept[id];
    const join: JoinState | undefined = si !== undefined && si.state !== "approved"
      ? { space: id, code: si.safetyCode, state: si.state as JoinState["state"], reason: si.reason || undefined, since: this.started }
      : undefined;
    if (join !== undefined || !this.n.held().includes(id)) {
      if (join === undefined) throw new NodeError("not_found", `space ${id}: not held in this browser`);
      return {
        id, name: p?.name || k?.name || id.slice(0, 8), feed: si?.feed ?? "", approved: false, writer: false,
        feeds: 0, entries: 0, keys: 0, digest: "", invalid: 0, waiting: 0, join,
      };
    }
    const v = this.n.view(id);
    const st = this.n.status(id);
    const entries = Object.values(st.held).reduce((a, b) => a + b, 0);
    return {
      id, name: k?.name || id.slice(0, 8), feed: k?.feed ?? si?.feed ?? "", approved: true, writer: true,
      feeds: Object.keys(st.lengths).length, entries, keys: v.keys, digest: v.digest, invalid: v.invalid, waiting: v.waiting,
    };
  }

  async leaveSpace(): Promise<void> { throw unsupported("leaving a space"); }

  async list(id: string, prefix: string, after = "", limit = 200): Promise<Page> {
    if (this.n.list === undefined) throw unsupported("listing keys");
    const p = await this.n.list(id, prefix, after || undefined, limit);
    return { entries: p.entries as Entry[], next: p.next };
  }

  async put(id: string, key: string, value: Uint8Array): Promise<void> {
    if (this.n.put === undefined) throw unsupported("writing");
    await this.n.put(id, key, value);
  }

  async delete(id: string, key: string): Promise<void> {
    if (this.n.del === undefined) throw unsupported("deleting");
    await this.n.del(id, key);
  }

  // watch tells the page to read the keys again whenever the space's view
  // changes: the browser node's onChange when it has one, else the view's
  // digest, polled each second.
  watch(id: string, _prefix: string, h: StreamHandlers<Entry>): Subscription {
    let closed = false;
    let last = "";
    const check = () => {
      if (closed) return;
      try {
        const d = this.n.view(id).digest;
        if (d !== last) {
          last = d;
          h.open?.();
        }
      } catch (e) {
        h.error?.(errMessage(e));
      }
    };
    check();
    const t = setInterval(check, 1000);
    let stop = () => {};
    try {
      if (this.n.onChange !== undefined) stop = this.n.onChange(id, check);
    } catch {
      // not held yet: the poll sees it
    }
    return { close: () => { closed = true; clearInterval(t); stop(); } };
  }

  async devices(id: string): Promise<Device[]> {
    if (this.n.devices === undefined) throw unsupported("listing devices");
    return await this.n.devices(id);
  }

  async removeDevice(): Promise<void> { throw unsupported("removing a device"); }
  async createInvite(): Promise<Invite> { throw unsupported("making an invite"); }
  async setPassword(): Promise<void> { throw unsupported("setting the password"); }

  // join asks to join a space with an invite link (the member it names is
  // dialled through the relay), with an invite code alone (the relay that
  // served the page gives the code's locator: the space and the inviting
  // member, dialled through the relay), or with the password and the
  // space's ID or alias ("name@relay", or "name" at the relay that served
  // the page). A code or a password with a member's address (w.member)
  // asks that member.
  //
  // No member's address is needed when the relay serves the space: the
  // request and the approval cross the relay's router on the space's
  // topic, and the page replicates the approved keyring from the relay's
  // mirror (/mycel/sync with the relay itself), which holds the approving
  // member's feed and its add of the page. The relay is also the fallback
  // of a member that cannot be reached (a code's locator naming a member
  // that is offline).
  async join(w: JoinWith): Promise<JoinState> {
    let member = w.member?.trim() ?? "";
    let space = w.space?.trim() ?? "";
    const circuit = (peer: string) => `${this.relay}/p2p-circuit/p2p/${peer}`;
    if (member === "" && w.invite) {
      const peer = invitePeer(w.invite);
      if (peer !== "") member = circuit(peer);
    }
    if (w.invite && member === "" && space === "") {
      // A code alone: the relay's directory knows its space and member.
      if (this.n.locate === undefined) throw unsupported("signing in with a code alone");
      let found;
      try {
        found = await this.n.locate(this.relay, w.invite.trim());
      } catch (e) {
        throw new NodeError("not_found", `Invite code: ${errMessage(e)}`);
      }
      space = found.space;
      member = found.peer === "" ? "" : circuit(found.peer);
    }
    if (w.password && space !== "" && !/^[0-9a-fA-F]{64}$/.test(space)) {
      space = await this.resolveAlias(space);
    }
    // No member named: the relay's mirror of the space.
    if (member === "") member = this.relay;
    let si: SignIn;
    try {
      // w.name is the space's name here, as for a daemon; members see the
      // device named after the browser (signin.ts).
      si = await this.n.signin({ invite: w.invite || undefined, space: space || undefined, password: w.password || undefined, addr: member, fallback: this.relay, timeoutMs: 40000 });
    } catch (e) {
      throw new NodeError("bad_request", errMessage(e));
    }
    this.pending.set(si.space, { member, name: w.name ?? "" });
    // Kept at once: the node stores the space as soon as it is approved,
    // and a reload from then on must find its member (the keeper replicates
    // only spaces the node holds, so a request still waiting or refused
    // dials nothing).
    this.kept[si.space] = { feed: si.feed, name: w.name ?? "", member };
    this.saveKept();
    return { space: si.space, code: si.safetyCode, state: si.state as JoinState["state"], reason: si.reason || undefined, since: new Date().toISOString() };
  }

  // resolveAlias reads "name@relay" (relay: the multiaddr of a relay,
  // /p2p/<id> included, or the peer ID of the relay that served the page)
  // or "name" (at the relay that served the page) as a space ID, asking
  // the relay's directory.
  private async resolveAlias(s: string): Promise<string> {
    if (this.n.resolve === undefined) throw unsupported("signing in with a space's name");
    const at = s.indexOf("@");
    const name = at < 0 ? s : s.slice(0, at);
    const where = at < 0 ? "" : s.slice(at + 1);
    let relay = this.relay;
    if (where.startsWith("/")) relay = where;
    else if (where !== "" && !this.relay.endsWith(`/p2p/${where}`)) {
      throw new NodeError("bad_request", `Space name ${s}: the page asks the relay that served it; give the other relay's address after the @ (/…/p2p/<its peer ID>).`);
    }
    try {
      return await this.n.resolve(relay, name);
    } catch (e) {
      throw new NodeError("not_found", `Space name ${s}: ${errMessage(e)}`);
    }
  }

  async requests(): Promise<JoinRequest[]> {
    if (this.n.requests === undefined) return [];
    return await this.n.requests();
  }

  // watchRequests polls the browser node's requests every 2 seconds.
  watchRequests(h: StreamHandlers<JoinRequest>): Subscription {
    if (this.n.requests === undefined) return { close: () => {} };
    const seen = new Set<string>();
    const poll = async () => {
      for (const r of await this.requests()) {
        if (seen.has(r.id)) continue;
        seen.add(r.id);
        h.item(r);
      }
    };
    h.open?.();
    void poll().catch(() => {});
    const t = setInterval(() => void poll().catch(() => {}), 2000);
    return { close: () => clearInterval(t) };
  }

  async approve(requestID: string, code: string): Promise<void> {
    if (this.n.approve === undefined) throw unsupported("approving a device");
    await this.n.approve(requestID, code);
  }

  async deny(requestID: string): Promise<void> {
    if (this.n.deny === undefined) throw unsupported("denying a device");
    await this.n.deny(requestID);
  }

  // send seals and publishes an app message as the page's device (kept by
  // the relays' mailboxes for members away when keep).
  async send(id: string, topic: string, data: Uint8Array, keep = false): Promise<void> {
    if (this.n.send === undefined) throw unsupported("sending a message");
    try {
      await this.n.send(id, topic, data, keep);
    } catch (e) {
      throw new NodeError("bad_request", errMessage(e));
    }
  }

  // listen subscribes to the space's members' messages and polls what the
  // browser node heard each second.
  listen(id: string, topic: string, h: StreamHandlers<Message>): Subscription {
    const enc = new TextEncoder();
    const seen = new Set<string>();
    try {
      this.n.listen(id);
    } catch (e) {
      h.error?.(errMessage(e));
      return { close: () => {} };
    }
    const poll = () => {
      let heard;
      try {
        heard = this.n.heard(id).heard;
      } catch {
        return;
      }
      for (const m of heard) {
        if (m.kind !== "app") continue; // presence and removals are not messages
        if (topic !== "" && m.topic !== topic) continue;
        const k = `${m.sender}/${m.time}/${m.topic}/${m.data}`;
        if (seen.has(k)) continue;
        seen.add(k);
        h.item({ sender: m.sender, name: m.name || undefined, time: new Date(m.time).toISOString(), topic: m.topic, data: enc.encode(m.data) });
      }
    };
    const t = setInterval(poll, 1000);
    return { close: () => clearInterval(t) };
  }

  async peers(): Promise<Peer[]> {
    const by = new Map<string, Peer>();
    for (const c of this.n.connections()) {
      const p = by.get(c.remote) ?? { id: c.remote, conns: [] };
      p.conns.push({ addr: c.remoteAddr, transport: c.transport, direction: "", limited: c.limited || undefined });
      by.set(c.remote, p);
    }
    return [...by.values()];
  }

  async progress(): Promise<Progress[]> {
    const out: Progress[] = [];
    for (const space of this.n.held()) {
      let st;
      try {
        st = this.n.status(space);
      } catch {
        continue;
      }
      const live = st.sessions.filter((s) => !s.ended);
      const peer = live[0]?.remote ?? "";
      const bytes = live.reduce((a, s) => a + s.bytesIn, 0);
      for (const [feed, want] of Object.entries(st.lengths)) {
        out.push({ space, peer, feed, have: st.held[feed] ?? 0, want, bytes_in: bytes, rate: 0 });
      }
    }
    return out;
  }

  // The space's relays are the daemon's to list (it hands the relay the
  // space's mirror token): the page hides the section.
  async spaceRelays(): Promise<SpaceRelay[]> { throw unsupported("listing the space's relays"); }
  async addRelay(): Promise<void> { throw unsupported("adding a relay"); }
  async removeRelay(): Promise<void> { throw unsupported("removing a relay"); }

  close() {
    clearInterval(this.keeper);
  }
}
