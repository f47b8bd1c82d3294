package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/auth/inviteqr"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/signin"
)

// CreateInvite implements api.Backend.
func (n *Node) CreateInvite(ctx context.Context, id string, ttl time.Duration) (api.Invite, error) {
	ctx, m, done, err := n.callOn(ctx, id)
	if err != nil {
		return api.Invite{}, err
	}
	defer done()
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
	n.depositLocator(m.sp.ID(), inv.Record(), loc)
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
	ctx, m, done, err := n.callOn(ctx, id)
	if err != nil {
		return err
	}
	defer done()
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
	ctx, done, err := n.call(ctx)
	if err != nil {
		return api.JoinState{}, err
	}
	defer done()
	now := time.Now()
	var sid auth.SpaceID
	var key auth.RequestKey
	var expires time.Time
	var hints auth.InviteHints // where a relay's locator says the inviting device is
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
			s, err := n.joinSpace(ctx, w.Space)
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
			inv, hints = found, found.Hints
		}
		sid, key, expires = inv.Space, inv.RequestKey(), inv.Expires
	case w.Password != "":
		if w.Space == "" {
			return api.JoinState{}, fmt.Errorf("%w: a password needs the space ID", api.ErrBadRequest)
		}
		s, err := n.joinSpace(ctx, w.Space)
		if err != nil {
			return api.JoinState{}, err
		}
		sid, key, expires = s, auth.PasswordRequestKey(auth.PasswordKey(w.Password, s), s), now.Add(n.signins.lim.PasswordLifetime)
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
		same := m.join != nil && m.join.Matches(key, w.Password)
		m.mu.Unlock()
		if same {
			m.askSoon()
			return m.joinState(), nil
		}
	}
	req, err := auth.NewJoinRequest(sid, n.cfg.Name, m.sp.Feed(), n.device.Public(), now, nil)
	if err != nil {
		return api.JoinState{}, err
	}
	j, err := signin.Ask(n.signins.lim, n.device, req, key, expires, w.Password)
	if err != nil {
		return api.JoinState{}, err
	}
	if err := m.saveJoin(j.Record()); err != nil {
		return api.JoinState{}, err
	}
	m.mu.Lock()
	m.join = j
	m.mu.Unlock()
	n.log.Info("sign-in: asked to join", "space", sid, "via", key.Kind, "code", auth.SafetyCode(req))
	m.askSoon()
	if !hints.IsZero() {
		n.keepDialingHints(m, hints, expires)
	}
	return m.joinState(), nil
}

func requestAPI(p *signin.Request, m *openSpace) api.Request {
	return api.Request{ID: p.ID, Space: p.Space.String(), SpaceName: m.name, Name: p.Req.Name,
		Feed: fmt.Sprintf("%x", p.Req.Feed[:]), Code: auth.SafetyCode(p.Req), Via: p.Via, Time: p.Req.Time.UTC()}
}

// waitingRequest is a request a member keeps, with its open space.
type waitingRequest struct {
	p *signin.Request
	m *openSpace
}

// currentRequests drops the requests that are no longer to answer
// (signin.Members.Current) and returns the others.
func (n *Node) currentRequests() []waitingRequest {
	open := map[auth.SpaceID]*openSpace{}
	for _, m := range n.openSpaces() {
		open[m.sp.ID()] = m
	}
	lookup := func(id auth.SpaceID) signin.Space {
		if m := open[id]; m != nil {
			return signinSpace{m}
		}
		return nil
	}
	si := n.signins
	si.mu.Lock()
	ps := si.core.Current(time.Now(), lookup)
	si.mu.Unlock()
	out := make([]waitingRequest, 0, len(ps))
	for _, p := range ps {
		out = append(out, waitingRequest{p, open[p.Space]})
	}
	return out
}

// Requests implements api.Backend.
func (n *Node) Requests() []api.Request {
	var out []api.Request
	for _, w := range n.currentRequests() {
		out = append(out, requestAPI(w.p, w.m))
	}
	slices.SortFunc(out, func(a, b api.Request) int { return a.Time.Compare(b.Time) })
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
	ok := n.streams.start(func(sctx context.Context) {
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
			case <-sctx.Done():
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
			case <-sctx.Done():
				return
			}
		}
	})
	if !ok {
		si.mu.Lock()
		delete(si.watchers, w)
		si.mu.Unlock()
		return nil, api.ErrClosed
	}
	return out, nil
}

// find returns the waiting request named by id (or a prefix of it, at
// least 6 hex digits, naming one).
func (n *Node) find(id string) (waitingRequest, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < 6 {
		return waitingRequest{}, fmt.Errorf("%w: request ID %q: give at least 6 hex digits", api.ErrBadRequest, id)
	}
	var found []waitingRequest
	for _, w := range n.currentRequests() {
		if strings.HasPrefix(w.p.ID, id) {
			found = append(found, w)
		}
	}
	switch len(found) {
	case 0:
		return waitingRequest{}, fmt.Errorf("%w: no request %s waiting", api.ErrNotFound, id)
	case 1:
		return found[0], nil
	}
	return waitingRequest{}, fmt.Errorf("%w: %q names %d requests", api.ErrBadRequest, id, len(found))
}

// answering returns the waiting request named by id and the channel to
// answer it on.
func (n *Node) answering(id string) (waitingRequest, *channel, error) {
	w, err := n.find(id)
	if err != nil {
		return w, nil, err
	}
	c := w.m.channel()
	if c == nil {
		return w, nil, fmt.Errorf("%w: the space's channel is not open", api.ErrClosed)
	}
	return w, c, nil
}

// Approve implements api.Backend.
func (n *Node) Approve(ctx context.Context, id, code string) error {
	ctx, done, err := n.call(ctx)
	if err != nil {
		return err
	}
	defer done()
	w, c, err := n.answering(id)
	if err != nil {
		return err
	}
	p, m := w.p, w.m
	if code != "" {
		if err := auth.CheckSafetyCode(p.Req, code); err != nil {
			return fmt.Errorf("%w: the device shows another code: check that you approve the right device (%v)", api.ErrSafetyCode, err)
		}
	}
	if p.Key.Kind == auth.RequestByInvite {
		if err := m.sp.UseInvite(ctx, auth.InviteID(p.Key.ID), p.Req.Feed); err != nil {
			if errors.Is(err, auth.ErrUsed) {
				return fmt.Errorf("%w: the invite was used by another device", api.ErrConflict)
			}
			return spaceError(err)
		}
		n.spentInvite(m, auth.InviteID(p.Key.ID))
	}
	if err := m.sp.AddWriter(ctx, p.Req.Feed, p.Req.Name, p.Req.Device); err != nil {
		return spaceError(err)
	}
	m.wrote()
	n.signins.mu.Lock()
	msg, err := n.signins.core.Approve(time.Now(), signinSpace{m}, p)
	n.signins.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.publishSignin(ctx, msg.Key, m.sp.WriterKey(), msg.Body); err != nil {
		return err
	}
	n.log.Info("sign-in: approved", "space", m.sp.ID(), "device", p.Req.Name, "feed", feed.PublicKey(p.Req.Feed))
	return nil
}

// Deny implements api.Backend.
func (n *Node) Deny(ctx context.Context, id string) error {
	ctx, done, err := n.call(ctx)
	if err != nil {
		return err
	}
	defer done()
	w, c, err := n.answering(id)
	if err != nil {
		return err
	}
	p, m := w.p, w.m
	if p.Key.Kind == auth.RequestByInvite {
		if err := m.sp.UseInvite(ctx, auth.InviteID(p.Key.ID), p.Req.Feed); err != nil && !errors.Is(err, auth.ErrUsed) {
			return spaceError(err)
		}
		m.wrote()
		n.spentInvite(m, auth.InviteID(p.Key.ID))
	}
	n.signins.mu.Lock()
	msg, err := n.signins.core.Deny(time.Now(), signinSpace{m}, p)
	n.signins.mu.Unlock()
	if err != nil {
		return err
	}
	n.log.Info("sign-in: denied", "space", m.sp.ID(), "device", p.Req.Name)
	return c.publishSignin(ctx, msg.Key, m.sp.WriterKey(), msg.Body)
}
