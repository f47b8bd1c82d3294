// The relay's directory from the page (relay/FORMAT.md, "Locators and
// aliases", /mycel/locator/1.0.0): a page holding only an invite's short
// code asks the relay that served it for the invite's locator; one holding
// "name@relay" and a password asks it which space the name is. As the
// daemon's client (relay.LookupLocator, relay.ResolveAlias): one stream,
// one request, the page closes its side, one reply; the whole exchange is
// bounded by 10 s and the reply by MaxDirectoryReply bytes. The wasm core
// encodes the request and decodes the reply (core/locate.go); the locator
// opens only with the code (auth.OpenRelayLocator), so a relay that lies
// can only make the sign-in fail.

import { multiaddr } from "@multiformats/multiaddr";
import { base58btc } from "multiformats/bases/base58";
import type { Core, Located } from "../wasmcore";
import type { BrowserHost } from "./net";

export const locatorProtocol = "/mycel/locator/1.0.0";
const maxReply = 3 + 194 + 1024; // core.MaxDirectoryReply
const timeoutMs = 10000; // relay.LocatorTimeout

// exchange sends req to the relay and returns its reply, at most
// maxReply bytes.
async function exchange(host: BrowserHost, relay: string, req: Uint8Array): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(timeoutMs);
  const stream = await host.dialProtocol(multiaddr(relay), locatorProtocol, { runOnLimitedConnection: true, signal });
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    stream.send(req);
    await stream.close({ signal });
    for await (const c of stream) {
      const b = c instanceof Uint8Array ? c : c.subarray();
      n += b.length;
      if (n > maxReply) throw new Error(`the relay's reply exceeds ${maxReply} bytes`);
      chunks.push(b);
      if (signal.aborted) throw new Error("the relay did not answer in 10 s");
    }
  } catch (e) {
    stream.abort(e as Error);
    throw e;
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

// locateCode asks the relay for the locator of the invite code and opens
// it: the space, expiry and the inviting device's peer ID and addresses.
// relay is the relay's multiaddr, /p2p/<id> included. The peer comes back
// as its string form ("" when the member deposited no hints).
export async function locateCode(core: Core, host: BrowserHost, relay: string, code: string): Promise<{ space: string; expires: number; peer: string }> {
  const req = core.locatorRequest(code, Date.now());
  const l: Located = core.openLocatorReply(code, await exchange(host, relay, req), Date.now());
  return { space: l.space, expires: l.expires, peer: l.peer.length > 0 ? base58btc.baseEncode(l.peer) : "" };
}

// resolveAlias asks the relay which space the alias names (hex).
export async function resolveAlias(core: Core, host: BrowserHost, relay: string, name: string): Promise<string> {
  return core.aliasReply(await exchange(host, relay, core.aliasRequest(name)));
}
