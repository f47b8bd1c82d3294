// The wasm core's checks in the browser (webui/wasm_browser_test.go): the
// test vectors of webui/wasm/core/testdata/vectors.json verified through
// the JavaScript API, as vectors_test.go verifies them in Go, and one
// replication session between two in-page nodes driven frame by frame.
// Bundled on its own by the test; not part of the app.

import { Core, Secret, loadCore } from "./wasmcore";

// Go's JSON encodes []byte as base64.
function b64(s: string | null | undefined): Uint8Array {
  if (!s) return new Uint8Array();
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function secrets(ss: J[]): Secret[] {
  return ss.map((s) => ({ epoch: s.Epoch, secret: b64(s.Secret) }));
}

// expect runs f and reports whether it agreed with valid: a valid vector
// must verify and pass check, an invalid one must throw.
function expect(fails: string[], what: string, valid: boolean, f: () => boolean) {
  let ok: boolean;
  try {
    ok = f();
    if (!valid) {
      fails.push(`${what}: accepted a vector with a flipped byte`);
      return;
    }
  } catch (e) {
    if (valid) fails.push(`${what}: refused: ${(e as Error).message}`);
    return;
  }
  if (!ok) fails.push(`${what}: wrong contents`);
}

export interface Report {
  checked: number;
  refused: number; // invalid vectors refused
  fails: string[];
}

export function checkVectors(core: Core, v: J): Report {
  const fails: string[] = [];
  let checked = 0;
  let refused = 0;
  const count = (valid: boolean) => {
    checked++;
    if (!valid) refused++;
  };
  v.Heads.forEach((h: J, i: number) => {
    count(h.Valid);
    expect(fails, `head ${i}`, h.Valid, () => {
      const got = core.verifyHead(b64(h.Bytes));
      return eq(got.key, b64(h.Key)) && got.length === h.Length && eq(got.root, b64(h.Root));
    });
  });
  v.Batches.forEach((b: J, i: number) => {
    count(b.Valid);
    expect(fails, `batch ${i}`, b.Valid, () => {
      const got = core.verifyBatch(b64(b.Bytes));
      const entries = got.runs.flatMap((r) => r.entries);
      const want = (b.Entries as string[]).map(b64);
      return got.head.length === b.Length && entries.length === want.length && entries.every((e, k) => eq(e, want[k]));
    });
  });
  v.Entries.forEach((e: J, i: number) => {
    count(e.Valid);
    expect(fails, `entry ${i}`, e.Valid, () => {
      const op = core.openEntry(b64(e.Space), b64(e.Author), e.Index, b64(e.Data), secrets(e.Secrets));
      return op.kind === e.Op.Kind && op.key === e.Op.Key && eq(op.value ?? new Uint8Array(), b64(e.Op.Value)) && op.hlc === BigInt(e.Op.HLC);
    });
  });
  // The view: the same digest and contents, and a re-sealed entry opens to
  // the same op (sealing in the browser, opening in Go's rules).
  const vv = v.View;
  count(true);
  expect(fails, "view", true, () => {
    const entries = (vv.Entries as J[]).map((e) => ({ author: b64(e.Author), index: e.Index, data: b64(e.Data) }));
    const got = core.computeView(b64(vv.Space), b64(vv.Origin), secrets(vv.Secrets), entries);
    const want = vv.KVs as J[];
    return eq(got.digest, b64(vv.Digest)) && got.kvs.length === want.length &&
      got.kvs.every((kv, k) => kv.key === want[k].Key && eq(kv.value, b64(want[k].Value)) && kv.deleted === want[k].Deleted);
  });
  count(true);
  expect(fails, "seal entry", true, () => {
    const sp = b64(vv.Space), author = b64(vv.Origin), ss = secrets(vv.Secrets);
    const sealed = core.sealEntry(sp, author, 7, ss[0], { kind: "put", key: "from-the-browser", value: new TextEncoder().encode("hi"), hlc: 9n << 16n });
    const op = core.openEntry(sp, author, 7, sealed, ss);
    let moved = false;
    try {
      core.openEntry(sp, author, 8, sealed, ss);
      moved = true;
    } catch {
      // bound to its index: refused elsewhere
    }
    return op.key === "from-the-browser" && op.hlc === 9n << 16n && !moved;
  });
  v.Envelopes.forEach((e: J, i: number) => {
    count(e.Valid);
    expect(fails, `envelope ${i}`, e.Valid, () => {
      const got = core.openEnvelope(b64(e.Key), b64(e.Bytes));
      return eq(got.sender, b64(e.Sender)) && eq(got.plaintext, b64(e.Plaintext));
    });
  });
  v.Signin.forEach((s: J, i: number) => {
    count(s.Valid);
    const rk = core.passwordRequestKey(s.Password, b64(s.Space));
    if (!eq(rk.id, b64(s.KeyID))) fails.push(`signin ${i}: password key ID differs`);
    expect(fails, `signin ${i}`, s.Valid, () => {
      const env = core.openEnvelope(rk.key, b64(s.Envelope));
      const body = core.decodeSigninBody(env.plaintext);
      core.checkSafetyCode(body.request, s.SafetyCode);
      return body.kind === "join-request" && body.name === s.Name && body.safetyCode === s.SafetyCode &&
        core.safetyCode(body.request) === s.SafetyCode;
    });
  });
  return { checked, refused, fails };
}

// checkReplication makes two in-page nodes, writes entries to a feed on
// one, and pumps one replication session's frames between them until both
// are quiet; it returns the second node's length of the feed and how long
// the session took (opening, proofs, verification and storing included).
export function checkReplication(core: Core, v: J, entries: number): { length: number; frames: number; ms: number } {
  const sp = b64(v.View.Space);
  const ss = secrets(v.View.Secrets);
  const seed = new Uint8Array(32).fill(9);
  const key = core.publicKey(seed);
  const a = core.newNode([key]);
  for (let i = 0; i < entries; i += 4096) { // feed.MaxAppendEntries per append
    a.append(seed, Array.from({ length: Math.min(4096, entries - i) }, (_, k) => new TextEncoder().encode(`entry ${i + k}`)));
  }
  const t0 = performance.now();
  const b = core.newNode([key]);
  const nonce = (x: number) => new Uint8Array(32).fill(x);
  const sa = a.session({ localID: nonce(1), remoteID: nonce(2), nonce: crypto.getRandomValues(new Uint8Array(32)), space: sp, secrets: ss });
  const sb = b.session({ localID: nonce(2), remoteID: nonce(1), nonce: crypto.getRandomValues(new Uint8Array(32)), space: sp, secrets: ss });
  let toB = sa.start();
  let toA = sb.start();
  let frames = 0;
  for (let i = 0; i < 10000 && (toA.length > 0 || toB.length > 0); i++) {
    const nextA: Uint8Array[] = [];
    const nextB: Uint8Array[] = [];
    for (const f of toB) nextA.push(...sb.step(f));
    for (const f of toA) nextB.push(...sa.step(f));
    frames += toA.length + toB.length;
    toA = nextA;
    toB = nextB;
  }
  const ms = performance.now() - t0;
  const length = b.length(key);
  for (const x of [sa, sb, a, b]) x.free();
  return { length, frames, ms };
}

// benchView seals n puts by the space's origin (1000 keys) and computes the
// view from them; it returns the view's key count and how long sealing and
// the view took.
export function benchView(core: Core, v: J, n: number): { keys: number; sealMs: number; viewMs: number } {
  const sp = b64(v.View.Space), origin = b64(v.View.Origin), ss = secrets(v.View.Secrets);
  const enc = new TextEncoder();
  const t0 = performance.now();
  const entries = Array.from({ length: n }, (_, i) => ({
    author: origin,
    index: i,
    data: core.sealEntry(sp, origin, i, ss[0], { kind: "put", key: `key ${i % 1000}`, value: enc.encode(`value ${i}`), hlc: BigInt(i + 1) << 16n }),
  }));
  const t1 = performance.now();
  const view = core.computeView(sp, origin, ss, entries);
  return { keys: view.kvs.length, sealMs: t1 - t0, viewMs: performance.now() - t1 };
}

// The test page calls this with the URLs it serves.
(globalThis as unknown as { mycelWasmCheck: unknown }).mycelWasmCheck = async (wasmURL: string, vectorsURL: string, entries: number) => {
  const t0 = performance.now();
  const core = await loadCore(wasmURL);
  const loadMs = performance.now() - t0;
  const v = await (await fetch(vectorsURL)).json();
  const report = checkVectors(core, v);
  const repl = checkReplication(core, v, entries);
  const bv = benchView(core, v, entries);
  return { ...report, replicated: repl.length, frames: repl.frames, loadMs, replMs: repl.ms, viewKeys: bv.keys, sealMs: bv.sealMs, viewMs: bv.viewMs };
};
