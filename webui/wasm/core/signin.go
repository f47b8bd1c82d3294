package core

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/signin"
)

// Asker is the page's own request to join a space: node/signin's Device
// (the state machine the daemon runs, node/signin.go) with the keys the
// page made for it — a device key (HPKE) the approval is sealed to and an
// ed25519 feed key, which signs the request's envelopes and names the
// feed the approving member adds as a writer. It adds no rule: the page
// steps it on a timer, hands it the envelopes of the space's topic, runs
// the trials it asks for with the replication it has, and tells it when
// its node's view holds this device's feed as a writer.
//
// Nothing of it is stored: a page that reloads asks again.
type Asker struct {
	mu        sync.Mutex
	d         *signin.Device
	dk        *auth.DeviceKey
	seed      []byte
	feed      [32]byte
	space     auth.SpaceID
	topic     ephemeral.Topic
	approvers map[[32]byte]struct{} // the feeds of the members whose approvals came, bounded by MaxCandidates
	order     [][32]byte
	filter    *ephemeral.Filter
	now       time.Time
}

// AskWith is what to sign in with: an invite (link or code; a code alone
// needs Space, the space ID in hex), or Space and Password.
type AskWith struct {
	Invite   string
	Space    string
	Password string
	Name     string // the device name members see ("Chromium on Linux")
}

// NewAsker starts a request at nowMs (Unix ms). A malformed or expired
// invite, or a device name auth refuses, is an error and starts nothing.
func NewAsker(w AskWith, nowMs int64) (*Asker, error) {
	now := time.UnixMilli(nowMs)
	lim := signin.Limits{}.WithDefaults()
	var sid auth.SpaceID
	var key auth.RequestKey
	var expires time.Time
	parseSpace := func() (auth.SpaceID, error) {
		b, err := hex.DecodeString(w.Space)
		if err != nil {
			return auth.SpaceID{}, fmt.Errorf("space ID: %v", err)
		}
		return auth.SpaceIDFromBytes(b)
	}
	switch {
	case w.Invite != "" && w.Password != "":
		return nil, errors.New("sign in with an invite or a password, not both")
	case w.Invite != "":
		inv, err := auth.ParseInvite(w.Invite, now)
		if err != nil {
			return nil, fmt.Errorf("invite: %w", err)
		}
		if !inv.KnowsSpace() {
			if w.Space == "" {
				return nil, errors.New("this invite code does not name its space: give the space ID too, or use the invite link")
			}
			s, err := parseSpace()
			if err != nil {
				return nil, err
			}
			if inv, err = inv.WithSpace(s); err != nil {
				return nil, err
			}
			inv.Expires = now.Add(auth.DefaultInviteLifetime) // the members know the real one
		}
		sid, key, expires = inv.Space, inv.RequestKey(), inv.Expires
	case w.Password != "":
		if w.Space == "" {
			return nil, errors.New("a password needs the space ID")
		}
		s, err := parseSpace()
		if err != nil {
			return nil, err
		}
		sid, key, expires = s, auth.PasswordRequestKey(auth.PasswordKey(w.Password, s), s), now.Add(lim.PasswordLifetime)
	default:
		return nil, errors.New("sign in with an invite or a password")
	}
	dk, err := auth.GenerateDeviceKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	req, err := auth.NewJoinRequest(sid, w.Name, [32]byte(pub), dk.Public(), now, rand.Reader)
	if err != nil {
		return nil, err
	}
	d, err := signin.Ask(lim, dk, req, key, expires, w.Password)
	if err != nil {
		return nil, err
	}
	a := &Asker{d: d, dk: dk, seed: priv.Seed(), feed: [32]byte(pub), space: sid, topic: ephemeral.Topic(auth.DiscoveryKey(sid)),
		approvers: map[[32]byte]struct{}{}}
	a.filter, err = ephemeral.NewFilter(ephemeral.NewMemSeenStore(), ephemeral.Config{
		Now:     func() time.Time { return a.now },
		Trusted: func(ephemeral.Topic, ephemeral.PublicKey) bool { return true }, // Device.Receive opens only what was sealed to this request
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Space is the space asked to join.
func (a *Asker) Space() []byte { return a.space[:] }

// Feed is this device's feed key in the space.
func (a *Asker) Feed() []byte { return a.feed[:] }

// Topic is the space's gossipsub topic the request goes on.
func (a *Asker) Topic() string {
	return EphemeralTopicPrefix + hex.EncodeToString(a.topic[:])
}

// SafetyCode is the code members see with the request.
func (a *Asker) SafetyCode() string { return auth.SafetyCode(a.d.Request()) }

// AskState is the request's state (node/signin's StateWaiting, ...) and
// the reason to show with it.
type AskState struct {
	State      string
	Reason     string
	Candidates int
}

// State returns the request's state.
func (a *Asker) State() AskState {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, r := a.d.State()
	return AskState{State: s, Reason: r, Candidates: a.d.Candidates()}
}

// AskStep is what a step asks the page to do.
type AskStep struct {
	Publish []byte // an envelope to publish on Topic (nil: none)
	NextMs  int64  // step again after this many ms at the latest
}

// Step steps the request at nowMs with peers the number of peers on the
// topic (signin.Device.Step) and seals what it publishes with this
// device's feed key.
func (a *Asker) Step(nowMs int64, peers int) (AskStep, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.d.Step(time.UnixMilli(nowMs), peers)
	out := AskStep{NextMs: st.Next.Milliseconds()}
	if st.Publish == nil {
		return out, nil
	}
	plain, err := st.Publish.Body.Encode()
	if err != nil {
		return out, err
	}
	k := st.Publish.Key
	e, err := ephemeral.Seal(k.Key, ed25519.NewKeyFromSeed(a.seed), ephemeral.Header{Topic: a.topic, KeyKind: signin.KeyKind(k.Kind), KeyID: k.ID[:]},
		plain, time.UnixMilli(nowMs), nil)
	if err != nil {
		return out, err
	}
	out.Publish, err = e.Marshal()
	return out, err
}

// Receive takes an envelope of the topic received at nowMs. It reports
// whether the envelope was an answer to this request (an envelope of
// another key, or a members' message, is not: mine false, no error) and
// whether to step now (a candidate to try, a generation to follow).
func (a *Asker) Receive(b []byte, nowMs int64) (mine, wake bool, err error) {
	e, err := ephemeral.Parse(b)
	if err != nil {
		return false, false, err
	}
	if e.Topic != a.topic || len(e.KeyID) != auth.KeyIDSize ||
		(e.KeyKind != signin.KeyKindInvite && e.KeyKind != signin.KeyKindPassword) {
		return false, false, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.d.Mine([auth.KeyIDSize]byte(e.KeyID)) {
		return false, false, nil
	}
	a.now = time.UnixMilli(nowMs)
	if err := a.filter.Deliver(e); err != nil {
		return true, false, err
	}
	u, err := a.d.Receive(a.now, e)
	if err != nil {
		return true, false, err
	}
	if u.Wake {
		a.noteApprover(e)
	}
	return true, u.Wake, nil
}

// noteApprover keeps the feed of the member that approved (the approval
// names it), the feed the page replicates to see its own add-writer op.
func (a *Asker) noteApprover(e *ephemeral.Envelope) {
	plain, err := e.Open(a.d.Key().Key)
	if err != nil {
		return
	}
	b, err := signin.DecodeBody(plain)
	if err != nil || b.Kind != signin.KindApproval {
		return
	}
	ap, err := auth.UnmarshalApproval(b.Answer)
	if err != nil {
		return
	}
	if _, ok := a.approvers[ap.Approver]; ok {
		return
	}
	if len(a.order) >= signin.DefaultLimits().MaxCandidates {
		delete(a.approvers, a.order[0])
		a.order = a.order[1:]
	}
	a.approvers[ap.Approver] = struct{}{}
	a.order = append(a.order, ap.Approver)
}

// Trial is a candidate keyring to try: its epoch secrets and the feeds of
// the members that approved so far.
type Trial struct {
	Secrets []Secret
	Feeds   [][]byte
	WaitMs  int64 // no candidate now: look again after this (0: nothing to try)
}

// NextTrial returns the candidate approval to try now (signin.Device.NextTrial).
func (a *Asker) NextTrial(nowMs int64) Trial {
	a.mu.Lock()
	defer a.mu.Unlock()
	kr, wait := a.d.NextTrial(time.UnixMilli(nowMs))
	if kr == nil {
		return Trial{WaitMs: wait.Milliseconds()}
	}
	t := Trial{}
	for _, es := range kr.All() {
		t.Secrets = append(t.Secrets, Secret{Epoch: es.Epoch, Secret: append([]byte(nil), es.Secret[:]...)})
	}
	for _, f := range a.order {
		t.Feeds = append(t.Feeds, append([]byte(nil), f[:]...))
	}
	return t
}

// Tried reports the trial NextTrial started: the sessions opened with it
// (signin.Device.Tried); it returns when to look again, in ms.
func (a *Asker) Tried(opened int, failed string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var err error
	if failed != "" {
		err = errors.New(failed)
	}
	return a.d.Tried(opened, err).Milliseconds()
}

// CheckApproved ends the request as approved once n's view (Node.View
// keeps it) holds this device's feed as a writer: its add-writer op
// counts. It reports whether the request is approved.
func (a *Asker) CheckApproved(n *Node) bool {
	if !n.isWriter(feed.PublicKey(a.feed)) {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.d.Approved()
	s, _ := a.d.State()
	return s == signin.StateApproved
}

// Seed is the ed25519 seed of this device's feed key, for the page to
// write into its feed once approved.
func (a *Asker) Seed() []byte { return append([]byte(nil), a.seed...) }

// DeviceKey is this device's key (auth.DeviceKey.Bytes), for the page to
// keep with its feed key once approved (Node.Member): later keys are
// sealed to it.
func (a *Asker) DeviceKey() []byte { return a.dk.Bytes() }
