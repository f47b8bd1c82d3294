package webui_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/node/api"
)

type pageStart struct {
	PeerID   string  `json:"peerId"`
	LoadMs   float64 `json:"loadMs"`
	Restored []struct {
		Space     string   `json:"space"`
		Records   int      `json:"records"`
		Imported  int      `json:"imported"`
		Refused   int      `json:"refused"`
		Reasons   []string `json:"reasons"`
		Truncated bool     `json:"truncated"`
		Ms        float64  `json:"ms"`
	} `json:"restored"`
	RefusedSpaces map[string]string `json:"refusedSpaces"`
}

type pagePersisted struct {
	Written int    `json:"written"`
	Pending int    `json:"pending"`
	Dropped int    `json:"dropped"`
	Error   string `json:"error"`
}

// startStored opens the page (a real navigation: a new wasm instance and
// a new libp2p host) and starts it from its IndexedDB store.
func startStored(br *browser, url string) pageStart {
	br.t.Helper()
	br.run("open the page", chromedp.Navigate(url))
	waitNode(br)
	var st pageStart
	evalFor(br, 60*time.Second, "start from the store", `start({wasm: "core.wasm", wasmExec: "wasm_exec.js", store: "t"})`, &st)
	return st
}

// daemonWS is the daemon's WebSocket address.
func daemonWS(t *testing.T, d *daemon) string {
	t.Helper()
	var st api.Status
	d.call("GET", "/v1/status", nil, &st)
	for _, a := range st.Addrs {
		if strings.Contains(a, "/ws/") {
			return a
		}
	}
	t.Fatalf("the daemon has no WebSocket address: %v", st.Addrs)
	return ""
}

// TestBrowserNodeReload (issue 14: "Reload the tab: still a member with all
// its data; catches up on what was written meanwhile"): the page replicates
// a daemon's space into IndexedDB; the tab goes away, the daemon writes
// more, and the tab is opened again. Before any network the page holds
// every entry it had and the same view digest, from what the core verified
// again; it still holds the member's secrets and catches up to the
// daemon's digest with them. Then a record in IndexedDB is edited through
// the page's JavaScript: the next start refuses it and says so, its entries
// are not shown, and replication fills them in again.
func TestBrowserNodeReload(t *testing.T) {
	url := nodePage(t)
	r := startRelay(t)
	d := startDaemon(t, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0/ws", "--relay", relayAddr(t, r, isTCP))
	sp := createSpace(t, d, "kept")
	putMany(t, d, sp.ID, 0, 60)
	ws := daemonWS(t, d)

	br := newBrowser(t, artefactDir(t))
	st := startStored(br, url)
	if len(st.Restored) != 0 {
		t.Fatalf("a new profile restored %+v", st.Restored)
	}
	peerID := st.PeerID
	opts := map[string]any{"addr": ws, "space": sp.ID, "secrets": memberSecrets(t, d, sp), "feeds": []string{sp.Feed}, "timeoutMs": 40000}
	var rep struct{}
	evalFor(br, 90*time.Second, "replicate", "replicate("+jsArg(opts)+")", &rep)
	before := spaceInfo(t, d, sp.ID)
	waitLength(t, br, sp, before.Entries)
	var p pagePersisted
	eventually(t, 30*time.Second, "the page's records are in IndexedDB", func() bool {
		eval(br, "persisted", "persisted()", &p)
		return p.Pending == 0 && p.Written > 0
	})
	if p.Error != "" || p.Dropped != 0 {
		t.Fatalf("persisting: %+v", p)
	}

	// The tab goes away; the daemon writes meanwhile.
	br.run("leave the page", chromedp.Navigate("about:blank"))
	putMany(t, d, sp.ID, 1000, 25)
	after := spaceInfo(t, d, sp.ID)
	if after.Entries <= before.Entries {
		t.Fatalf("the daemon holds %d entries after writing more than %d", after.Entries, before.Entries)
	}

	st = startStored(br, url)
	if len(st.Restored) != 1 || st.Restored[0].Space != sp.ID || st.Restored[0].Refused != 0 || st.Restored[0].Imported != p.Written || st.Restored[0].Truncated {
		t.Fatalf("restored %+v, want %d records of space %s", st.Restored, p.Written, sp.ID)
	}
	if st.PeerID != peerID {
		t.Fatalf("the reloaded page is peer %s, was %s", st.PeerID, peerID)
	}
	// The key that seals the secrets and the identity cannot be exported.
	check := `(async () => {
		const db = await new Promise((ok, no) => { const r = indexedDB.open("mycel-node-t"); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		const k = await new Promise((ok, no) => { const r = db.transaction("keys").objectStore("keys").get("wrap"); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		db.close();
		try { await crypto.subtle.exportKey("raw", k); return "exported"; } catch (e) { return k.extractable ? "extractable" : "not extractable"; }
	})()`
	if got := get(br, "export the wrapping key", chromedp.Evaluate[string](check, chromedp.EvalAwaitPromise)); got != "not extractable" {
		t.Fatalf("the wrapping key: %s", got)
	}
	t.Logf("reload: %d records verified and imported in %.0f ms (start %.0f ms)", st.Restored[0].Imported, st.Restored[0].Ms, st.LoadMs)
	var ps pageStatus
	eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
	if ps.Held[sp.Feed] != before.Entries || len(ps.Sessions) != 0 {
		t.Fatalf("before any network the page holds %d entries (%d sessions), want %d", ps.Held[sp.Feed], len(ps.Sessions), before.Entries)
	}
	var v pageView
	eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
	if v.Digest != before.Digest || v.Keys != before.Keys || v.Invalid != 0 {
		t.Fatalf("restored view %s (%d keys, %d invalid), want the daemon's earlier %s (%d keys)", v.Digest, v.Keys, v.Invalid, before.Digest, before.Keys)
	}
	// Still a member: no secrets given, the page proves those it kept.
	catchUp(t, br, sp, ws, after.Entries)
	eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
	if v.Digest != after.Digest || v.Keys != after.Keys {
		t.Fatalf("after catching up the page's view %s (%d keys) is not the daemon's %s (%d keys)", v.Digest, v.Keys, after.Digest, after.Keys)
	}
	eventually(t, 30*time.Second, "the catch-up is in IndexedDB", func() bool {
		eval(br, "persisted", "persisted()", &p)
		return p.Pending == 0
	})

	// Damage: flip the last byte of the first record, through the page's
	// own IndexedDB.
	edit := `(async () => {
		const db = await new Promise((ok, no) => { const r = indexedDB.open("mycel-node-t"); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		const tx = db.transaction("records", "readwrite");
		const st = tx.objectStore("records");
		const n = await new Promise((ok, no) => {
			const c = st.openCursor();
			c.onerror = () => no(c.error);
			c.onsuccess = () => {
				const cur = c.result;
				const v = cur.value;
				v.rec[v.rec.length - 1] ^= 1;
				cur.update(v);
				ok(v.rec.length);
			};
		});
		await new Promise((ok, no) => { tx.oncomplete = ok; tx.onerror = () => no(tx.error); });
		db.close();
		return n;
	})()`
	br.run("leave the page", chromedp.Navigate("about:blank"))
	br.run("open the page's origin", chromedp.Navigate(url))
	if n := get(br, "edit a record", chromedp.Evaluate[int](edit, chromedp.EvalAwaitPromise)); n == 0 {
		t.Fatal("no record to edit")
	}
	st = startStored(br, url)
	if len(st.Restored) != 1 || st.Restored[0].Refused != 1 || len(st.Restored[0].Reasons) != 1 || st.Restored[0].Imported != st.Restored[0].Records-1 {
		t.Fatalf("after an edit the page restored %+v, want one record refused", st.Restored)
	}
	t.Logf("the edited record was refused: %s", st.Restored[0].Reasons[0])
	eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
	if ps.Held[sp.Feed] >= after.Entries {
		t.Fatalf("the page holds %d entries of %d with a refused record", ps.Held[sp.Feed], after.Entries)
	}
	eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
	if v.Digest == after.Digest || v.Keys >= after.Keys {
		t.Fatalf("the view shows the refused record's entries: %d keys of %d", v.Keys, after.Keys)
	}
	catchUp(t, br, sp, ws, after.Entries)
	eval(br, "view", "view("+jsArg(sp.ID)+")", &v)
	if v.Digest != after.Digest {
		t.Fatalf("after replicating again the page's digest %s is not the daemon's %s", v.Digest, after.Digest)
	}

	// The space's sealed secrets, edited, do not open: the space is
	// refused and reported, and nothing of it is restored.
	editSpace := `(async () => {
		const db = await new Promise((ok, no) => { const r = indexedDB.open("mycel-node-t"); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		const tx = db.transaction("spaces", "readwrite");
		const st = tx.objectStore("spaces");
		const v = await new Promise((ok, no) => { const r = st.get(` + jsArg(sp.ID) + `); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
		v.ct[0] ^= 1;
		st.put(v, ` + jsArg(sp.ID) + `);
		await new Promise((ok, no) => { tx.oncomplete = ok; tx.onerror = () => no(tx.error); });
		db.close();
		return v.ct.length;
	})()`
	br.run("leave the page", chromedp.Navigate("about:blank"))
	br.run("open the page's origin", chromedp.Navigate(url))
	if n := get(br, "edit the space's secrets", chromedp.Evaluate[int](editSpace, chromedp.EvalAwaitPromise)); n == 0 {
		t.Fatal("no sealed secrets to edit")
	}
	st = startStored(br, url)
	if len(st.Restored) != 0 || st.RefusedSpaces[sp.ID] == "" {
		t.Fatalf("after its secrets were edited the page restored %+v, refused %v", st.Restored, st.RefusedSpaces)
	}
	t.Logf("the edited space was refused: %s", st.RefusedSpaces[sp.ID])
}

// catchUp has the reloaded page replicate the space with the daemon at ws
// (with the secrets it kept) until it holds want entries. The page keeps
// its peer ID, and the daemon may still hold a session with the tab that
// went away: it then resets the page's new stream as a duplicate
// (node/syncnet Replicator.handle) until that session ends, so the page
// opens again when every session of its ended, at most every 2 s and 30
// times.
func catchUp(t *testing.T, br *browser, sp api.SpaceInfo, ws string, want uint64) {
	t.Helper()
	opts := map[string]any{"addr": ws, "space": sp.ID, "timeoutMs": 40000}
	var rep struct{}
	evalFor(br, 90*time.Second, "catch up", "replicate("+jsArg(opts)+")", &rep)
	opened, last := 1, time.Now()
	var ps pageStatus
	eventually(t, 120*time.Second, fmt.Sprintf("the page holds %d entries", want), func() bool {
		eval(br, "status", "status("+jsArg(sp.ID)+")", &ps)
		if ps.Lengths[sp.Feed] == want && ps.Held[sp.Feed] == want {
			return true
		}
		live := false
		for _, s := range ps.Sessions {
			live = live || !s.Ended
		}
		if !live && len(ps.Sessions) > 0 && time.Since(last) > 2*time.Second {
			if opened == 30 {
				t.Fatalf("the page's sessions failed %d times: %+v", opened, ps.Sessions)
			}
			t.Logf("the page's session ended (%s): opening again", ps.Sessions[len(ps.Sessions)-1].Error)
			evalFor(br, 90*time.Second, "catch up", "replicate("+jsArg(opts)+")", &rep)
			opened, last = opened+1, time.Now()
		}
		return false
	})
}
