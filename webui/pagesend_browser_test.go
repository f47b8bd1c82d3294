package webui_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/node/api"
)

// pageOnline reports whether daemon d's devices API shows feed online.
func pageOnline(t *testing.T, d *daemon, space, feed string) (online, listed bool) {
	t.Helper()
	var ds []api.Device
	if code := d.call("GET", "/v1/spaces/"+space+"/devices", nil, &ds); code != 200 {
		t.Fatalf("GET devices: %d", code)
	}
	for _, x := range ds {
		if x.Feed == feed {
			return x.Online, true
		}
	}
	return false, false
}

// TestBrowserPageAnnouncesAndSends (issue 14: "then the key browser,
// devices and presence"): a page signed in as a member announces its
// presence on the space's topic like a daemon, so the daemon's devices API
// shows the page's device online within about an announce interval; the
// page sends app messages (plain and kept) that the daemon's listen gets
// with the page's feed as sender; the tab closed, the daemon shows the
// device offline once ephemeral.OnlineFor passed, as for a daemon gone.
func TestBrowserPageAnnouncesAndSends(t *testing.T) {
	url := nodePage(t)
	a := startDaemon(t, "a", "--listen", "/ip4/127.0.0.1/tcp/0/ws")
	sp := createSpace(t, a, "presence")
	br, s := signedInPage(t, url, a, sp)

	t0 := time.Now()
	eventually(t, 40*time.Second, "the daemon shows the page's device online", func() bool {
		online, listed := pageOnline(t, a, sp.ID, s.Feed)
		return listed && online
	})
	t.Logf("the page's device shown online %v after its approval", time.Since(t0).Round(time.Millisecond))

	c, err := api.NewClient("http://"+a.api, a.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	msgs, _, err := c.Listen(ctx, sp.ID, "from-page")
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		text := "hello daemon"
		if keep {
			text = "kept for the daemon"
		}
		var got api.Message
		eventually(t, 30*time.Second, "the daemon gets the page's message (keep "+map[bool]string{false: "false", true: "true"}[keep]+")", func() bool {
			var r struct {
				Recipients int `json:"recipients"`
			}
			eval(br, "send", "sendText("+jsArg(sp.ID)+", \"from-page\", "+jsArg(text)+", "+jsArg(keep)+")", &r)
			for {
				select {
				case m, ok := <-msgs:
					if !ok {
						t.Fatal("the daemon's listen ended")
					}
					if string(m.Data) == text {
						got = m
						return true
					}
				case <-time.After(time.Second):
					return false
				}
			}
		})
		if got.Sender != s.Feed || got.Topic != "from-page" || got.Kept != keep || got.Stored {
			t.Fatalf("the daemon got %+v; want the page's feed %s as sender, kept %v", got, s.Feed, keep)
		}
		if d := time.Since(got.Time); d < 0 || d > time.Minute {
			t.Fatalf("the message's time %v is not the page's clock (now %v)", got.Time, time.Now())
		}
	}

	// The tab goes away: its announcements stop, and the daemon shows the
	// device offline after OnlineFor (30 s) as it would a daemon's.
	br.run("close the page", chromedp.Navigate("about:blank"))
	t1 := time.Now()
	eventually(t, 60*time.Second, "the daemon shows the page's device offline", func() bool {
		online, _ := pageOnline(t, a, sp.ID, s.Feed)
		return !online
	})
	t.Logf("the page's device shown offline %v after the tab closed", time.Since(t1).Round(time.Millisecond))
}
