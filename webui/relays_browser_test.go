package webui_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/node/api"
)

// TestBrowserSpaceRelays plays issue 12's space relays in the daemon's
// page: a real relay and a real daemon on loopback; in the space's Relays
// section a typo'd address (a protocol misspelt, a wrong port) shows a
// clear error and lists nothing; the relay's address lists it, and the
// section shows it in use, connected, with a reservation and the mirror
// token handed, within seconds; Remove (after a confirmation) takes it off:
// the section and the API's list are empty and the daemon releases it. The
// browser node, which cannot list relays, hides the section.
func TestBrowserSpaceRelays(t *testing.T) {
	requireBuilt(t)
	r := startRelay(t)
	relayID := r.Host().ID().String()
	addr := relayAddr(t, r, isTCP)
	a := startDaemon(t, "alpha")
	sp := createSpace(t, a, "notes")
	listed := func() []api.SpaceRelay {
		var rs []api.SpaceRelay
		a.call("GET", "/v1/spaces/"+sp.ID+"/relays", nil, &rs)
		return rs
	}

	br := newBrowser(t, artefactDir(t))
	br.run("sign in", chromedp.Navigate(a.login), chromedp.WaitVisible(chromedp.CSS("#relay-addr")))
	if br.textNow("#relays-empty") != "This space lists no relays." || br.textNow("#relays") != "" {
		t.Fatalf("a new space's Relays section: %q / %q", br.textNow("#relays-empty"), br.textNow("#relays"))
	}

	// add puts addr in the field, submits, and waits for the button to
	// come back (the daemon answered).
	add := func(what, addr string) {
		t.Helper()
		br.run(what,
			chromedp.SetValue(chromedp.CSS("#relay-addr"), addr),
			chromedp.Click(chromedp.CSS("#relay-form button[type=submit]")))
		eventually(t, 30*time.Second, what+": the daemon answers", func() bool {
			return get(br, "button", chromedp.Evaluate[bool](`!document.querySelector("#relay-form button").disabled`))
		})
	}

	// Typos: each says what is wrong, and nothing is listed.
	for _, c := range []struct{ name, addr, want string }{
		{"protocol misspelt", strings.Replace(addr, "/tcp/", "/tpc/", 1), "unknown protocol tpc"},
		{"no peer ID", strings.Split(addr, "/p2p/")[0], "want a multiaddr ending in /p2p/<peer ID>"},
		{"wrong port", regexp.MustCompile(`/tcp/\d+/`).ReplaceAllString(addr, "/tcp/1/"), "connect to the relay"},
	} {
		add("add with a typo: "+c.name, c.addr)
		eventually(t, 10*time.Second, c.name+": the error shows", func() bool {
			return br.textNow("#relay-error") != ""
		})
		msg := br.textNow("#relay-error")
		if !strings.HasPrefix(msg, "The relay was not added: ") || !strings.Contains(msg, c.want) {
			t.Fatalf("%s: the page says %q, want it to contain %q", c.name, msg, c.want)
		}
		if hidden := get(br, "error hidden", chromedp.Evaluate[bool](`document.querySelector("#relay-error").hidden`)); hidden {
			t.Fatalf("%s: the error is hidden", c.name)
		}
		if rs := listed(); len(rs) != 0 {
			t.Fatalf("%s: the space lists %+v", c.name, rs)
		}
		if v := get(br, "field", chromedp.Evaluate[string](`document.querySelector("#relay-addr").value`)); v != c.addr {
			t.Fatalf("%s: the field holds %q after the error, want the address typed (%q) to correct", c.name, v, c.addr)
		}
	}
	br.shot("relay-typo")

	// The right address: listed, and in use with a reservation within
	// seconds.
	start := time.Now()
	add("add the relay", addr)
	if !get(br, "error hidden", chromedp.Evaluate[bool](`document.querySelector("#relay-error").hidden`)) {
		t.Fatalf("adding the relay: the page says %q", br.textNow("#relay-error"))
	}
	sel := `li.relay[data-relay="` + relayID + `"] .relay-state`
	eventually(t, 15*time.Second, "the section shows the relay in use with a reservation", func() bool {
		s := br.textNow(sel)
		return strings.Contains(s, "In use: connected · reservation until ") && strings.Contains(s, "mirror token handed (epoch 0)")
	})
	t.Logf("the relay shown in use with a reservation %v after Add", time.Since(start).Round(time.Millisecond))
	if s := br.textNow(`li.relay[data-relay="` + relayID + `"] .relay-circuit`); !strings.Contains(s, "/p2p/"+relayID+"/p2p-circuit/p2p/") {
		t.Fatalf("the circuit address shown: %q", s)
	}
	if v := get(br, "field", chromedp.Evaluate[string](`document.querySelector("#relay-addr").value`)); v != "" {
		t.Fatalf("the field holds %q after the relay was added", v)
	}
	rs := listed()
	if len(rs) != 1 || rs[0].ID != relayID || !rs[0].InUse || rs[0].ReservedUntil == nil {
		t.Fatalf("the API lists %+v", rs)
	}
	br.shot("relay-in-use")

	// Remove it: the confirmation says what removal does.
	dialogs := make(chan string, 1)
	go func() {
		for ev, err := range chromedp.Events(br.ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			select {
			case dialogs <- ev.Message:
			default:
			}
			chromedp.Call(br.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	if !br.clickNow(`li.relay[data-relay="` + relayID + `"] .relay-remove`) {
		t.Fatal("no Remove button on the relay")
	}
	select {
	case msg := <-dialogs:
		if !strings.Contains(msg, "off this space's list") || !strings.Contains(msg, "stops using it") {
			t.Fatalf("the removal's confirmation says %q", msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no confirmation before removing a relay")
	}
	eventually(t, 15*time.Second, "the section empties", func() bool {
		return get(br, "relays", chromedp.Evaluate[bool](`document.querySelectorAll("#relays li").length === 0 && !document.querySelector("#relays-empty").hidden`))
	})
	if rs := listed(); len(rs) != 0 {
		t.Fatalf("after Remove the API lists %+v", rs)
	}
	eventually(t, 30*time.Second, "the daemon releases the relay", func() bool {
		var st api.Status
		a.call("GET", "/v1/status", nil, &st)
		return len(st.Relays) == 0
	})
	br.shot("relay-removed")

	// The browser node cannot list relays: the section is hidden.
	br.timeout = 60 * time.Second
	br.run("open the daemon's browser node page", chromedp.Navigate("http://"+a.api+"/node?relay="+relayAddr(t, r, isWS)))
	eventually(t, 60*time.Second, "the page is a browser node", func() bool {
		if e := br.textNow("#error"); e != "" {
			t.Fatalf("the page: %s", e)
		}
		return get(br, "browser-node", chromedp.Evaluate[bool](`document.body.classList.contains("browser-node")`))
	})
	if !get(br, "relays hidden", chromedp.Evaluate[bool](`document.querySelector("#relays-section").hidden`)) {
		t.Fatal("the browser node's page shows the Relays section")
	}
}
