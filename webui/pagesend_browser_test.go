package webui_test

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/feed"
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

// pageMailbox is mycelNode.mailbox's answer.
type pageMailbox struct {
	Fetches   int    `json:"fetches"`
	Delivered int    `json:"delivered"`
	Refused   int    `json:"refused"`
	Errors    int    `json:"errors"`
	LastError string `json:"lastError"`
}

type pageStored struct {
	Heard []struct {
		Sender string  `json:"sender"`
		Time   float64 `json:"time"`
		Kind   string  `json:"kind"`
		Topic  string  `json:"topic"`
		Data   string  `json:"data"`
		Kept   bool    `json:"kept"`
		Stored bool    `json:"stored"`
	} `json:"heard"`
}

// openAtRelay reopens the page from IndexedDB, connects it to the relay
// and waits for a mailbox fetch that the relay answered.
func openAtRelay(t *testing.T, br *browser, url, relayWS string) {
	t.Helper()
	startStored(br, url)
	var c any
	evalFor(br, 60*time.Second, "connect to the relay", "connect("+jsArg(relayWS)+", 40000)", &c)
	var mb pageMailbox
	eventually(t, 60*time.Second, "the page fetches the relay's mailbox", func() bool {
		eval(br, "mailbox", "mailbox()", &mb)
		return mb.Fetches > 0
	})
	t.Logf("mailbox: %+v", mb)
}

// TestBrowserPageMailbox (issue 14): the daemon sends two kept messages
// while no page is open; the page reopened from IndexedDB connects to the
// relay, fetches its space's mailbox as a writer (signed by its feed
// key) and heard() lists the two once, kept and stored, with their
// sender's time; reopened again, it is handed nothing more.
func TestBrowserPageMailbox(t *testing.T) {
	url := nodePage(t)
	r := startRelay(t)
	a := startDaemon(t, "a", "--listen", "/ip4/127.0.0.1/tcp/0/ws", "--relay", relayAddr(t, r, isTCP))
	daemonCircuit(t, a, r)
	sp := createSpace(t, a, "mailbox")
	waitRouted(t, r, sp.ID)
	br, s := signedInPage(t, url, a, sp)
	id := spaceID(t, sp)
	var pageFeed feed.PublicKey
	copy(pageFeed[:], mustHex(t, s.Feed))
	eventually(t, 60*time.Second, "the relay's mirror follows the page's feed", func() bool {
		ws, ok := r.Mirror().Writers(id)
		return ok && slices.Contains(ws, pageFeed)
	})
	relayWS := relayAddr(t, r, isWS)
	openAtRelay(t, br, url, relayWS)

	// The tab goes away; the daemon sends two kept messages.
	br.run("close the page", chromedp.Navigate("about:blank"))
	kept0 := r.Mailbox().Counts().Kept
	sentAt := time.Now()
	for _, text := range []string{"while away 1", "while away 2"} {
		if code := a.call("POST", "/v1/spaces/"+sp.ID+"/messages", api.SendRequest{Topic: "away", Data: []byte(text), Keep: true}, nil); code != 204 && code != 200 {
			t.Fatalf("send kept: %d", code)
		}
	}
	eventually(t, 60*time.Second, "the relay keeps the two messages", func() bool {
		return r.Mailbox().Counts().Kept >= kept0+2
	})
	openAtRelay(t, br, url, relayWS)
	var h pageStored
	away := func() (out []int) {
		for i, m := range h.Heard {
			if m.Topic == "away" {
				out = append(out, i)
			}
		}
		return out
	}
	eventually(t, 30*time.Second, "the page hears the two kept messages", func() bool {
		eval(br, "heard", "heard("+jsArg(sp.ID)+")", &h)
		return len(away()) >= 2
	})
	if got := away(); len(got) != 2 {
		t.Fatalf("the page heard %d kept messages: %+v", len(got), h.Heard)
	}
	for k, i := range away() {
		m := h.Heard[i]
		at := time.UnixMilli(int64(m.Time))
		if m.Sender != sp.Feed || !m.Kept || !m.Stored || m.Data != []string{"while away 1", "while away 2"}[k] || at.Before(sentAt.Add(-time.Second)) || at.After(sentAt.Add(time.Second)) {
			t.Fatalf("kept message %d: %+v (sent at %v)", k, m, sentAt)
		}
	}
	// Reopened once more: the relay's pointer moved past them.
	openAtRelay(t, br, url, relayWS)
	eval(br, "heard", "heard("+jsArg(sp.ID)+")", &h)
	if got := away(); len(got) != 0 {
		t.Fatalf("the kept messages were delivered again: %+v", h.Heard)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBrowserPageUISends: the relay's page as a browser node shows its
// message view with the send form (BrowserNode supports send); a message
// typed there reaches the daemon through the relay's router with the
// page's feed as sender, the daemon's devices show the page online, and
// the daemon's message shows in the page's log.
func TestBrowserPageUISends(t *testing.T) {
	r := startRelay(t)
	page := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	sp := createSpace(t, a, "ui messages")
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)
	br := openRelayPage(t, page)
	pageJoin(br, map[string]string{"join-invite": inv.Link})
	req := approveShown(t, br, a, "")
	br.run("the send form", chromedp.WaitVisible(chromedp.CSS("#send-form")))
	eventually(t, 60*time.Second, "A shows the page's device online", func() bool {
		online, _ := pageOnline(t, a, sp.ID, req.Feed)
		return online
	})

	c, err := api.NewClient("http://"+a.api, a.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	msgs, _, err := c.Listen(ctx, sp.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var got api.Message
	eventually(t, 60*time.Second, "A gets the message typed in the page", func() bool {
		get(br, "send through the form", chromedp.Evaluate[bool](`(() => { document.getElementById("send-topic").value = "chat"; document.getElementById("send-data").value = "typed in a tab"; document.querySelector("#send-form button[type=submit]").click(); return true })()`))
		select {
		case got = <-msgs:
			return true
		case <-time.After(2 * time.Second):
			return false
		}
	})
	if got.Sender != req.Feed || got.Topic != "chat" || string(got.Data) != "typed in a tab" {
		t.Fatalf("A got %+v from the page (feed %s)", got, req.Feed)
	}
	eventually(t, 60*time.Second, "the page's log shows A's message", func() bool {
		a.call("POST", "/v1/spaces/"+sp.ID+"/messages", api.SendRequest{Topic: "chat", Data: []byte("hello tab")}, nil)
		return strings.Contains(br.textNow("#messages-log"), "hello tab")
	})
	if e := br.textNow("#error"); e != "" {
		t.Fatalf("the page shows an error: %s", e)
	}
}
