package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// TestE2EMailboxSignIn: a join request made while every member is
// offline reaches the member that comes back, through the relay's
// mailbox; its approval reaches the waiting device (through the mailbox or
// the relay's router), and the
// device becomes a member: it reads what the member wrote before, and
// writes what the member reads.
func TestE2EMailboxSignIn(t *testing.T) {
	r := startRelay(t, t.TempDir(), "--metrics", "127.0.0.1:0")
	var raddr string
	for _, a := range r.addrs {
		if strings.Contains(a, "/tcp/") {
			raddr = a
		}
	}
	a := newDaemon(t, "--relay", raddr)
	var d *daemon
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay's log:\n%s\nA's log:\n%s", r.stderr, a.stderr)
			if d != nil {
				t.Logf("D's log:\n%s", d.stderr)
			}
		}
	})
	var info api.SpaceInfo
	a.request("POST", "/v1/spaces", map[string]string{"name": "mailbox"}, &info)
	id := info.ID
	a.put(id, "before", []byte("written before D asked"))
	reservedOn(t, a, r.id)
	// The relay mirrors the space once A proved the token it handed.
	waitFor(t, 60*time.Second, func() error {
		if n := relayMetric(t, r, "mycel_relay_mirror_tokens_confirmed_total"); n < 1 {
			return fmt.Errorf("no mirror token confirmed yet")
		}
		return nil
	})
	var inv api.Invite
	if st := a.request("POST", "/v1/spaces/"+id+"/invites", api.InviteParams{}, &inv); st != http.StatusOK && st != http.StatusCreated {
		t.Fatalf("invite: status %d", st)
	}
	a.kill() // every member is offline now

	d = newDaemon(t, "--relay", raddr)
	reservedOn(t, d, r.id)
	var st api.JoinState
	d.request("POST", "/v1/join", api.JoinWith{Invite: inv.Link}, &st)
	if st.Code == "" {
		t.Fatalf("join: %+v", st)
	}
	waitFor(t, 60*time.Second, func() error {
		if n := relayMetric(t, r, "mycel_relay_mailbox_envelopes"); n < 1 {
			return fmt.Errorf("the relay keeps no request yet")
		}
		return nil
	})
	start := time.Now()

	a.start() // the member comes back
	var req api.Request
	waitFor(t, 60*time.Second, func() error {
		var rs []api.Request
		a.request("GET", "/v1/requests", nil, &rs)
		for _, x := range rs {
			if x.Code == st.Code {
				req = x
				return nil
			}
		}
		return fmt.Errorf("no request with code %s on A", st.Code)
	})
	t.Logf("A shows the request %v after it came back", time.Since(start).Round(time.Millisecond))
	if s := a.request("POST", "/v1/requests/"+req.ID+"/approve", api.ApproveParams{Code: st.Code}, nil); s != http.StatusNoContent && s != http.StatusOK {
		t.Fatalf("approve: status %d", s)
	}
	waitFor(t, 90*time.Second, func() error {
		info := d.space(id)
		if info.Join != nil && info.Join.State != api.JoinWaiting && info.Join.State != api.JoinApproved {
			t.Fatalf("join: %+v", info.Join)
		}
		if !info.Approved {
			return fmt.Errorf("not approved yet: %+v", info.Join)
		}
		return nil
	})
	t.Logf("D approved %v after A came back", time.Since(start).Round(time.Millisecond))

	// A got D's request from the mailbox, not from gossipsub first (the
	// Filter counts only what it had not seen): D asks again every 5 s,
	// and A fetches as soon as it reaches the relay. A's answer may reach
	// D either way: through the mailbox, or live through the relay's
	// router, since D is on the space's topic at the relay by then.
	if n := a.metric("mycel_ephemeral_mailbox_delivered_total"); n < 1 {
		t.Errorf("A took %v envelopes from the mailbox", n)
	}
	if n := relayMetric(t, r, "mycel_relay_mailbox_delivered_total"); n < 1 {
		t.Errorf("the relay delivered %v envelopes", n)
	}

	waitValue(t, d, id, "before", []byte("written before D asked"))
	d.put(id, "from-d", []byte("D is a member"))
	waitValue(t, a, id, "from-d", []byte("D is a member"))
}
