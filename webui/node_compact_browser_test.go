package webui_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

type compactStart struct {
	Restored []struct {
		Records     int     `json:"records"`
		Imported    int     `json:"imported"`
		Refused     int     `json:"refused"`
		Truncated   bool    `json:"truncated"`
		Ms          float64 `json:"ms"`
		Quarantined int     `json:"quarantined"`
		Compacted   *struct {
			Before int `json:"before"`
			After  int `json:"after"`
		} `json:"compacted"`
		CompactMs float64 `json:"compactMs"`
	} `json:"restored"`
}

// startCompacting opens the page and starts it from its store, compacting
// a space's records past compactAt.
func startCompacting(br *browser, url string, compactAt int) compactStart {
	br.t.Helper()
	br.run("open the page", chromedp.Navigate(url))
	waitNode(br)
	var st compactStart
	evalFor(br, 120*time.Second, "start from the store", `start({wasm: "core.wasm", wasmExec: "wasm_exec.js", store: "t", compactAt: `+strconv.Itoa(compactAt)+`})`, &st)
	if len(st.Restored) > 1 {
		br.t.Fatalf("restored %d spaces", len(st.Restored))
	}
	return st
}

// idbCount counts the values of an object store of the page's IndexedDB.
func idbCount(br *browser, store string) int {
	br.t.Helper()
	js := `(async () => {
		const db = await new Promise((ok, no) => { const r = indexedDB.open("mycel-node-t"); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		const n = await new Promise((ok, no) => { const r = db.transaction(` + jsArg(store) + `).objectStore(` + jsArg(store) + `).count(); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		db.close();
		return n;
	})()`
	return get(br, "count "+store, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestBrowserNodeCompaction (issue 14, storage): the page replicates a
// space in many batches, one IndexedDB record each. A compaction aborted
// mid-transaction (after its deletes, through the page's JavaScript)
// leaves every record, and the page still starts from them with the same
// digest. The next start compacts them: the store then holds one record,
// and the start after that has the same digest before any network, from
// the compacted record verified again (start times logged). The compacted
// record, edited, is refused and moved to the quarantine: the start after
// that does not refuse it again, and the quarantine keeps it.
//
// MYCEL_COMPACT_ROUNDS and MYCEL_COMPACT_PER (default 30 rounds of 4 puts)
// size the replication: 200 and 50 measure 10k entries in about 200
// batches.
func TestBrowserNodeCompaction(t *testing.T) {
	rounds, per := envInt("MYCEL_COMPACT_ROUNDS", 30), envInt("MYCEL_COMPACT_PER", 4)
	url := nodePage(t)
	r := startRelay(t)
	d := startDaemon(t, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0/ws", "--relay", relayAddr(t, r, isTCP))
	sp := createSpace(t, d, "compacted")
	ws := daemonWS(t, d)

	br := newBrowser(t, artefactDir(t))
	const never = 1 << 30
	startCompacting(br, url, never)
	opts := map[string]any{"addr": ws, "space": sp.ID, "secrets": memberSecrets(t, d, sp), "feeds": []string{sp.Feed}, "timeoutMs": 40000}
	var rep struct{}
	evalFor(br, 90*time.Second, "replicate", "replicate("+jsArg(opts)+")", &rep)
	// Each round the daemon writes and the page's live session receives
	// it: at least one batch, one record, per round.
	for i := range rounds {
		putMany(t, d, sp.ID, i*per, per)
		waitLength(t, br, sp, spaceInfo(t, d, sp.ID).Entries)
	}
	want := spaceInfo(t, d, sp.ID)
	var p struct {
		pagePersisted
		Compactions int `json:"compactions"`
	}
	eventually(t, 60*time.Second, "the page's records are in IndexedDB", func() bool {
		eval(br, "persisted", "persisted()", &p)
		return p.Pending == 0 && p.Written >= rounds
	})
	if p.Error != "" || p.Dropped != 0 || p.Compactions != 0 {
		t.Fatalf("persisting: %+v", p)
	}
	written := p.Written
	t.Logf("%d entries replicated in %d records", want.Entries, written)

	// A compaction aborted after its deletes: every add aborts its
	// transaction.
	abort := `(async () => {
		const add = IDBObjectStore.prototype.add;
		IDBObjectStore.prototype.add = function (...a) { const r = add.apply(this, a); this.transaction.abort(); return r; };
		try { await mycelNode.compact(` + jsArg(sp.ID) + `); return "committed"; } catch (e) { return "failed: " + e; } finally { IDBObjectStore.prototype.add = add; }
	})()`
	if got := get(br, "an aborted compaction", chromedp.Evaluate[string](abort, chromedp.EvalAwaitPromise)); got == "committed" {
		t.Fatal("the aborted compaction committed")
	} else {
		t.Logf("aborted compaction: %s", got)
	}
	br.run("leave the page", chromedp.Navigate("about:blank"))
	st := startCompacting(br, url, never)
	if len(st.Restored) != 1 || st.Restored[0].Records != written || st.Restored[0].Imported != written || st.Restored[0].Compacted != nil {
		t.Fatalf("after an aborted compaction the page restored %+v, want its %d records", st.Restored, written)
	}
	checkView(t, br, sp.ID, sp.Feed, want.Entries, want.Digest)
	before := st.Restored[0].Ms

	// The next start compacts.
	br.run("leave the page", chromedp.Navigate("about:blank"))
	st = startCompacting(br, url, 16)
	c := st.Restored[0].Compacted
	if st.Restored[0].Imported != written || c == nil || c.Before != written || c.After != 1 {
		t.Fatalf("the start past the threshold restored %+v, compacted %+v, want %d records compacted into 1", st.Restored, c, written)
	}
	if n := idbCount(br, "records"); n != 1 {
		t.Fatalf("after compaction the store holds %d records, want 1", n)
	}
	compactMs := st.Restored[0].CompactMs
	br.run("leave the page", chromedp.Navigate("about:blank"))
	st = startCompacting(br, url, 16)
	if st.Restored[0].Records != 1 || st.Restored[0].Imported != 1 || st.Restored[0].Compacted != nil {
		t.Fatalf("from the compacted store the page restored %+v", st.Restored)
	}
	checkView(t, br, sp.ID, sp.Feed, want.Entries, want.Digest)
	t.Logf("start: %d entries from %d records in %.0f ms; compacted (%.0f ms) into 1 record: %.0f ms",
		want.Entries, written, before, compactMs, st.Restored[0].Ms)

	// The compacted record, edited: refused, reported, moved aside.
	edit := `(async () => {
		const db = await new Promise((ok, no) => { const r = indexedDB.open("mycel-node-t"); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		const tx = db.transaction("records", "readwrite");
		const n = await new Promise((ok, no) => {
			const c = tx.objectStore("records").openCursor();
			c.onerror = () => no(c.error);
			c.onsuccess = () => { const cur = c.result; const v = cur.value; v.rec[v.rec.length - 1] ^= 1; cur.update(v); ok(v.rec.length); };
		});
		await new Promise((ok, no) => { tx.oncomplete = ok; tx.onerror = () => no(tx.error); });
		db.close();
		return n;
	})()`
	br.run("leave the page", chromedp.Navigate("about:blank"))
	br.run("open the page's origin", chromedp.Navigate(url))
	if n := get(br, "edit the compacted record", chromedp.Evaluate[int](edit, chromedp.EvalAwaitPromise)); n == 0 {
		t.Fatal("no record to edit")
	}
	st = startCompacting(br, url, 16)
	if st.Restored[0].Refused != 1 || st.Restored[0].Quarantined != 1 {
		t.Fatalf("the edited compacted record: restored %+v, want it refused and quarantined", st.Restored)
	}
	var ps pageStatus
	eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
	if ps.Held[sp.Feed] != 0 {
		t.Fatalf("the page holds %d entries from a refused record", ps.Held[sp.Feed])
	}
	br.run("leave the page", chromedp.Navigate("about:blank"))
	st = startCompacting(br, url, 16)
	if st.Restored[0].Records != 0 || st.Restored[0].Refused != 0 {
		t.Fatalf("the start after the quarantine restored %+v, want no record read or refused", st.Restored)
	}
	if n := idbCount(br, "quarantine"); n != 1 {
		t.Fatalf("the quarantine holds %d records, want 1", n)
	}
}

// checkView checks that the page, before any network, holds entries of
// feed and shows digest.
func checkView(t *testing.T, br *browser, space, feed string, entries uint64, digest string) {
	t.Helper()
	var ps pageStatus
	eval(br, "status", "status("+jsArg(space)+")", &ps)
	if ps.Held[feed] != entries || len(ps.Sessions) != 0 {
		t.Fatalf("before any network the page holds %d entries (%d sessions), want %d", ps.Held[feed], len(ps.Sessions), entries)
	}
	var v pageView
	eval(br, "view", "view("+jsArg(space)+")", &v)
	if v.Digest != digest || v.Invalid != 0 {
		t.Fatalf("the page's view %s (%d invalid), want %s", v.Digest, v.Invalid, digest)
	}
}
