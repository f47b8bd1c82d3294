// The browser node's durable store: IndexedDB behind the wasm core's
// in-memory store (wasm/core/persist.go says why and what a record is).
//
// One database per store name, four object stores:
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
//   - "quarantine" (version 2): records refused at start, moved aside with
//     the reason ({space, rec, reason}), indexed by space: kept, never
//     deleted by the page, and not read back again.
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
//
// Refused records: start reports each and moves it to "quarantine" (one
// transaction: added there, deleted from "records"), so it is not refused
// again at each start and compaction never drops it. It is kept whatever
// its feed: a refused record of the page's own feed may be the only copy of
// the page's own writes (a copy of someone else's feed is fetched again
// from peers by the next session, but the page cannot tell a damaged own
// record from one a peer could resend, so it keeps all of them). The
// quarantine grows only by refused records, each at most one record.
//
// Compaction: once a space has more than compactAt records (counted at
// start and on each write; a space whose reading stopped at a bound, or
// whose refused records are not moved aside yet, is not compacted), the
// page asks the core for its compacted records (wasm/core/persist.go
// Compact: per feed, the entries held with one proof up to its latest
// signed head, the same version 1 records as a received batch's, verified
// the same way at start) and, in ONE readwrite transaction queued after
// every write before it, deletes every record of the space and adds those.
// IndexedDB commits a transaction whole or not at all: a tab closed or a
// transaction aborted mid-compaction leaves the old records, never
// neither. Records taken from the core after the compaction are appended
// after it; the core held them when it compacted, so they import again
// harmlessly. Count, not bytes, is the threshold: the cost at start is per
// record (one decode, one signature and proof check, one IndexedDB read
// each), while compaction saves few bytes (only the repeated heads and
// proofs).

// maxRecords and maxBytes bound what is read back of one space.
export const maxRecords = 200_000;
export const maxBytes = 512 << 20;

// compactAt is the default number of records of a space past which the
// page compacts them.
export const compactAt = 64;

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
    tx.onerror = () => reject(tx.error ?? new Error("store: transaction failed"));
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
  compactAt = compactAt; // records of a space past which it is compacted
  compactions = 0; // compactions committed
  private counts = new Map<string, number>(); // records per space
  private compactors = new Map<string, () => Uint8Array[]>();
  private blocked = new Set<string>();

  private constructor(
    readonly db: IDBDatabase,
    private readonly wrap: CryptoKey,
  ) {}

  // open opens (or creates) the store called name and its wrapping key.
  static async open(name: string): Promise<Store> {
    const open = indexedDB.open(`mycel-node-${name}`, 2);
    open.onupgradeneeded = (e) => {
      const db = open.result;
      if (e.oldVersion < 1) {
        db.createObjectStore("keys");
        db.createObjectStore("spaces");
        db.createObjectStore("records", { autoIncrement: true }).createIndex("space", "space");
      }
      if (e.oldVersion < 2) db.createObjectStore("quarantine", { autoIncrement: true }).createIndex("space", "space");
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
        this.counted(space, recs.length);
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
        this.counted(space, recs.length);
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

  // counted adds n records written to space's count and queues a
  // compaction once it passes compactAt (in the chain: after the write
  // that passed it).
  private counted(space: string, n: number): void {
    const c = (this.counts.get(space) ?? 0) + n;
    this.counts.set(space, c);
    if (c > this.compactAt && this.compactors.has(space)) this.compact(space).catch(() => {}); // this.error says
  }

  // compactWith says that space holds read records read back whole (none
  // refused left in "records") and that take returns the records
  // replacing all of them (the core's compact): from then on the space is
  // compacted past compactAt records. If it is past already, it returns
  // the compaction queued now. A space already registered, or one
  // noCompaction was called for, is left as it is.
  compactWith(space: string, read: number, take: () => Uint8Array[]): Promise<{ before: number; after: number }> | undefined {
    if (this.compactors.has(space) || this.blocked.has(space)) return undefined;
    this.compactors.set(space, take);
    this.counts.set(space, read);
    return read > this.compactAt ? this.compact(space) : undefined;
  }

  // noCompaction keeps space's records as they are (read back only in
  // part: the core does not hold them all).
  noCompaction(space: string): void {
    this.blocked.add(space);
  }

  // compact queues, after every write queued so far, one transaction that
  // deletes every record of space and adds take()'s in their place. It
  // resolves with the records before and after, or throws (the old records
  // are then still there: the transaction did not commit).
  compact(space: string): Promise<{ before: number; after: number }> {
    const take = this.compactors.get(space);
    if (take === undefined) return Promise.reject(new Error(`store: space ${space} is not compacted`));
    this.counts.set(space, 0); // queued: no second one before this runs
    let res: { before: number; after: number } | undefined;
    let failed: Error | undefined;
    this.chain = this.chain.then(async () => {
      try {
        // The core holds every record committed so far (they all went
        // through it): what it returns now replaces all of them.
        const recs = take();
        const tx = this.db.transaction("records", "readwrite");
        const st = tx.objectStore("records");
        const keys = st.index("space").getAllKeys(IDBKeyRange.only(space));
        keys.onsuccess = () => {
          for (const k of keys.result) st.delete(k);
          for (const rec of recs) st.add({ space, rec });
        };
        await done(tx);
        res = { before: keys.result.length, after: recs.length };
        this.counts.set(space, (this.counts.get(space) ?? 0) + recs.length);
        this.compactions++;
      } catch (e) {
        failed = e as Error;
        this.error = `compaction: ${failed.message}`;
      }
    });
    return this.chain.then(() => {
      if (failed !== undefined) throw failed;
      return res!;
    });
  }

  // quarantine moves the records of space under keys (refused at start)
  // to "quarantine" with their reasons, in one transaction after every
  // write queued so far.
  quarantine(space: string, refused: { key: IDBValidKey; reason: string }[]): Promise<void> {
    if (refused.length === 0) return this.chain;
    let failed: Error | undefined;
    this.chain = this.chain.then(async () => {
      try {
        const tx = this.db.transaction(["records", "quarantine"], "readwrite");
        const st = tx.objectStore("records");
        const q = tx.objectStore("quarantine");
        for (const r of refused) {
          const g = st.get(r.key);
          g.onsuccess = () => {
            const v = g.result as { space: unknown; rec: unknown } | undefined;
            if (v === undefined) return;
            q.add({ space, rec: v.rec, reason: r.reason });
            st.delete(r.key);
          };
        }
        await done(tx);
      } catch (e) {
        failed = e as Error;
        this.error = `quarantine: ${failed.message}`;
      }
    });
    return this.chain.then(() => {
      if (failed !== undefined) throw failed;
    });
  }

  // quarantined returns how many records of space are in quarantine.
  async quarantined(space: string): Promise<number> {
    return req(this.db.transaction("quarantine").objectStore("quarantine").index("space").count(IDBKeyRange.only(space)));
  }
}
