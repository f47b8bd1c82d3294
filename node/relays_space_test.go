package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// mycelRelay starts a relay (`mycel relay`: circuit relay, mirror,
// mailbox) on loopback and returns it with its address.
func mycelRelay(t *testing.T) (*relay.Relay, string) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cfg := &relay.Config{DataDir: t.TempDir(), LogLevel: "info", Limits: relay.DefaultLimits(), Listen: []string{listen}}
	r, err := relay.New(cfg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, listen + "/p2p/" + r.Host().ID().String()
}

func fastRelays(cfg *Config) *Config {
	cfg.Limits.Net.MinBackoff, cfg.Limits.Net.MaxBackoff = 100*time.Millisecond, 200*time.Millisecond
	return cfg
}

// spaceRelayState returns relay id's state in n's list of space sp.
func spaceRelayState(n *Node, sp string, id peer.ID) (api.SpaceRelay, error) {
	rs, err := n.SpaceRelays(sp)
	if err != nil {
		return api.SpaceRelay{}, err
	}
	for _, r := range rs {
		if r.ID == id.String() {
			return r, nil
		}
	}
	return api.SpaceRelay{}, fmt.Errorf("space lists no relay %s: %+v", id, rs)
}

// reservedAt waits until n holds a reservation at each relay for space
// sp and handed each the mirror token of an epoch > after (-1: any).
func reservedAt(t *testing.T, n *Node, sp string, after int64, relays ...*relay.Relay) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		for _, r := range relays {
			st, err := spaceRelayState(n, sp, r.Host().ID())
			if err != nil {
				return err
			}
			if !st.InUse || st.ReservedUntil == nil || !st.MirrorHanded || int64(st.MirrorEpoch) <= after {
				return fmt.Errorf("%s at relay %s: %+v", n.host.ID(), r.Host().ID(), st)
			}
		}
		return nil
	})
}

// meet connects b to a once, at a's invite hints (as a joining device
// given a link does), with no static peer that would dial a again.
func meet(t *testing.T, b, a *Node) {
	t.Helper()
	if err := b.DialHints(context.Background(), a.InviteHints()); err != nil {
		t.Fatal(err)
	}
}

func ownLength(t *testing.T, n *Node, sp string) (feed.PublicKey, uint64) {
	t.Helper()
	m, err := n.opened(sp)
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.db.Feed(m.sp.Feed())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := f.Head()
	return m.sp.Feed(), h.Length
}

// TestSpaceRelaysJoinerUsesEvery: A lists relays R1 and R2 in the space;
// B joins by invite with no relay of its own, learns the list from the
// space and reserves a slot at both, and hands both the mirror token.
// With R1 stopped, A reaches B through its circuit at R2 and B's writes
// reach A over it.
func TestSpaceRelaysJoinerUsesEvery(t *testing.T) {
	ctx := context.Background()
	r1, addr1 := mycelRelay(t)
	r2, addr2 := mycelRelay(t)
	a := startNode(t, fastRelays(named(loopbackConfig(t), "A")))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{addr1, addr2} {
		if err := a.HandToRelay(ctx, info.ID, addr); err != nil {
			t.Fatal(err)
		}
	}
	// A space of A's that lists no relay: the relays learn nothing of it.
	other, err := a.CreateSpace(ctx, "private")
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, fastRelays(named(loopbackConfig(t), "B")))
	if len(b.Status().Relays) != 0 {
		t.Fatalf("B has relays before it joins: %+v", b.Status().Relays)
	}
	meet(t, b, a)
	approve(t, a, b, info.ID, "B")
	reservedAt(t, b, info.ID, -1, r1, r2)
	reservedAt(t, a, info.ID, -1, r1, r2)
	for _, r := range []*relay.Relay{r1, r2} {
		for _, sid := range r.Mirror().Spaces() {
			if sid.String() != info.ID {
				t.Errorf("relay %s was handed the token of %s, a space that does not list it (listed: %s, other: %s)", r.Host().ID(), sid, info.ID, other.ID)
			}
		}
	}
	// A's invites now carry its circuits through the listed relays: a
	// device that reaches A only through them joins through them.
	eventually(t, 10*time.Second, func() error {
		via := map[string]bool{}
		for _, h := range a.InviteHints().Addrs {
			if m, err := ma.NewMultiaddrBytes(h); err == nil && hasProto(m, ma.P_CIRCUIT) {
				for _, r := range []*relay.Relay{r1, r2} {
					if strings.Contains(m.String(), r.Host().ID().String()) {
						via[r.Host().ID().String()] = true
					}
				}
			}
		}
		if len(via) != 2 {
			return fmt.Errorf("A's invite hints go through %d of the 2 listed relays", len(via))
		}
		return nil
	})
	st := b.Status().Relays
	if len(st) != 2 || st[0].Config || !slices.Equal(st[0].Spaces, []string{info.ID}) {
		t.Fatalf("B's relays: %+v", st)
	}

	// R1 goes away: B keeps its circuit at R2.
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	var circuit string
	eventually(t, 30*time.Second, func() error {
		s1, err := spaceRelayState(b, info.ID, r1.Host().ID())
		if err != nil {
			return err
		}
		s2, err := spaceRelayState(b, info.ID, r2.Host().ID())
		if err != nil {
			return err
		}
		if s1.ReservedUntil != nil || s2.ReservedUntil == nil || len(s2.Circuit) == 0 {
			return fmt.Errorf("B at R1 %+v, at R2 %+v", s1, s2)
		}
		circuit = s2.Circuit[0]
		return nil
	})
	// A forgets B's direct addresses and reaches it at R2's circuit only.
	bid := b.host.ID()
	a.host.Peerstore().ClearAddrs(bid)
	b.host.Peerstore().ClearAddrs(a.host.ID())
	_ = a.host.Network().ClosePeer(bid)
	eventually(t, 10*time.Second, func() error {
		if len(a.host.Network().ConnsToPeer(bid)) != 0 {
			return errors.New("A still connected to B")
		}
		return nil
	})
	ci, err := peer.AddrInfoFromString(circuit)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.host.Connect(ctx, *ci); err != nil {
		t.Fatalf("A dials B through R2 (%s): %v", circuit, err)
	}
	relayed := false
	for _, c := range a.host.Network().ConnsToPeer(bid) {
		relayed = relayed || c.Stat().Limited || hasProto(c.RemoteMultiaddr(), ma.P_CIRCUIT)
	}
	if !relayed {
		t.Fatalf("A's connection to B is not through the relay: %v", a.host.Network().ConnsToPeer(bid))
	}
	if err := b.Put(ctx, info.ID, "through-r2", []byte("yes")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		e, err := a.Get(info.ID, "through-r2")
		if err != nil {
			return err
		}
		if len(e.Versions) == 0 || string(e.Versions[0].Value) != "yes" {
			return fmt.Errorf("A reads %+v", e)
		}
		return nil
	})
}

// TestSpaceRelaysRotation: after a removal, both relays the space lists
// get the new epoch's mirror token from the members without any command,
// and keep mirroring: B, offline while A writes, comes back with no relay
// of its own after A and R1 are gone, and catches up from R2's mirror.
// A relay taken off the list is released and gets no later token.
func TestSpaceRelaysRotation(t *testing.T) {
	ctx := context.Background()
	r1, addr1 := mycelRelay(t)
	r2, addr2 := mycelRelay(t)
	a := startNode(t, fastRelays(named(loopbackConfig(t), "A")))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{addr1, addr2} {
		if err := a.HandToRelay(ctx, info.ID, addr); err != nil {
			t.Fatal(err)
		}
	}
	bcfg := fastRelays(named(loopbackConfig(t), "B"))
	b := startNode(t, bcfg)
	c := startNode(t, fastRelays(named(loopbackConfig(t), "C")))
	meet(t, b, a)
	meet(t, c, a)
	approve(t, a, b, info.ID, "B")
	approve(t, a, c, info.ID, "C")
	reservedAt(t, a, info.ID, -1, r1, r2)
	reservedAt(t, b, info.ID, -1, r1, r2)
	s, err := spaceRelayState(a, info.ID, r1.Host().ID())
	if err != nil {
		t.Fatal(err)
	}
	before := int64(s.MirrorEpoch)

	ms, err := c.Members(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	var cfeed string
	for _, m := range ms {
		if m.Self {
			cfeed = m.Feed
		}
	}
	if err := a.RemoveMember(ctx, info.ID, cfeed); err != nil {
		t.Fatal(err)
	}
	// No command: both relays get the new epoch's token from A.
	reservedAt(t, a, info.ID, before, r1, r2)

	// B goes offline; A writes; R2 mirrors it under the new token.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, info.ID, "after-rotation", []byte("mirrored")); err != nil {
		t.Fatal(err)
	}
	afeed, alen := ownLength(t, a, info.ID)
	sid, err := parseSpaceID(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if got := r2.Mirror().Stored(sid)[afeed]; got < alen {
			return fmt.Errorf("R2 mirrors %d of A's %d entries", got, alen)
		}
		return nil
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	// B again, from its data directory, with no relay of its own.
	b2 := startNode(t, bcfg)
	eventually(t, 60*time.Second, func() error {
		e, err := b2.Get(info.ID, "after-rotation")
		if err != nil {
			return err
		}
		if len(e.Versions) == 0 || string(e.Versions[0].Value) != "mirrored" {
			return fmt.Errorf("B reads %+v", e)
		}
		return nil
	})

	// B takes R1 off the list: released, no reservation, no longer in use.
	if err := b2.DropRelay(ctx, info.ID, r1.Host().ID().String()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		for _, r := range b2.Status().Relays {
			if r.ID == r1.Host().ID().String() {
				return fmt.Errorf("R1 still in use: %+v", r)
			}
		}
		return nil
	})
	if err := b2.DropRelay(ctx, info.ID, r1.Host().ID().String()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("dropping R1 twice: %v", err)
	}
}

func randomPeer(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSpaceRelayEntry: the entry codec round-trips and refuses what is
// malformed or out of bounds.
func TestSpaceRelayEntry(t *testing.T) {
	id := randomPeer(t)
	other := randomPeer(t)
	a := ma.StringCast("/ip4/127.0.0.1/tcp/4111")
	b := ma.StringCast("/ip6/::1/udp/4111/quic-v1")
	good, err := encodeSpaceRelay(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := decodeSpaceRelay(id.String(), good)
	if err != nil || info.ID != id || len(info.Addrs) != 2 || !info.Addrs[0].Equal(a) || !info.Addrs[1].Equal(b) {
		t.Fatalf("round trip: %+v %v", info, err)
	}
	withP2P, _ := encodeSpaceRelay(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a.Encapsulate(ma.StringCast("/p2p/" + id.String()))}})
	if info, err := decodeSpaceRelay(id.String(), withP2P); err != nil || !info.Addrs[0].Equal(a) {
		t.Fatalf("with its own /p2p: %+v %v", info, err)
	}
	entry := func(addrs ...[]byte) []byte {
		e := []byte{spaceRelayVersion, byte(len(addrs))}
		for _, x := range addrs {
			e = append(append(e, byte(len(x))), x...)
		}
		return e
	}
	long := ma.StringCast("/dns4/" + string(slices.Repeat([]byte("a"), 250)) + "/tcp/1").Bytes()
	bad := map[string]struct {
		id string
		b  []byte
	}{
		"empty":                       {id.String(), nil},
		"version 2":                   {id.String(), append([]byte{2}, good[1:]...)},
		"no address":                  {id.String(), []byte{1, 0}},
		"5 addresses":                 {id.String(), entry(a.Bytes(), a.Bytes(), a.Bytes(), a.Bytes(), a.Bytes())},
		"short":                       {id.String(), good[:len(good)-1]},
		"trailing":                    {id.String(), append(slices.Clone(good), 0)},
		"zero length":                 {id.String(), entry([]byte{})},
		"not a multiaddr":             {id.String(), entry([]byte{0xff, 0xff, 0xff})},
		"address too long":            {id.String(), entry(long)},
		"oversized":                   {id.String(), append(slices.Clone(good), make([]byte, maxSpaceRelayEntry)...)},
		"circuit":                     {id.String(), entry(ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/" + other.String() + "/p2p-circuit").Bytes())},
		"another peer's":              {id.String(), entry(ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/" + other.String()).Bytes())},
		"key not a peer ID":           {"relay", good},
		"control bytes in a dns name": {id.String(), entry(ma.StringCast("/dns4/relay\x1b[2J.example/tcp/1").Bytes())},
		"space in a dns name":         {id.String(), entry(ma.StringCast("/dns/re lay/tcp/1").Bytes())},
		"key too long":                {string(slices.Repeat([]byte("1"), maxSpaceRelayID+1)), good},
	}
	for name, c := range bad {
		if info, err := decodeSpaceRelay(c.id, c.b); err == nil {
			t.Errorf("%s: decoded %+v", name, info)
		}
	}
	if _, err := encodeSpaceRelay(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a, a, a, a, a}}); err == nil {
		t.Error("encoded 5 addresses")
	}
}

// FuzzSpaceRelayEntry: whatever a writer put in the list decodes within
// bounds or is refused, and what decodes encodes back to an entry that
// decodes the same.
func FuzzSpaceRelayEntry(f *testing.F) {
	id := randomPeer(f)
	good, _ := encodeSpaceRelay(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4111")}})
	f.Add(id.String(), good)
	f.Add(id.String(), []byte{1, 1, 0})
	f.Add("x", []byte{1})
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		info, err := decodeSpaceRelay(key, b)
		if err != nil {
			return
		}
		if len(info.Addrs) == 0 || len(info.Addrs) > maxSpaceRelayAddrs {
			t.Fatalf("%d addresses", len(info.Addrs))
		}
		again, err := encodeSpaceRelay(info)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := decodeSpaceRelay(key, again)
		if err != nil || back.ID != info.ID || len(back.Addrs) != len(info.Addrs) {
			t.Fatalf("re-decode: %+v %v", back, err)
		}
	})
}

// TestSpaceRelayListFlood: a writer floods the space's list (valid entries
// for relays that do not exist, malformed ones among them) and spreads
// more over other spaces: the device uses 16 relays of a space and 64 in
// all, refuses the malformed entries (API: their problem), and refuses
// to list a 17th relay.
func TestSpaceRelayListFlood(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, fastRelays(loopbackConfig(t)))
	nowhere := ma.StringCast("/ip4/127.0.0.1/tcp/9")
	list := func(sp string, k int) {
		t.Helper()
		m, err := n.opened(sp)
		if err != nil {
			t.Fatal(err)
		}
		for range k {
			p := randomPeer(t)
			b, err := encodeSpaceRelay(peer.AddrInfo{ID: p, Addrs: []ma.Multiaddr{nowhere}})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.sp.SetRelay(ctx, p.String(), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	info, err := n.CreateSpace(ctx, "flooded")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := n.opened(info.ID)
	// Malformed entries first in key order ('!' < '1').
	for key, v := range map[string][]byte{"!not-a-peer": {1, 1, 2, 0, 0}, randomPeer(t).String(): {9, 9, 9}} {
		if err := m.sp.SetRelay(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	list(info.ID, 40)
	n.spaceRelaysChanged()
	inUse := func(want int) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			if got := len(n.Status().Relays); got != want {
				return fmt.Errorf("%d relays in use, want %d", got, want)
			}
			return nil
		})
	}
	inUse(maxSpaceRelays)
	rs, err := n.SpaceRelays(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	problems := 0
	for _, r := range rs {
		if r.Problem != "" {
			problems++
		}
	}
	if len(rs) != spaceRelayListReads || problems != spaceRelayListReads-maxSpaceRelays {
		t.Errorf("API lists %d entries, %d with a problem; want %d, %d", len(rs), problems, spaceRelayListReads, spaceRelayListReads-maxSpaceRelays)
	}
	for _, addr := range []string{"/p2p/" + randomPeer(t).String(), "/ip4/127.0.0.1/tcp/9/p2p/" + randomPeer(t).String() + "/p2p-circuit", "/ip4/127.0.0.1/tcp/9"} {
		if err := n.HandToRelay(ctx, info.ID, addr); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("relay add %s: %v", addr, err)
		}
	}
	if err := n.HandToRelay(ctx, info.ID, "/ip4/127.0.0.1/tcp/9/p2p/"+randomPeer(t).String()); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "lists 16 relays") {
		t.Errorf("a 17th relay: %v", err)
	}
	// A writer that keeps replacing the list: the released relays' slots
	// are reused, the set does not grow with every relay ever listed.
	for range 5 {
		for _, e := range m.sp.Relays(1000) {
			if err := m.sp.DropRelay(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
		}
		list(info.ID, maxSpaceRelays)
		n.spaceRelaysChanged()
		eventually(t, 20*time.Second, func() error {
			rs, err := n.SpaceRelays(info.ID)
			if err != nil {
				return err
			}
			if len(rs) != maxSpaceRelays {
				return fmt.Errorf("%d relays listed", len(rs))
			}
			for _, r := range rs {
				if !r.InUse {
					return fmt.Errorf("relay %s listed, not in use", r.ID)
				}
			}
			return nil
		})
	}
	n.relays.mu.Lock()
	slots := len(n.relays.relays)
	n.relays.mu.Unlock()
	if slots > 3*maxSpaceRelays {
		t.Errorf("%d relay slots after 5 lists replaced (%d in use)", slots, maxSpaceRelays)
	}

	for i := range 4 {
		o, err := n.CreateSpace(ctx, fmt.Sprintf("more %d", i))
		if err != nil {
			t.Fatal(err)
		}
		list(o.ID, maxSpaceRelays)
	}
	n.spaceRelaysChanged()
	inUse(maxListedRelays)
	// Still bounded a few list readings later.
	time.Sleep(5 * n.limits.Net.MinBackoff)
	if got := len(n.Status().Relays); got != maxListedRelays {
		t.Errorf("%d relays in use", got)
	}
}
