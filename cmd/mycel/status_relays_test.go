package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// TestCLIStatusRelaysReadable: mycel status says in words, one line per
// relay, what a new user needs: with no relay, that there is none and how
// to add one; a relay's limits in readable units; which spaces list it by
// their names; and libp2p's multi-line dial errors on the relay's line,
// not as stray lines of the table.
func TestCLIStatusRelaysReadable(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok(t, "status")
	if !strings.Contains(out, "relays:") || !strings.Contains(out, "none (mycel relay add <space> <relay address>") {
		t.Errorf("status without relays does not say so:\n%s", out)
	}

	until := time.Now().Add(time.Hour)
	e.fake.SetRelays([]api.Relay{
		{ID: "12D3KooWrelayA", Addrs: []string{"/ip4/127.0.0.1/tcp/4111"}, Config: true, Connected: true, ReservedUntil: &until, LimitSeconds: 3600, LimitBytes: 1 << 30},
		{ID: "12D3KooWrelayB", Addrs: []string{"/ip4/127.0.0.1/tcp/24111"}, Spaces: []string{e.space},
			Error: "failed to dial: failed to dial 12D3KooWrelayB: all dials failed\n  * [/ip4/127.0.0.1/tcp/24111] dial backoff"},
	})
	out = e.ok(t, "status")
	for _, want := range []string{
		"12D3KooWrelayA, connected, reserved for 1h0m0s (relayed connections limited to 1h0m0s, 1.0 GiB), for every space (--relay)\n",
		"12D3KooWrelayB, not connected, no reservation, listed by space notes (" + short(e.space) + "); last error: failed to dial: failed to dial 12D3KooWrelayB: all dials failed; [/ip4/127.0.0.1/tcp/24111] dial backoff\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "*") {
			t.Errorf("status has a stray line %q:\n%s", l, out)
		}
	}
	if strings.Contains(out, "none (mycel relay add") {
		t.Errorf("status with relays says there are none:\n%s", out)
	}
}
