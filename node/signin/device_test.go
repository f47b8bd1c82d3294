package signin

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
)

func kr(h *harness) *auth.Keyring {
	k, err := auth.NewKeyring(h.space, h.rnd)
	if err != nil {
		h.t.Fatal(err)
	}
	return k
}

// Candidates: the same approval twice is one candidate; at MaxCandidates
// a new one takes the place of the most tried one not being tried, and
// none while all are untried; each is tried once, newest first; a trial
// that reached no member is no try and comes again a second later.
func TestDeviceCandidates(t *testing.T) {
	h := newHarness(t)
	d := h.ask("D", h.passwordKey(0), t0.Add(time.Hour), password).d
	lim := DefaultLimits()
	if k, w := d.NextTrial(h.now); k != nil || w != 0 {
		t.Fatal("a trial without candidates")
	}
	krs := make([]*auth.Keyring, lim.MaxCandidates+1)
	for i := range krs {
		krs[i] = kr(h)
	}
	if !d.addCandidate(krs[0], [32]byte{0}) || d.addCandidate(krs[0], [32]byte{0}) {
		t.Fatal("the same approval twice")
	}
	for i := 1; i < lim.MaxCandidates; i++ {
		d.addCandidate(krs[i], [32]byte{byte(i)})
	}
	if d.addCandidate(krs[lim.MaxCandidates], [32]byte{99}) || d.Candidates() != lim.MaxCandidates {
		t.Fatal("a candidate pushed out an untried one")
	}
	// Newest first, one at a time, each for TrialFor.
	k, _ := d.NextTrial(h.now)
	if k != krs[lim.MaxCandidates-1] {
		t.Fatal("not the newest first")
	}
	if d.Tried(0, nil) != time.Second {
		t.Fatal("a trial that reached nobody counts")
	}
	if k2, _ := d.NextTrial(h.now); k2 != k {
		t.Fatal("the untried candidate was not tried again")
	}
	if w := d.Tried(1, nil); w != lim.TrialFor {
		t.Fatalf("wait %s", w)
	}
	if k3, w := d.NextTrial(h.now.Add(time.Second)); k3 != nil || w != lim.TrialFor-time.Second {
		t.Fatalf("during a trial: %v %s", k3, w)
	}
	if k4, _ := d.NextTrial(h.now.Add(lim.TrialFor)); k4 != krs[lim.MaxCandidates-2] {
		t.Fatal("the next trial is not the next newest")
	}
	// Tried ones make room now (not the one being tried).
	if !d.addCandidate(krs[lim.MaxCandidates], [32]byte{99}) {
		t.Fatal("a new approval found no room among tried ones")
	}
	for i := range lim.MaxCandidates + 2 {
		k, _ := d.NextTrial(h.now.Add(time.Duration(i+2) * lim.TrialFor))
		if k == nil {
			break
		}
		d.Tried(1, nil)
	}
	if k, w := d.NextTrial(h.now.Add(time.Hour)); k != nil || w != 0 {
		t.Fatal("a candidate tried twice")
	}
	// A bad record's key does not restore; a good one does, waiting.
	rec := d.Record()
	rec.Key = rec.Key[:3]
	if _, err := Restore(Limits{}, nil, rec); err == nil {
		t.Fatal("restored a key of 3 bytes")
	}
	r, err := Restore(Limits{}, nil, d.Record())
	if err != nil || !r.Waiting() || r.Key() != d.Key() || r.Request().Hash() != d.Request().Hash() {
		t.Fatalf("restore: %v", err)
	}
}

// Forged refusals naming later generations move the request at most
// MaxGenerationSwitches times; after that a refusal counts as one.
func TestDeviceGenerationSwitchesBounded(t *testing.T) {
	h := newHarness(t)
	d := h.ask("D", h.passwordKey(0), t0.Add(time.Hour), password).d
	lim := Limits{MaxGenerationSwitches: 2}.WithDefaults()
	d.lim = lim
	forger := h.feedKey()
	refuse := func(gen uint32) {
		plain, _ := Body{Kind: KindRefusal, Password: true, Generation: gen}.Encode()
		k := RefusalKey(d.Key().ID)
		e, err := ephemeral.Seal(k.Key, forger, ephemeral.Header{Topic: h.topic, KeyKind: KeyKindPassword, KeyID: k.ID[:]}, plain, h.now, nil)
		if err != nil {
			t.Fatal(err)
		}
		if u, err := d.Receive(h.now, e); err != nil || !u.Wake {
			t.Fatalf("refusal: %+v %v", u, err)
		}
	}
	for gen := uint32(1); gen <= 4; gen++ {
		refuse(gen)
		st := d.Step(h.now, 1)
		if moved := d.Record().Generation == gen; moved != (gen <= 2) || st.Store != moved {
			t.Fatalf("generation %d: asks with %d, store %v", gen, d.Record().Generation, st.Store)
		}
	}
	// The last refusal counted: the request ends after RefusalGrace.
	h.now = h.now.Add(lim.RefusalGrace + time.Millisecond)
	if st := d.Step(h.now, 1); !st.Store || d.Waiting() {
		t.Fatal("the refused password still asks")
	}
}

// A member showing the request (pending) keeps a refused password asking
// (another member that has not replicated the password yet refused it);
// an invite's refusal and pending name the request's hash, and another
// request's are ignored; Reopen asks again.
func TestDevicePendingAndReopen(t *testing.T) {
	h := newHarness(t)
	dev := h.ask("D", h.passwordKey(0), t0.Add(time.Hour), password)
	d := dev.d
	seal := func(k auth.RequestKey, b Body) *ephemeral.Envelope {
		plain, _ := b.Encode()
		e, err := ephemeral.Seal(k.Key, h.feedKey(), ephemeral.Header{Topic: h.topic, KeyKind: KeyKindPassword, KeyID: k.ID[:]}, plain, h.now, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	d.Receive(h.now, seal(RefusalKey(d.Key().ID), Body{Kind: KindRefusal, Password: true}))
	other := make([]byte, 32)
	d.Receive(h.now, seal(d.Key(), Body{Kind: KindPending, Hash: other}))
	if d.shown {
		t.Fatal("another request's pending counted")
	}
	if u, _ := d.Receive(h.now, seal(d.Key(), Body{Kind: KindRefusal, Hash: other, Reason: "x"})); u.Store || !d.Waiting() {
		t.Fatal("another request's refusal ended this one")
	}
	hash := d.Request().Hash()
	d.Receive(h.now, seal(d.Key(), Body{Kind: KindPending, Hash: hash[:]}))
	h.now = h.now.Add(time.Minute)
	if st := d.Step(h.now, 1); st.Publish == nil || !d.Waiting() {
		t.Fatal("a shown request gave up")
	}
	if u, _ := d.Receive(h.now, seal(d.Key(), Body{Kind: KindRefusal, Hash: hash[:], Reason: "the invite was used already"})); !u.Store || d.Waiting() {
		t.Fatal("the refusal did not end the request")
	}
	if _, reason := d.State(); reason != "the invite was used already" {
		t.Fatal(reason)
	}
	if st := d.Step(h.now, 1); st.Publish != nil {
		t.Fatal("an ended request asks")
	}
	d.Reopen()
	if st := d.Step(h.now, 1); st.Publish == nil || !d.Waiting() {
		t.Fatal("a reopened request does not ask")
	}
	// An approval of another device's request does not open.
	other2 := h.newReq()
	a, err := auth.NewApproval(other2, h.keyring, [32]byte(h.member("A").sp.feed.Public().(ed25519.PublicKey)), 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := a.MarshalBinary()
	if _, err := d.Receive(h.now, seal(d.Key(), Body{Kind: KindApproval, Answer: raw})); err == nil || d.Candidates() != 0 {
		t.Fatal("an approval of another request became a candidate")
	}
}
