// The page, written against Node (node.ts): the daemon's control panel
// when a daemon serves it (HttpNode), the browser node's UI when a relay
// does (BrowserNode: the relay answers /relay.json). No framework: a few
// views that rebuild their part of the DOM from state. What the node
// cannot do (Node.supports) is hidden.

import type { Entry, JoinRequest, Node, SpaceInfo, SpaceRelay, Subscription } from "./node";
import { NodeError } from "./node";
import { HttpNode } from "./http";
import { BrowserNode, relayAddrOf } from "./browsernode";
import { qrSVG } from "./qr";

type Child = Node_ | string | null | undefined | false;
type Node_ = globalThis.Node;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, any> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k in el && k !== "list") (el as any)[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

// show renders a value: its text when it is UTF-8, else its bytes in hex.
function show(v: Uint8Array): string {
  try {
    return dec.decode(v);
  } catch {
    return "0x" + Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("");
  }
}

const short = (hex: string) => hex.slice(0, 8);

let node: Node = new HttpNode();
const $ = (id: string) => document.getElementById(id)!;

function report(err: unknown) {
  const msg = err instanceof Error ? err.message : String(err);
  const bar = $("error");
  bar.textContent = msg;
  bar.hidden = false;
  if (err instanceof NodeError && err.code === "unauthorized" && node.kind === "daemon") signedOut();
}

function signedOut() {
  document.body.replaceChildren(h("main", { class: "signed-out" },
    h("h1", {}, "Not signed in"),
    h("p", { id: "message" }, "Your session ended. Run ", h("code", {}, "mycel ui"), " on this machine and open the link it prints.")));
}

// run wraps an action: errors go to the error bar.
function run(f: () => Promise<unknown>) {
  return (ev?: Event) => {
    ev?.preventDefault();
    $("error").hidden = true;
    f().catch(report);
  };
}

// State.
let spaces: SpaceInfo[] = [];
let current = "";
let keys = new Map<string, Entry>();
let prefix = "";
let watchSub: Subscription | null = null;
let msgSub: Subscription | null = null;
const requests = new Map<string, JoinRequest>();

// Spaces.

async function loadSpaces() {
  spaces = await node.spaces();
  renderSpaces();
  if (!current && spaces.length > 0) select(spaces[0].id);
}

function renderSpaces() {
  $("spaces").replaceChildren(...spaces.map((s) => h("li", {},
    h("button", { class: s.id === current ? "space current" : "space", "data-space": s.id, onclick: () => select(s.id) },
      s.name, " ", h("small", {}, short(s.id)),
      !s.writer && h("span", { class: "badge" }, s.join ? `join: ${s.join.state}` : "read-only")))));
}

function select(id: string) {
  current = id;
  renderSpaces();
  const s = spaces.find((x) => x.id === id);
  $("space-title").textContent = s ? `${s.name}` : "";
  $("space-id").textContent = id;
  $("space").hidden = false;
  $("invite-out").replaceChildren();
  $("messages-log").replaceChildren();
  watchKeys();
  listenMessages();
  run(refreshSpace)();
  run(refreshRelays)();
}

async function refreshSpace() {
  if (!current) return;
  const [info, devices] = await Promise.all([node.space(current), node.devices(current).catch(() => [])]);
  const i = spaces.findIndex((s) => s.id === info.id);
  if (i >= 0) spaces[i] = info;
  renderSpaces();
  $("space-meta").textContent = `${info.writer ? "writer" : "read-only"} · ${info.keys} keys · ${info.feeds} feeds · ${info.entries} entries` +
    (info.invalid ? ` · ${info.invalid} entries refused` : "") + (info.waiting ? ` · ${info.waiting} waiting for their past` : "");
  const forks = $("space-forks");
  forks.hidden = !info.forked?.length;
  forks.textContent = info.forked?.length
    ? `Forked: ${info.forked.map(short).join(", ")}. The writer of ${info.forked.length === 1 ? "this feed" : "these feeds"} signed two histories that cannot both be true — its key was copied to another device, or a backup was restored and written to again. What was held before the fork stays; nothing more of ${info.forked.length === 1 ? "it" : "them"} is read. Remove that device and add it again with a fresh key.`
    : "";
  $("devices-none").hidden = node.supports("devices");
  $("devices").replaceChildren(...devices.map((d) => h("li", { class: "device" },
    h("span", { class: d.online ? "dot online" : "dot", title: d.online ? "online" : "offline" }),
    h("span", { class: "device-name" }, d.name || "(unnamed)", d.self ? " (this device)" : ""),
    h("small", {}, " ", d.online ? "online" : d.last_seen ? `last seen ${new Date(d.last_seen).toLocaleTimeString()}` : "offline", " · ", short(d.feed)),
    !d.self && node.supports("remove") && h("button", { class: "danger", onclick: run(async () => {
      if (!confirm(`Remove ${d.name || short(d.feed)} from this space?\n\nThe space's keys rotate: the device keeps what it already had but reads nothing written from now on, and its writes no longer count.`)) return;
      await node.removeDevice(current, d.feed);
      await refreshSpace();
    }) }, "Remove"))));
}

// Keys.

function watchKeys() {
  watchSub?.close();
  keys = new Map();
  const id = current;
  const reload = async () => {
    const fresh = new Map<string, Entry>();
    let after = "";
    for (let pages = 0; pages < 10; pages++) {
      const p = await node.list(id, prefix, after);
      for (const e of p.entries) fresh.set(e.key, e);
      if (!p.next) break;
      after = p.next;
    }
    if (id !== current) return;
    keys = fresh;
    renderKeys();
  };
  watchSub = node.watch(id, prefix, {
    open: () => { reload().catch(report); },
    item: (e) => {
      if (e.versions.length === 0 || (e.versions.length === 1 && e.versions[0].deleted)) keys.delete(e.key);
      else keys.set(e.key, e);
      renderKeys();
    },
    error: (msg) => report(new Error(`live updates: ${msg}`)),
  });
}

function renderKeys() {
  const rows = [...keys.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  $("keys").replaceChildren(...rows.map((e) => {
    const live = e.versions.filter((v) => !v.deleted);
    return h("tr", { "data-key": e.key },
      h("td", { class: "key" }, e.key),
      h("td", { class: "values" }, ...e.versions.map((v, i) => h("div", { class: i === 0 ? "value winner" : "value sibling", title: `by ${short(v.feed)} #${v.index}` },
        v.deleted ? h("em", {}, "deleted") : show(v.value),
        i > 0 && h("small", {}, " sibling")))),
      h("td", { class: "actions" },
        live.length > 1 && h("span", { class: "badge" }, `${live.length} siblings`),
        node.supports("write") && h("button", { onclick: () => edit(e.key, e.versions[0] && !e.versions[0].deleted ? show(e.versions[0].value) : "") }, "Edit"),
        node.supports("write") && h("button", { class: "danger", onclick: run(async () => {
          if (confirm(`Delete ${e.key}?`)) await node.delete(current, e.key);
        }) }, "Delete")));
  }));
  $("keys-empty").hidden = rows.length > 0;
}

function edit(key: string, value: string) {
  ($("put-key") as HTMLInputElement).value = key;
  const v = $("put-value") as HTMLTextAreaElement;
  v.value = value;
  v.focus();
}

// Join requests: a prompt per request, on every member's page.

function renderRequests() {
  $("requests").replaceChildren(...[...requests.values()].map((r) => h("div", { class: "request", role: "alertdialog", "data-request": r.id },
    h("p", { class: "request-title" }, "Authorise node ", h("strong", { class: "request-name" }, r.name || "(unnamed)"), "?"),
    h("p", {}, `It asks to join ${r.space_name || short(r.space)} (${r.via}). Check that it shows the same safety code:`),
    h("p", { class: "safety-code" }, r.code),
    h("div", { class: "buttons" },
      h("button", { class: "primary approve", onclick: run(async () => {
        await node.approve(r.id, r.code);
        requests.delete(r.id);
        renderRequests();
        await refreshSpace();
      }) }, "Authorise"),
      h("button", { class: "deny", onclick: run(async () => {
        await node.deny(r.id);
        requests.delete(r.id);
        renderRequests();
      }) }, "Deny")))));
}

function watchRequests() {
  node.watchRequests({
    open: () => { requests.clear(); renderRequests(); },
    item: (r) => { requests.set(r.id, r); renderRequests(); },
  });
  // Requests answered elsewhere leave the list.
  setInterval(() => node.requests().then((rs) => {
    const ids = new Set(rs.map((r) => r.id));
    let changed = false;
    for (const id of requests.keys()) if (!ids.has(id)) { requests.delete(id); changed = true; }
    if (changed) renderRequests();
  }).catch(() => {}), 3000);
}

// Messages.

function listenMessages() {
  msgSub?.close();
  const log = $("messages-log");
  msgSub = node.listen(current, "", {
    item: (m) => {
      log.append(h("li", {}, h("small", {}, new Date(m.time).toLocaleTimeString(), " ", m.name || short(m.sender), " [", m.topic, "] "), show(m.data)));
      log.scrollTop = log.scrollHeight;
    },
  });
}

// Relays: the space's list (node/space/FORMAT.md, "The space's relays")
// and this device's use of each relay. A writer adds one by its multiaddr
// (the daemon connects to it and hands it the space's mirror token before
// listing it) and takes one off. Hidden where the node cannot
// (supports("relays")).

let relaysShown = ""; // the space whose list #relays shows

// relayState says in words what this device does with relay r.
function relayState(r: SpaceRelay): Child[] {
  if (r.problem) return [h("span", { class: "relay-problem" }, `Not used: ${r.problem}`)];
  if (!r.in_use) return ["Listed; not in use yet (the list is read every few seconds)."];
  const parts: string[] = [];
  parts.push(r.connected ? "connected" : "not connected");
  parts.push(r.reserved_until ? `reservation until ${new Date(r.reserved_until).toLocaleTimeString()}` : "no reservation yet");
  parts.push(r.mirror_handed ? `mirror token handed (epoch ${r.mirror_epoch})` : "mirror token not handed yet");
  const out: Child[] = ["In use: " + parts.join(" · ") + "."];
  if (r.error) out.push(h("span", { class: "relay-problem" }, ` Last error: ${r.error}.`));
  if (r.mirror_error) out.push(h("span", { class: "relay-problem" }, ` Mirror token: ${r.mirror_error}.`));
  return out;
}

function renderRelays(rs: SpaceRelay[]) {
  const writer = spaces.find((s) => s.id === current)?.writer ?? false;
  $("relays").replaceChildren(...rs.map((r) => {
    const up = r.in_use && r.connected && !!r.reserved_until;
    return h("li", { class: "relay", "data-relay": r.id },
      h("span", { class: up ? "dot online" : "dot", title: up ? "reserved" : "not reserved" }),
      h("code", { class: "relay-id", title: r.id }, "…" + r.id.slice(-12)),
      writer && h("button", { class: "danger relay-remove", onclick: run(async () => {
        if (!confirm(`Take relay …${r.id.slice(-12)} off this space's list?\n\nEvery device of the space stops using it and gives it no later mirror token; the encrypted copy it already holds stays there until it expires.`)) return;
        await node.removeRelay(current, r.id);
        await refreshRelays();
      }) }, "Remove"),
      h("small", { class: "relay-state" }, ...relayState(r)),
      !!r.addrs?.length && h("small", { class: "relay-state relay-addrs" }, "Listed at ", r.addrs.join(", ")),
      !!r.circuit?.length && h("small", { class: "relay-state relay-circuit" }, "Reachable through it at ", r.circuit.join(", ")));
  }));
  $("relays-empty").hidden = rs.length > 0;
  $("relay-form").hidden = !writer;
}

async function refreshRelays() {
  const id = current;
  if (!id || !node.supports("relays")) return;
  if (relaysShown !== id) {
    relaysShown = id;
    $("relays").replaceChildren();
    $("relay-error").hidden = true;
  }
  // A space this device asked to join has no list to read until it holds
  // the space's keys.
  const approved = spaces.find((s) => s.id === id)?.approved ?? false;
  $("relays-empty").textContent = approved ? "This space lists no relays." : "The space's relays show once this device is in the space.";
  const rs = approved ? await node.spaceRelays(id).catch((e: unknown) => {
    if (e instanceof NodeError && e.code === "not_found") return []; // left meanwhile
    throw e;
  }) : [];
  if (id === current) renderRelays(rs);
}

function wireRelays() {
  $("relay-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("relay-addr") as HTMLInputElement;
    const button = $("relay-form").querySelector("button") as HTMLButtonElement;
    const err = $("relay-error");
    const addr = input.value.trim();
    const id = current;
    err.hidden = true;
    button.disabled = true;
    button.textContent = "Connecting to the relay…";
    node.addRelay(id, addr).then(() => {
      input.value = "";
      return refreshRelays();
    }).catch((e: unknown) => {
      err.textContent = `The relay was not added: ${e instanceof Error ? e.message : String(e)}`;
      err.hidden = false;
      if (e instanceof NodeError && e.code === "unauthorized") report(e);
    }).finally(() => {
      button.disabled = false;
      button.textContent = "Add relay";
    });
  });
}

// Sync progress and connections.

async function refreshNet() {
  const [progress, peers] = await Promise.all([node.progress(), node.peers()]);
  $("progress").replaceChildren(...progress.filter((p) => !current || p.space === current).map((p) => {
    const pct = p.want === 0 ? 100 : Math.min(100, Math.floor((100 * p.have) / p.want));
    return h("li", {}, h("label", {}, `peer ${p.peer.slice(-8)} · feed ${short(p.feed)} · ${p.have}/${p.want}`),
      h("progress", { max: 100, value: pct }, `${pct}%`), ` ${pct}%`);
  }));
  $("peers").replaceChildren(...peers.map((p) => h("li", {}, h("code", {}, p.id.slice(-12)), " ",
    ...p.conns.map((c) => h("span", { class: "badge", title: c.addr }, c.transport, c.limited ? " (limited)" : "", " ", c.direction)))));
  const s = await node.status();
  $("status").textContent = node.kind === "browser"
    ? `browser node ${s.peer_id.slice(-8)} · ${s.peers} peers`
    : `device ${short(s.device)} · ${s.peers} peers · mycel ${s.version}`;
  const warn = $("warnings");
  const ws = s.warnings ?? [];
  if (warn.childElementCount !== ws.length || ws.some((w, i) => warn.children[i].textContent !== w)) {
    warn.replaceChildren(...ws.map((w) => h("li", {}, w)));
  }
  warn.hidden = ws.length === 0;
}

// Wiring.

function wire() {
  wireRelays();
  $("create-form").addEventListener("submit", run(async () => {
    const input = $("create-name") as HTMLInputElement;
    const s = await node.createSpace(input.value.trim());
    input.value = "";
    await loadSpaces();
    select(s.id);
  }));
  let joins = 0; // the newest request's number: an older one's poll stops
  $("join-form").addEventListener("submit", run(async () => {
    const gen = ++joins;
    $("join-out").replaceChildren();
    const invite = ($("join-invite") as HTMLInputElement).value.trim();
    const space = ($("join-space") as HTMLInputElement).value.trim();
    const password = ($("join-password") as HTMLInputElement).value;
    const name = ($("join-name") as HTMLInputElement).value.trim();
    const member = ($("join-member") as HTMLInputElement).value.trim() || undefined;
    const st = await node.join(invite ? { invite, space: space || undefined, name: name || undefined, member } : { space, password, name: name || undefined, member });
    const out = $("join-out");
    const poll = async () => {
      if (gen !== joins) return;
      const info = await node.space(st.space).catch(() => null);
      if (gen !== joins) return;
      const js = info?.join ?? st;
      const state = info?.writer ? "approved" : js.state;
      out.replaceChildren(h("p", {}, "Safety code: ", h("strong", { class: "safety-code", id: "join-code" }, st.code)),
        h("p", { id: "join-state" }, state === "waiting" ? "Waiting for a member to authorise this device: check they see the same code." : `Request ${state}${js.reason ? `: ${js.reason}` : ""}.`));
      if (state === "waiting") setTimeout(() => poll().catch(report), 1000);
      else await loadSpaces();
    };
    await poll();
  }));
  $("filter").addEventListener("input", () => {
    prefix = ($("filter") as HTMLInputElement).value;
    if (current) watchKeys();
  });
  $("put-form").addEventListener("submit", run(async () => {
    const key = ($("put-key") as HTMLInputElement).value;
    const value = ($("put-value") as HTMLTextAreaElement).value;
    if (!key) throw new Error("a key is needed");
    await node.put(current, key, enc.encode(value));
    ($("put-value") as HTMLTextAreaElement).value = "";
  }));
  $("invite-button").addEventListener("click", run(async () => {
    const inv = await node.createInvite(current);
    $("invite-out").replaceChildren(
      qrSVG(inv.qr, "QR code of the invite link"),
      h("p", {}, "Link: ", h("code", { id: "invite-link", class: "wrap" }, inv.link)),
      h("p", {}, "Code: ", h("code", { id: "invite-code" }, inv.code)),
      h("p", {}, h("small", {}, `Works once, until ${new Date(inv.expires).toLocaleString()}.`)));
  }));
  $("password-form").addEventListener("submit", run(async () => {
    const pw = $("password") as HTMLInputElement;
    await node.setPassword(current, pw.value);
    pw.value = "";
    $("password-out").textContent = "Password set.";
  }));
  $("send-form").addEventListener("submit", run(async () => {
    const topic = ($("send-topic") as HTMLInputElement).value || "chat";
    const data = $("send-data") as HTMLInputElement;
    await node.send(current, topic, enc.encode(data.value));
    $("messages-log").append(h("li", { class: "mine" }, h("small", {}, new Date().toLocaleTimeString(), " me [", topic, "] "), data.value));
    data.value = "";
  }));
  $("logout").addEventListener("click", run(async () => {
    await fetch("/logout", { method: "POST", credentials: "same-origin" });
    signedOut();
  }));
}

// chooseNode picks the page's node: a relay that served the page answers
// /relay.json with its peer ID, and the page is then a browser node that
// dials that relay at its own origin; a daemon does not, and the page is
// its control panel, except at /node?relay=<multiaddr>, where a daemon
// serves the page as a browser node that dials that relay.
async function chooseNode(): Promise<Node> {
  if (location.pathname.endsWith("/node")) {
    const relay = new URLSearchParams(location.search).get("relay") ?? "";
    if (relay.length > 512 || !/^\/(ip4|ip6|dns|dns4|dns6)\/[^/\s]+\/tcp\/\d+\/(tls\/)?ws\/p2p\/[1-9A-HJ-NP-Za-km-z]{1,128}$/.test(relay)) {
      throw new Error("Open this page as /node?relay=<the relay's WebSocket multiaddr, /p2p/<its ID> included>: the browser node reaches the space through that relay.");
    }
    $("status").textContent = "starting the browser node…";
    return BrowserNode.open(relay);
  }
  const r = await fetch("relay.json", { credentials: "omit" }).catch(() => null);
  if (r === null || !r.ok || !(r.headers.get("Content-Type") ?? "").startsWith("application/json")) return new HttpNode();
  const info = await r.json().catch(() => null);
  const id = info?.peer_id;
  if (typeof id !== "string" || !/^[1-9A-HJ-NP-Za-km-z]{1,128}$/.test(id)) return new HttpNode();
  $("status").textContent = "starting the browser node…";
  return BrowserNode.open(relayAddrOf(location, id));
}

// shape hides what the node cannot do, and shows what only the browser
// node needs.
function shape() {
  const hide = (id: string, f: Parameters<Node["supports"]>[0]) => { $(id).hidden = !node.supports(f); };
  hide("create-form", "create");
  hide("invite-section", "invite");
  hide("password-form", "password");
  hide("logout", "logout");
  hide("send-form", "send");
  hide("put-form", "write");
  hide("relays-section", "relays");
  const browser = node.kind === "browser";
  document.body.classList.toggle("browser-node", browser);
  $("join-member-field").hidden = !browser;
  $("browser-note").hidden = !browser;
  $("write-none").hidden = node.supports("write");
  if (browser) ($("join-details") as HTMLDetailsElement).open = true;
}

async function start() {
  wire();
  try {
    node = await chooseNode();
    shape();
    await node.status();
  } catch (err) {
    report(err);
    return;
  }
  await loadSpaces();
  if (node.supports("approve")) watchRequests();
  const tick = () => Promise.all([refreshNet(), refreshSpace(), refreshRelays()]).catch(report);
  tick();
  setInterval(tick, 2000);
}

start();
