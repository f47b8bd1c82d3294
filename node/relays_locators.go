package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// Invite locators at the relays (relay/FORMAT.md, "Locators and
// aliases"). When this device makes an invite, it deposits the invite's
// locator at each of its relays (Config.Relays), so that a device holding
// only the short code finds the space while no member is online; when it
// answers a request made with an invite (approve or deny: the invite is
// spent), it removes the locator. A device joining with a code asks its
// relays when no connected peer knows the code (locate.go).
//
// The relay keeps an opaque blob under the invite ID; the daemon puts
// there:
//
//	version (1) = 1 ‖ locator (auth.InviteLocatorSize: space ID and
//	expiry sealed under the invite's request key) ‖ sealed hints
//
// where the sealed hints, optional, are
//
//	auth.SealContent(request key, hints, "mycel/v1/relay-locator-hints" ‖ 0x00 ‖ invite ID)
//	hints = peer length (1) ‖ peer ID ‖ count (1) ‖ count × (length (1) ‖ binary multiaddr)
//
// the inviting device's peer ID and addresses (its circuit addresses
// through its relays among them): what the device needs to reach the
// member once it is back. Only a holder of the code opens either. The
// removal secret is HMAC-SHA256(request key, "mycel/v1/relay-locator-remove"
// ‖ invite ID): every member holds the request key (the invite's record),
// so any member that answers the request can remove the locator; the relay
// is given its SHA-256 at the deposit.

const (
	labelLocatorRemove = "mycel/v1/relay-locator-remove"
	// locatorRetry is how long a deposit or removal a relay refused waits
	// before it is tried again; one refused because the relay did not yet
	// follow this device as a writer waits locatorRetrySoon (the mirror
	// handover and the first sync come first).
	locatorRetry     = 5 * time.Minute
	locatorRetrySoon = 10 * time.Second
)

// relayLocator is an invite whose locator this device deposits at, or
// removes from, its relays.
type relayLocator struct {
	space  auth.SpaceID
	rec    auth.InviteRecord // ID, request key, expiry
	loc    []byte            // auth.Invite.Locator; nil for a removal
	remove bool
	done   map[peer.ID]bool      // the relay holds what this device wants
	failed map[peer.ID]time.Time // when a relay last refused, and how long to wait
	wait   map[peer.ID]time.Duration
}

func removalSecret(rec auth.InviteRecord) [32]byte {
	mac := hmac.New(sha256.New, rec.Key[:])
	mac.Write([]byte(labelLocatorRemove))
	mac.Write([]byte{0})
	mac.Write(rec.ID[:])
	return [32]byte(mac.Sum(nil))
}

// encodeLocatorBlob builds the blob deposited for an invite
// (auth.SealRelayLocator).
func encodeLocatorBlob(rec auth.InviteRecord, loc []byte, h auth.InviteHints) ([]byte, error) {
	return auth.SealRelayLocator(rec, loc, h)
}

// decodeLocatorBlob opens a blob a relay returned for inv
// (auth.OpenRelayLocator, which the browser node's wasm core uses too).
func decodeLocatorBlob(inv *auth.Invite, blob []byte, now time.Time) (*auth.Invite, error) {
	return auth.OpenRelayLocator(inv, blob, now)
}

// parseLocatorHints decodes the hints of a blob (auth.ParseRelayLocatorHints).
func parseLocatorHints(b []byte) (auth.InviteHints, bool) {
	return auth.ParseRelayLocatorHints(b)
}

// depositLocator has the invite's locator deposited at every relay.
func (n *Node) depositLocator(space auth.SpaceID, rec auth.InviteRecord, loc []byte) {
	if n.relays.count() == 0 {
		return
	}
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	if n.relays.locators == nil {
		n.relays.locators = map[auth.InviteID]*relayLocator{}
	}
	n.relays.locators[rec.ID] = &relayLocator{space: space, rec: rec, loc: loc, done: map[peer.ID]bool{},
		failed: map[peer.ID]time.Time{}, wait: map[peer.ID]time.Duration{}}
}

// spentLocator has the invite's locator removed from every relay: the
// invite is spent. This device may not be the one that deposited it, or
// may have restarted since: it asks every relay, and one that holds none
// answers "not found", which is as good.
func (n *Node) spentLocator(space auth.SpaceID, rec auth.InviteRecord) {
	if n.relays.count() == 0 {
		return
	}
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	if n.relays.locators == nil {
		n.relays.locators = map[auth.InviteID]*relayLocator{}
	}
	n.relays.locators[rec.ID] = &relayLocator{space: space, rec: rec, remove: true, done: map[peer.ID]bool{},
		failed: map[peer.ID]time.Time{}, wait: map[peer.ID]time.Duration{}}
}

// syncLocators brings relay id up to date with this device's locators:
// deposits and removals it does not hold yet. keepRelay calls it while it
// holds a reservation on the relay.
func (n *Node) syncLocators(ctx context.Context, id peer.ID) {
	now := time.Now()
	type job struct {
		l     *relayLocator
		store bool
	}
	var jobs []job
	n.relays.mu.Lock()
	ri := slices.IndexFunc(n.relays.relays, func(r *relayState) bool { return r.info.ID == id })
	for iid, l := range n.relays.locators {
		if !now.Before(l.rec.Expires) {
			delete(n.relays.locators, iid)
			continue
		}
		if ri < 0 || !n.relays.relays[ri].serves(l.space) {
			continue // a relay listed by another space learns nothing of this one
		}
		if l.done[id] || now.Sub(l.failed[id]) < l.wait[id] {
			continue
		}
		jobs = append(jobs, job{l: l, store: !l.remove})
	}
	n.relays.mu.Unlock()
	for _, j := range jobs {
		l := j.l
		var err error
		if j.store {
			err = n.depositAt(ctx, id, l)
		} else {
			err = relay.RemoveLocator(ctx, n.host, id, l.rec.ID, removalSecret(l.rec))
			if errors.Is(err, relay.ErrDirectoryNotFound) {
				err = nil
			}
		}
		if ctx.Err() != nil {
			return
		}
		n.relays.mu.Lock()
		if err == nil {
			l.done[id] = true
			delete(l.failed, id)
			if len(l.done) == n.relays.servingLocked(l.space) && n.relays.locators[l.rec.ID] == l {
				// Every relay holds what this device wants: nothing is
				// left to do (a removal later adds the invite again).
				delete(n.relays.locators, l.rec.ID)
			}
		} else {
			l.failed[id], l.wait[id] = now, locatorRetry
			if errors.Is(err, relay.ErrUnknownSpace) || errors.Is(err, relay.ErrDirectoryForbidden) {
				l.wait[id] = locatorRetrySoon
			}
		}
		n.relays.mu.Unlock()
		switch {
		case err != nil:
			n.log.Debug("relay: invite locator", "relay", id, "invite", l.rec.ID, "remove", l.remove, "err", err)
		case j.store:
			n.log.Info("relay: deposited the invite's locator", "relay", id, "invite", l.rec.ID)
		default:
			n.log.Info("relay: removed the spent invite's locator", "relay", id, "invite", l.rec.ID)
		}
	}
}

// depositAt deposits l at relay id, signed with this device's feed key in
// the space.
func (n *Node) depositAt(ctx context.Context, id peer.ID, l *relayLocator) error {
	m, err := n.opened(l.space.String())
	if err != nil {
		return err
	}
	if !m.sp.IsWriter() {
		return errors.New("node: not a writer of the space")
	}
	blob, err := encodeLocatorBlob(l.rec, l.loc, n.InviteHints())
	if err != nil {
		return err
	}
	secret := removalSecret(l.rec)
	return relay.DepositLocator(ctx, n.host, id, relay.Locator{Space: l.space, ID: l.rec.ID, Expires: l.rec.Expires,
		RemovalHash: sha256.Sum256(secret[:]), Blob: blob}, m.sp.WriterKey(), time.Now())
}

// connectRelay connects to a relay within Limits.Net.DialTimeout.
func (n *Node) connectRelay(ctx context.Context, info peer.AddrInfo) error {
	if n.host.Network().Connectedness(info.ID) == network.Connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
	defer cancel()
	return n.host.Connect(ctx, info)
}

// relayInfos are the relays in use: this device's config's, and those its
// spaces list.
func (n *Node) relayInfos() []peer.AddrInfo {
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(n.relays.relays))
	for _, r := range n.relays.relays {
		if r.active() {
			out = append(out, r.info)
		}
	}
	return out
}

// locateAtRelays asks each relay for the locator of inv.
func (n *Node) locateAtRelays(ctx context.Context, inv *auth.Invite) (*auth.Invite, error) {
	var errs []error
	for _, info := range n.relayInfos() {
		if err := n.connectRelay(ctx, info); err != nil {
			errs = append(errs, err)
			continue
		}
		_, blob, err := relay.LookupLocator(ctx, n.host, info.ID, inv.ID())
		if err == nil {
			var found *auth.Invite
			if found, err = decodeLocatorBlob(inv, blob, time.Now()); err == nil {
				return found, nil
			}
		}
		if errors.Is(err, auth.ErrExpired) {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("relay %s: %w", info.ID, err))
	}
	return nil, errors.Join(errs...)
}

// aliasRelays are the relays an alias names: "name@<multiaddr with
// /p2p/>" one relay, "name@<peer ID>" a relay of the config, "name@" or
// "name" every relay of the config.
func (n *Node) aliasRelays(s string) (name string, infos []peer.AddrInfo, err error) {
	name, at, _ := strings.Cut(s, "@")
	if name, err = relay.NormaliseAlias(name); err != nil {
		return "", nil, err
	}
	switch {
	case at == "":
		infos = n.relayInfos()
	case strings.HasPrefix(at, "/"):
		a, err := ma.NewMultiaddr(at)
		if err != nil {
			return "", nil, fmt.Errorf("relay address %q: %v", at, err)
		}
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return "", nil, fmt.Errorf("relay address %q: %v (it ends with /p2p/<the relay's peer ID>)", at, err)
		}
		infos = []peer.AddrInfo{*info}
	default:
		id, err := peer.Decode(at)
		if err != nil {
			return "", nil, fmt.Errorf("relay %q: a multiaddr ending with /p2p/<peer ID>, or the peer ID of a configured relay", at)
		}
		for _, info := range n.relayInfos() {
			if info.ID == id {
				infos = append(infos, info)
			}
		}
		if len(infos) == 0 {
			return "", nil, fmt.Errorf("relay %s is not one of this daemon's relays: give its address", at)
		}
	}
	if len(infos) == 0 {
		return "", nil, errors.New("no relay: give one after the @, or start the daemon with --relay")
	}
	return name, infos, nil
}

// resolveAlias resolves name@relay to a space ID at the first relay that
// knows it.
func (n *Node) resolveAlias(ctx context.Context, s string) (auth.SpaceID, error) {
	name, infos, err := n.aliasRelays(s)
	if err != nil {
		return auth.SpaceID{}, err
	}
	var errs []error
	for _, info := range infos {
		if err := n.connectRelay(ctx, info); err != nil {
			errs = append(errs, err)
			continue
		}
		id, err := relay.ResolveAlias(ctx, n.host, info.ID, name)
		if err == nil {
			return id, nil
		}
		errs = append(errs, fmt.Errorf("relay %s: %w", info.ID, err))
	}
	return auth.SpaceID{}, errors.Join(errs...)
}

// keepDialingHints dials the inviting device that a relay's locator named
// while this device's request waits: the member may be offline now and
// come back later, and nothing else would connect the two. Reached
// through the relay only (a limited connection, which gossipsub does not
// use), it dials the addresses the member's identify gave, directly; once
// connected it asks again at once.
func (n *Node) keepDialingHints(m *openSpace, h auth.InviteHints, until time.Time) {
	id, err := peer.IDFromBytes(h.Peer)
	if err != nil || id == n.host.ID() {
		return
	}
	m.life.start(func(ctx context.Context) {
		backoff := n.limits.Net.MinBackoff
		for time.Now().Before(until) && !m.sp.Approved() {
			c := n.host.Network().Connectedness(id)
			if c != network.Connected && c != network.Limited {
				if err := n.DialHints(ctx, h); err != nil {
					backoff = min(backoff*2, 10*time.Second, n.limits.Net.MaxBackoff)
				}
				c = n.host.Network().Connectedness(id)
			}
			if c == network.Limited {
				dctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "sign-in"), n.limits.Net.DialTimeout)
				if err := n.host.Connect(dctx, peer.AddrInfo{ID: id}); err == nil {
					n.log.Info("sign-in: connected directly to the inviting device", "peer", id)
				}
				cancel()
				c = n.host.Network().Connectedness(id)
			}
			if c == network.Connected {
				m.askSoon()
				backoff = n.limits.Net.MinBackoff
				// Stay until approved, in case the connection goes.
				for n.host.Network().Connectedness(id) == network.Connected && !m.sp.Approved() {
					if !sleep(ctx, n.limits.Net.MinBackoff) {
						return
					}
				}
				continue
			}
			if !sleep(ctx, backoff) {
				return
			}
		}
	})
}

// spentInvite has the locator of a spent invite of m removed from the
// relays.
func (n *Node) spentInvite(m *openSpace, id auth.InviteID) {
	if rec, _, ok := m.sp.Invite(id); ok {
		n.spentLocator(m.sp.ID(), rec)
	}
}

// joinSpace reads the space a join names: its ID, or an alias at a relay
// (name@relay, aliasRelays).
func (n *Node) joinSpace(ctx context.Context, s string) (auth.SpaceID, error) {
	if !strings.Contains(s, "@") {
		return parseSpaceID(s)
	}
	id, err := n.resolveAlias(ctx, s)
	if errors.Is(err, relay.ErrMalformedDirectory) && !errors.Is(err, relay.ErrDirectoryRefused) {
		return auth.SpaceID{}, fmt.Errorf("%w: alias %s: %v", api.ErrBadRequest, s, err)
	} else if err != nil {
		return auth.SpaceID{}, fmt.Errorf("%w: alias %s: %v", api.ErrNotFound, s, err)
	}
	return id, nil
}

var _ api.Aliaser = (*Node)(nil)

// SetAlias implements api.Aliaser: it registers name for the space at
// relay (or every relay of the config), signed with this device's feed
// key in the space.
func (n *Node) SetAlias(ctx context.Context, id, name, relayArg string) (api.AliasState, error) {
	return n.alias(ctx, id, name, relayArg, false)
}

// DropAlias implements api.Aliaser. A relay that holds no such alias
// counts as one that dropped it.
func (n *Node) DropAlias(ctx context.Context, id, name, relayArg string) (api.AliasState, error) {
	return n.alias(ctx, id, name, relayArg, true)
}

func (n *Node) alias(ctx context.Context, id, name, relayArg string, drop bool) (api.AliasState, error) {
	ctx, m, done, err := n.callOn(ctx, id)
	if err != nil {
		return api.AliasState{}, err
	}
	defer done()
	if !m.sp.IsWriter() {
		return api.AliasState{}, fmt.Errorf("%w: only a writer of the space names it", api.ErrReadOnly)
	}
	if strings.Contains(name, "@") {
		return api.AliasState{}, fmt.Errorf("%w: the alias's name alone; the relay apart", api.ErrBadRequest)
	}
	name, infos, err := n.aliasRelays(name + "@" + relayArg)
	if err != nil {
		return api.AliasState{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	st := api.AliasState{Name: name, Space: m.sp.ID().String()}
	var errs []error
	for _, info := range infos {
		ar := api.AliasRelay{ID: info.ID.String()}
		err := n.connectRelay(ctx, info)
		if err == nil && drop {
			err = relay.DropAlias(ctx, n.host, info.ID, name, m.sp.WriterKey(), time.Now())
			if errors.Is(err, relay.ErrDirectoryNotFound) {
				ar.Absent, err = true, nil
			}
		} else if err == nil {
			err = relay.RegisterAlias(ctx, n.host, info.ID, name, m.sp.ID(), m.sp.WriterKey(), time.Now())
		}
		if err != nil {
			ar.Error = err.Error()
			errs = append(errs, err)
		}
		st.Relays = append(st.Relays, ar)
	}
	if len(errs) == len(infos) {
		return st, fmt.Errorf("%w: no relay took it: %v", api.ErrConflict, errors.Join(errs...))
	}
	what := "registered"
	if drop {
		what = "dropped"
	}
	n.log.Info("relay: alias "+what, "space", m.sp.ID(), "relays", len(infos)-len(errs))
	return st, nil
}
