package syncnet

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// The tests in this file run replicators over go-libp2p's in-memory
// network (mocknet): no sockets, links that can be cut and healed, and
// latency or bandwidth set per link. They are the middle layer between
// the session's transcripts (node/replication) and whole daemons.

// mesh is n replicators on one mocknet, each writing its own feed of one
// space and serving all n feeds.
type mesh struct {
	mn    mocknet.Mocknet
	space auth.SpaceID
	hosts []host.Host
	dbs   []*feed.DB
	ws    []*feed.Writer
	keys  []feed.PublicKey
	rs    []*Replicator
	logs  []*logBuffer
}

func newMesh(t *testing.T, n int, link mocknet.LinkOptions) *mesh {
	t.Helper()
	m := &mesh{mn: mocknet.New()}
	t.Cleanup(func() { m.mn.Close() })
	m.mn.SetLinkDefaults(link)
	for range n {
		h, err := m.mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		priv := newKey(t)
		db := newDB(t)
		w, err := db.Writer(priv)
		if err != nil {
			t.Fatal(err)
		}
		m.hosts, m.dbs, m.ws, m.keys = append(m.hosts, h), append(m.dbs, db), append(m.ws, w), append(m.keys, pub(priv))
		m.logs = append(m.logs, new(logBuffer))
	}
	m.space = auth.SpaceID(m.keys[0])
	capability := newCap(m.space)
	for i, h := range m.hosts {
		r := newReplicator(t, h, m.logs[i].logger())
		if err := r.Serve(NewFeedSpace(m.space, m.dbs[i], m.keys, capability)); err != nil {
			t.Fatal(err)
		}
		m.rs = append(m.rs, r)
	}
	return m
}

// link links and connects peers i and j.
func (m *mesh) link(t *testing.T, i, j int) {
	t.Helper()
	a, b := m.hosts[i].ID(), m.hosts[j].ID()
	if _, err := m.mn.LinkPeers(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := m.mn.ConnectPeers(a, b); err != nil {
		t.Fatal(err)
	}
}

// cut closes the connections between peers i and j and removes their
// links: neither can reach the other until link.
func (m *mesh) cut(t *testing.T, i, j int) {
	t.Helper()
	a, b := m.hosts[i].ID(), m.hosts[j].ID()
	if err := m.mn.UnlinkPeers(a, b); err != nil {
		t.Fatal(err)
	}
	if err := m.mn.DisconnectPeers(a, b); err != nil {
		t.Fatal(err)
	}
}

// write appends n entries to peer i's feed and tells its replicator.
func (m *mesh) write(t *testing.T, i, n int) {
	t.Helper()
	appendEntries(t, m.ws[i], n, 256)
	m.rs[i].Appended(m.space, m.keys[i])
}

// length is how many entries of j's feed peer i holds.
func (m *mesh) length(i, j int) uint64 {
	f, err := m.dbs[i].Feed(m.keys[j])
	if err != nil {
		return 0
	}
	h, _ := f.Head()
	return h.Length
}

// converged reports the first peer of group that lacks part of the feed
// of one of writers, exactly as its writer holds it.
func (m *mesh) converged(group, writers []int) error {
	for _, i := range group {
		for _, j := range writers {
			if i == j {
				continue
			}
			if err := sameFeed(m.dbs[j], m.dbs[i], m.keys[j]); err != nil {
				return fmt.Errorf("peer %d, feed of %d: %w", i, j, err)
			}
		}
	}
	return nil
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestMocknetLine: four peers in a line, 0–1–2–3, each linked only to its
// neighbours. Every feed reaches every peer, through the peers between
// (each serves what it holds of the others' feeds), at catch-up and live.
func TestMocknetLine(t *testing.T) {
	m := newMesh(t, 4, mocknet.LinkOptions{Latency: 2 * time.Millisecond})
	for i := range 4 {
		m.write(t, i, 200+50*i)
	}
	for i := range 3 {
		m.link(t, i, i+1)
	}
	all := span(0, 4)
	eventually(t, testDeadline, func() error { return m.converged(all, all) })
	if len(m.hosts[0].Network().ConnsToPeer(m.hosts[3].ID())) != 0 {
		t.Fatal("the ends of the line are connected: the test proves nothing")
	}
	// Live: the end's new entries cross two peers to the other end.
	m.write(t, 3, 40)
	eventually(t, testDeadline, func() error { return m.converged(all, all) })
	if l := m.length(0, 3); l != 350+40 {
		t.Fatalf("peer 0 holds %d of peer 3's entries, want 390", l)
	}
}

// TestMocknetPartitionHeals: four peers, fully linked, split into {0,1}
// and {2,3}. Each side keeps writing and converges within itself; what one
// side wrote during the split reaches the other once one link heals, and
// then every peer holds every feed whole.
func TestMocknetPartitionHeals(t *testing.T) {
	m := newMesh(t, 4, mocknet.LinkOptions{Latency: time.Millisecond})
	for i := range 4 {
		m.write(t, i, 100)
	}
	for i := range 4 {
		for j := i + 1; j < 4; j++ {
			m.link(t, i, j)
		}
	}
	all := span(0, 4)
	eventually(t, testDeadline, func() error { return m.converged(all, all) })

	for _, i := range []int{0, 1} {
		for _, j := range []int{2, 3} {
			m.cut(t, i, j)
		}
	}
	left, right := []int{0, 1}, []int{2, 3}
	for i := range 4 {
		m.write(t, i, 30)
	}
	eventually(t, testDeadline, func() error {
		if err := m.converged(left, left); err != nil {
			return err
		}
		return m.converged(right, right)
	})
	// The split holds: the writes of each side have not crossed.
	for _, i := range left {
		for _, j := range right {
			if l := m.length(i, j); l != 100 {
				t.Fatalf("during the split, peer %d holds %d entries of peer %d's feed, want 100", i, l, j)
			}
			if l := m.length(j, i); l != 100 {
				t.Fatalf("during the split, peer %d holds %d entries of peer %d's feed, want 100", j, l, i)
			}
		}
	}

	// One link heals: everything crosses it, both ways.
	m.link(t, 1, 2)
	eventually(t, testDeadline, func() error { return m.converged(all, all) })
}

// TestMocknetSlowLink: a catch-up over a link of 100 ms latency and
// 2 MiB/s completes exactly; the receiver's progress counts every byte.
func TestMocknetSlowLink(t *testing.T) {
	m := newMesh(t, 2, mocknet.LinkOptions{Latency: 100 * time.Millisecond, Bandwidth: 2 << 20})
	m.write(t, 0, 2000) // 2,000 × 256 B
	start := time.Now()
	m.link(t, 0, 1)
	eventually(t, testDeadline, func() error { return m.converged([]int{1}, []int{0}) })
	t.Logf("2,000 × 256 B over 100 ms / 2 MiB/s in %v", time.Since(start))
	var in uint64
	for _, p := range m.rs[1].Progress() {
		if p.Feed == m.keys[0] {
			in += p.BytesIn
		}
	}
	if in < 2000*256 {
		t.Fatalf("progress counts %d bytes in, want at least %d", in, 2000*256)
	}
}
