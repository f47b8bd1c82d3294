package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// TestE2ESpaceRelays: real processes. A (no --relay) lists relays R1 and
// R2 in its space with `mycel relay add`; B, with no --relay either, joins
// by invite, learns the list from the space and reserves at both
// (`mycel relay list` shows it). R1 killed, B goes offline and A writes;
// R2 mirrors it. A gone too, B started again reaches R2 alone, from the
// list it keeps in its space, and reads what A wrote from R2's mirror.
func TestE2ESpaceRelays(t *testing.T) {
	r1 := startRelay(t, t.TempDir())
	r2 := startRelay(t, t.TempDir(), "--metrics", "127.0.0.1:0")
	addr := func(r *relayProc) string {
		info := r.info(t)
		return info.Addrs[0].String() + "/p2p/" + r.id
	}
	a := newDaemon(t)
	b := newDaemon(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("A's log:\n%s\nB's log:\n%s", a.stderr, b.stderr)
		}
	})
	id := createSpace(t, a)
	for _, r := range []*relayProc{r1, r2} {
		if out, stderr, code := mycel(t, "relay", "add", "--data", a.dir, id, addr(r)); code != 0 || !strings.Contains(out, "listed it in the space") {
			t.Fatalf("mycel relay add: exit %d\n%s%s", code, out, stderr)
		}
	}
	approveOn(t, a, b, id)
	reservedOn(t, b, r1.id)
	reservedOn(t, b, r2.id)
	if out, _, _ := mycel(t, "status", "--data", b.dir); strings.Count(out, ", listed by space ") != 2 {
		t.Errorf("mycel status on B:\n%s", out)
	}
	waitFor(t, 30*time.Second, func() error {
		out, stderr, code := mycel(t, "relay", "list", "--data", b.dir, id)
		if code != 0 || strings.Count(out, "reserved until") != 2 || strings.Count(out, "mirror token of epoch") != 2 {
			return fmt.Errorf("mycel relay list on B: exit %d\n%s%s", code, out, stderr)
		}
		return nil
	})

	r1.cmd.Process.Kill()
	r1.cmd.Wait()
	b.kill()
	a.put(id, "while-b-was-away", []byte("from R2's mirror"))
	total := feedEntries(a, id)
	waitFor(t, 60*time.Second, func() error {
		if got := relayMetric(t, r2, "mycel_relay_mirror_entries_stored_total"); uint64(got) < total {
			return fmt.Errorf("R2 mirrors %v of the space's %d entries", got, total)
		}
		return nil
	})
	a.kill()
	b.start()
	reservedOn(t, b, r2.id)
	waitValue(t, b, id, "while-b-was-away", []byte("from R2's mirror"))

	// B takes R1 off the list: it is released.
	if out, stderr, code := mycel(t, "relay", "remove", "--data", b.dir, id, r1.id); code != 0 {
		t.Fatalf("mycel relay remove: exit %d\n%s%s", code, out, stderr)
	}
	waitFor(t, 30*time.Second, func() error {
		var st api.Status
		b.request("GET", "/v1/status", nil, &st)
		for _, r := range st.Relays {
			if r.ID == r1.id {
				return fmt.Errorf("B still uses R1: %+v", r)
			}
		}
		return nil
	})
}
