package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
)

// storeKeysOf counts the keys a stopped daemon's store holds of space id:
// its namespace ("S" ‖ ID) and its record ("ns" ‖ ID).
func storeKeysOf(t *testing.T, dir, id string) int {
	t.Helper()
	st, err := badgerstore.Open(filepath.Join(dir, node.StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw, _ := hex.DecodeString(id)
	n := 0
	for _, p := range [][]byte{append([]byte("S"), raw...), append([]byte("ns"), raw...)} {
		st.Scan(p, feed.PrefixEnd(p), func(_, _ []byte) error { n++; return nil })
	}
	return n
}

// TestE2ELeave: on real daemons, B (a writer) leaves with `mycel space
// leave --yes`: A stops listing it, B's list and store no longer hold the
// space, and B joins again later. C gives up a join that waits. Without a
// terminal, leave asks for --yes and changes nothing.
func TestE2ELeave(t *testing.T) {
	t.Setenv("MYCEL_HOME", "")
	t.Setenv("MYCEL_API", "")
	a := newDaemon(t, "--name", "device A")
	b := newDaemon(t, "--name", "device B", "--peer", a.peerAddr())
	c := newDaemon(t, "--name", "device C", "--peer", a.peerAddr())
	id := createSpace(t, a, b)
	waitFor(t, 60*time.Second, func() error {
		if !b.space(id).Writer {
			return fmt.Errorf("B not a writer yet")
		}
		return nil
	})
	b.put(id, "from-b", []byte("1"))
	a.put(id, "from-a", []byte("1"))
	waitFor(t, 60*time.Second, func() error { return converged(id, 3+signInEntries, a, b) })
	bFeed := b.space(id).Feed

	if out, stderr, code := runCLI(t, "", "space", "leave", id, "--data", b.dir); code != exitUsage || !strings.Contains(stderr, "--yes") {
		t.Fatalf("leave without a terminal nor --yes: exit %d %q %q", code, out, stderr)
	}
	if !b.space(id).Writer {
		t.Fatal("a refused leave changed the space")
	}
	out, stderr, code := runCLI(t, "", "space", "leave", id[:8], "--yes", "--data", b.dir)
	if code != 0 || !strings.Contains(out, "left space") || !strings.Contains(out, "peer(s) got the removal") {
		t.Fatalf("leave: exit %d %q %q", code, out, stderr)
	}
	out, stderr, code = runCLI(t, "", "space", "list", "--json", "--data", b.dir)
	var spaces []api.SpaceInfo
	if code != 0 || json.Unmarshal([]byte(out), &spaces) != nil || len(spaces) != 0 {
		t.Fatalf("space list after leaving: exit %d %q %q", code, out, stderr)
	}
	waitFor(t, 60*time.Second, func() error {
		var ms []api.Member
		a.request("GET", "/v1/spaces/"+id+"/members", nil, &ms)
		for _, m := range ms {
			if m.Feed == bFeed {
				return fmt.Errorf("A still lists B")
			}
		}
		return nil
	})
	var e api.Entry
	a.request("GET", "/v1/spaces/"+id+"/keys/from-b", nil, &e)
	if len(e.Versions) == 0 {
		t.Fatal("B's write before leaving is gone from A")
	}

	// C asks to join, then gives up.
	var inv api.Invite
	a.request("POST", "/v1/spaces/"+id+"/invites", api.InviteParams{}, &inv)
	var st api.JoinState
	c.request("POST", "/v1/join", api.JoinWith{Invite: inv.Link}, &st)
	if st.State != api.JoinWaiting {
		t.Fatalf("C's join: %+v", st)
	}
	if out, stderr, code := runCLI(t, "", "space", "leave", id, "--yes", "--data", c.dir); code != 0 || !strings.Contains(out, "gave up joining") {
		t.Fatalf("leave while joining: exit %d %q %q", code, out, stderr)
	}
	if out, _, _ := runCLI(t, "", "space", "list", "--json", "--data", c.dir); strings.Contains(out, id) {
		t.Fatalf("C still lists the space: %s", out)
	}

	// B's store holds nothing of the space; B joins again later.
	b.kill()
	if n := storeKeysOf(t, b.dir, id); n != 0 {
		t.Fatalf("B's store keeps %d keys of the space it left", n)
	}
	b.start()
	approveOn(t, a, b, id)
	a.put(id, "after", []byte("2"))
	waitFor(t, 60*time.Second, func() error {
		if !b.space(id).Writer {
			return fmt.Errorf("B not a writer again yet")
		}
		return nil
	})
	waitFor(t, 60*time.Second, func() error {
		// 404 until the write arrives: request fails the test on an
		// error status only when asked to decode the answer.
		if code := b.request("GET", "/v1/spaces/"+id+"/keys/after", nil, nil); code != 200 {
			return fmt.Errorf("B (joined again) lacks A's write (%d)", code)
		}
		return nil
	})
	if !b.space(id).Writer || b.space(id).Feed == bFeed {
		t.Fatalf("B joined again: %+v", b.space(id))
	}
}
