package core

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/node/signin"
)

// askerWithInvite starts an asker with a fresh invite link of a space and
// returns it with the invite.
func askerWithInvite(t testing.TB, now time.Time) (*Asker, *auth.Invite) {
	t.Helper()
	sid := auth.SpaceID(bytes.Repeat([]byte{0x51}, 32))
	inv, err := auth.NewInvite(sid, now.Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	link, err := inv.Link()
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAsker(AskWith{Invite: link, Name: "Chromium on Linux"}, now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return a, inv
}

// published steps a and decodes the join request it publishes.
func published(t testing.TB, a *Asker, now time.Time) (*ephemeral.Envelope, *auth.JoinRequest) {
	t.Helper()
	st, err := a.Step(now.UnixMilli(), 1)
	if err != nil || st.Publish == nil {
		t.Fatalf("step with a peer on the topic: %+v, %v", st, err)
	}
	e, err := ephemeral.Parse(st.Publish)
	if err != nil {
		t.Fatal(err)
	}
	return e, nil
}

// answer seals body as a member answering under the invite's key.
func answer(t testing.TB, a *Asker, inv *auth.Invite, b signin.Body, now time.Time) []byte {
	t.Helper()
	plain, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	k := inv.RequestKey()
	_, member, _ := ed25519.GenerateKey(nil)
	e, err := ephemeral.Seal(k.Key, member, ephemeral.Header{Topic: a.topic, KeyKind: signin.KeyKindInvite, KeyID: k.ID[:]}, plain, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestAskerRequest: the asker publishes nothing while no peer is on the
// topic, then a join request sealed under the invite's key, signed by its
// own feed key, naming that feed and the device name, with the safety
// code it shows; an approval becomes a trial of the keyring's secrets
// with the approver's feed, and no approval counts before the node's view
// holds the asker's feed.
func TestAskerRequest(t *testing.T) {
	now := time.Now()
	a, inv := askerWithInvite(t, now)
	if st, err := a.Step(now.UnixMilli(), 0); err != nil || st.Publish != nil {
		t.Fatalf("published with no peer on the topic: %+v, %v", st, err)
	}
	e, _ := published(t, a, now)
	k := inv.RequestKey()
	if e.KeyKind != signin.KeyKindInvite || !bytes.Equal(e.KeyID, k.ID[:]) || !bytes.Equal(e.Sender[:], a.Feed()) {
		t.Fatalf("request envelope: kind %d, key ID %x, sender %x", e.KeyKind, e.KeyID, e.Sender)
	}
	plain, err := e.Open(k.Key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := signin.DecodeBody(plain)
	if err != nil || b.Kind != signin.KindJoinRequest {
		t.Fatalf("body %+v, %v", b, err)
	}
	req, err := auth.UnmarshalJoinRequest(b.Request)
	if err != nil {
		t.Fatal(err)
	}
	if req.Name != "Chromium on Linux" || !bytes.Equal(req.Feed[:], a.Feed()) || auth.SafetyCode(req) != a.SafetyCode() {
		t.Fatalf("request %q feed %x code %s, asker code %s", req.Name, req.Feed, auth.SafetyCode(req), a.SafetyCode())
	}
	if tr := a.NextTrial(now.UnixMilli()); tr.Secrets != nil {
		t.Fatal("a trial before any approval")
	}

	kr, err := auth.NewKeyring(req.Space, nil)
	if err != nil {
		t.Fatal(err)
	}
	approver := [32]byte(bytes.Repeat([]byte{0xa1}, 32))
	ap, err := auth.NewApproval(req, kr, approver, 3)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ap.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	env := answer(t, a, inv, signin.Body{Kind: signin.KindApproval, Answer: raw}, now)
	mine, wake, err := a.Receive(env, now.UnixMilli())
	if err != nil || !mine || !wake {
		t.Fatalf("approval: mine %v wake %v err %v", mine, wake, err)
	}
	if _, wake, err := a.Receive(env, now.UnixMilli()); wake || err == nil {
		t.Fatalf("the same approval again: wake %v err %v", wake, err)
	}
	tr := a.NextTrial(now.UnixMilli())
	if len(tr.Secrets) != 1 || !bytes.Equal(tr.Secrets[0].Secret, kr.Epochs[0].Secret[:]) || len(tr.Feeds) != 1 || !bytes.Equal(tr.Feeds[0], approver[:]) {
		t.Fatalf("trial: %+v", tr)
	}
	a.Tried(1, "")
	n, err := NewNode([][]byte{approver[:]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.ViewSummary(req.Space[:], tr.Secrets); err != nil {
		t.Fatal(err)
	}
	if a.CheckApproved(n) || a.State().State != signin.StateWaiting {
		t.Fatalf("approved before its feed is a writer in the view: %+v", a.State())
	}
}

// TestAskerRefusedAndDenied: a refusal of a used invite and a denial end
// the request with the reason to show; an envelope under another key is
// not the asker's.
func TestAskerRefusedAndDenied(t *testing.T) {
	now := time.Now()
	a, inv := askerWithInvite(t, now)
	e, _ := published(t, a, now)
	plain, _ := e.Open(inv.RequestKey().Key)
	b, _ := signin.DecodeBody(plain)
	req, _ := auth.UnmarshalJoinRequest(b.Request)
	h := req.Hash()

	other, _ := askerWithInvite(t, now)
	oe, _ := other.Step(now.UnixMilli(), 1)
	if mine, _, err := a.Receive(oe.Publish, now.UnixMilli()); mine || err != nil {
		t.Fatalf("another request's envelope: mine %v err %v", mine, err)
	}
	env := answer(t, a, inv, signin.Body{Kind: signin.KindRefusal, Hash: h[:], Reason: "the invite was used already"}, now)
	if mine, _, err := a.Receive(env, now.UnixMilli()); !mine || err != nil {
		t.Fatalf("refusal: mine %v err %v", mine, err)
	}
	if s := a.State(); s.State != signin.StateRefused || !strings.Contains(s.Reason, "used") {
		t.Fatalf("after the refusal: %+v", s)
	}
	if st, _ := a.Step(now.UnixMilli(), 1); st.Publish != nil {
		t.Fatal("a refused request is published again")
	}

	d, inv2 := askerWithInvite(t, now)
	e2, _ := published(t, d, now)
	plain2, _ := e2.Open(inv2.RequestKey().Key)
	b2, _ := signin.DecodeBody(plain2)
	req2, _ := auth.UnmarshalJoinRequest(b2.Request)
	den, err := auth.NewDenial(req2, [32]byte{1}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Receive(answer(t, d, inv2, signin.Body{Kind: signin.KindDenial, Answer: den}, now), now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if s := d.State(); s.State != signin.StateDenied {
		t.Fatalf("after the denial: %+v", s)
	}
}

// TestNewAskerRefuses: what to sign in with is checked before anything
// starts.
func TestNewAskerRefuses(t *testing.T) {
	now := time.Now().UnixMilli()
	sid := strings.Repeat("51", 32)
	for _, w := range []AskWith{
		{Name: "x"},
		{Invite: "mycel://join/nonsense", Name: "x"},
		{Invite: "mycel://join/nonsense", Password: "pw", Space: sid, Name: "x"},
		{Password: "a password", Name: "x"},
		{Password: "a password", Space: "zz", Name: "x"},
		{Password: "a password", Space: sid, Name: ""},
	} {
		if _, err := NewAsker(w, now); err == nil {
			t.Errorf("%+v: no error", w)
		}
	}
	if _, err := NewAsker(AskWith{Password: "a password", Space: sid, Name: "Chromium on Linux"}, now); err != nil {
		t.Fatal(err)
	}
	// An invite code does not name its space: alone it is refused, with
	// the space ID it asks under the code's key.
	inv, err := auth.NewInvite(auth.SpaceID(bytes.Repeat([]byte{0x51}, 32)), time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewAsker(AskWith{Invite: inv.Code(), Name: "x"}, now); err == nil || !strings.Contains(err.Error(), "space") {
		t.Fatalf("a code alone: %v", err)
	}
	a, err := NewAsker(AskWith{Invite: inv.Code(), Space: sid, Name: "x"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if k := inv.RequestKey(); !a.d.Mine(k.ID) || !bytes.Equal(a.Space(), inv.Space[:]) {
		t.Fatal("the code's request is not under its key, or not of the space given")
	}
}

// FuzzAskerReceive hands a waiting asker any bytes as an envelope of its
// topic: Receive returns an error or not, never panics, and nothing but a
// genuine answer moves the request out of waiting.
func FuzzAskerReceive(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	a, inv := askerWithInvite(f, now)
	e, _ := published(f, a, now)
	raw, _ := e.Marshal()
	f.Add(raw)
	f.Add(answer(f, a, inv, signin.Body{Kind: signin.KindPending}, now))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = a.Receive(b, now.UnixMilli())
		if s := a.State(); s.State != signin.StateWaiting {
			t.Fatalf("random bytes moved the request to %+v", s)
		}
	})
}
