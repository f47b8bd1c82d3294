// Length-prefixed frames of /mycel/sync (node/replication FORMAT.md,
// "Framing"): uvarint(len) ‖ message. FrameReader cuts a byte stream that
// arrives in arbitrary chunks into whole frames, prefix included, which is
// what the wasm core's Session.step takes. Peer input: the prefix is
// checked against the current bound before any of the frame is buffered,
// and a varint longer than 10 bytes is refused, as the Go reader does.

export class FrameError extends Error {}

// MaxVarintLen is the longest uvarint of a 64-bit length.
const MaxVarintLen = 10;

export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  // max returns the largest frame body accepted now (the core's bound: 4
  // KiB until the peer's proof verified, then 16 MiB + 64 KiB).
  constructor(private max: () => number) {}

  // push takes the next bytes of the stream and returns the frames they
  // complete, in order. It throws FrameError on a frame over the bound or
  // a malformed prefix; the caller then resets the stream.
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: Uint8Array[] = [];
    for (;;) {
      const p = this.prefix();
      if (p === undefined) break;
      const [len, n] = p;
      if (len > this.max()) throw new FrameError(`frame of ${len} bytes over the bound of ${this.max()}`);
      if (this.buffered < n + len) break;
      out.push(this.take(n + len));
    }
    return out;
  }

  // pending is how many bytes wait for the rest of their frame.
  get pending(): number {
    return this.buffered;
  }

  // prefix decodes the uvarint at the start of the buffer: [value, its
  // length], or undefined while it is incomplete.
  private prefix(): [number, number] | undefined {
    let v = 0;
    let scale = 1;
    let n = 0;
    for (const c of this.chunks) {
      for (const b of c) {
        n++;
        if (n > MaxVarintLen) throw new FrameError("frame length: varint too long");
        v += (b & 0x7f) * scale;
        if (b < 0x80) {
          return [v, n];
        }
        scale *= 128;
      }
    }
    return undefined;
  }

  // take removes and returns the first n buffered bytes as one array.
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
