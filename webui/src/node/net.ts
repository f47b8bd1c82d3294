// The browser node's libp2p host (DESIGN.md, "The browser node"): the
// transports a page has — WebSocket, WebTransport and WebRTC-direct to a
// relay or a reachable daemon, circuit relay v2 to reach a daemon through
// the relay, and WebRTC (private-to-private, signalled over a relayed
// connection) to reach another page — with noise, yamux, identify and
// gossipsub. By default a page listens on nothing and is reached through
// the connections it dials; started with listen addresses
// (".../p2p/<relay>/p2p-circuit" and "/webrtc") it reserves a slot on that
// relay and accepts WebRTC connections signalled through it.

import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { gossipsub } from "@libp2p/gossipsub";
import { identify } from "@libp2p/identify";
import type { Connection, Libp2p, PrivateKey } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import { webRTC, webRTCDirect } from "@libp2p/webrtc";
import { webSockets } from "@libp2p/websockets";
import { webTransport } from "@libp2p/webtransport";
import { createLibp2p } from "libp2p";

export type BrowserHost = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>; pubsub: ReturnType<ReturnType<typeof gossipsub>> }>;

export interface HostOptions {
  // iceServers for WebRTC; none by default: the relay and daemons are
  // reached by their own addresses (WebRTC-direct carries its certhash),
  // and a closed network has no STUN server to ask.
  iceServers?: RTCIceServer[];
  // privateKey is the host's identity (its peer ID); a new one if absent.
  privateKey?: PrivateKey;
  // listen: the host's listen addresses (none by default).
  listen?: string[];
}

export async function createHost(opts: HostOptions = {}): Promise<BrowserHost> {
  return createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen ?? [] },
    transports: [
      webSockets(),
      webTransport(),
      webRTCDirect({ rtcConfiguration: { iceServers: opts.iceServers ?? [] } }),
      // Page to page: the SDP offer and answer go over a relayed
      // connection, then the data flows over the WebRTC connection.
      webRTC({ rtcConfiguration: { iceServers: opts.iceServers ?? [] } }),
      circuitRelayTransport(),
    ],
    // A page's dial through a circuit, and a WebRTC dial signalled over
    // one (SDP both ways, ICE, noise), has taken over 6 s (libp2p's
    // per-address default) on a loaded machine; the caller's signal
    // still bounds each dial (connect, replicate: timeoutMs).
    connectionManager: { dialTimeout: 30_000, addressDialTimeout: 25_000, inboundUpgradeTimeout: 25_000 },
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // libp2p's browser default refuses to dial private and loopback
    // addresses; a relay or daemon on the LAN or this machine is one.
    connectionGater: { denyDialMultiaddr: () => false },
    services: {
      identify: identify(),
      // As every mycel node (ephemeral/p2p.PubSubOptions): no gossipsub
      // signature, author or sequence number — the envelope is signed —
      // and SHA-256 of the message's bytes as its ID, which a forwarder
      // cannot give a forgery.
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        globalSignaturePolicy: "StrictNoSign",
        msgIdFn: async (m) => new Uint8Array(await crypto.subtle.digest("SHA-256", m.data as BufferSource)),
      }),
    },
  });
}

// dial dials addr within timeoutMs. A failure says how long it ran and the
// last step libp2p reported (the relay dialled, the SDP offer sent, ICE
// candidates read, ...): a WebRTC dial through a relay has many, and
// "signal timed out" alone does not say which one stalled.
export async function dial(h: BrowserHost, addr: Multiaddr, timeoutMs: number): Promise<Connection> {
  const t0 = performance.now();
  let step = "none";
  try {
    return await h.dial(addr, {
      signal: AbortSignal.timeout(timeoutMs),
      onProgress: (e) => {
        step = e.type;
      },
    });
  } catch (e) {
    const ms = Math.round(performance.now() - t0);
    throw new Error(`dial ${addr.toString()}: ${(e as Error).message} (after ${ms} ms; last step ${step})`, { cause: e });
  }
}
