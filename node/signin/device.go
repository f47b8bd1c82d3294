package signin

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
)

// States of a device's own request (the API's JoinState.State).
const (
	StateWaiting  = "waiting"  // asked; no member has answered
	StateApproved = "approved" // its add-writer op counts: the device holds the keys
	StateDenied   = "denied"   // a member denied the request
	StateRefused  = "refused"  // the invite was used or expired, the password is wrong, or it expired
)

// Record is a device's own request as the daemon keeps it, sealed, in its
// space record, so that a restart goes on asking. Its JSON is the stored
// form.
type Record struct {
	Request []byte    `json:"request"` // auth.JoinRequest
	Kind    uint8     `json:"kind"`    // auth.RequestKind
	KeyID   []byte    `json:"key_id"`
	Key     []byte    `json:"key"`
	Expires time.Time `json:"expires"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	// A request made with the password keeps it (in this sealed local
	// record) to follow the password key to a later generation.
	Password   string `json:"password,omitempty"`
	Generation uint32 `json:"generation,omitempty"`
}

// candidate is an approval's keyring, opened, not yet checked.
type candidate struct {
	kr    *auth.Keyring
	sum   [32]byte // SHA-256 of the approval: the same answer again is no new candidate
	tried int      // times tried
}

// Device is the device side of sign-in: this device's own request to
// join one space, from asking to approved, denied or refused. It does no
// I/O and reads no clock; it is not safe for concurrent use.
//
// Anyone holding the invite or the password can answer the request first
// with a keyring of its own making, so an approval's keyring is only a
// candidate: the caller tries candidates one at a time (NextTrial,
// Tried) by proving their capability to members, and the device is
// approved only once its own add-writer op counts in its view (Approved).
type Device struct {
	lim   Limits
	dk    *auth.DeviceKey
	space auth.SpaceID
	req   *auth.JoinRequest
	key   auth.RequestKey
	rec   Record

	shown     bool      // a member said it shows the request
	refusedAt time.Time // a member refused the password (zero: none)
	// The approvals received, to try one at a time; trial is the index
	// tried (-1: none yet), since trialAt.
	candidates []candidate
	trial      int
	trialAt    time.Time
	// wantGen is a later password key generation a refusal named (0:
	// none); switches counts the moves to one.
	wantGen  uint32
	switches int
	asked    int // requests published, for the first quick repeats
}

// Ask starts a request: req made with key, until expires. password is
// the password it was made with (to follow its key's generations), or "".
func Ask(lim Limits, dk *auth.DeviceKey, req *auth.JoinRequest, key auth.RequestKey, expires time.Time, password string) (*Device, error) {
	raw, err := req.MarshalBinary()
	if err != nil {
		return nil, err
	}
	rec := Record{Request: raw, Kind: uint8(key.Kind), KeyID: key.ID[:], Key: key.Key[:], Expires: expires,
		State: StateWaiting, Password: password}
	return &Device{lim: lim.WithDefaults(), dk: dk, space: req.Space, req: req, key: key, rec: rec, trial: -1}, nil
}

// Restore takes up a request from its record.
func Restore(lim Limits, dk *auth.DeviceKey, r Record) (*Device, error) {
	req, err := auth.UnmarshalJoinRequest(r.Request)
	if err != nil {
		return nil, err
	}
	if len(r.KeyID) != auth.KeyIDSize || len(r.Key) != auth.KeySize {
		return nil, errors.New("signin: record's key of a bad size")
	}
	key := auth.RequestKey{Kind: auth.RequestKind(r.Kind), ID: [auth.KeyIDSize]byte(r.KeyID), Key: [auth.KeySize]byte(r.Key)}
	return &Device{lim: lim.WithDefaults(), dk: dk, space: req.Space, req: req, key: key, rec: r, trial: -1}, nil
}

// Record returns what to store of the request.
func (d *Device) Record() Record { return d.rec }

// Request is the request asked with.
func (d *Device) Request() *auth.JoinRequest { return d.req }

// Key is the request key asked with (it moves with the password's
// generation).
func (d *Device) Key() auth.RequestKey { return d.key }

// Waiting reports whether the request waits for an answer.
func (d *Device) Waiting() bool { return d.rec.State == StateWaiting }

// Mine reports whether an envelope sealed with key ID kid may be an
// answer to this request while it waits.
func (d *Device) Mine(kid [auth.KeyIDSize]byte) bool { return d.Waiting() && d.key.ID == kid }

// Matches reports whether asking again with key (and password, for a
// password key) continues this waiting request.
func (d *Device) Matches(key auth.RequestKey, password string) bool {
	return d.Waiting() && d.key.Kind == key.Kind &&
		(d.key.ID == key.ID || key.Kind == auth.RequestByPassword && d.rec.Password == password)
}

// State is the request's state and the reason to show with it.
func (d *Device) State() (state, reason string) {
	reason = d.rec.Reason
	if d.Waiting() && len(d.candidates) > 0 {
		reason = "an approval came; checking it with the members"
	}
	return d.rec.State, reason
}

// Candidates is the number of approvals kept to try.
func (d *Device) Candidates() int { return len(d.candidates) }

// finish ends a waiting request; it reports whether it did (store it).
func (d *Device) finish(state, reason string) bool {
	if !d.Waiting() {
		return false
	}
	d.rec.State, d.rec.Reason = state, reason
	d.candidates, d.trial = nil, -1
	return true
}

// Approved ends the request as approved, once the caller saw this
// device's add-writer op count in its view; it reports whether the
// request changed (store it).
func (d *Device) Approved() bool { return d.finish(StateApproved, "") }

// Reopen puts a request back to waiting: the device that approved this
// one had been removed before (space.LearnApproverRemoval). It asks again
// with the same request.
func (d *Device) Reopen() {
	d.rec.State, d.rec.Reason = StateWaiting, ""
	d.candidates, d.trial, d.shown, d.refusedAt = nil, -1, false, time.Time{}
}

// Update is what a received answer asks the caller to do.
type Update struct {
	Store bool // the record changed
	Wake  bool // step the asker now (a candidate to try, a generation to follow)
}

// Receive takes an envelope sealed under this request's key ID (Mine),
// or a refusal of its password.
func (d *Device) Receive(now time.Time, e *ephemeral.Envelope) (Update, error) {
	plain, err := e.Open(d.key.Key)
	if err != nil && d.key.Kind == auth.RequestByPassword {
		if plain, err = e.Open(RefusalKey(d.key.ID).Key); err == nil {
			if b, err := DecodeBody(plain); err == nil && b.Kind == KindRefusal && b.Password {
				if b.Generation > d.rec.Generation && d.rec.Password != "" && d.switches < d.lim.MaxGenerationSwitches {
					// The members' key is of a later generation: ask with
					// that one (Ask derives it).
					d.wantGen = max(d.wantGen, b.Generation)
				} else if d.refusedAt.IsZero() {
					d.refusedAt = now
				}
				return Update{Wake: true}, nil
			}
			return Update{}, nil
		}
	}
	if err != nil {
		return Update{}, err
	}
	b, err := DecodeBody(plain)
	if err != nil {
		return Update{}, err
	}
	h := d.req.Hash()
	switch b.Kind {
	case KindApproval:
		kr, _, err := auth.OpenApproval(d.dk, d.req, b.Answer)
		if err != nil {
			return Update{}, fmt.Errorf("approval: %w", err)
		}
		if kr.Space != d.space || kr.Validate() != nil {
			return Update{}, errors.New("approval: keyring of another space, or invalid")
		}
		return Update{Wake: d.addCandidate(kr, sha256.Sum256(b.Answer))}, nil
	case KindDenial:
		if _, err := auth.UnmarshalDenial(d.req, b.Answer); err != nil {
			return Update{}, fmt.Errorf("denial: %w", err)
		}
		return Update{Store: d.finish(StateDenied, "a member denied the request")}, nil
	case KindRefusal:
		if !slices.Equal(b.Hash, h[:]) {
			return Update{}, nil
		}
		return Update{Store: d.finish(StateRefused, b.Reason)}, nil
	case KindPending:
		if slices.Equal(b.Hash, h[:]) {
			d.shown = true
		}
	}
	return Update{}, nil
}

// addCandidate keeps an approval's keyring to try, unless it was received
// before or MaxCandidates are kept, in which case it takes the place of
// the most tried one that is not being tried. It reports whether it kept
// it.
func (d *Device) addCandidate(kr *auth.Keyring, sum [32]byte) bool {
	for _, c := range d.candidates {
		if c.sum == sum {
			return false
		}
	}
	c := candidate{kr: kr, sum: sum}
	if len(d.candidates) < d.lim.MaxCandidates {
		d.candidates = append(d.candidates, c)
		return true
	}
	worst := -1
	for i, x := range d.candidates {
		if i != d.trial && x.tried > 0 && (worst < 0 || x.tried > d.candidates[worst].tried) {
			worst = i
		}
	}
	if worst < 0 {
		return false // all untried: they go first
	}
	d.candidates[worst] = c
	return true
}

// NextTrial returns the candidate keyring to try now, or, while one is
// tried, how long until its trial ends (nil, 0: nothing to try). The
// newest untried candidate goes first; each is tried once: trying one
// again would only earn strikes from members (a refused proof counts as
// a failed one), and a new approval is tried when it comes. The caller
// proves the keyring's capability to the peers that serve the space
// (space.TryKeyring, one session each) and reports with Tried.
func (d *Device) NextTrial(now time.Time) (*auth.Keyring, time.Duration) {
	if !d.Waiting() || len(d.candidates) == 0 {
		return nil, 0
	}
	if d.trial >= 0 && now.Sub(d.trialAt) < d.lim.TrialFor {
		return nil, d.lim.TrialFor - now.Sub(d.trialAt)
	}
	next := -1
	for i := len(d.candidates) - 1; i >= 0 && next < 0; i-- {
		if d.candidates[i].tried == 0 {
			next = i
		}
	}
	if next < 0 {
		return nil, 0
	}
	d.trial, d.trialAt = next, now
	d.candidates[next].tried++
	return d.candidates[next].kr, 0
}

// Tried reports the trial NextTrial started: err if the keyring could not
// be tried at all, else the sessions opened with it. No session (no
// member connected yet) is no try: the candidate is tried again a second
// later. It returns when to look again.
func (d *Device) Tried(opened int, err error) time.Duration {
	if err != nil || opened > 0 || d.trial < 0 {
		return d.lim.TrialFor
	}
	d.candidates[d.trial].tried--
	d.trial = -1
	return time.Second
}

// Step is what asking asks the caller to do.
type Step struct {
	Publish *Message      // publish the request (nil: not now)
	Store   bool          // the record changed
	Next    time.Duration // step again after this, at the latest
}

// Step asks: it follows a later password generation a refusal named, ends
// a request that expired or whose password was refused with no member
// showing it for RefusalGrace, and else publishes the request if a peer
// is on the topic (peers > 0) — again after 0.5, 1, 2, 4 s, then every
// AskInterval.
func (d *Device) Step(now time.Time, peers int) Step {
	st := Step{Next: d.lim.AskInterval}
	if !d.Waiting() {
		return st
	}
	st.Store = d.followGeneration()
	if peers == 0 {
		st.Next = d.lim.AskRetry // nobody would hear it yet
		return st
	}
	if now.After(d.rec.Expires) {
		st.Store = d.finish(StateRefused, "no member answered before the request expired") || st.Store
		return st
	}
	if !d.shown && !d.refusedAt.IsZero() && now.Sub(d.refusedAt) > d.lim.RefusalGrace {
		st.Store = d.finish(StateRefused, "wrong password, or the space has no password") || st.Store
		return st
	}
	st.Publish = &Message{Key: d.key, Body: Body{Kind: KindJoinRequest, Request: d.rec.Request}}
	st.Next = min(d.lim.AskInterval, 500*time.Millisecond<<d.asked)
	d.asked = min(d.asked+1, 8)
	return st
}

// followGeneration moves a request made with the password to the key
// generation a refusal named (one Argon2id); it reports whether it did.
func (d *Device) followGeneration() bool {
	if d.wantGen <= d.rec.Generation || d.rec.Password == "" {
		return false
	}
	key := auth.PasswordRequestKey(auth.PasswordKeyAt(d.rec.Password, d.space, d.wantGen), d.space)
	d.key = key
	d.rec.KeyID, d.rec.Key, d.rec.Generation = key.ID[:], key.Key[:], d.wantGen
	d.trial, d.shown, d.refusedAt = -1, false, time.Time{}
	d.switches++
	return true
}
