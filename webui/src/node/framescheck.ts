// A randomised check of FrameReader (frames.ts), run by node from
// webui/node_browser_test.go (TestFrameReader): the page's framer is a
// decoder of peer input, so it gets its fuzz-like check here, seeded and
// bounded. Prints one JSON line: the cases run and the failures.
// Not part of any bundle the app ships.

import { FrameError, FrameReader } from "./frames";

// node's process, declared here rather than through @types/node, which the
// app does not depend on.
declare const process: { argv: string[] };

// mulberry32: a small seeded PRNG, so a failure can be replayed.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uvarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const seed = Number(process.argv[2] ?? 1);
const rnd = prng(seed);
const int = (n: number) => Math.floor(rnd() * n);
const fails: string[] = [];
let cases = 0;
const max = 4096;

// 1. Frames cut at random points come out whole and in order.
for (let i = 0; i < 500; i++, cases++) {
  const frames: Uint8Array[] = [];
  for (let k = int(6); k >= 0; k--) {
    const body = Uint8Array.from({ length: int(max + 1) }, () => int(256));
    frames.push(concat([Uint8Array.from(uvarint(body.length)), body]));
  }
  const all = concat(frames);
  const r = new FrameReader(() => max);
  const got: Uint8Array[] = [];
  for (let off = 0; off < all.length; ) {
    const n = Math.min(all.length - off, int(rnd() < 0.3 ? 3 : 3000));
    got.push(...r.push(all.subarray(off, off + n)));
    off += n;
  }
  if (got.length !== frames.length || got.some((g, j) => g.length !== frames[j].length || g.some((b, x) => b !== frames[j][x])) || r.pending !== 0) {
    fails.push(`case ${i}: ${frames.length} frames cut at random came out as ${got.length}`);
  }
}

// 2. A length over the bound is refused from its prefix alone, before a
// byte of the frame is buffered; so is a varint of 11 bytes.
for (const [what, prefix] of [
  ["max+1", uvarint(max + 1)],
  ["1 GiB", uvarint(1 << 30)],
  ["2^63", [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  ["11-byte varint", [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]],
] as [string, number[]][]) {
  cases++;
  const r = new FrameReader(() => max);
  try {
    r.push(Uint8Array.from(prefix));
    fails.push(`${what}: accepted`);
  } catch (e) {
    if (!(e instanceof FrameError)) fails.push(`${what}: ${(e as Error).message}`);
  }
}

// 3. The bound is read at each frame: it grows after the opening.
{
  cases++;
  let bound = 16;
  const r = new FrameReader(() => bound);
  const big = concat([Uint8Array.from(uvarint(100)), new Uint8Array(100)]);
  try {
    r.push(big);
    fails.push("a 100-byte frame passed a bound of 16");
  } catch {
    // refused, as it must be
  }
  bound = 200;
  if (new FrameReader(() => bound).push(big).length !== 1) fails.push("a 100-byte frame refused under a bound of 200");
}

// 4. Random bytes: frames within the bound, or FrameError — nothing else.
for (let i = 0; i < 2000; i++, cases++) {
  const r = new FrameReader(() => max);
  const junk = Uint8Array.from({ length: int(64) }, () => (rnd() < 0.5 ? int(256) : 0x80 | int(128)));
  try {
    for (const f of r.push(junk)) if (f.length > max + 10) fails.push(`junk ${i}: a frame of ${f.length} bytes`);
  } catch (e) {
    if (!(e instanceof FrameError)) fails.push(`junk ${i}: ${(e as Error).message}`);
  }
}

console.log(JSON.stringify({ seed, cases, fails }));
