package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/node/api"
)

// TestAliasRoutes: PUT and DELETE of an alias reach the backend with the
// space, name and relay; a second space cannot take the name (409); an
// oversized name or relay is refused before the backend sees it; a join
// naming its space by an alias passes the server's checks to the backend,
// while one with a space that is neither an ID nor an alias does not.
func TestAliasRoutes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client
	st, err := c.SetAlias(ctx, e.space, "Family", "")
	if err != nil || st.Name != "family" || st.Space != e.space || len(st.Relays) != 1 {
		t.Fatalf("SetAlias: %+v %v", st, err)
	}
	other := e.fake.AddSpace("other")
	if _, err := c.SetAlias(ctx, other, "family", ""); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("another space takes the name: %v", err)
	}
	long := strings.Repeat("x", 1025)
	if status, apiErr, _ := e.raw(t, "PUT", "/v1/spaces/"+e.space+"/alias", `{"name":"`+long+`"}`, nil); status != http.StatusBadRequest {
		t.Errorf("oversized name: %d %+v", status, apiErr)
	}
	if status, apiErr, _ := e.raw(t, "PUT", "/v1/spaces/"+e.space+"/alias", `{"name":"a","relay":"`+long+`"}`, nil); status != http.StatusBadRequest {
		t.Errorf("oversized relay: %d %+v", status, apiErr)
	}
	if st, err := c.DropAlias(ctx, e.space, "family", ""); err != nil || st.Name != "family" {
		t.Fatalf("DropAlias: %+v %v", st, err)
	}
	if _, err := c.SetAlias(ctx, other, "family", ""); err != nil {
		t.Fatalf("the name, dropped, is free: %v", err)
	}
	for space, want := range map[string]int{
		"family@/ip4/127.0.0.1/tcp/1/p2p/12D3KooWA": -1, // the server lets it through (the fake decides)
		"family":                        http.StatusBadRequest,
		"@relay":                        http.StatusBadRequest,
		strings.Repeat("f", 1000) + "@": http.StatusBadRequest,
	} {
		status, apiErr, _ := e.raw(t, "POST", "/v1/join", `{"password":"correct horse","space":"`+space+`"}`, nil)
		if want > 0 && status != want || want < 0 && status == http.StatusBadRequest && strings.Contains(apiErr.Message, "want 64 hex digits") {
			t.Errorf("join with space %.40q: %d %+v", space, status, apiErr)
		}
	}
}
