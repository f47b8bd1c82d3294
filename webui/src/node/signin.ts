// Sign-in in the page, the asking side (issue 14): the page asks to join a
// space with an invite (link or code) or the space's password, as a new
// device. The protocol is node/signin's Device, run in the wasm core
// (core.Asker); this file is its driver, as node/signin.go is the
// daemon's: it publishes the request on the space's gossipsub topic,
// hands the core the envelopes that arrive, steps it on its timer, tries
// the approvals it receives by replicating the space with the keyring's
// secrets, and ends once the page's view holds its own feed as a writer.
//
// Nothing is stored: the keys the page made for the request and the
// secrets it received live in memory (a page that reloads asks again).
// A refused request (wrong password, used or expired invite, denial)
// leaves no space state behind.

import { TopicValidatorResult } from "@libp2p/gossipsub";
import { multiaddr } from "@multiformats/multiaddr";
import type { Asker, Core, CoreNode } from "../wasmcore";
import { type BrowserHost, dial } from "./net";

export interface SignInOptions {
  invite?: string; // an invite link or code (`mycel invite`)
  space?: string; // hex: with a password, or with a code that does not name it
  password?: string;
  name?: string; // the device name members see (default: the browser's)
  addr: string; // the multiaddr of a member (direct or a circuit), or of a relay that mirrors the space; /p2p/<id> included
  // fallback: the multiaddr of the page's relay, replicated with (its
  // mirror of the space) when addr cannot be reached or its replication
  // fails. Empty or equal to addr: none.
  fallback?: string;
  timeoutMs?: number;
}

// What the driver needs of the page's node (main.ts).
export interface SignInHost {
  core: Core;
  host: BrowserHost;
  // replicate runs the space's sessions with the secrets of a candidate
  // keyring, replacing any earlier state of the space; it returns the
  // node the sessions fill once the session's stream is open.
  replicate(addr: string, space: string, secrets: { epoch: number; secret: string }[], feeds: string[], timeoutMs: number): Promise<CoreNode>;
  // drop forgets the space's state (a refused request keeps nothing).
  drop(space: string): void;
  // approved makes the page a member of the space it was approved in,
  // writing to the feed of seed (the request's) with its device key.
  approved?(space: string, seed: Uint8Array, device: Uint8Array): void;
}

export interface SignInState {
  space: string;
  feed: string;
  safetyCode: string;
  state: string; // waiting, approved, denied, refused (node/signin)
  reason: string;
  candidates: number;
  published: number; // requests published
  error: string; // the last error of a step or trial (for the tests' logs)
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// defaultName names the device as members see it: "Chromium on Linux".
function defaultName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chromium" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /Linux/.test(ua) ? "Linux" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /iPhone|iPad/.test(ua) ? "iOS" : "";
  return os ? `${browser} on ${os}` : browser;
}

// A request in progress: its asker and the loop that drives it.
interface Running {
  asker: Asker;
  st: SignInState;
  node?: CoreNode; // the node of the candidate being tried or approved
  wake: () => void;
  done: boolean;
}

const running = new Map<string, Running>();

// noPeerMs: how long a request waits for a peer on the space's topic (the
// relay's router, or a member) before it ends as refused.
const noPeerMs = 20000;

// signIn starts asking and resolves once the request is published-ready
// with its safety code; signInState follows it. A malformed, expired or
// wrongly typed invite throws and starts nothing.
export async function signIn(h: SignInHost, o: SignInOptions): Promise<SignInState> {
  const asker = h.core.asker({ invite: o.invite, space: o.space, password: o.password, name: o.name ?? defaultName() }, Date.now());
  const space = toHex(asker.space);
  const old = running.get(space);
  if (old !== undefined && !old.done) {
    asker.free();
    throw new Error(`already signing in to ${space}`);
  }
  const timeoutMs = o.timeoutMs ?? 15000;
  const st: SignInState = { space, feed: toHex(asker.feed), safetyCode: asker.safetyCode, state: "waiting", reason: "", candidates: 0, published: 0, error: "" };
  const r: Running = { asker, st, wake: () => {}, done: false };
  running.set(space, r);
  const pubsub = h.host.services.pubsub;
  pubsub.topicValidators.set(asker.topic, (_peer, msg) => {
    try {
      const u = asker.receive(msg.data, Date.now());
      if (u.wake) r.wake();
    } catch (e) {
      st.error = (e as Error).message.slice(0, 200);
    }
    // The page is a leaf: it forwards no sign-in envelope.
    return TopicValidatorResult.Ignore;
  });
  pubsub.subscribe(asker.topic);
  const fallback = o.fallback !== undefined && o.fallback !== "" && o.fallback !== o.addr ? o.fallback : undefined;
  let addrs = fallback === undefined ? [o.addr] : [o.addr, fallback];
  const errs: string[] = [];
  for (const a of [...addrs]) {
    try {
      await dial(h.host, multiaddr(a), timeoutMs);
      break;
    } catch (e) {
      errs.push((e as Error).message); // names the address
      addrs = addrs.slice(1); // not reached: not replicated with
    }
  }
  if (addrs.length === 0) {
    const msg = `no member reached through this relay: could not reach ${errs.join("; ")}`;
    finish(h, r, "refused", msg);
    throw new Error(msg);
  }
  void drive(h, r, addrs, timeoutMs);
  return { ...st };
}

// signInState returns the request's state.
export function signInState(space: string): SignInState {
  const r = running.get(space);
  if (r === undefined) throw new Error(`space ${space}: no sign-in`);
  return { ...r.st };
}

function finish(h: SignInHost, r: Running, state: string, reason: string): void {
  r.done = true;
  r.st.state = state;
  r.st.reason = reason;
  h.host.services.pubsub.unsubscribe(r.asker.topic);
  h.host.services.pubsub.topicValidators.delete(r.asker.topic);
  if (state !== "approved") {
    r.node = undefined;
    h.drop(r.st.space); // nothing of a refused request stays
  } else {
    try {
      h.approved?.(r.st.space, r.asker.seed, r.asker.device);
    } catch (e) {
      r.st.error = `member: ${(e as Error).message.slice(0, 200)}`;
    }
  }
  r.asker.free();
}

// drive is the request's loop, the page's asker (node/signin.go askStep):
// end as approved once the node's view holds this device's feed, try the
// next candidate approval, step; sleep until the step's time or a wake.
//
// A candidate is replicated from addrs[0] (the member, or the relay's
// mirror), then from addrs[1] (the relay) if that fails: the approval's
// add-writer op reaches the page from the approving member's feed, which
// the relay's mirror holds too.
//
// A request no peer on the space's topic hears within noPeerMs (the
// relay does not serve the space, and the member given, if any, is not
// there) ends as refused, saying so, rather than waiting for nobody.
async function drive(h: SignInHost, r: Running, addrs: string[], timeoutMs: number): Promise<void> {
  const a = r.asker;
  const st = r.st;
  const noPeerBy = Date.now() + noPeerMs;
  for (;;) {
    let next = 1000;
    if (r.node !== undefined && a.checkApproved(r.node)) {
      finish(h, r, "approved", "");
      return;
    }
    const t = a.nextTrial(Date.now());
    if (t.secrets !== undefined) {
      let opened = 0;
      let err: string | undefined;
      const secrets = t.secrets.map((s) => ({ epoch: s.epoch, secret: toHex(s.secret) }));
      const errs: string[] = [];
      for (const addr of addrs) {
        try {
          r.node = await h.replicate(addr, st.space, secrets, (t.feeds ?? []).map(toHex), timeoutMs);
          opened = 1;
          break;
        } catch (e) {
          errs.push(`${addr}: ${(e as Error).message}`);
        }
      }
      if (opened === 0) {
        err = `no member reached through this relay: ${errs.join("; ")}`;
        st.error = err.slice(0, 400);
      }
      next = Math.min(next, a.tried(opened, err));
    } else if (t.waitMs > 0) {
      next = Math.min(next, t.waitMs);
    }
    const peers = h.host.services.pubsub.getSubscribers(a.topic).length;
    if (peers === 0 && st.published === 0 && Date.now() > noPeerBy) {
      finish(h, r, "refused", "no member reached through this relay: it does not serve this space, and no member's address reached one; give a member's address or an invite link");
      return;
    }
    try {
      const s = a.step(Date.now(), peers);
      if (s.publish !== null) {
        await h.host.services.pubsub.publish(a.topic, s.publish);
        st.published++;
      }
      next = Math.min(next, s.nextMs);
    } catch (e) {
      st.error = (e as Error).message.slice(0, 200);
    }
    const s = a.state();
    st.candidates = s.candidates;
    st.reason = s.reason;
    if (s.state !== "waiting") {
      finish(h, r, s.state, s.reason);
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(next, 50));
      r.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    r.wake = () => {};
  }
}
