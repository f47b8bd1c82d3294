package webui_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/node/api"
)

// daemonValue is the winning value of key in the space on d, "" if none.
func daemonValue(t *testing.T, d *daemon, space, key string) string {
	t.Helper()
	var p api.Page
	d.call("GET", "/v1/spaces/"+space+"/keys?prefix="+url.QueryEscape(key), nil, &p)
	for _, e := range p.Entries {
		if e.Key == key && len(e.Versions) > 0 && !e.Versions[0].Deleted {
			return string(e.Versions[0].Value)
		}
	}
	return ""
}

// TestBrowserPageWrites: the relay's page, signed in to daemon A's space
// (A and B reachable only through the relay), writes through its form
// and A sees it; it shows daemon B's join request with B's safety code
// and authorises B from its own prompt; B, let in by the page, holds the
// page's write.
func TestBrowserPageWrites(t *testing.T) {
	r := startRelay(t)
	page := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	sp := createSpace(t, a, "writes")
	putMany(t, a, sp.ID, 0, 3)
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)

	br := openRelayPage(t, page)
	pageJoin(br, map[string]string{"join-invite": inv.Link})
	approveShown(t, br, a, "")
	eventually(t, 90*time.Second, "the page shows A's keys", func() bool { return keyShown(br, "k000002") == "value 2" })

	// The page writes through its form; A holds it.
	br.run("the put form", chromedp.WaitVisible(chromedp.CSS("#put-form")))
	get(br, "put through the form", chromedp.Evaluate[bool](`(() => { document.getElementById("put-key").value = "from-page"; document.getElementById("put-value").value = "written in a tab"; document.querySelector("#put-form button[type=submit]").click(); return true })()`))
	t0 := time.Now()
	eventually(t, 60*time.Second, "A holds the page's write", func() bool { return daemonValue(t, a, sp.ID, "from-page") == "written in a tab" })
	t.Logf("A holds the page's write %v after the click", time.Since(t0).Round(time.Millisecond))
	eventually(t, 30*time.Second, "the page shows its own write", func() bool { return keyShown(br, "from-page") == "written in a tab" })

	// B asks with an invite; the page prompts with B's code and lets it in.
	b := relayedDaemon(t, r, "b")
	var inv2 api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv2)
	var js api.JoinState
	if c := b.call("POST", "/v1/join", api.JoinWith{Invite: inv2.Link}, &js); c >= 300 || js.Code == "" {
		t.Fatalf("B's join: %d %+v", c, js)
	}
	eventually(t, 90*time.Second, "the page prompts with B's safety code", func() bool {
		return br.textNow(".request .safety-code") == js.Code
	})
	eventually(t, 30*time.Second, "authorise in the page", func() bool { return br.clickNow(".request .approve") })
	eventually(t, 120*time.Second, "B is a writer holding the page's write", func() bool {
		info := spaceInfo(t, b, sp.ID)
		if info.Join != nil && info.Join.State != api.JoinWaiting && info.Join.State != api.JoinApproved {
			t.Fatalf("B's join ended %s: %s", info.Join.State, info.Join.Reason)
		}
		return info.Writer && daemonValue(t, b, sp.ID, "from-page") == "written in a tab"
	})
	if e := br.textNow("#error"); e != "" {
		t.Fatalf("the page shows an error: %s", e)
	}
}
