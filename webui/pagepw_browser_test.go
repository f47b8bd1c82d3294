package webui_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// waitServed waits until the relay's mirror serves the space (it holds a
// confirmed mirror token of it: a writer, A, handed it and proved it).
func waitServed(t *testing.T, r *relay.Relay, space string) {
	t.Helper()
	eventually(t, 90*time.Second, "the relay's mirror serves the space", func() bool {
		for _, id := range r.Mirror().ServedSpaces() {
			if id.String() == space {
				return true
			}
		}
		return false
	})
}

// TestBrowserPageSignsInWithPasswordOnly: A, started with --relay, hands
// the relay its space's mirror token, names the space "family" there and
// sets a password. The page is given "family" and the password and
// nothing else (no member's address): the request crosses the relay's
// router to A, A lists it with the page's safety code, and once A
// approves the page replicates from the relay's mirror, shows A's keys,
// and sees a put A makes afterwards.
func TestBrowserPageSignsInWithPasswordOnly(t *testing.T) {
	r := startRelay(t)
	url := relayPage(t, r)
	a := relayedDaemon(t, r, "a")
	sp := createSpace(t, a, "by-password")
	putMany(t, a, sp.ID, 0, 2)
	waitRouted(t, r, sp.ID)
	waitServed(t, r, sp.ID)
	a.call("PUT", "/v1/spaces/"+sp.ID+"/password", api.PasswordParams{Password: "correct horse battery"}, nil)
	eventually(t, 60*time.Second, "the relay holds A's alias", func() bool {
		var st api.AliasState
		c := a.call("PUT", "/v1/spaces/"+sp.ID+"/alias", api.AliasParams{Name: "family"}, &st)
		return c == http.StatusOK && len(st.Relays) == 1 && st.Relays[0].Error == ""
	})

	br := openRelayPage(t, url)
	pageJoin(br, map[string]string{"join-space": "family", "join-password": "correct horse battery", "join-name": "family"})
	approveShown(t, br, a, "password")
	eventually(t, 90*time.Second, "the page shows A's keys", func() bool {
		return keyShown(br, "k000000") == "value 0" && keyShown(br, "k000001") == "value 1"
	})
	putMany(t, a, sp.ID, 2, 1)
	eventually(t, 60*time.Second, "A's later put reaches the page", func() bool {
		return keyShown(br, "k000002") == "value 2"
	})
}
