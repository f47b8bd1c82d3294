package main

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// TestE2ETwoRelaysOneKilled: two real `mycel relay` processes serve one
// space (the second joins the first's DHT with --peer); A and B list
// both (--relay twice) and hand each the mirror token. B, offline while
// A writes some 10 MiB, comes back knowing the relays only; one relay is
// killed (SIGKILL) while B is catching up, and B finishes through the
// other: its view digest matches A's, and it never connected to A.
func TestE2ETwoRelaysOneKilled(t *testing.T) {
	r1 := startRelay(t, t.TempDir())
	r1addr := r1.addrs[0]
	r2 := startRelay(t, t.TempDir(), "--peer", r1addr)
	r2addr := r2.addrs[0]

	a := newDaemon(t)
	b := newDaemon(t, "--peer", a.peerAddr())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("A's log:\n%s\nB's log:\n%s\nR1's log:\n%s\nR2's log:\n%s", a.stderr, b.stderr, r1.stderr, r2.stderr)
		}
	})
	id := createSpace(t, a, b) // signed in directly
	b.kill()
	a.kill()
	a.extra = []string{"--relay", r1addr, "--relay", r2addr}
	a.start()
	reservedOn(t, a, r1.id)
	reservedOn(t, a, r2.id)

	const n, size = 320, 32 << 10
	for i := range n {
		v := make([]byte, size)
		rand.Read(v)
		a.put(id, fmt.Sprintf("k%04d", i), v)
	}
	want := a.space(id)
	var st api.Status
	a.request("GET", "/v1/status", nil, &st)

	// B knows the relays only.
	b.extra = []string{"--relay", r1addr, "--relay", r2addr}
	b.start()
	start := b.space(id).Entries
	var at uint64
	waitFor(t, 60*time.Second, func() error {
		got := b.space(id)
		if got.Digest == want.Digest {
			t.Fatalf("B caught up (%d entries) before the relay was killed", got.Entries)
		}
		if got.Entries <= start {
			return fmt.Errorf("B has not started catching up: %d entries", got.Entries)
		}
		at = got.Entries
		return nil
	})
	r1.cmd.Process.Kill()
	r1.cmd.Wait()
	t.Logf("R1 killed with B at %d of %d entries", at, want.Entries)

	waitFor(t, 90*time.Second, func() error {
		if got := b.space(id); got.Digest != want.Digest {
			return fmt.Errorf("B: %d entries, A: %d", got.Entries, want.Entries)
		}
		return nil
	})
	if err := converged(id, 0, a, b); err != nil {
		t.Fatal(err)
	}
	if relayed, direct := relayedTo(b, st.PeerID); relayed || direct {
		t.Errorf("B reached A itself (relayed %v, direct %v): not through the mirrors", relayed, direct)
	}
	var bst api.Status
	b.request("GET", "/v1/status", nil, &bst)
	for _, r := range bst.Relays {
		if r.ID == r1.id && r.Connected {
			t.Errorf("B still connected to the killed relay: %+v", r)
		}
	}
}
