package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

// TestCLISyncWaitCountsEntriesOnce: two peers carrying the same feeds make
// two sessions; an entry still counts once.
func TestCLISyncWaitCountsEntriesOnce(t *testing.T) {
	e := newCLIEnv(t)
	var prog []api.Progress
	var peers []api.Peer
	for _, p := range []string{"12D3KooWpeerA", "12D3KooWpeerB"} {
		peers = append(peers, api.Peer{ID: p, Spaces: []string{e.space}})
		prog = append(prog,
			api.Progress{Space: e.space, Peer: p, Feed: apitest.HexID(1), Have: 10, Want: 40},
			api.Progress{Space: e.space, Peer: p, Feed: apitest.HexID(2), Have: 5, Want: 5})
	}
	e.fake.SetPeers(peers)
	e.fake.SetProgress(prog)
	_, stderr, code := e.run(t, "", "sync", "--wait", "--timeout", "300ms", "--interval", "20ms")
	if code != 1 || !strings.Contains(stderr, "15/45 entries") || !strings.Contains(stderr, "2 sessions") {
		t.Fatalf("sync --wait with two peers carrying the same feeds: exit %d\n%s", code, stderr)
	}
}

// TestCLISyncWaitStaticPeers: a static peer that has not connected yet is
// waited for, instead of "nothing to sync with".
func TestCLISyncWaitStaticPeers(t *testing.T) {
	e := newCLIEnv(t)
	e.fake.SetStaticPeers([]string{"12D3KooWstatic"})
	_, stderr, code := e.run(t, "", "sync", "--wait", "--timeout", "300ms", "--interval", "20ms")
	if code != 1 || !strings.Contains(stderr, "timed out") || !strings.Contains(stderr, "1 starting") || strings.Contains(stderr, "nothing to sync") {
		t.Fatalf("sync --wait before the static peer connected: exit %d\n%s", code, stderr)
	}
	polls := e.fake.Calls("Progress")
	done := make(chan string, 1)
	go func() {
		_, stderr, code := e.run(t, "", "sync", "--wait", "--interval", "20ms", "--timeout", "20s")
		done <- fmt.Sprintf("%d\n%s", code, stderr)
	}()
	waitUntil(t, func() bool { return e.fake.Calls("Progress") > polls }) // it polled before the peer came
	e.fake.SetPeers([]api.Peer{{ID: "12D3KooWstatic", Spaces: []string{e.space}}})
	e.fake.SetProgress([]api.Progress{{Space: e.space, Peer: "12D3KooWstatic", Feed: apitest.HexID(1), Have: 3, Want: 3}})
	if got := <-done; !strings.HasPrefix(got, "0\n") || !strings.Contains(got, "3/3 entries") {
		t.Fatalf("sync --wait once the static peer connected:\n%s", got)
	}
}

// TestCLISyncWaitRefusedSession: a peer shares the space but its session
// never starts (it refuses this device): sync --wait does not wait for it
// past the grace, and says so.
func TestCLISyncWaitRefusedSession(t *testing.T) {
	e := newCLIEnv(t)
	e.fake.SetPeers([]api.Peer{
		{ID: "12D3KooWrefuses", Spaces: []string{e.space}},
		{ID: "12D3KooWserves", Spaces: []string{e.space}},
	})
	e.fake.SetProgress([]api.Progress{{Space: e.space, Peer: "12D3KooWserves", Feed: apitest.HexID(1), Have: 3, Want: 3}})
	start := time.Now()
	_, stderr, code := e.run(t, "", "sync", "--wait", "--interval", "20ms", "--timeout", "10s", "--start-grace", "300ms")
	if code != 0 || !strings.Contains(stderr, "1 not starting") || !strings.Contains(stderr, "did not start") {
		t.Fatalf("sync --wait with a refused session: exit %d after %v\n%s", code, time.Since(start), stderr)
	}
}
