package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/signin"
	"github.com/mycelsync/mycel/node/syncnet"
)

// The driver of sign-in (node/signin, its FORMAT.md): the protocol's
// state lives in signin.Members (the member side, one per node) and
// signin.Device (this device's own request, one per space it asks to
// join); this file feeds them envelopes, ticks and the API's calls with
// the time, and publishes, stores and shows what they return.

const (
	// DefaultInviteTTL is how long an invite works unless told otherwise.
	DefaultInviteTTL = auth.DefaultInviteLifetime
	maxInviteTTL     = 30 * 24 * time.Hour
)

// joinRecord is a device's own request as kept in its space record.
type joinRecord = signin.Record

// joining is a device's own request while it has one; under openSpace.mu.
type joining = signin.Device

// signins is the member side of sign-in and the API's watchers of
// requests.
type signins struct {
	lim      signin.Limits
	mu       sync.Mutex
	core     *signin.Members
	watchers map[chan api.Request]struct{}
}

func newSignins() *signins { return newSigninsWith(signin.Limits{}) }

// newSigninsWith takes sign-in's limits (zero fields: signin.DefaultLimits).
func newSigninsWith(lim signin.Limits) *signins {
	lim = lim.WithDefaults()
	return &signins{lim: lim, core: signin.NewMembers(lim), watchers: map[chan api.Request]struct{}{}}
}

// signinSpace is an open space as the member side of sign-in sees it.
type signinSpace struct{ m *openSpace }

var _ signin.Space = signinSpace{}

func (s signinSpace) ID() auth.SpaceID                            { return s.m.sp.ID() }
func (s signinSpace) IsWriter() bool                              { return s.m.sp.IsWriter() }
func (s signinSpace) IsDevice(f [32]byte) bool                    { return s.m.sp.IsDevice(feed.PublicKey(f)) }
func (s signinSpace) Feed() [32]byte                              { return s.m.sp.Feed() }
func (s signinSpace) PasswordRequestKey() (auth.RequestKey, bool) { return s.m.sp.PasswordRequestKey() }

func (s signinSpace) Invite(id auth.InviteID) (auth.InviteRecord, bool) {
	rec, _, ok := s.m.sp.Invite(id)
	return rec, ok
}

func (s signinSpace) PasswordGeneration() (uint32, bool) {
	if _, _, ok := s.m.sp.PasswordKey(); !ok {
		return 0, false
	}
	return s.m.sp.PasswordGeneration(), true
}

func (s signinSpace) Approval(req *auth.JoinRequest) ([]byte, error) {
	sp := s.m.sp
	kr, err := sp.Keyring()
	if err != nil {
		return nil, err
	}
	a, err := auth.NewApproval(req, kr, sp.Feed(), sp.Held(sp.Feed())-1)
	if err != nil {
		return nil, err
	}
	return a.MarshalBinary()
}

// saveJoin records the device's own request in its space record.
func (m *openSpace) saveJoin(r joinRecord) error {
	rec, err := m.n.readRecord(m.sp.ID())
	if err != nil {
		return err
	}
	rec.Join = &r
	return m.n.writeRecord(m.sp.ID(), rec)
}

// joinChanged stores the request's record after a step changed it.
func (m *openSpace) joinChanged(rec joinRecord) {
	if err := m.saveJoin(rec); err != nil {
		m.n.log.Error("sign-in: record the request", "space", m.sp.ID(), "err", err)
	}
	if rec.State != signin.StateWaiting {
		m.n.log.Info("sign-in: join "+rec.State, "space", m.sp.ID(), "reason", rec.Reason)
	}
}

// loadJoin restores the device's own request from its space record.
func (m *openSpace) loadJoin(r *joinRecord) {
	if r == nil {
		return
	}
	j, err := signin.Restore(m.n.signins.lim, m.n.device, *r)
	if err != nil {
		m.n.log.Error("sign-in: stored join request unreadable; ask again", "space", m.sp.ID(), "err", err)
		return
	}
	m.mu.Lock()
	m.join = j
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
	state, reason := j.State()
	return api.JoinState{Space: m.sp.ID().String(), Code: auth.SafetyCode(j.Request()), State: state,
		Reason: reason, Since: j.Request().Time.UTC()}
}

// askSoon wakes the asker.
func (m *openSpace) askSoon() {
	select {
	case m.ask <- struct{}{}:
	default:
	}
}

// asker steps the device's own request (signin.Device) when woken and
// when the step said so, until the space closes.
func (m *openSpace) asker(ctx context.Context) {
	t := time.NewTimer(m.n.signins.lim.AskInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.ask:
		}
		next := m.askStep(ctx)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// askStep ends the request as approved once its add counts, tries the
// next candidate approval, then asks (signin.Device.Step); it returns
// when to step again.
func (m *openSpace) askStep(ctx context.Context) time.Duration {
	next := m.n.signins.lim.AskInterval
	m.mu.Lock()
	j, c := m.join, m.eph
	waiting := j != nil && j.Waiting()
	m.mu.Unlock()
	if !waiting {
		return next
	}
	if m.sp.Approved() {
		m.checkJoined()
	} else {
		m.mu.Lock()
		kr, wait := j.NextTrial(time.Now())
		m.mu.Unlock()
		if kr != nil {
			opened, err := m.tryKeyring(ctx, kr)
			m.mu.Lock()
			wait = j.Tried(opened, err)
			m.mu.Unlock()
		}
		if wait > 0 {
			next = min(next, wait)
		}
	}
	if c == nil {
		return next
	}
	// The relays' mailboxes keep the request for members that come back.
	peers := len(c.sub.Peers()) + m.n.mailboxRelays()
	m.mu.Lock()
	if m.join != j {
		m.mu.Unlock()
		return next // replaced meanwhile
	}
	st := j.Step(time.Now(), peers)
	rec := j.Record()
	m.mu.Unlock()
	if st.Store {
		if rec.Generation > 0 && rec.State == signin.StateWaiting {
			m.n.log.Info("sign-in: asking with the password key of generation", "space", m.sp.ID(), "generation", rec.Generation)
		}
		m.joinChanged(rec)
	}
	if st.Publish != nil {
		if err := c.publishSignin(ctx, st.Publish.Key, m.sp.WriterKey(), st.Publish.Body); err != nil && ctx.Err() == nil {
			m.n.log.Debug("sign-in: ask", "space", m.sp.ID(), "err", err)
		}
	}
	return min(next, st.Next)
}

// tryKeyring proves a candidate approval's capability to the connected
// peers (space.TryKeyring, then one session with each peer that serves
// the space) and returns the sessions opened. A member admits a genuine
// one and serves the feeds, which hold this device's add-writer entry;
// the device is approved once that entry counts (checkJoined). The space
// is not served while it is only tried: no peer opens a session to this
// device (its resync would prove a bogus candidate every 10 s, and get
// this device banned).
func (m *openSpace) tryKeyring(ctx context.Context, kr *auth.Keyring) (int, error) {
	if err := m.sp.TryKeyring(kr); err != nil {
		return 0, err
	}
	trialFor := m.n.signins.lim.TrialFor
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
	return opened, nil
}

// checkJoined ends this device's request as approved once its own
// add-writer op counts in its view.
func (m *openSpace) checkJoined() {
	if !m.sp.Approved() || !m.sp.IsWriter() {
		return
	}
	m.mu.Lock()
	j := m.join
	changed := j != nil && j.Approved()
	var rec joinRecord
	if changed {
		rec = j.Record()
	}
	m.mu.Unlock()
	if changed {
		m.joinChanged(rec)
	}
}

// publishSignin seals b under a request key, signed by signer.
func (c *channel) publishSignin(ctx context.Context, k auth.RequestKey, signer ed25519.PrivateKey, b signin.Body) error {
	plain, err := b.Encode()
	if err != nil {
		return err
	}
	e, err := ephemeral.Seal(k.Key, signer, ephemeral.Header{Topic: c.topic, KeyKind: signin.KeyKind(k.Kind), KeyID: k.ID[:]}, plain, c.m.n.eph.Filter().Now(), nil)
	if err != nil {
		return err
	}
	c.m.n.depositSignin(c.m.sp.ID(), e) // for members offline (relays_mailbox.go)
	return c.sub.Publish(ctx, e)
}

// receiveSignin handles an envelope of a sign-in key kind: an answer to
// this device's own request goes to its signin.Device, anything else to
// the member side.
func (c *channel) receiveSignin(e *ephemeral.Envelope, from peer.ID) error {
	if len(e.KeyID) != auth.KeyIDSize {
		return fmt.Errorf("key ID of %d bytes", len(e.KeyID))
	}
	m := c.m
	now := time.Now()
	m.mu.Lock()
	if j := m.join; j != nil && j.Mine([auth.KeyIDSize]byte(e.KeyID)) {
		u, err := j.Receive(now, e)
		rec, n := j.Record(), j.Candidates()
		m.mu.Unlock()
		if u.Store {
			m.joinChanged(rec)
		}
		if u.Wake {
			if n > 0 {
				m.n.log.Info("sign-in: approval received; checking it", "space", m.sp.ID(), "candidates", n)
			}
			m.askSoon()
		}
		return err
	}
	m.mu.Unlock()
	si := m.n.signins
	si.mu.Lock()
	out, err := si.core.Receive(now, signinSpace{m}, e, string(from))
	if p := out.Shown; p != nil {
		ar := requestAPI(p, m)
		for w := range si.watchers {
			select {
			case w <- ar:
			default: // a watcher that does not read misses requests; Requests lists them
			}
		}
	}
	si.mu.Unlock()
	if p := out.Shown; p != nil {
		m.n.log.Info("sign-in: request", "space", m.sp.ID(), "device", p.Req.Name, "code", auth.SafetyCode(p.Req), "via", p.Via)
	}
	for _, msg := range out.Publish {
		if err := c.publishSignin(m.life.ctx, msg.Key, m.sp.WriterKey(), msg.Body); err != nil {
			return err
		}
	}
	return err
}
