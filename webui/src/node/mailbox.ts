// The page's fetch of a relay's mailbox (relay/FORMAT.md, "Mailbox"):
// one stream, one request, one reply, the whole exchange bounded by
// mailboxTimeoutMs (the relay's MailboxTimeout). The relay writes its
// hello (version ‖ 32-byte challenge) first; the core signs the fetch
// request over it (Members.mailboxFetch); the reply, read up to
// maxReplyBytes whatever it says, goes to the core (Members.stored),
// which decodes and bounds it.

import type { Connection } from "@libp2p/interface";

export const mailboxProtocol = "/mycel/mailbox/1.0.0";
export const mailboxTimeoutMs = 10_000;
const helloSize = 33;
// 1 + 1 + 2 + 256 × 4 + 1 MiB + 64 KiB: the largest reply a relay sends.
const maxReplyBytes = 4 + 256 * 4 + (1 << 20) + 65536;

// exchange runs one fetch on a new stream of conn: request answers the
// relay's hello with the signed request; it resolves with the reply's
// bytes.
export async function exchange(conn: Connection, request: (hello: Uint8Array) => Uint8Array): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(mailboxTimeoutMs);
  const stream = await conn.newStream(mailboxProtocol, { runOnLimitedConnection: true, signal });
  const onAbort = () => stream.abort(new Error("mailbox: timed out"));
  signal.addEventListener("abort", onAbort);
  try {
    const chunks: Uint8Array[] = [];
    let got = 0;
    let sent = false;
    for await (const chunk of stream) {
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
      got += bytes.length;
      if (got > helloSize + maxReplyBytes) throw new Error(`mailbox: a reply over ${maxReplyBytes} bytes`);
      chunks.push(bytes);
      if (!sent && got >= helloSize) {
        const all = concat(chunks);
        if (all.length > helloSize) throw new Error("mailbox: the relay wrote before the request");
        chunks.length = 0;
        sent = true;
        const req = request(all);
        if (!stream.send(req)) await stream.onDrain();
        void stream.close().catch(() => {});
      }
    }
    if (!sent) throw new Error("mailbox: no hello");
    return concat(chunks);
  } catch (e) {
    stream.abort(e as Error);
    throw e;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
