// The protocol core compiled to WebAssembly (webui/wasm, `make wasm`): the
// same Go code as the daemon's for feed verification, sealed entries, the
// space view, key derivation, envelopes, sign-in bodies and replication
// sessions. loadCore instantiates it; Core types its calls and throws an
// Error where the Go side returned one. Bytes are Uint8Array (copied both
// ways); HLCs are bigint; entry indices and lengths are numbers.

export interface Head {
  key: Uint8Array;
  length: number;
  root: Uint8Array;
  time: number; // Unix ms, the writer's clock
}

export interface Batch {
  head: Head;
  runs: { start: number; entries: Uint8Array[] }[];
}

export interface Secret {
  epoch: number;
  secret: Uint8Array; // 32 bytes
}

export interface Op {
  kind: "put" | "delete" | string;
  key: string;
  value?: Uint8Array;
  hlc: bigint;
  seen?: { feed: Uint8Array; length: number }[];
}

export interface Entry {
  author: Uint8Array;
  index: number;
  data: Uint8Array;
}

export interface View {
  digest: Uint8Array;
  keys: number; // live keys
  kvs: { key: string; value: Uint8Array; deleted: boolean; siblings: number }[];
  writers: number;
  invalid: number;
  waiting: number;
}

export interface EnvelopeSeal {
  key: Uint8Array;
  signerSeed: Uint8Array;
  topic: Uint8Array;
  keyKind: number;
  keyID: Uint8Array;
  plaintext: Uint8Array;
  time: number; // Unix ms
}

export interface Envelope {
  topic: Uint8Array;
  sender: Uint8Array;
  time: number;
  keyKind: number;
  keyID: Uint8Array;
  plaintext: Uint8Array;
}

export interface SigninBody {
  kind: string;
  request: Uint8Array;
  name: string; // a join request's device name
  safetyCode: string; // a join request's safety code
  answer: Uint8Array;
  reason: string;
}

export interface SessionConfig {
  localID: Uint8Array;
  remoteID: Uint8Array;
  nonce: Uint8Array; // 32 fresh random bytes
  space: Uint8Array;
  secrets: Secret[];
}

// A replication session (/mycel/sync): frames are length-prefixed, as on
// the stream; each call returns the frames to send, in order.
export interface Session {
  start(): Uint8Array[];
  step(frame: Uint8Array): Uint8Array[];
  // maxFrame is the largest frame body to accept now: 4 KiB until the
  // peer's proof verified, then 16 MiB + 64 KiB.
  maxFrame(): number;
  // flush returns the frames to send without a frame from the peer: the
  // heads of feeds that grew through the node's other sessions.
  flush(): Uint8Array[];
  free(): void; // releases the Go functions behind it; calling them then throws
}

// A members' message of the space (node/EPHEMERAL.md), opened.
export interface MemberMessage {
  sender: Uint8Array; // the sender's feed key
  time: number; // Unix ms, the sender's clock
  kind: string; // presence, app, removed, or a later version's
  name: string; // presence: the device's name
  topic: string; // app: the app's topic
  data: Uint8Array; // app: the payload
  kept: boolean; // an app message its sender asked relays to keep (key kind 4)
  stored?: boolean; // a relay's mailbox handed it over (Members.stored), not heard live
}

// The receiver of a space's members' messages: envelopes from gossipsub
// in, checked (signature, ±5 minutes, seen before, an epoch held, a
// writer in the view the node keeps) and opened. Key kinds 1 and 4 (a
// kept app message, heard live or from a relay's mailbox: stored).
export interface Members {
  topic(): string; // the gossipsub topic
  open(envelope: Uint8Array, nowMs: number): MemberMessage;
  // presence seals this device's presence (a member's, node/EPHEMERAL.md),
  // send an app message (key kind 4 when keep): envelopes to publish.
  presence(nowMs: number): Uint8Array;
  send(topic: string, data: Uint8Array, keep: boolean, nowMs: number): Uint8Array;
  // mailboxFetch answers a relay's mailbox hello (33 bytes) with the fetch
  // request signed by the device's feed key (relay/FORMAT.md, "Mailbox");
  // the peer IDs are their multihash bytes. stored takes the relay's reply:
  // the kept app messages it held, once each (wasm/core/mailbox.go).
  mailboxFetch(hello: Uint8Array, relay: Uint8Array, self: Uint8Array): Uint8Array;
  // takeSeen returns the seen entries (24 bytes: ID ‖ expiry ms) of the
  // kept messages delivered since the last call, for the page to keep and
  // hand back to members after a reload.
  takeSeen(): Uint8Array[];
  stored(reply: Uint8Array, nowMs: number): { messages: MemberMessage[]; more: boolean; refused: number };
  free(): void;
}

// What to sign in with (core.AskWith): an invite link or code (a code
// alone needs space), or space and password; name is the device name
// members see.
export interface AskWith {
  invite?: string;
  space?: string; // hex
  password?: string;
  name: string;
}

// The page's own request to join a space (core.Asker over node/signin's
// Device): step it on a timer, hand it the topic's envelopes, run the
// trials it asks for and tell it when the node's view holds its feed.
export interface Asker {
  space: Uint8Array;
  feed: Uint8Array; // this device's feed key in the space
  seed: Uint8Array; // its ed25519 seed
  device: Uint8Array; // its device key (auth.DeviceKey), kept once approved
  topic: string; // the space's gossipsub topic
  safetyCode: string;
  state(): { state: string; reason: string; candidates: number };
  step(nowMs: number, peers: number): { publish: Uint8Array | null; nextMs: number };
  receive(envelope: Uint8Array, nowMs: number): { mine: boolean; wake: boolean };
  nextTrial(nowMs: number): { secrets?: Secret[]; feeds?: Uint8Array[]; waitMs: number };
  tried(opened: number, error?: string): number;
  checkApproved(node: CoreNode): boolean;
  free(): void;
}

// An in-memory set of feeds that sessions read and fill.
export interface CoreNode {
  id: number; // names it to calls that take a node
  append(writerSeed: Uint8Array, entries: Uint8Array[]): number;
  length(feed: Uint8Array): number; // the head's length
  held(feed: Uint8Array): number; // entries held: length less the holes
  get(feed: Uint8Array, index: number): Uint8Array;
  session(cfg: SessionConfig): Session;
  // view returns the space's view of every entry held (origin: the space
  // ID). The first call builds it; then the node keeps it up to date as
  // sessions ingest batches, and later calls only list it.
  view(space: Uint8Array, secrets: Secret[]): View;
  // viewSummary is view without its kvs (empty): digest and counts only.
  viewSummary(space: Uint8Array, secrets: Secret[]): View;
  // members returns the receiver of the space's members' messages; it
  // takes the writers from the view the node keeps (call view first).
  members(space: Uint8Array, secrets: Secret[], seen?: Uint8Array[]): Members;
  // takeRecords returns the records of the batches ingested since the last
  // call, in order, for the page to put in IndexedDB, and how many the
  // core's bounded queue dropped (wasm/core/persist.go).
  takeRecords(): { records: Uint8Array[]; dropped: number };
  // import ingests a record read back from IndexedDB, verified again as a
  // peer's batch is; it throws if the record is refused.
  import(record: Uint8Array): boolean;
  // compact returns the records replacing every record of the node's
  // space: per feed, its entries with one proof up to its head, verified
  // by import like any record (wasm/core/persist.go Compact).
  compact(): Uint8Array[];
  // member makes the node a member of its space (wasm/core/member.go):
  // node/space's Space over its feeds, writing to the feed of seed with
  // the keyring of secrets; from then on view, viewSummary and feeds are
  // the Space's. Import the records kept first: the feed continues.
  member(m: { space: Uint8Array; seed: Uint8Array; device?: Uint8Array; secrets: Secret[] }, nowMs: number): boolean;
  own(): Uint8Array | null; // this device's feed key once a member
  feeds(): Uint8Array[]; // the feeds replicated (a member's: the Space's)
  changed(): number; // counts the view's changes
  // put and del append to the page's own feed (nowMs: the page's clock,
  // for the HLC) and return its length; the
  // record comes out of takeRecords; call announce once it is stored.
  put(key: string, value: Uint8Array, nowMs: number): number;
  del(key: string, nowMs: number): number;
  announce(): boolean;
  list(prefix: string, after: string, limit: number): { entries: CoreEntry[]; next: string };
  devices(): { feed: Uint8Array; name: string; self: boolean }[];
  // signinReceive hands the member side a sign-in envelope of the topic;
  // handled false: not a sign-in envelope (a members' message).
  signinReceive(envelope: Uint8Array, nowMs: number, from: string): { handled: boolean; publish: Uint8Array[]; shown: CoreRequest | null; error?: string };
  requests(nowMs: number): CoreRequest[];
  approve(id: string, code: string, nowMs: number): Uint8Array; // the approval envelope to publish
  deny(id: string, nowMs: number): Uint8Array; // the denial envelope to publish
  free(): void; // releases the node's functions (not its sessions')
}

// CoreEntry is a key with its versions, winner first.
export interface CoreEntry {
  key: string;
  versions: { value: Uint8Array; deleted: boolean; hlc: number; feed: Uint8Array; index: number }[];
}

// CoreRequest is a join request kept for a person's answer.
export interface CoreRequest {
  id: string;
  space: Uint8Array;
  name: string;
  feed: Uint8Array;
  code: string;
  via: string;
  time: number; // Unix ms, the device's clock
}

type Result<T> = { ok: T; error?: undefined } | { ok?: undefined; error: string };
type Raw = Record<string, (...args: unknown[]) => Result<unknown>>;

function unwrap<T>(r: Result<unknown>): T {
  if (r.error !== undefined) throw new Error(r.error);
  return r.ok as T;
}

// wrap turns an object of {ok}/{error} functions into one that throws.
function wrap<T>(raw: Raw): T {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(raw)) {
    if (typeof f !== "function") {
      out[name] = f; // a value (an asker's safety code, a node's id)
      continue;
    }
    out[name] = (...args: unknown[]) => {
      const v = unwrap<unknown>(f(...args));
      return typeof v === "object" && v !== null && typeof (v as Raw).free === "function"
        ? wrap(v as Raw)
        : v;
    };
  }
  return out as T;
}

export class Core {
  private raw: Raw;
  constructor(raw: Raw) {
    this.raw = raw;
  }
  private call<T>(name: string, ...args: unknown[]): T {
    return unwrap<T>(this.raw[name](...args));
  }
  verifyHead(head: Uint8Array): Head {
    return this.call("verifyHead", head);
  }
  verifyBatch(batch: Uint8Array): Batch {
    return this.call("verifyBatch", batch);
  }
  sealEntry(space: Uint8Array, author: Uint8Array, index: number, secret: Secret, op: Op): Uint8Array {
    return this.call("sealEntry", space, author, index, secret, op);
  }
  openEntry(space: Uint8Array, author: Uint8Array, index: number, data: Uint8Array, secrets: Secret[]): Op {
    return this.call("openEntry", space, author, index, data, secrets);
  }
  computeView(space: Uint8Array, origin: Uint8Array, secrets: Secret[], entries: Entry[]): View {
    return this.call("computeView", space, origin, secrets, entries);
  }
  passwordRequestKey(password: string, space: Uint8Array): { id: Uint8Array; key: Uint8Array } {
    return this.call("passwordRequestKey", password, space);
  }
  safetyCode(joinRequest: Uint8Array): string {
    return this.call("safetyCode", joinRequest);
  }
  checkSafetyCode(joinRequest: Uint8Array, typed: string): void {
    this.call("checkSafetyCode", joinRequest, typed);
  }
  sealEnvelope(e: EnvelopeSeal): Uint8Array {
    return this.call("sealEnvelope", e);
  }
  openEnvelope(key: Uint8Array, envelope: Uint8Array): Envelope {
    return this.call("openEnvelope", key, envelope);
  }
  decodeSigninBody(plain: Uint8Array): SigninBody {
    return this.call("decodeSigninBody", plain);
  }
  // syncProtocol is the libp2p protocol ID of a space's replication
  // stream (/mycel/sync/2.0.0/<16 bytes of its discovery key, hex>).
  syncProtocol(space: Uint8Array): string {
    return this.call("syncProtocol", space);
  }
  // publicKey returns the ed25519 public key (a feed's key) of a seed.
  publicKey(seed: Uint8Array): Uint8Array {
    return this.call("publicKey", seed);
  }
  // The relay directory's requests and replies (core/locate.go,
  // relay/FORMAT.md "Locators and aliases"): the page moves the bytes.
  locatorRequest(code: string, nowMs: number): Uint8Array {
    return this.call("locatorRequest", code, nowMs);
  }
  openLocatorReply(code: string, reply: Uint8Array, nowMs: number): Located {
    return this.call("openLocatorReply", code, reply, nowMs);
  }
  aliasRequest(name: string): Uint8Array {
    return this.call("aliasRequest", name);
  }
  aliasReply(reply: Uint8Array): string {
    return this.call("aliasReply", reply);
  }
  asker(w: AskWith, nowMs: number): Asker {
    return wrap<Asker>(this.call<Raw>("asker", w, nowMs));
  }
  newNode(feeds: Uint8Array[]): CoreNode {
    // wrap also wraps the sessions and receivers the node returns (objects
    // with free).
    return wrap<CoreNode>(this.call<Raw>("newNode", feeds));
  }
}

// Located is an invite code opened with the relay's locator: its space
// (hex), expiry (Unix ms) and where the inviting device is (peer ID and
// multiaddrs, binary; empty when the member deposited none).
export interface Located {
  space: string;
  expires: number;
  peer: Uint8Array;
  addrs: Uint8Array[];
}

// Go is the runtime class wasm_exec.js (from the Go distribution) defines.
declare class Go {
  importObject: WebAssembly.Imports;
  run(instance: WebAssembly.Instance): Promise<void>;
}

// loadCore loads wasm_exec.js (unless the page already has) and the core
// from wasmURL, runs it, and returns its calls.
export async function loadCore(wasmURL: string, wasmExecURL = "wasm_exec.js"): Promise<Core> {
  const g = globalThis as unknown as { Go?: typeof Go; mycelCore?: Raw };
  if (g.Go === undefined) {
    await new Promise<void>((resolve, reject) => {
      const s = document.createElement("script");
      s.src = wasmExecURL;
      s.onload = () => resolve();
      s.onerror = () => reject(new Error(`loading ${wasmExecURL} failed`));
      document.head.appendChild(s);
    });
  }
  const go = new g.Go!();
  const { instance } = await WebAssembly.instantiateStreaming(fetch(wasmURL), go.importObject);
  void go.run(instance); // resolves only if the program exits
  if (g.mycelCore === undefined) throw new Error("the wasm core did not start");
  return new Core(g.mycelCore);
}
