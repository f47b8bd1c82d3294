package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
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

// listedRelays is a backend whose spaces all list relays rs.
type listedRelays struct {
	*apitest.Fake
	rs []api.SpaceRelay
}

func (l listedRelays) SpaceRelays(string) ([]api.SpaceRelay, error) { return l.rs, nil }

// TestCLIRelayListEscapes: the space's list is written by its writers, any
// of whom may be hostile, and an address may be a /dns name of any bytes
// (the node's checks accept it: it is a transport address): mycel relay
// list prints no control character of it raw, and a dial error of several
// lines stays on its line.
func TestCLIRelayListEscapes(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MYCEL_HOME", "")
	t.Setenv("MYCEL_API", "")
	tok, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	fake := apitest.New()
	id := fake.AddSpace("notes")
	b := listedRelays{Fake: fake, rs: []api.SpaceRelay{
		{ID: "12D3KooWrelayA", Addrs: []string{"/dns/evil\x1b]0;pwned\x07\x1b[2J.example/tcp/4111"}, InUse: true,
			Error: "failed to dial: all dials failed\n  * [/dns/evil\x1b[2J.example/tcp/4111] dial backoff"},
		{ID: "12D3KooWrelayB", Problem: "node: space relay entry: /dns/x\x1b[31m/p2p-circuit is a circuit address"},
	}}
	srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: b, Token: tok, Version: "v-cli"}))
	t.Cleanup(srv.Close)
	if err := api.WriteEndpoint(dir, srv.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "", "relay", "list", id, "--data", dir)
	if code != 0 {
		t.Fatalf("mycel relay list: exit %d\n%s", code, errOut)
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("mycel relay list prints control characters raw: %q", out)
	}
	for _, want := range []string{
		`12D3KooWrelayA /dns/evil\x1b]0;pwned\x07\x1b[2J.example/tcp/4111` + "\n",
		`  last error: failed to dial: all dials failed; [/dns/evil\x1b[2J.example/tcp/4111] dial backoff` + "\n",
		`  not used: node: space relay entry: /dns/x\x1b[31m/p2p-circuit is a circuit address` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("mycel relay list lacks %q:\n%s", want, out)
		}
	}
}
