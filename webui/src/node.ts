// The one interface the page is written against: "a node". Two implement
// it: HttpNode (http.ts), the daemon's HTTP API and its server-sent
// events, and BrowserNode (browsernode.ts), a tab that is itself a node
// (src/node, the wasm core). What a node cannot do it says by supports();
// the page hides those controls. Shapes follow the API's JSON (node/api/types.go), with
// byte strings as Uint8Array and the invite's QR code as its modules.

export interface Status {
  version: string;
  peer_id: string;
  addrs: string[];
  device: string;
  data_dir: string;
  started: string;
  spaces: number;
  peers: number;
  // warnings: what the person should know about the node's own storage (a
  // browser node's records refused at start and moved aside).
  warnings?: string[];
}

export interface JoinState {
  space: string;
  code: string; // safety code
  state: "waiting" | "approved" | "denied" | "refused";
  reason?: string;
  since: string;
}

export interface SpaceInfo {
  id: string;
  name: string;
  feed: string;
  approved: boolean;
  writer: boolean;
  feeds: number;
  entries: number;
  keys: number;
  digest: string;
  invalid: number;
  waiting: number;
  /** Feeds frozen by a fork: their writer signed two histories. */
  forked?: string[];
  join?: JoinState;
}

export interface Version {
  value: Uint8Array;
  deleted?: boolean;
  hlc: number;
  feed: string;
  index: number;
}

// An entry's versions: the winner first, then concurrent siblings.
export interface Entry {
  key: string;
  versions: Version[];
}

export interface Page {
  entries: Entry[];
  next?: string;
}

export interface Device {
  feed: string;
  name: string;
  self?: boolean;
  online: boolean;
  last_seen?: string;
}

export interface Invite {
  space: string;
  id: string;
  link: string;
  code: string;
  qr: boolean[][]; // modules, true for dark, quiet zone included
  expires: string;
}

export interface JoinWith {
  invite?: string;
  space?: string;
  password?: string;
  name?: string;
  // member: a member's multiaddr (/p2p/<id> included), for the browser
  // node when the invite is a code or the password is used and the relay
  // does not serve the space (optional: a relay that serves it carries the
  // request and its mirror the data). The daemon ignores it.
  member?: string;
}

// Feature names what a node may not be able to do.
export type Feature = "create" | "join" | "write" | "devices" | "remove" | "invite" | "password" | "approve" | "send" | "leave" | "logout" | "relays";

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

export interface Message {
  sender: string;
  name?: string;
  time: string;
  topic: string;
  data: Uint8Array;
}

export interface Conn {
  addr: string;
  transport: string;
  direction: string;
  limited?: boolean;
}

export interface Peer {
  id: string;
  conns: Conn[];
  spaces?: string[];
}

// SpaceRelay is a relay the space lists (node/space/FORMAT.md, "The
// space's relays") and this device's use of it: GET
// /v1/spaces/{space}/relays (api.SpaceRelay).
export interface SpaceRelay {
  id: string;
  addrs?: string[];
  in_use: boolean; // this device uses it for the space
  connected: boolean;
  reserved_until?: string; // while this device holds a reservation
  circuit?: string[];
  mirror_handed: boolean; // the space's mirror token, of epoch mirror_epoch
  mirror_epoch: number;
  mirror_error?: string;
  error?: string; // the last failure to connect or reserve
  problem?: string; // why the device does not use the entry at all
}

export interface Progress {
  space: string;
  peer: string;
  feed: string;
  have: number;
  want: number;
  bytes_in: number;
  rate: number;
  eta?: number;
}

// A live stream: events go to the callbacks until close.
export interface Subscription {
  close(): void;
}

export interface StreamHandlers<T> {
  item(x: T): void;
  // The stream (re)started: what was missed while it was down must be
  // read again.
  open?(): void;
  error?(msg: string): void;
}

export interface Node {
  // kind: "daemon" (HttpNode) or "browser" (BrowserNode).
  readonly kind: "daemon" | "browser";
  // supports reports whether the node can do f; a method it cannot do
  // throws NodeError("unsupported").
  supports(f: Feature): boolean;
  status(): Promise<Status>;
  spaces(): Promise<SpaceInfo[]>;
  createSpace(name: string): Promise<SpaceInfo>;
  space(id: string): Promise<SpaceInfo>;
  leaveSpace(id: string): Promise<void>;

  list(id: string, prefix: string, after?: string, limit?: number): Promise<Page>;
  put(id: string, key: string, value: Uint8Array): Promise<void>;
  delete(id: string, key: string): Promise<void>;
  watch(id: string, prefix: string, h: StreamHandlers<Entry>): Subscription;

  devices(id: string): Promise<Device[]>;
  removeDevice(id: string, feed: string): Promise<void>;

  createInvite(id: string, ttl?: string): Promise<Invite>;
  setPassword(id: string, password: string): Promise<void>;
  join(w: JoinWith): Promise<JoinState>;
  requests(): Promise<JoinRequest[]>;
  watchRequests(h: StreamHandlers<JoinRequest>): Subscription;
  approve(requestID: string, code: string): Promise<void>;
  deny(requestID: string): Promise<void>;

  send(id: string, topic: string, data: Uint8Array): Promise<void>;
  listen(id: string, topic: string, h: StreamHandlers<Message>): Subscription;

  peers(): Promise<Peer[]>;
  progress(): Promise<Progress[]>;

  // The space's relays (supports("relays")): list them, list one by its
  // multiaddr with /p2p/<peer ID> (the daemon hands it the space's mirror
  // token first), take one off by its peer ID.
  spaceRelays(id: string): Promise<SpaceRelay[]>;
  addRelay(id: string, addr: string): Promise<void>;
  removeRelay(id: string, peer: string): Promise<void>;
}

// NodeError is a refused call: the API's stable code and its message.
export class NodeError extends Error {
  constructor(public code: string, message: string, public status = 0) {
    super(message);
  }
}
