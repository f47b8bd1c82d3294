// The browser node's durable store: IndexedDB behind the wasm core's
// in-memory store (wasm/core/persist.go says why and what a record is).
//
// One database per store name, three object stores:
//   - "keys": "wrap", an AES-GCM-256 CryptoKey made non-extractable by
//     WebCrypto: the page's scripts can use it but not read it out. It
//     seals what the core needs as raw bytes (epoch secrets): the core
//     derives keys from them in Go, which WebCrypto cannot do for it.
//     It seals the page's libp2p identity key too ("identity"): js-libp2p
//     signs with the raw key (noise's handshake), so it cannot be a
//     non-extractable WebCrypto key; sealed, it is unreadable without
//     "wrap" (a copy of the profile's files carries "wrap" too: sealing
//     keeps the raw keys from scripts that only read IndexedDB's values,
//     not from someone who holds the profile and runs this page).
//   - "spaces": per space (hex ID), the feeds replicated and the member's
//     epoch secrets sealed under "wrap" (AES-GCM, the space's hex ID as
//     additional data: a sealed blob moved to another space does not open).
//   - "records": the core's records (verified batches) in the order they
//     were ingested, one auto-increment key each, indexed by space.
//
// Writes: after each step of a session the page takes the core's new
// records and puts them in one transaction; transactions are queued in
// order, so IndexedDB always holds a prefix of what the core ingested. A
// tab closed between a step and its transaction loses the newest records
// only; the page authors nothing, so they are fetched again from peers by
// the next session.
//
// Reads: at start every record is handed to the core's import, which
// verifies it again as a peer's batch (a damaged or edited record is
// refused, counted and reported, not shown); at most maxRecords records
// and maxBytes bytes are read back per space.

// maxRecords and maxBytes bound what is read back of one space.
export const maxRecords = 200_000;
export const maxBytes = 512 << 20;

// maxSealedSecrets bounds a sealed secrets blob read back.
const maxSealedSecrets = 64 << 10;

export interface StoredSecret {
  epoch: number;
  secret: Uint8Array;
}

export interface StoredSpace {
  space: string; // hex
  feeds: string[]; // hex
  secrets: StoredSecret[];
  // A member's own keys (wasm/core/member.go), sealed with the secrets:
  // the ed25519 seed of its feed key and its device key.
  writer?: { seed: Uint8Array; device?: Uint8Array };
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("store: transaction aborted"));
  });
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(s)) throw new Error("store: not hex");
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export class Store {
  private chain: Promise<void> = Promise.resolve();
  written = 0; // records committed
  pending = 0; // records queued, not committed yet
  error?: string; // the last write's failure

  private constructor(
    readonly db: IDBDatabase,
    private readonly wrap: CryptoKey,
  ) {}

  // open opens (or creates) the store called name and its wrapping key.
  static async open(name: string): Promise<Store> {
    const open = indexedDB.open(`mycel-node-${name}`, 1);
    open.onupgradeneeded = () => {
      const db = open.result;
      db.createObjectStore("keys");
      db.createObjectStore("spaces");
      db.createObjectStore("records", { autoIncrement: true }).createIndex("space", "space");
    };
    const db = await req(open);
    let wrap = (await req(db.transaction("keys").objectStore("keys").get("wrap"))) as CryptoKey | undefined;
    if (wrap === undefined) {
      wrap = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
      const tx = db.transaction("keys", "readwrite");
      tx.objectStore("keys").put(wrap, "wrap");
      await done(tx);
    }
    if (wrap.extractable) throw new Error("store: the wrapping key is extractable");
    return new Store(db, wrap);
  }

  // seal encrypts plain under the wrapping key, bound to ad.
  private async seal(plain: Uint8Array, ad: string): Promise<{ iv: Uint8Array; ct: Uint8Array }> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(
      await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(ad) }, this.wrap, plain as BufferSource),
    );
    return { iv, ct };
  }

  // open decrypts what seal sealed under ad; it throws if v is not that.
  private async unseal(v: unknown, ad: string): Promise<Uint8Array> {
    const o = v as { iv?: unknown; ct?: unknown } | undefined;
    if (!(o?.iv instanceof Uint8Array) || !(o.ct instanceof Uint8Array) || o.ct.length > maxSealedSecrets) throw new Error("malformed");
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: o.iv as BufferSource, additionalData: new TextEncoder().encode(ad) },
      this.wrap,
      o.ct as BufferSource,
    );
    return new Uint8Array(plain);
  }

  // identity returns the page's libp2p identity key (its protobuf
  // encoding) kept by setIdentity, or undefined if there is none. A kept
  // key that does not open throws: the page does not silently become
  // another peer.
  async identity(): Promise<Uint8Array | undefined> {
    const v = await req(this.db.transaction("keys").objectStore("keys").get("identity"));
    if (v === undefined) return undefined;
    return this.unseal(v, "identity");
  }

  async setIdentity(key: Uint8Array): Promise<void> {
    const sealed = await this.seal(key, "identity");
    const tx = this.db.transaction("keys", "readwrite");
    tx.objectStore("keys").put(sealed, "identity");
    await done(tx);
  }

  // saveSpace records a space replicated here, its feeds and secrets.
  async saveSpace(s: StoredSpace): Promise<void> {
    const secrets = s.secrets.map((x) => ({ epoch: x.epoch, secret: toHex(x.secret) }));
    // Without a writer, the sealed value is the secrets' array, as before
    // members wrote; with one, an object holding both.
    const sealed =
      s.writer === undefined ? secrets : { secrets, seed: toHex(s.writer.seed), device: s.writer.device === undefined ? undefined : toHex(s.writer.device) };
    const plain = new TextEncoder().encode(JSON.stringify(sealed));
    const { iv, ct } = await this.seal(plain, s.space);
    const tx = this.db.transaction("spaces", "readwrite");
    tx.objectStore("spaces").put({ feeds: s.feeds, iv, ct }, s.space);
    await done(tx);
  }

  // spaces reads back the spaces saved; one whose record does not open is
  // reported in refused, not returned.
  async spaces(): Promise<{ spaces: StoredSpace[]; refused: Record<string, string> }> {
    const tx = this.db.transaction("spaces");
    const st = tx.objectStore("spaces");
    const [keys, vals] = await Promise.all([req(st.getAllKeys()), req(st.getAll())]);
    const out: StoredSpace[] = [];
    const refused: Record<string, string> = {};
    for (let i = 0; i < keys.length && i < 64; i++) {
      const space = String(keys[i]);
      try {
        const v = vals[i] as { feeds: unknown };
        if (!Array.isArray(v.feeds) || v.feeds.length > 1024 || !v.feeds.every((f) => typeof f === "string" && f.length === 64)) throw new Error("malformed feeds");
        const plain = await this.unseal(v, space);
        type Sealed = { epoch: number; secret: string }[];
        const o = JSON.parse(new TextDecoder().decode(plain)) as Sealed | { secrets: Sealed; seed: string; device?: string };
        const list = Array.isArray(o) ? o : o.secrets;
        if (!Array.isArray(list) || list.length > 1024) throw new Error("malformed secrets");
        const secrets = list.map((x) => ({ epoch: x.epoch, secret: fromHex(x.secret) }));
        const writer = Array.isArray(o) ? undefined : { seed: fromHex(o.seed), device: o.device === undefined ? undefined : fromHex(o.device) };
        out.push({ space, feeds: v.feeds as string[], secrets, writer });
      } catch (e) {
        refused[space] = `space record refused: ${(e as Error).message || "does not open"}`;
      }
    }
    return { spaces: out, refused };
  }

  // records calls each with the records of space in the order they were
  // written, within maxRecords and maxBytes; it returns how many it read
  // and whether it stopped at a bound.
  async records(space: string, each: (rec: Uint8Array, key: IDBValidKey) => void): Promise<{ read: number; bytes: number; truncated: boolean }> {
    const tx = this.db.transaction("records");
    const idx = tx.objectStore("records").index("space");
    let read = 0;
    let bytes = 0;
    let truncated = false;
    await new Promise<void>((resolve, reject) => {
      const c = idx.openCursor(IDBKeyRange.only(space));
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (cur === null) return resolve();
        const v = cur.value as { rec: unknown };
        const rec = v.rec instanceof Uint8Array ? v.rec : new Uint8Array(0);
        if (read >= maxRecords || bytes + rec.length > maxBytes) {
          truncated = true;
          return resolve();
        }
        read++;
        bytes += rec.length;
        each(rec, cur.primaryKey);
        cur.continue();
      };
    });
    return { read, bytes, truncated };
  }

  // append queues the records of space for one transaction, after every
  // transaction queued before it.
  append(space: string, recs: Uint8Array[]): Promise<void> {
    if (recs.length === 0) return this.chain;
    this.pending += recs.length;
    this.chain = this.chain.then(async () => {
      try {
        const tx = this.db.transaction("records", "readwrite");
        const st = tx.objectStore("records");
        for (const rec of recs) st.add({ space, rec });
        await done(tx);
        this.written += recs.length;
      } catch (e) {
        this.error = (e as Error).message;
      } finally {
        this.pending -= recs.length;
      }
    });
    return this.chain;
  }

  // flush resolves when every write queued so far is committed (or failed).
  // appendChecked queues recs like append and resolves once they are
  // committed; it throws if they were not (a write the page must not
  // announce).
  appendChecked(space: string, recs: Uint8Array[]): Promise<void> {
    let failed: Error | undefined;
    const before = this.chain;
    this.pending += recs.length;
    this.chain = before.then(async () => {
      try {
        const tx = this.db.transaction("records", "readwrite");
        const st = tx.objectStore("records");
        for (const rec of recs) st.add({ space, rec });
        await done(tx);
        this.written += recs.length;
      } catch (e) {
        failed = e as Error;
        this.error = failed.message;
      } finally {
        this.pending -= recs.length;
      }
    });
    return this.chain.then(() => {
      if (failed !== undefined) throw failed;
    });
  }

  flush(): Promise<void> {
    return this.chain;
  }
}
