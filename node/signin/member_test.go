package signin

import (
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
)

func (h *harness) newReq() *auth.JoinRequest {
	feed := h.feedKey()
	dk, err := auth.GenerateDeviceKey(h.rnd)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := auth.NewJoinRequest(h.space, "d", [32]byte(feed.Public().(ed25519.PublicKey)), dk.Public(), h.now, h.rnd)
	if err != nil {
		h.t.Fatal(err)
	}
	return req
}

// TestMembersFairShare: the requests' room is shared out by the peer
// that handed them over. One peer fills the space with requests made with
// 16 keys; a request from another peer pushes out one of them; the filling
// peer's next request pushes out nobody, nor does one from a third peer
// once every peer holds as many.
func TestMembersFairShare(t *testing.T) {
	h := newHarness(t)
	ms, lim := NewMembers(Limits{}), DefaultLimits()
	keyN := func(i int) auth.RequestKey {
		return auth.RequestKey{Kind: auth.RequestByInvite, ID: [auth.KeyIDSize]byte{byte(i)}}
	}
	for i := range lim.MaxRequests {
		if _, _, err := ms.keep(h.now, h.space, h.newReq(), keyN(i/lim.MaxPerPeerKey), "invite", "X"); err != nil {
			t.Fatalf("request %d from X: %v", i, err)
		}
	}
	if _, _, err := ms.keep(h.now, h.space, h.newReq(), keyN(0), "invite", "X"); err == nil {
		t.Fatal("a fifth request from X with one key kept")
	}
	genuine := h.newReq()
	if _, _, err := ms.keep(h.now, h.space, genuine, keyN(0), "invite", "G"); err != nil {
		t.Fatalf("G's request not kept: %v", err)
	}
	if ms.Evicted != 1 {
		t.Fatalf("%d evicted", ms.Evicted)
	}
	if _, _, err := ms.keep(h.now, h.space, h.newReq(), keyN(20), "invite", "X"); err == nil {
		t.Fatal("X pushed out a request while holding the most")
	}
	if ms.waiting[genuine.Hash()] == nil {
		t.Fatal("G's request pushed out")
	}
	// Another space's requests do not count against this one's room.
	other := auth.SpaceID{1}
	if _, _, err := ms.keep(h.now, other, h.newReq(), keyN(0), "invite", "X"); err != nil {
		t.Fatalf("a request in another space: %v", err)
	}
	// Every peer holding one: a newcomer pushes out nobody.
	clear(ms.waiting)
	for i := range lim.MaxRequests {
		if _, _, err := ms.keep(h.now, h.space, h.newReq(), keyN(0), "invite", fmt.Sprint("p", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ms.keep(h.now, h.space, h.newReq(), keyN(0), "invite", "late"); err == nil {
		t.Fatal("a newcomer pushed out a peer's only request")
	}
	if ms.Crowded != 3 {
		t.Fatalf("%d crowded, want 3", ms.Crowded)
	}
}

// The bounds are the Limits': a member set to keep 2 requests per space
// and 1 per peer and key keeps no more.
func TestMembersLimitsSet(t *testing.T) {
	h := newHarness(t)
	ms := NewMembers(Limits{MaxRequests: 2, MaxPerPeerKey: 1})
	key := auth.RequestKey{Kind: auth.RequestByPassword, ID: [auth.KeyIDSize]byte{1}}
	if _, _, err := ms.keep(h.now, h.space, h.newReq(), key, "", "X"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ms.keep(h.now, h.space, h.newReq(), key, "", "X"); err == nil {
		t.Fatal("a second request from X with one key kept")
	}
	for _, p := range []string{"Y", "Z"} {
		ms.keep(h.now, h.space, h.newReq(), key, "", p)
	}
	if n := len(ms.Current(h.now, func(auth.SpaceID) Space { return h.member("A").sp })); n != 2 {
		t.Fatalf("%d requests kept, want 2", n)
	}
}

// sealed is an envelope of key kind 3 with a made-up key ID.
func (h *harness) sealedPassword(kid byte) *ephemeral.Envelope {
	key := auth.RequestKey{Kind: auth.RequestByPassword, ID: [auth.KeyIDSize]byte{kid}}
	plain, _ := Body{Kind: KindJoinRequest, Request: []byte{1}}.Encode()
	e, err := ephemeral.Seal(key.Key, h.feedKey(), ephemeral.Header{Topic: h.topic, KeyKind: KeyKindPassword, KeyID: key.ID[:]}, plain, h.now, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

// Envelopes with made-up password key IDs make a member publish at most
// one refusal per key ID per AnswerInterval and one per space per
// RefusalSpaceInterval, whatever their number; the rate state is bounded
// by RequestTTL.
func TestMembersRefusalRate(t *testing.T) {
	h := newHarness(t)
	a := h.member("A")
	h.setPassword(password, 2)
	published := 0
	for i := range 1000 {
		h.now = t0.Add(time.Duration(i) * 10 * time.Millisecond) // 10 s in all
		out, err := a.ms.Receive(h.now, a.sp, h.sealedPassword(byte(i%4)), "X")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Publish {
			if m.Body.Kind != KindRefusal || !m.Body.Password || m.Body.Generation != 2 || m.Key != RefusalKey(m.Key.ID) {
				t.Fatalf("published %+v", m)
			}
		}
		published += len(out.Publish)
	}
	if published != 10 {
		t.Fatalf("%d refusals in 10 s, want one per second", published)
	}
	h.now = h.now.Add(DefaultLimits().RequestTTL + time.Second)
	a.ms.Receive(h.now, a.sp, h.sealedPassword(9), "X")
	if len(a.ms.refused) != 2 { // key ID 9 and the space
		t.Fatalf("%d refusal rate entries kept", len(a.ms.refused))
	}
	// A member that is no writer refuses nothing.
	a.sp.writer = false
	h.now = h.now.Add(time.Hour)
	if out, _ := a.ms.Receive(h.now, a.sp, h.sealedPassword(1), "X"); len(out.Publish) != 0 {
		t.Fatal("a removed member refused")
	}
}

// Current drops requests that stopped asking, whose device is a writer,
// whose invite is spent, of a space this device no longer writes or no
// longer has.
func TestMembersCurrent(t *testing.T) {
	h := newHarness(t)
	a := h.member("A")
	inv := h.invite(t0.Add(time.Hour))
	key := inv.RequestKey()
	reqs := make([]*auth.JoinRequest, 4)
	for i := range reqs {
		reqs[i] = h.newReq()
		if _, _, err := a.ms.keep(h.now, h.space, reqs[i], key, "", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(auth.SpaceID) Space { return a.sp }
	if n := len(a.ms.Current(h.now, lookup)); n != 4 {
		t.Fatalf("%d current", n)
	}
	a.sp.devices[reqs[0].Feed] = true
	h.now = h.now.Add(time.Minute)
	a.ms.keep(h.now, h.space, reqs[1], key, "", "1") // asked again
	h.now = h.now.Add(DefaultLimits().RequestTTL - time.Second)
	if got := a.ms.Current(h.now, lookup); len(got) != 1 || got[0].Req != reqs[1] {
		t.Fatalf("current: %v", got)
	}
	rec := a.sp.invites[inv.ID()]
	rec.MarkUsed([32]byte{1})
	a.sp.invites[inv.ID()] = rec
	if n := len(a.ms.Current(h.now, lookup)); n != 0 {
		t.Fatal("a request with a spent invite is current")
	}
	a.ms.keep(h.now, h.space, h.newReq(), RefusalKey([16]byte{}), "", "p")
	if n := len(a.ms.Current(h.now, func(auth.SpaceID) Space { return nil })); n != 0 {
		t.Fatal("a request of a closed space is current")
	}
}

// A stranger holding a spent invite floods a member with requests made
// with it, each from a fresh feed key: the member refuses at most once per
// key ID per AnswerInterval (and once per space per RefusalSpaceInterval),
// and so remembers at most as many answers, whatever the flood's size.
func TestMembersSpentInviteFlood(t *testing.T) {
	h := newHarness(t)
	a := h.member("A")
	inv := h.invite(t0.Add(time.Hour))
	rec := a.sp.invites[inv.ID()]
	rec.MarkUsed([32]byte{1})
	a.sp.invites[inv.ID()] = rec
	key := inv.RequestKey()
	published := 0
	for i := range 500 {
		h.now = t0.Add(time.Duration(i) * 20 * time.Millisecond) // 10 s in all
		feed := h.feedKey()
		req, err := auth.NewJoinRequest(h.space, "x", [32]byte(feed.Public().(ed25519.PublicKey)), h.device0().Public(), h.now, h.rnd)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := req.MarshalBinary()
		plain, _ := Body{Kind: KindJoinRequest, Request: raw}.Encode()
		e, err := ephemeral.Seal(key.Key, feed, ephemeral.Header{Topic: h.topic, KeyKind: KeyKindInvite, KeyID: key.ID[:]}, plain, h.now, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := a.ms.Receive(h.now, a.sp, e, "X")
		if err != nil {
			t.Fatal(err)
		}
		published += len(out.Publish)
	}
	if max := 10*time.Second/DefaultLimits().AnswerInterval + 1; published > int(max) {
		t.Fatalf("%d refusals published in 10 s, want at most %d", published, max)
	}
	if len(a.ms.answered) > published {
		t.Fatalf("%d answers remembered", len(a.ms.answered))
	}
}

func (h *harness) device0() *auth.DeviceKey {
	dk, err := auth.GenerateDeviceKey(h.rnd)
	if err != nil {
		h.t.Fatal(err)
	}
	return dk
}
