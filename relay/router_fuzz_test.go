package relay

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
)

// FuzzRouterCheck: the router's checks on a message of a routed topic, as
// any neighbour can send: whatever the bytes, check does not panic, names
// one of its results, and forwards only an envelope that parses, of the
// routed topic, of a known key kind, from a writer if it is a members'
// one, and only once.
func FuzzRouterCheck(f *testing.F) {
	w, other := newSender(f), newSender(f)
	var id auth.SpaceID
	id[0] = 7
	topic := ephemeral.Topic(auth.DiscoveryKey(id))
	for _, s := range []sender{w, other} {
		for _, kind := range []uint32{kindMembers, kindInvite, kindPassword, 9} {
			_, b := s.envelope(f, topic, kind, "seed")
			f.Add(b)
		}
	}
	_, b := w.envelope(f, ephemeral.Topic{1}, kindMembers, "other topic")
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		src := &fakeSource{spaces: []auth.SpaceID{id}, writers: map[feed.PublicKey]bool{w.key(): true}}
		r := &Router{src: src, lim: DefaultRouterLimits(), now: time.Now, stats: newRouterStats(nil),
			topics:  map[auth.SpaceID]*routedTopic{id: {topic: topic}},
			byTopic: map[ephemeral.Topic]auth.SpaceID{topic: id}, peers: make(map[rateKey]*bucket)}
		var err error
		if r.filter, err = ephemeral.NewFilter(noSeenStore{}, ephemeral.Config{Trusted: r.trusted}); err != nil {
			t.Fatal(err)
		}
		res, e := r.check(id, topic, peer.ID("neighbour"), b)
		if _, ok := r.stats.n[res]; !ok {
			t.Fatalf("unknown result %q", res)
		}
		if res != RouteForwarded {
			if e != nil {
				t.Fatalf("%s with an envelope", res)
			}
			return
		}
		p, err := ephemeral.Parse(b)
		if err != nil || p.Topic != topic || e.ID != p.ID {
			t.Fatalf("forwarded what does not parse as the envelope: %v", err)
		}
		switch e.KeyKind {
		case kindMembers:
			if feed.PublicKey(e.Sender) != w.key() {
				t.Fatal("forwarded a members' envelope of a non-writer")
			}
		case kindInvite, kindPassword:
		default:
			t.Fatalf("forwarded key kind %d", e.KeyKind)
		}
		if res, _ := r.check(id, topic, peer.ID("neighbour"), b); res != RouteDuplicate {
			t.Fatalf("the same envelope again: %s", res)
		}
	})
}
