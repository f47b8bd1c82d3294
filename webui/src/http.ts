// HttpNode: the Node of a mycel daemon, through its HTTP API (the page's
// own origin, signed in by the session cookie) and server-sent events.

import type {
  Device, Entry, Feature, Invite, JoinRequest, JoinState, JoinWith, Message, Node, Page, Peer,
  Progress, SpaceInfo, SpaceRelay, Status, StreamHandlers, Subscription,
} from "./node";
import { NodeError } from "./node";
import { qrFromHalfBlocks } from "./qr";

export function b64encode(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return btoa(s);
}

export function b64decode(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// escapeKey makes a key one path segment, as the API wants ("/" as %2F,
// "." and ".." whole).
function escapeKey(key: string): string {
  if (key === ".") return "%2E";
  if (key === "..") return "%2E%2E";
  return encodeURIComponent(key);
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function entry(e: any): Entry {
  return { key: e.key, versions: (e.versions ?? []).map((v: any) => ({ ...v, value: b64decode(v.value ?? "") })) };
}

function message(m: any): Message {
  return { ...m, data: b64decode(m.data ?? "") };
}

export class HttpNode implements Node {
  readonly kind = "daemon";
  constructor(private base = "") {}

  supports(_f: Feature): boolean { return true; }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    }
    const resp = await fetch(this.base + path, init);
    const text = await resp.text();
    if (!resp.ok) {
      let code = "internal", msg = `HTTP ${resp.status}`;
      try {
        const e = JSON.parse(text);
        code = e.code ?? code;
        msg = e.message ?? msg;
      } catch { /* not JSON */ }
      throw new NodeError(code, msg, resp.status);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private stream<T>(path: string, event: string, conv: (x: any) => T, h: StreamHandlers<T>): Subscription {
    const es = new EventSource(this.base + path, { withCredentials: true });
    es.addEventListener("open", () => h.open?.());
    es.addEventListener(event, (ev) => h.item(conv(JSON.parse((ev as MessageEvent).data))));
    es.addEventListener("error", (ev) => {
      // The server's last event "error" carries data; a dropped
      // connection does not (EventSource then retries by itself).
      const data = (ev as MessageEvent).data;
      if (typeof data === "string") {
        try {
          h.error?.(JSON.parse(data).message ?? data);
        } catch {
          h.error?.(data);
        }
      } else if (es.readyState === EventSource.CLOSED) {
        h.error?.("the stream closed");
      }
    });
    return { close: () => es.close() };
  }

  status() { return this.call<Status>("GET", "/v1/status"); }
  spaces() { return this.call<SpaceInfo[]>("GET", "/v1/spaces"); }
  createSpace(name: string) { return this.call<SpaceInfo>("POST", "/v1/spaces", { name }); }
  space(id: string) { return this.call<SpaceInfo>("GET", `/v1/spaces/${id}`); }
  async leaveSpace(id: string) { await this.call("DELETE", `/v1/spaces/${id}`); }

  async list(id: string, prefix: string, after = "", limit = 200): Promise<Page> {
    const q = new URLSearchParams({ prefix, limit: String(limit) });
    if (after) q.set("after", after);
    const p = await this.call<any>("GET", `/v1/spaces/${id}/keys?${q}`);
    return { entries: p.entries.map(entry), next: p.next };
  }
  async put(id: string, key: string, value: Uint8Array) {
    await this.call("PUT", `/v1/spaces/${id}/keys/${escapeKey(key)}`, { value: b64encode(value) });
  }
  async delete(id: string, key: string) { await this.call("DELETE", `/v1/spaces/${id}/keys/${escapeKey(key)}`); }
  watch(id: string, prefix: string, h: StreamHandlers<Entry>) {
    return this.stream(`/v1/spaces/${id}/watch?${new URLSearchParams({ prefix })}`, "change", entry, h);
  }

  devices(id: string) { return this.call<Device[]>("GET", `/v1/spaces/${id}/devices`); }
  async removeDevice(id: string, feed: string) { await this.call("DELETE", `/v1/spaces/${id}/members/${feed}`); }

  async createInvite(id: string, ttl?: string): Promise<Invite> {
    const inv = await this.call<any>("POST", `/v1/spaces/${id}/invites`, ttl ? { ttl } : {});
    return { ...inv, qr: qrFromHalfBlocks(inv.qr) };
  }
  async setPassword(id: string, password: string) { await this.call("PUT", `/v1/spaces/${id}/password`, { password }); }
  join(w: JoinWith) { return this.call<JoinState>("POST", "/v1/join", w); }
  requests() { return this.call<JoinRequest[]>("GET", "/v1/requests"); }
  watchRequests(h: StreamHandlers<JoinRequest>) { return this.stream("/v1/requests/events", "request", (x) => x as JoinRequest, h); }
  async approve(requestID: string, code: string) { await this.call("POST", `/v1/requests/${requestID}/approve`, { code }); }
  async deny(requestID: string) { await this.call("POST", `/v1/requests/${requestID}/deny`); }

  async send(id: string, topic: string, data: Uint8Array) {
    await this.call("POST", `/v1/spaces/${id}/messages`, { topic, data: b64encode(data) });
  }
  listen(id: string, topic: string, h: StreamHandlers<Message>) {
    const q = topic ? `?${new URLSearchParams({ topic })}` : "";
    return this.stream(`/v1/spaces/${id}/messages${q}`, "message", message, h);
  }

  peers() { return this.call<Peer[]>("GET", "/v1/peers"); }
  progress() { return this.call<Progress[]>("GET", "/v1/progress"); }

  spaceRelays(id: string) { return this.call<SpaceRelay[]>("GET", `/v1/spaces/${id}/relays`); }
  async addRelay(id: string, addr: string) { await this.call("POST", `/v1/spaces/${id}/relays`, { addr }); }
  async removeRelay(id: string, peer: string) { await this.call("DELETE", `/v1/spaces/${id}/relays/${encodeURIComponent(peer)}`); }
}
