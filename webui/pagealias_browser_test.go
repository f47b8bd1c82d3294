package webui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// Sign-in in the relay's page without a member's address: with an invite
// code alone (the relay's directory gives its locator, which the page
// opens with the code and which names the inviting member) and with a
// space's alias and its password (the relay resolves the alias).

func waitLocators(t *testing.T, r *relay.Relay, n int) {
	t.Helper()
	eventually(t, 60*time.Second, "the member's locator is at the relay", func() bool {
		return r.Directory().Counts().Locators >= n
	})
}

// TestBrowserPageSignsInWithCodeAlone: daemon A, reachable only through
// the relay, makes an invite (its locator goes to the relay); the page is
// given the short code and nothing else, finds the space and A at the
// relay, asks A through the relay's circuit, and once A approves shows
// A's keys. A code the relay holds no locator of ends with a message that
// says so.
func TestBrowserPageSignsInWithCodeAlone(t *testing.T) {
	r := startRelay(t)
	url := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	sp := createSpace(t, a, "by-code")
	putMany(t, a, sp.ID, 0, 2)
	waitRouted(t, r, sp.ID)
	var inv api.Invite
	a.call("POST", "/v1/spaces/"+sp.ID+"/invites", map[string]any{}, &inv)
	waitLocators(t, r, 1)

	br := openRelayPage(t, url)
	// A code the relay does not know: made by a daemon with no relay.
	b := startDaemon(t, "b")
	other := createSpace(t, b, "elsewhere")
	var lost api.Invite
	b.call("POST", "/v1/spaces/"+other.ID+"/invites", map[string]any{}, &lost)
	pageJoin(br, map[string]string{"join-invite": lost.Code})
	eventually(t, 30*time.Second, "the page says the relay knows no such invite", func() bool {
		return strings.Contains(br.textNow("#error"), "knows no open invite")
	})

	pageJoin(br, map[string]string{"join-invite": inv.Code, "join-name": "by-code"})
	approveShown(t, br, a, "invite")
	eventually(t, 90*time.Second, "the page shows A's keys", func() bool {
		return keyShown(br, "k000000") == "value 0" && keyShown(br, "k000001") == "value 1"
	})
}

// TestBrowserPageSignsInWithAlias: A names its space "family" at the
// relay and sets a password; the page signs in with "family" and the
// password (and A's circuit: a password names no member), and shows A's
// keys once A approves. An unknown name ends with a message that says so.
func TestBrowserPageSignsInWithAlias(t *testing.T) {
	r := startRelay(t)
	url := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	circuit := daemonCircuit(t, a, r)
	sp := createSpace(t, a, "by-alias")
	putMany(t, a, sp.ID, 0, 2)
	waitRouted(t, r, sp.ID)
	a.call("PUT", "/v1/spaces/"+sp.ID+"/password", api.PasswordParams{Password: "correct horse battery"}, nil)
	eventually(t, 60*time.Second, "the relay holds A's alias", func() bool {
		var st api.AliasState
		c := a.call("PUT", "/v1/spaces/"+sp.ID+"/alias", api.AliasParams{Name: "family"}, &st)
		return c == http.StatusOK && len(st.Relays) == 1 && st.Relays[0].Error == ""
	})

	br := openRelayPage(t, url)
	pageJoin(br, map[string]string{"join-space": "nobody", "join-password": "correct horse battery", "join-member": circuit})
	eventually(t, 30*time.Second, "the page says the relay knows no such name", func() bool {
		return strings.Contains(br.textNow("#error"), "knows no space of this name")
	})
	pageJoin(br, map[string]string{"join-space": "Family", "join-password": "correct horse battery", "join-member": circuit, "join-name": "family"})
	approveShown(t, br, a, "password")
	eventually(t, 90*time.Second, "the page shows A's keys", func() bool {
		return keyShown(br, "k000000") == "value 0" && keyShown(br, "k000001") == "value 1"
	})
}
