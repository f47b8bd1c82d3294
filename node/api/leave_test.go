package api_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/mycelsync/mycel/node/api"
)

// TestLeaveSpace: DELETE /v1/spaces/{space} leaves the space through the
// client, answers what the leave did, and a second leave finds nothing.
func TestLeaveSpace(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	left, err := e.client.LeaveSpace(ctx, e.space)
	if err != nil || left.Space != e.space || !left.Removed || left.Reached != 0 || left.Warning == "" {
		t.Fatalf("LeaveSpace: %+v %v", left, err)
	}
	if sp, err := e.client.Spaces(ctx); err != nil || len(sp) != 0 {
		t.Fatalf("spaces after leaving: %+v %v", sp, err)
	}
	if _, err := e.client.LeaveSpace(ctx, e.space); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("leaving twice: %v", err)
	}
	if status, apiErr, _ := e.raw(t, "DELETE", "/v1/spaces/nothex", "", nil); status != http.StatusBadRequest {
		t.Fatalf("bad ID: %d %+v", status, apiErr)
	}
}
