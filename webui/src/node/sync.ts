// One /mycel/sync session over a libp2p stream: the wasm core's session
// (node/replication's state machine) fed the frames the stream brings and
// its frames written back — the page's side of what node/syncnet's session
// does for a daemon. The stream stays open after catching up: new heads
// the peer announces are fetched as they come.

import type { Stream } from "@libp2p/interface";
import type { Session } from "../wasmcore";
import { FrameReader } from "./frames";

// SessionStats are one session's counters, for the page and the tests.
export interface SessionStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  lastFrameMs: number; // when the last frame came in, ms after the session started
  stepMs: number; // time spent in the core's step (verify, store, plan)
  error?: string;
  ended: boolean;
}

// idleMs bounds the wait for the peer's next bytes, as the daemon's
// IdleTimeout (2 minutes) does; a peer that sends nothing is dropped.
const idleMs = 120_000;

// Flusher is set by runSession while the session runs: it sends what the
// session has to say without a frame from the peer (s.flush: heads of
// feeds that grew through the node's other sessions).
export interface Flusher {
  flush?: () => void;
  // gate, when set by the page, returns a promise to wait for before the
  // session next steps the core (start, a peer's frame, a flush): a
  // write's entry is in the core before it is stored, and no peer may be
  // offered it in between (main.ts, write).
  gate?: () => Promise<void> | undefined;
  // stop, set by the page when it replaces the session (main.ts, serve),
  // ends it before its next step: the frames it has read and not stepped
  // are not ingested (the new session asks for what the core lacks).
  stop?: string;
}

// runSession pumps frames between stream and s until the stream ends or
// either side fails; it resolves with the stats (error set on a failure,
// after which the stream was aborted). It frees s.
export async function runSession(stream: Stream, s: Session, stats: SessionStats, fl: Flusher = {}): Promise<SessionStats> {
  const reader = new FrameReader(() => s.maxFrame());
  // Sends go one after another, in the order asked, whether the frames
  // answer the peer's or come from flush.
  let chain: Promise<void> = Promise.resolve();
  const write = async (frames: Uint8Array[]) => {
    for (const f of frames) {
      stats.framesOut++;
      if (!stream.send(f)) await stream.onDrain();
    }
  };
  const send = (frames: Uint8Array[]): Promise<void> => (chain = chain.then(() => write(frames)));
  const gated = async () => {
    for (let g = fl.gate?.(); g !== undefined; g = fl.gate?.()) await g;
  };
  fl.flush = () => {
    if (stats.ended) return;
    void gated()
      .then(() => {
        if (!stats.ended) return send(s.flush());
      })
      .catch((e) => stream.abort(e as Error));
  };
  let idle: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => stream.abort(new Error("sync: the peer sent nothing for 2 minutes")), idleMs);
  };
  const t0 = performance.now();
  try {
    arm();
    await gated();
    await send(s.start());
    for await (const chunk of stream) {
      arm();
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
      stats.bytesIn += bytes.length;
      for (const f of reader.push(bytes)) {
        stats.framesIn++;
        await gated();
        if (fl.stop !== undefined) throw new Error(fl.stop);
        const ts = performance.now();
        const out = s.step(f);
        stats.stepMs += performance.now() - ts;
        await send(out);
        stats.lastFrameMs = performance.now() - t0;
      }
    }
    if (reader.pending > 0) throw new Error("sync: the stream ended inside a frame");
  } catch (e) {
    stats.error = (e as Error).message;
    stream.abort(e as Error);
  } finally {
    fl.flush = undefined;
    clearTimeout(idle);
    stats.ended = true;
    s.free();
  }
  return stats;
}
