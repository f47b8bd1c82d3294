package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/auth/inviteqr"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/syncnet"
)

// Sign-in over the ephemeral channel (EPHEMERAL.md, "Sign-in"): a new
// device publishes its join request on the space's topic, sealed under the
// invite's or the password's request key, until a member answers with an
// approval, a denial or a refusal sealed under the same key.
const (
	// Envelope key kinds of sign-in (ephemeral/FORMAT.md).
	keyKindInvite   = 2
	keyKindPassword = 3

	bodyJoinRequest = "join-request"
	bodyApproval    = "approval"
	bodyDenial      = "denial"
	bodyRefusal     = "refusal"
	bodyPending     = "pending" // a member shows the request to a person

	// askInterval is how often a waiting device publishes its request
	// again: for members that come online, and in case an answer was lost.
	askInterval = 5 * time.Second
	// askRetry is how soon a device asks again when no peer was on the
	// space's topic yet.
	askRetry = 200 * time.Millisecond
	// answerInterval is the least time between two answers a member sends
	// to one request (a device asks every askInterval).
	answerInterval = 4 * time.Second
	// requestTTL is how long a member keeps a request the device stopped
	// asking with.
	requestTTL = 2 * time.Minute
	// maxRequests bounds the requests a member keeps per space, and
	// maxPerPeer those made with one invite or password key that one peer
	// handed over: anyone holding the invite or the password can make
	// requests at will, so the bound is shared out by the peer they came
	// from (see signins.keep), not first come first served.
	maxRequests = 64
	maxPerPeer  = 4
	// DefaultInviteTTL is how long an invite works unless told otherwise.
	DefaultInviteTTL = auth.DefaultInviteLifetime
	maxInviteTTL     = 30 * 24 * time.Hour
	// passwordJoinTTL is how long a device asks with a password before it
	// gives up.
	passwordJoinTTL = time.Hour
	// maxCandidates bounds the approvals a waiting device keeps to try,
	// and trialFor is how long it tries one (TryKeyring) before the next.
	maxCandidates = 8
	trialFor      = 5 * time.Second
	// refusalGrace is how long a device that asked with a password waits,
	// after a member said no member holds its key, for another member to
	// show the request (one that has not replicated the password yet
	// refuses a right one).
	refusalGrace = 10 * time.Second
)

// signinBody is the plaintext of a sign-in envelope.
type signinBody struct {
	Kind     string `json:"kind"`
	Request  []byte `json:"request,omitempty"`  // join-request: auth.JoinRequest
	Answer   []byte `json:"answer,omitempty"`   // approval or denial: auth.Approval / auth.Denial
	Hash     []byte `json:"hash,omitempty"`     // refusal: the request's hash
	Reason   string `json:"reason,omitempty"`   // refusal
	Password bool   `json:"password,omitempty"` // refusal: of a password whose key no member holds
	// refusal of a password: the generation of the members' password key
	// (auth.PasswordKeyAt), so that a device that asked with an older one
	// derives it and asks again.
	Generation uint32 `json:"generation,omitempty"`
}

// maxSigninAnswer bounds the answer a sign-in body carries: an approval's
// sealed keyring is the largest.
const maxSigninAnswer = 8 << 10

// decodeSigninBody decodes and bounds a sign-in body (the envelope bounds
// its size: ephemeral.MaxPlaintextSize).
func decodeSigninBody(plain []byte) (signinBody, error) {
	var b signinBody
	if err := json.Unmarshal(plain, &b); err != nil {
		return b, fmt.Errorf("sign-in body: %w", err)
	}
	switch {
	case len(b.Request) > auth.MaxJoinRequestSize:
		return b, fmt.Errorf("sign-in body: request of %d bytes", len(b.Request))
	case len(b.Answer) > maxSigninAnswer:
		return b, fmt.Errorf("sign-in body: answer of %d bytes", len(b.Answer))
	case len(b.Hash) != 0 && len(b.Hash) != auth.RequestHashSize:
		return b, fmt.Errorf("sign-in body: hash of %d bytes", len(b.Hash))
	case len(b.Reason) > 256:
		return b, fmt.Errorf("sign-in body: reason of %d bytes", len(b.Reason))
	}
	return b, nil
}

// joinRecord is a device's own request, kept in its space record so that a
// restart goes on asking.
type joinRecord struct {
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

// joining is a member's own request while it has one.
type joining struct {
	req *auth.JoinRequest
	key auth.RequestKey
	rec joinRecord
	// In memory, under member.mu: a member shows the request; when a
	// member refused the password.
	shown     bool
	refusedAt time.Time
	// The approvals received, to try one at a time (tryApproval): anyone
	// holding the invite or the password can answer with a keyring of
	// its own making, so none is trusted until it brings this device's
	// add-writer entry. trial is the index tried (-1: none yet), since when.
	candidates []candidate
	trial      int
	trialAt    time.Time
	// wantGen is a later password key generation a refusal named (0:
	// none); switches counts the moves to one, at most
	// maxGenerationSwitches (refusals can be forged).
	wantGen  uint32
	switches int
}

// candidate is an approval's keyring, opened, not yet checked.
type candidate struct {
	kr    *auth.Keyring
	sum   [32]byte // SHA-256 of the approval: the same answer again is no new candidate
	tried int      // times tried
}

// pending is a request a member holds for a person's answer.
type pending struct {
	m       *openSpace
	req     *auth.JoinRequest
	key     auth.RequestKey
	via     string
	id      string  // hex of the request hash's first 8 bytes
	from    peer.ID // the peer that handed the request over first
	last    time.Time
	replied time.Time
}

// signins is what a node keeps of sign-in: requests waiting for a person,
// requests answered (to answer again if the device missed it), watchers.
type signins struct {
	mu       sync.Mutex
	waiting  map[[32]byte]*pending // by request hash
	answered map[[32]byte]answered
	watchers map[chan api.Request]struct{}
	refused  map[string]time.Time // password key IDs refused, per space: rate limit
	// crowded counts the requests not kept for the bounds, evicted counts
	// those pushed out by a request from a peer holding fewer (tests).
	crowded, evicted int
}

type answered struct {
	body signinBody
	key  auth.RequestKey
	at   time.Time
}

func newSignins() *signins {
	return &signins{waiting: map[[32]byte]*pending{}, answered: map[[32]byte]answered{},
		watchers: map[chan api.Request]struct{}{}, refused: map[string]time.Time{}}
}

func requestID(h [32]byte) string { return hex.EncodeToString(h[:8]) }

// CreateInvite implements api.Backend.
func (n *Node) CreateInvite(ctx context.Context, id string, ttl time.Duration) (api.Invite, error) {
	m, err := n.opened(id)
	if err != nil {
		return api.Invite{}, err
	}
	if ttl == 0 {
		ttl = DefaultInviteTTL
	}
	if ttl < time.Minute || ttl > maxInviteTTL {
		return api.Invite{}, fmt.Errorf("%w: an invite works for 1 minute to 30 days", api.ErrBadRequest)
	}
	if !m.sp.IsWriter() {
		return api.Invite{}, fmt.Errorf("%w: only a writer of the space can invite", api.ErrReadOnly)
	}
	inv, err := auth.NewInvite(m.sp.ID(), time.Now().Add(ttl), nil)
	if err != nil {
		return api.Invite{}, err
	}
	loc, err := inv.Locator(nil)
	if err != nil {
		return api.Invite{}, err
	}
	if err := m.sp.RecordInvite(ctx, inv.Record(), loc); err != nil {
		return api.Invite{}, spaceError(err)
	}
	m.wrote()
	link, err := inv.Link()
	if err != nil {
		return api.Invite{}, err
	}
	text, err := inviteqr.Text(inv)
	if err != nil {
		return api.Invite{}, err
	}
	qr, err := inviteqr.Terminal(text, false)
	if err != nil {
		return api.Invite{}, err
	}
	n.log.Info("sign-in: invite made", "space", m.sp.ID(), "invite", inv.ID(), "expires", inv.Expires)
	return api.Invite{Space: m.sp.ID().String(), ID: inv.ID().String(), Link: link, Code: inv.Code(),
		QR: qr, Expires: inv.Expires.UTC()}, nil
}

// SetPassword implements api.Backend.
func (n *Node) SetPassword(ctx context.Context, id, password string) error {
	m, err := n.opened(id)
	if err != nil {
		return err
	}
	if err := auth.ValidatePassword(password); err != nil {
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	if !m.sp.IsWriter() {
		return fmt.Errorf("%w: only a writer of the space can set its password", api.ErrReadOnly)
	}
	gen := m.sp.PasswordGeneration()
	if err := m.sp.SetPasswordKey(ctx, gen, auth.PasswordKeyAt(password, m.sp.ID(), gen)); err != nil {
		return spaceError(err)
	}
	if err := m.keepPassword(password); err != nil {
		return err
	}
	m.wrote()
	n.log.Info("sign-in: password set", "space", m.sp.ID())
	return nil
}

// Join implements api.Backend.
func (n *Node) Join(ctx context.Context, w api.JoinWith) (api.JoinState, error) {
	now := time.Now()
	var sid auth.SpaceID
	var key auth.RequestKey
	var expires time.Time
	switch {
	case w.Invite != "" && w.Password != "":
		return api.JoinState{}, fmt.Errorf("%w: an invite or a password, not both", api.ErrBadRequest)
	case w.Invite != "":
		inv, err := auth.ParseInvite(w.Invite, now)
		if err != nil {
			return api.JoinState{}, fmt.Errorf("%w: invite: %v", api.ErrBadRequest, err)
		}
		switch {
		case inv.KnowsSpace():
		case w.Space != "":
			s, err := parseSpaceID(w.Space)
			if err != nil {
				return api.JoinState{}, err
			}
			if inv, err = inv.WithSpace(s); err != nil {
				return api.JoinState{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
			}
			inv.Expires = now.Add(DefaultInviteTTL) // the members know the real one
		default:
			// A code alone: ask the connected peers which space it is for.
			found, err := n.locate(ctx, inv)
			if err != nil {
				return api.JoinState{}, fmt.Errorf("%w: %v", api.ErrNotFound, err)
			}
			inv = found
		}
		sid, key, expires = inv.Space, inv.RequestKey(), inv.Expires
	case w.Password != "":
		if w.Space == "" {
			return api.JoinState{}, fmt.Errorf("%w: a password needs the space ID", api.ErrBadRequest)
		}
		s, err := parseSpaceID(w.Space)
		if err != nil {
			return api.JoinState{}, err
		}
		sid, key, expires = s, auth.PasswordRequestKey(auth.PasswordKey(w.Password, s), s), now.Add(passwordJoinTTL)
	default:
		return api.JoinState{}, fmt.Errorf("%w: join with an invite or a password", api.ErrBadRequest)
	}
	name := w.Name
	if name == "" {
		name = "joined"
	}
	if err := checkName(name); err != nil {
		return api.JoinState{}, err
	}
	m, err := n.opened(sid.String())
	switch {
	case errors.Is(err, api.ErrNotFound):
		if m, err = n.newSpace(ctx, name, &sid); err != nil {
			return api.JoinState{}, spaceError(err)
		}
	case err != nil:
		return api.JoinState{}, err
	case m.sp.Approved():
		return api.JoinState{}, fmt.Errorf("%w: this device is already a member of %s", api.ErrConflict, sid)
	default:
		// Asked again with the same invite or password while the request
		// waits: go on with that request (same safety code) instead of
		// starting another, which members would see as a second device.
		m.mu.Lock()
		j := m.join
		m.mu.Unlock()
		if j != nil && j.rec.State == api.JoinWaiting && j.key.Kind == key.Kind &&
			(j.key.ID == key.ID || key.Kind == auth.RequestByPassword && j.rec.Password == w.Password) {
			m.askSoon()
			return m.joinState(), nil
		}
	}
	req, err := auth.NewJoinRequest(sid, n.cfg.Name, m.sp.Feed(), n.device.Public(), now, nil)
	if err != nil {
		return api.JoinState{}, err
	}
	raw, err := req.MarshalBinary()
	if err != nil {
		return api.JoinState{}, err
	}
	j := &joining{req: req, key: key, rec: joinRecord{Request: raw, Kind: uint8(key.Kind), KeyID: key.ID[:],
		Key: key.Key[:], Expires: expires, State: api.JoinWaiting, Password: w.Password}, trial: -1}
	if err := m.setJoin(j); err != nil {
		return api.JoinState{}, err
	}
	n.log.Info("sign-in: asked to join", "space", sid, "via", key.Kind, "code", auth.SafetyCode(req))
	m.askSoon()
	return m.joinState(), nil
}

// setJoin records the device's own request in its space record.
func (m *openSpace) setJoin(j *joining) error {
	rec, err := m.n.readRecord(m.sp.ID())
	if err != nil {
		return err
	}
	if j != nil {
		r := j.rec
		rec.Join = &r
	} else {
		rec.Join = nil
	}
	if err := m.n.writeRecord(m.sp.ID(), rec); err != nil {
		return err
	}
	m.mu.Lock()
	m.join = j
	m.mu.Unlock()
	return nil
}

// loadJoin restores the device's own request from its space record.
func (m *openSpace) loadJoin(r *joinRecord) {
	if r == nil {
		return
	}
	req, err := auth.UnmarshalJoinRequest(r.Request)
	if err != nil || len(r.KeyID) != auth.KeyIDSize || len(r.Key) != auth.KeySize {
		m.n.log.Error("sign-in: stored join request unreadable; ask again", "space", m.sp.ID(), "err", err)
		return
	}
	key := auth.RequestKey{Kind: auth.RequestKind(r.Kind), ID: [auth.KeyIDSize]byte(r.KeyID), Key: [auth.KeySize]byte(r.Key)}
	m.mu.Lock()
	m.join = &joining{req: req, key: key, rec: *r, trial: -1}
	m.mu.Unlock()
	m.askSoon()
}

// joinState is the device's own request as the API shows it, nil without.
func (m *openSpace) joinState() api.JoinState {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := m.join
	if j == nil {
		return api.JoinState{}
	}
	reason := j.rec.Reason
	if j.rec.State == api.JoinWaiting && len(j.candidates) > 0 {
		reason = "an approval came; checking it with the members"
	}
	return api.JoinState{Space: m.sp.ID().String(), Code: auth.SafetyCode(j.req), State: j.rec.State,
		Reason: reason, Since: j.req.Time.UTC()}
}

// finishJoin records how the device's own request ended.
func (m *openSpace) finishJoin(state, reason string) {
	// The joining's fields change under m.mu (addCandidate): copy it
	// under it.
	m.mu.Lock()
	j := m.join
	if j == nil || j.rec.State != api.JoinWaiting {
		m.mu.Unlock()
		return
	}
	nj := *j
	m.mu.Unlock()
	nj.rec.State, nj.rec.Reason = state, reason
	nj.candidates, nj.trial = nil, -1
	if err := m.setJoin(&nj); err != nil {
		m.n.log.Error("sign-in: record the answer", "space", m.sp.ID(), "err", err)
	}
	m.n.log.Info("sign-in: join "+state, "space", m.sp.ID(), "reason", reason)
}

// askSoon wakes the asker.
func (m *openSpace) askSoon() {
	select {
	case m.ask <- struct{}{}:
	default:
	}
}

// asker publishes the device's own request while it waits — as soon as
// a peer on the space's topic is known, again after 0.5, 1, 2 and 4 s (a
// request published before the topic's mesh formed may reach nobody),
// then every askInterval — until it is answered or expires.
func (m *openSpace) asker(ctx context.Context) {
	t := time.NewTimer(askInterval)
	defer t.Stop()
	asked := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.ask:
		}
		next := askInterval
		m.mu.Lock()
		j, c := m.join, m.eph
		m.mu.Unlock()
		if j != nil && j.rec.State == api.JoinWaiting {
			if wait := m.tryApproval(ctx, j, time.Now()); wait > 0 {
				next = min(next, wait)
			}
		}
		if j != nil && j.rec.State == api.JoinWaiting {
			j = m.followGeneration(j)
		}
		if j != nil && j.rec.State == api.JoinWaiting && c != nil {
			if len(c.sub.Peers()) == 0 {
				next = askRetry // nobody would hear it yet
			} else {
				m.askOnce(ctx, c, j)
				next = min(next, askInterval, 500*time.Millisecond<<asked)
				asked = min(asked+1, 8)
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// askOnce publishes the device's own request, or ends it if it expired or
// the password was refused.
func (m *openSpace) askOnce(ctx context.Context, c *channel, j *joining) {
	if time.Now().After(j.rec.Expires) {
		m.finishJoin(api.JoinRefused, "no member answered before the request expired")
		return
	}
	m.mu.Lock()
	refused := !j.shown && !j.refusedAt.IsZero() && time.Since(j.refusedAt) > refusalGrace
	m.mu.Unlock()
	if refused {
		m.finishJoin(api.JoinRefused, "wrong password, or the space has no password")
		return
	}
	if err := c.publishSignin(ctx, j.key, m.sp.WriterKey(), signinBody{Kind: bodyJoinRequest, Request: j.rec.Request}); err != nil && ctx.Err() == nil {
		m.n.log.Debug("sign-in: ask", "space", m.sp.ID(), "err", err)
	}
}

// publishSignin seals b under a request key, signed by signer.
func (c *channel) publishSignin(ctx context.Context, k auth.RequestKey, signer ed25519.PrivateKey, b signinBody) error {
	plain, err := json.Marshal(b)
	if err != nil {
		return err
	}
	kind := uint32(keyKindInvite)
	if k.Kind == auth.RequestByPassword {
		kind = keyKindPassword
	}
	e, err := ephemeral.Seal(k.Key, signer, ephemeral.Header{Topic: c.topic, KeyKind: kind, KeyID: k.ID[:]}, plain, c.m.n.eph.Filter().Now(), nil)
	if err != nil {
		return err
	}
	return c.sub.Publish(ctx, e)
}

// refusalKey is the key of the refusal of a password no member holds: it
// is derived from the key ID alone, which the asking device knows. The
// refusal is therefore not secret; it only says "wrong password".
func refusalKey(id [auth.KeyIDSize]byte) auth.RequestKey {
	k := sha256.Sum256(append([]byte("mycel/v1/password-refusal\x00"), id[:]...))
	return auth.RequestKey{Kind: auth.RequestByPassword, ID: id, Key: k}
}

// receiveSignin handles an envelope of a sign-in key kind.
func (c *channel) receiveSignin(e *ephemeral.Envelope, from peer.ID) error {
	if len(e.KeyID) != auth.KeyIDSize {
		return fmt.Errorf("key ID of %d bytes", len(e.KeyID))
	}
	kid := [auth.KeyIDSize]byte(e.KeyID)
	m := c.m
	m.mu.Lock()
	j := m.join
	m.mu.Unlock()
	if j != nil && j.key.ID == kid && j.rec.State == api.JoinWaiting {
		return c.answerForMe(e, j)
	}
	if !m.sp.IsWriter() {
		return nil // only writers answer
	}
	var key auth.RequestKey
	var via string
	switch e.KeyKind {
	case keyKindInvite:
		rec, _, ok := m.sp.Invite(auth.InviteID(kid))
		if !ok {
			return nil // not an invite of this space (yet)
		}
		key, via = rec.RequestKey(), "invite "+rec.ID.String()
	case keyKindPassword:
		pk, ok := m.sp.PasswordRequestKey()
		if !ok || pk.ID != kid {
			return c.refusePassword(e, kid)
		}
		key, via = pk, "password"
	}
	plain, err := e.Open(key.Key)
	if err != nil {
		return err
	}
	b, err := decodeSigninBody(plain)
	if err != nil {
		return err
	}
	if b.Kind != bodyJoinRequest {
		return nil // answers of other members
	}
	req, err := auth.UnmarshalJoinRequest(b.Request)
	if err != nil {
		return err
	}
	if req.Space != m.sp.ID() || req.Feed != [32]byte(e.Sender) {
		return errors.New("join request for another space, or not signed by its feed")
	}
	return c.onRequest(req, key, via, from)
}

// onRequest keeps a verified request for a person, or answers it again if
// it was answered already.
func (c *channel) onRequest(req *auth.JoinRequest, key auth.RequestKey, via string, from peer.ID) error {
	m, n := c.m, c.m.n
	h := req.Hash()
	now := time.Now()
	si := n.signins
	si.mu.Lock()
	if a, ok := si.answered[h]; ok {
		again := now.Sub(a.at) >= answerInterval
		if again {
			a.at = now
			si.answered[h] = a
		}
		si.mu.Unlock()
		if again {
			return c.publishSignin(n.ctx, a.key, m.sp.WriterKey(), a.body)
		}
		return nil
	}
	si.mu.Unlock()
	if m.sp.IsDevice(req.Feed) {
		// Approved by another member, whose approval it missed: any
		// member can seal the keyring to it again.
		return c.approve(req, key)
	}
	if key.Kind == auth.RequestByInvite {
		rec, _, _ := m.sp.Invite(auth.InviteID(key.ID))
		if rec.Used && rec.UsedBy == req.Feed {
			// Spent on this very request: a member is answering it (its
			// answer, approval or denial, is on its way or in the
			// feeds), so this is no stranger to refuse.
			return nil
		}
		if err := rec.Check(now); err != nil {
			reason := "the invite expired"
			if rec.Used {
				reason = "the invite was used already"
			}
			return c.refuse(req, key, reason)
		}
	}
	ack, err := si.keep(c, req, key, via, from, now)
	if err != nil {
		return err
	}
	if ack {
		h := req.Hash()
		return c.publishSignin(n.ctx, key, m.sp.WriterKey(), signinBody{Kind: bodyPending, Hash: h[:]})
	}
	return nil
}

// keep adds a request to those waiting for a person, or notes that it was
// asked again, and reports whether to tell the device it is shown.
//
// The bounds share the room out by the peer that handed a request over,
// since anyone with the invite or the password can make requests at will:
// at most maxPerPeer per key and peer, so that requests from one peer do
// not keep out those from another; and when the space holds maxRequests, a
// new request pushes out the least recently asked one of the peer holding
// the most, if that peer holds more than the newcomer's would. A request
// kept is never pushed out by one from a peer holding as many or fewer.
// (Peers behind one forwarder — a relay — share its room; see EPHEMERAL.md.)
func (si *signins) keep(c *channel, req *auth.JoinRequest, key auth.RequestKey, via string, from peer.ID, now time.Time) (bool, error) {
	m := c.m
	h := req.Hash()
	si.mu.Lock()
	defer si.mu.Unlock()
	if p := si.waiting[h]; p != nil {
		p.last = now
		if now.Sub(p.replied) < answerInterval {
			return false, nil
		}
		p.replied = now
		return true, nil
	}
	perSpace, perPeerKey := 0, 0
	byPeer := map[peer.ID][]*pending{}
	for _, p := range si.waiting {
		if p.m != m {
			continue
		}
		perSpace++
		byPeer[p.from] = append(byPeer[p.from], p)
		if p.from == from && p.key.ID == key.ID {
			perPeerKey++
		}
	}
	if perPeerKey >= maxPerPeer {
		si.crowded++
		return false, fmt.Errorf("too many requests waiting from peer %s with this key (%d)", from, perPeerKey)
	}
	if perSpace >= maxRequests {
		var top []*pending
		for _, ps := range byPeer {
			if len(ps) > len(top) {
				top = ps
			}
		}
		if len(top) <= len(byPeer[from])+1 {
			si.crowded++
			return false, fmt.Errorf("too many requests waiting (%d in the space)", perSpace)
		}
		victim := top[0]
		for _, p := range top[1:] {
			if p.last.Before(victim.last) {
				victim = p
			}
		}
		delete(si.waiting, victim.req.Hash())
		si.evicted++
	}
	p := &pending{m: m, req: req, key: key, via: via, id: requestID(h), from: from, last: now, replied: now}
	si.waiting[h] = p
	ar := p.api()
	for w := range si.watchers {
		select {
		case w <- ar:
		default: // a watcher that does not read misses requests; Requests lists them
		}
	}
	m.n.log.Info("sign-in: request", "space", m.sp.ID(), "device", req.Name, "code", auth.SafetyCode(req), "via", via)
	return true, nil
}

func (p *pending) api() api.Request {
	return api.Request{ID: p.id, Space: p.m.sp.ID().String(), SpaceName: p.m.name, Name: p.req.Name,
		Feed: hex.EncodeToString(p.req.Feed[:]), Code: auth.SafetyCode(p.req), Via: p.via, Time: p.req.Time.UTC()}
}

// refusePassword tells a device that asked with a password whose key no
// member holds, at most once per key ID and answerInterval.
func (c *channel) refusePassword(e *ephemeral.Envelope, kid [auth.KeyIDSize]byte) error {
	si := c.m.n.signins
	space := c.m.sp.ID().String()
	k := space + hex.EncodeToString(kid[:])
	now := time.Now()
	si.mu.Lock()
	// At most one refusal per key ID per answerInterval, and per space per
	// second: envelopes with made-up key IDs must not make every member
	// publish.
	if t, ok := si.refused[k]; ok && now.Sub(t) < answerInterval || now.Sub(si.refused[space]) < time.Second {
		si.mu.Unlock()
		return nil
	}
	si.refused[k], si.refused[space] = now, now
	for k, t := range si.refused {
		if now.Sub(t) > requestTTL {
			delete(si.refused, k)
		}
	}
	si.mu.Unlock()
	b := signinBody{Kind: bodyRefusal, Password: true, Reason: "wrong password, or the space has no password"}
	if _, _, ok := c.m.sp.PasswordKey(); ok {
		b.Generation = c.m.sp.PasswordGeneration()
	}
	return c.publishSignin(c.m.n.ctx, refusalKey(kid), c.m.sp.WriterKey(), b)
}

// refuse answers a request that cannot be shown to a person.
func (c *channel) refuse(req *auth.JoinRequest, key auth.RequestKey, reason string) error {
	h := req.Hash()
	b := signinBody{Kind: bodyRefusal, Hash: h[:], Reason: reason}
	c.m.n.signins.remember(h, key, b)
	return c.publishSignin(c.m.n.ctx, key, c.m.sp.WriterKey(), b)
}

func (si *signins) remember(h [32]byte, key auth.RequestKey, b signinBody) {
	si.mu.Lock()
	defer si.mu.Unlock()
	now := time.Now()
	si.answered[h] = answered{body: b, key: key, at: now}
	delete(si.waiting, h)
	for k, a := range si.answered {
		if now.Sub(a.at) > requestTTL {
			delete(si.answered, k)
		}
	}
}

// approve seals the keyring to the request's device and publishes the
// approval. The device must be a writer already (AddWriter).
func (c *channel) approve(req *auth.JoinRequest, key auth.RequestKey) error {
	m := c.m
	kr, err := m.sp.Keyring()
	if err != nil {
		return err
	}
	a, err := auth.NewApproval(req, kr, m.sp.Feed(), m.sp.Held(m.sp.Feed())-1)
	if err != nil {
		return err
	}
	raw, err := a.MarshalBinary()
	if err != nil {
		return err
	}
	b := signinBody{Kind: bodyApproval, Answer: raw}
	m.n.signins.remember(req.Hash(), key, b)
	return c.publishSignin(m.n.ctx, key, m.sp.WriterKey(), b)
}

// answerForMe handles a member's answer to this device's own request.
func (c *channel) answerForMe(e *ephemeral.Envelope, j *joining) error {
	m := c.m
	plain, err := e.Open(j.key.Key)
	if err != nil && j.key.Kind == auth.RequestByPassword {
		if plain, err = e.Open(refusalKey(j.key.ID).Key); err == nil {
			if b, err := decodeSigninBody(plain); err == nil && b.Kind == bodyRefusal && b.Password {
				m.mu.Lock()
				if b.Generation > j.rec.Generation && j.rec.Password != "" && j.switches < maxGenerationSwitches {
					// The members' key is of a later generation: ask with
					// that one (the asker derives it).
					j.wantGen = max(j.wantGen, b.Generation)
				} else if j.refusedAt.IsZero() {
					j.refusedAt = time.Now()
				}
				m.mu.Unlock()
				m.askSoon()
			}
			return nil
		}
	}
	if err != nil {
		return err
	}
	b, err := decodeSigninBody(plain)
	if err != nil {
		return err
	}
	h := j.req.Hash()
	switch b.Kind {
	case bodyApproval:
		kr, _, err := auth.OpenApproval(m.n.device, j.req, b.Answer)
		if err != nil {
			return fmt.Errorf("approval: %w", err)
		}
		if kr.Space != m.sp.ID() || kr.Validate() != nil {
			return errors.New("approval: keyring of another space, or invalid")
		}
		m.addCandidate(j, kr, sha256.Sum256(b.Answer))
	case bodyDenial:
		if _, err := auth.UnmarshalDenial(j.req, b.Answer); err != nil {
			return fmt.Errorf("denial: %w", err)
		}
		m.finishJoin(api.JoinDenied, "a member denied the request")
	case bodyRefusal:
		if !slices.Equal(b.Hash, h[:]) {
			return nil
		}
		m.finishJoin(api.JoinRefused, b.Reason)
	case bodyPending:
		if slices.Equal(b.Hash, h[:]) {
			m.mu.Lock()
			j.shown = true
			m.mu.Unlock()
		}
	}
	return nil
}

// addCandidate keeps an approval's keyring to try (tryApproval), unless
// it was received before or maxCandidates are kept, in which case it
// takes the place of the most tried one that is not being tried.
func (m *openSpace) addCandidate(j *joining, kr *auth.Keyring, sum [32]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range j.candidates {
		if c.sum == sum {
			return
		}
	}
	c := candidate{kr: kr, sum: sum}
	if len(j.candidates) < maxCandidates {
		j.candidates = append(j.candidates, c)
	} else {
		worst := -1
		for i, x := range j.candidates {
			if i != j.trial && x.tried > 0 && (worst < 0 || x.tried > j.candidates[worst].tried) {
				worst = i
			}
		}
		if worst < 0 {
			return // all untried: they go first
		}
		j.candidates[worst] = c
	}
	m.n.log.Info("sign-in: approval received; checking it", "space", m.sp.ID(), "candidates", len(j.candidates))
	select {
	case m.ask <- struct{}{}:
	default:
	}
}

// tryApproval tries the next candidate approval when none is tried or the
// one tried has had trialFor without bringing this device's keys: it
// proves the candidate's capability to the connected peers (TryKeyring,
// then a session with each). A member admits a genuine one and serves the
// feeds, which hold this device's add-writer entry; the device is approved
// once that entry counts (checkJoined). It returns when to look again, 0
// for nothing to try. Each candidate is tried once, the newest untried
// first.
func (m *openSpace) tryApproval(ctx context.Context, j *joining, now time.Time) time.Duration {
	if m.sp.Approved() {
		m.checkJoined()
		return 0
	}
	m.mu.Lock()
	if len(j.candidates) == 0 {
		m.mu.Unlock()
		return 0
	}
	if j.trial >= 0 && now.Sub(j.trialAt) < trialFor {
		wait := trialFor - now.Sub(j.trialAt)
		m.mu.Unlock()
		return wait
	}
	next := -1
	for i := len(j.candidates) - 1; i >= 0 && next < 0; i-- {
		if j.candidates[i].tried == 0 {
			next = i
		}
	}
	if next < 0 {
		// Every candidate was tried. Trying one again would only earn
		// strikes from members (syncnet bans a peer after three refused
		// proofs); a new approval is tried when it comes.
		m.mu.Unlock()
		return 0
	}
	j.trial, j.trialAt = next, now
	j.candidates[next].tried++
	kr := j.candidates[next].kr
	m.mu.Unlock()
	if err := m.sp.TryKeyring(kr); err != nil {
		return trialFor
	}
	// The space is not served while it is only tried: no peer opens a
	// session to this device (its resync would prove a bogus candidate
	// every 10 s, and get this device banned). It opens one session with
	// each peer that serves the space, once.
	proto := syncnet.ProtocolFor(m.sp.ID())
	opened := 0
	for _, p := range m.n.host.Network().Peers() {
		if ok, _ := m.n.host.Peerstore().SupportsProtocols(p, proto); len(ok) == 0 {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, trialFor)
		if err := m.n.repl.Sync(sctx, p, m); err == nil {
			opened++
		}
		cancel()
	}
	if opened == 0 {
		// No member to try it with yet: not a try.
		m.mu.Lock()
		j.candidates[next].tried--
		j.trial = -1
		m.mu.Unlock()
		return time.Second
	}
	return trialFor
}

// checkJoined ends this device's request as approved once its own
// add-writer op counts in its view.
func (m *openSpace) checkJoined() {
	m.mu.Lock()
	j := m.join
	m.mu.Unlock()
	if j != nil && j.rec.State == api.JoinWaiting && m.sp.Approved() && m.sp.IsWriter() {
		m.finishJoin(api.JoinApproved, "")
	}
}

// Requests implements api.Backend.
func (n *Node) Requests() []api.Request {
	var out []api.Request
	for _, p := range n.signins.current() {
		out = append(out, p.api())
	}
	slices.SortFunc(out, func(a, b api.Request) int { return a.Time.Compare(b.Time) })
	return out
}

// current drops the requests that were answered elsewhere (their device
// is a writer now), that stopped asking, whose invite was spent, or of a
// space this device can no longer write (it was removed), and returns the
// others.
func (si *signins) current() []*pending {
	si.mu.Lock()
	defer si.mu.Unlock()
	now := time.Now()
	var out []*pending
	for h, p := range si.waiting {
		gone := now.Sub(p.last) > requestTTL || p.m.sp.IsDevice(p.req.Feed) || !p.m.sp.IsWriter()
		if p.key.Kind == auth.RequestByInvite {
			rec, _, _ := p.m.sp.Invite(auth.InviteID(p.key.ID))
			gone = gone || rec.Check(now) != nil
		}
		if gone {
			delete(si.waiting, h)
			continue
		}
		out = append(out, p)
	}
	return out
}

// WatchRequests implements api.Backend.
func (n *Node) WatchRequests(ctx context.Context) (<-chan api.Request, error) {
	si := n.signins
	// The watcher is registered before the waiting requests are listed, so
	// that a request arriving in between is not missed (it comes once).
	w := make(chan api.Request, 64)
	si.mu.Lock()
	si.watchers[w] = struct{}{}
	si.mu.Unlock()
	waiting := n.Requests()
	out := make(chan api.Request)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(out)
		defer func() {
			si.mu.Lock()
			delete(si.watchers, w)
			si.mu.Unlock()
		}()
		listed := make(map[string]bool, len(waiting))
		for _, r := range waiting {
			listed[r.ID] = true
		}
		send := func(r api.Request) bool {
			select {
			case out <- r:
				return true
			case <-ctx.Done():
			case <-n.ctx.Done():
			}
			return false
		}
		for _, r := range waiting {
			if !send(r) {
				return
			}
		}
		for {
			select {
			case r := <-w:
				if listed[r.ID] {
					delete(listed, r.ID) // arrived while being listed
					continue
				}
				if !send(r) {
					return
				}
			case <-ctx.Done():
				return
			case <-n.ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// find returns the waiting request named by id (or a prefix of it, at
// least 6 hex digits, naming one).
func (si *signins) find(id string) (*pending, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < 6 {
		return nil, fmt.Errorf("%w: request ID %q: give at least 6 hex digits", api.ErrBadRequest, id)
	}
	var found []*pending
	for _, p := range si.current() {
		if strings.HasPrefix(p.id, id) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no request %s waiting", api.ErrNotFound, id)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %q names %d requests", api.ErrBadRequest, id, len(found))
}

// answering returns the waiting request named by id and the channel to
// answer it on.
func (n *Node) answering(id string) (*pending, *channel, error) {
	p, err := n.signins.find(id)
	if err != nil {
		return nil, nil, err
	}
	c := p.m.channel()
	if c == nil {
		return nil, nil, fmt.Errorf("%w: the space's channel is not open", api.ErrClosed)
	}
	return p, c, nil
}

// Approve implements api.Backend.
func (n *Node) Approve(ctx context.Context, id, code string) error {
	p, c, err := n.answering(id)
	if err != nil {
		return err
	}
	if code != "" {
		if err := auth.CheckSafetyCode(p.req, code); err != nil {
			return fmt.Errorf("%w: the device shows another code: check that you approve the right device (%v)", api.ErrSafetyCode, err)
		}
	}
	m := p.m
	if p.key.Kind == auth.RequestByInvite {
		if err := m.sp.UseInvite(ctx, auth.InviteID(p.key.ID), p.req.Feed); err != nil {
			if errors.Is(err, auth.ErrUsed) {
				return fmt.Errorf("%w: the invite was used by another device", api.ErrConflict)
			}
			return spaceError(err)
		}
	}
	if err := m.sp.AddWriter(ctx, p.req.Feed, p.req.Name, p.req.Device); err != nil {
		return spaceError(err)
	}
	m.wrote()
	if err := c.approve(p.req, p.key); err != nil {
		return err
	}
	n.log.Info("sign-in: approved", "space", m.sp.ID(), "device", p.req.Name, "feed", feed.PublicKey(p.req.Feed))
	return nil
}

// Deny implements api.Backend.
func (n *Node) Deny(ctx context.Context, id string) error {
	p, c, err := n.answering(id)
	if err != nil {
		return err
	}
	m := p.m
	if p.key.Kind == auth.RequestByInvite {
		if err := m.sp.UseInvite(ctx, auth.InviteID(p.key.ID), p.req.Feed); err != nil && !errors.Is(err, auth.ErrUsed) {
			return spaceError(err)
		}
		m.wrote()
	}
	d := auth.NewDenial(p.req, m.sp.Feed())
	raw, err := d.MarshalBinary()
	if err != nil {
		return err
	}
	b := signinBody{Kind: bodyDenial, Answer: raw}
	n.signins.remember(p.req.Hash(), p.key, b)
	n.log.Info("sign-in: denied", "space", m.sp.ID(), "device", p.req.Name)
	return c.publishSignin(ctx, p.key, m.sp.WriterKey(), b)
}
