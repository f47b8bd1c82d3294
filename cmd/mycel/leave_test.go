package main

import (
	"strings"
	"testing"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

// TestCLILeave: a refused join shows as refused in space list (not as
// waiting), leave clears it; leave asks for --yes when stdin is not a
// terminal and then changes nothing; a writer's leave with no peer warns.
func TestCLILeave(t *testing.T) {
	e := newCLIEnv(t)
	other := apitest.HexID(0xabc)
	if _, err := e.fake.Join(t.Context(), api.JoinWith{Invite: apitest.InviteLink(other, 1)}); err != nil {
		t.Fatal(err)
	}
	e.fake.AnswerJoin(other, api.JoinRefused, "the invite expired")
	out := e.ok(t, "space", "list")
	if !strings.Contains(out, "join refused") || strings.Contains(out, "waiting for approval") {
		t.Fatalf("space list with a refused join:\n%s", out)
	}
	if _, stderr, code := e.run(t, "", "space", "leave", other); code != exitUsage || !strings.Contains(stderr, "--yes") {
		t.Fatalf("leave without --yes nor a terminal: exit %d %q", code, stderr)
	}
	if w := e.fake.Writes(); len(w) != 0 && w[len(w)-1] == "LeaveSpace" {
		t.Fatal("a refused leave called the daemon")
	}
	if out := e.ok(t, "space", "leave", other, "--yes"); !strings.Contains(out, "gave up joining") {
		t.Fatalf("leave a refused join: %q", out)
	}
	if out := e.ok(t, "space", "list"); strings.Contains(out, other) {
		t.Fatalf("space list after leaving:\n%s", out)
	}
	out, stderr, code := e.run(t, "", "space", "leave", "notes", "-y")
	if code != 0 || !strings.Contains(out, "left space") || !strings.Contains(stderr, "warning: no peer") {
		t.Fatalf("leave as a writer with no peer: exit %d %q %q", code, out, stderr)
	}
}
