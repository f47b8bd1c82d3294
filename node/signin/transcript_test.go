package signin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
)

const password = "correct horse battery"

func (h *harness) passwordKey(gen uint32) auth.RequestKey {
	return auth.PasswordRequestKey(auth.PasswordKeyAt(password, h.space, gen), h.space)
}

func wantState(t *testing.T, d *device, state string) {
	t.Helper()
	if got, reason := d.d.State(); got != state {
		t.Fatalf("%s: %s (%s), want %s", d.name, got, reason, state)
	}
}

// A device asks with the password; the member shows the request, the
// person approves, the device tries the approval and is approved.
func TestTranscriptPasswordApproved(t *testing.T) {
	h := newHarness(t)
	h.setPassword(password, 0)
	d := h.ask("D", h.passwordKey(0), t0.Add(time.Hour), password)
	h.run(3 * time.Second)
	if len(h.member("A").ms.waiting) != 1 {
		t.Fatal("A does not show D's request")
	}
	h.approve(h.member("A"), d)
	h.run(4 * time.Second)
	wantState(t, d, StateApproved)
	h.golden("password-approved")
}

// The device asks before any peer is on the topic: it retries soon, then
// asks 0.5, 1, 2, 4 s apart, then every 5 s; the member tells it once per
// answer interval that it shows the request.
func TestTranscriptAskSchedule(t *testing.T) {
	h := newHarness(t)
	h.setPassword(password, 0)
	h.peers = 0
	h.ask("D", h.passwordKey(0), t0.Add(time.Hour), password)
	h.run(500 * time.Millisecond)
	h.peers = 1
	h.logf("-- a peer joins the topic")
	h.run(25 * time.Second)
	h.golden("ask-schedule")
}

// A device that missed the approval asks again: the member answers with
// the approval it sent, at most once per answer interval.
func TestTranscriptAnswerAgain(t *testing.T) {
	h := newHarness(t)
	h.setPassword(password, 0)
	d := h.ask("D", h.passwordKey(0), t0.Add(time.Hour), password)
	h.run(2 * time.Second)
	h.drop["D"] = true
	h.logf("-- D misses what is published")
	h.approve(h.member("A"), d)
	h.drop["D"] = false
	h.run(12 * time.Second)
	wantState(t, d, StateApproved)
	if n := h.member("A").sp.approved; n != 1 {
		t.Fatalf("A sealed %d approvals, want 1 (the answer is sent again, not made again)", n)
	}
	h.golden("answer-again")
}

// X, holding the password, answers first with a keyring of its own
// making. D tries it, is refused by the members, keeps waiting, and the
// real approval that follows makes it approved.
func TestTranscriptForgedApproval(t *testing.T) {
	h := newHarness(t)
	h.setPassword(password, 0)
	forged, err := auth.NewKeyring(h.space, h.rnd)
	if err != nil {
		t.Fatal(err)
	}
	x := h.addMember("X", h.feedKey(), forged)
	x.sp.pwKey = h.member("A").sp.pwKey
	d := h.ask("D", h.passwordKey(0), t0.Add(time.Hour), password)
	h.run(2 * time.Second)
	h.logf("-- X approves first, with its own keyring")
	h.approve(x, d)
	h.run(8 * time.Second)
	wantState(t, d, StateWaiting)
	if _, reason := d.d.State(); !strings.Contains(reason, "checking") {
		t.Fatalf("D's reason: %q", reason)
	}
	h.approve(h.member("A"), d)
	h.run(16 * time.Second)
	wantState(t, d, StateApproved)
	h.golden("forged-approval")
}

// A wrong password: members refuse it (at most once per key ID per answer
// interval), and the device gives up once no member showed it for the
// refusal grace.
func TestTranscriptWrongPassword(t *testing.T) {
	h := newHarness(t)
	h.setPassword(password, 0)
	wrong := auth.PasswordRequestKey(auth.PasswordKeyAt("wrong horse", h.space, 0), h.space)
	d := h.ask("D", wrong, t0.Add(time.Hour), "wrong horse")
	h.run(30 * time.Second)
	wantState(t, d, StateRefused)
	h.golden("wrong-password")
}

// The members' password key moved to generation 1 (a removal rotated
// it): a device asking with generation 0 is refused with generation 1
// named, derives that key and asks again, and is shown.
func TestTranscriptPasswordGeneration(t *testing.T) {
	h := newHarness(t)
	h.setPassword(password, 1)
	d := h.ask("D", h.passwordKey(0), t0.Add(time.Hour), password)
	h.run(3 * time.Second)
	if d.d.Record().Generation != 1 || d.d.Key() != h.passwordKey(1) {
		t.Fatalf("D asks with generation %d", d.d.Record().Generation)
	}
	if len(h.member("A").ms.waiting) != 1 {
		t.Fatal("A does not show D's request")
	}
	h.golden("password-generation")
}

// An invite spent on another device: the member refuses the request, and
// the device ends refused. A second device's request with an expired
// invite ends refused too; a denied one ends denied.
func TestTranscriptInviteRefusedDenied(t *testing.T) {
	h := newHarness(t)
	a := h.member("A")
	inv := h.invite(t0.Add(time.Hour))
	rec := a.sp.invites[inv.ID()]
	if err := rec.MarkUsed([32]byte{9}); err != nil {
		t.Fatal(err)
	}
	a.sp.invites[inv.ID()] = rec
	d := h.ask("D", inv.RequestKey(), inv.Expires, "")
	h.run(time.Second)
	wantState(t, d, StateRefused)

	inv2 := h.invite(t0.Add(3 * time.Second))
	e := h.ask("E", inv2.RequestKey(), t0.Add(time.Hour), "")
	h.run(5 * time.Second)
	wantState(t, e, StateRefused)

	inv3 := h.invite(t0.Add(time.Hour))
	f := h.ask("F", inv3.RequestKey(), inv3.Expires, "")
	h.run(7 * time.Second)
	msg, err := a.ms.Deny(h.now, a.sp, a.ms.Waiting(f.d.Request().Hash()))
	if err != nil {
		t.Fatal(err)
	}
	h.logf("A denies: publish %s", describe(msg.Body))
	h.publish("A", a.sp.feed, msg)
	h.deliver()
	wantState(t, f, StateDenied)
	h.golden("invite-refused-denied")
}

// Nobody answers: the request ends when it expires.
func TestTranscriptExpired(t *testing.T) {
	h := newHarness(t)
	inv := h.invite(t0.Add(time.Hour))
	for _, m := range h.members {
		m.sp.writer = false // no writer to answer
	}
	d := h.ask("D", inv.RequestKey(), t0.Add(12*time.Second), "")
	h.run(20 * time.Second)
	wantState(t, d, StateRefused)
	h.golden("expired")
}

// The member's bounds set small (Limits): 4 requests per space, 2 per
// peer and key. Devices behind peers X (three), Y and Z fill the room (X's
// third is not kept); a request from another peer pushes out the least
// recently asked one of the peer holding the most (X); X's evicted
// request, asked again, is not kept.
func TestTranscriptCrowd(t *testing.T) {
	h := newHarnessWith(t, Limits{MaxRequests: 4, MaxPerPeerKey: 2})
	h.setPassword(password, 0)
	for i, via := range []string{"X", "X", "X", "Y", "Z"} {
		name := fmt.Sprint(via, i)
		h.via[name] = "peer-" + via
		h.ask(name, h.passwordKey(0), t0.Add(time.Hour), "")
		h.run(time.Duration(i+1) * 100 * time.Millisecond)
	}
	h.logf("-- G asks through its own peer")
	g := h.ask("G", h.passwordKey(0), t0.Add(time.Hour), password)
	h.run(2 * time.Second)
	a := h.member("A")
	if a.ms.Waiting(g.d.Request().Hash()) == nil || a.ms.Evicted != 1 || len(a.ms.waiting) != 4 {
		t.Fatalf("G's request not kept (evicted %d, %d kept)", a.ms.Evicted, len(a.ms.waiting))
	}
	h.golden("crowd")
}
