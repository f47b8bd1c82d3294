package node

import (
	"context"
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
	"github.com/mycelsync/mycel/node/space"
	"github.com/mycelsync/mycel/relay"
)

// The space's relays (node/space/FORMAT.md, "The space's relays"): a space
// lists relays under its own keys, written by members like any op and
// sealed like any op, so that only a writer can list one and a relay
// cannot read the list. Every device of the space uses every relay the
// list holds, as it uses those of its config (relays.go): it keeps a
// reservation on it, advertises the circuit address, hands it the space's
// mirror token (and the next one after each rotation), fetches the
// space's mailbox and deposits its invites' locators there. A relay taken
// off the list is released: its keeper stops, the connection to it is
// closed (which ends the reservation at the relay), and it gets no token
// of a later epoch.
//
// keepSpaceRelays (one goroutine, owned by Node.life) reads the lists of
// the open spaces every Limits.Net.MinBackoff, or at once when this
// device changes one, and starts or releases the keepers. A listed relay
// gets its own owner (a child of Node.life), so that releasing it cancels
// its keeper alone; a relay listed again waits for its previous keeper to
// end before a new one starts.
//
// Entry (the value of key "\x00mycel/relay/" ‖ peer ID, the relay's peer
// ID as text):
//
//	version (1 byte, 1) ‖ count (1 byte, 1–4) ‖ count × (length (1 byte, 1–200) ‖ binary multiaddr)
//
// Each multiaddr is the relay's transport address without /p2p (or with
// /p2p naming the same peer ID); circuit addresses are refused. Trailing
// bytes are refused.

// Bounds on what a space's list makes a device do. The list is written by
// writers, any of whom may be careless or hostile: a writer that floods
// it makes each device use at most maxSpaceRelays relays of that space
// (the first in key order that decode), and at most maxListedRelays in
// all, each dialled at no more than maxSpaceRelayAddrs addresses.
const (
	spaceRelayVersion   = 1
	maxSpaceRelays      = 16
	maxSpaceRelayAddrs  = 4
	maxSpaceRelayAddr   = 200
	maxSpaceRelayEntry  = 2 + maxSpaceRelayAddrs*(1+maxSpaceRelayAddr)
	maxSpaceRelayID     = 128 // a peer ID as text (52 characters for Ed25519)
	maxListedRelays     = 64
	spaceRelayListReads = 2 * maxSpaceRelays // keys read per space, bad ones included
	maxSpaceRelayLogged = 256                // bad entries remembered, so as to log each once
)

var errSpaceRelay = errors.New("node: space relay entry")

// encodeSpaceRelay is the entry of relay info.
func encodeSpaceRelay(info peer.AddrInfo) ([]byte, error) {
	if len(info.Addrs) == 0 || len(info.Addrs) > maxSpaceRelayAddrs {
		return nil, fmt.Errorf("%w: %d addresses (1–%d)", errSpaceRelay, len(info.Addrs), maxSpaceRelayAddrs)
	}
	b := []byte{spaceRelayVersion, byte(len(info.Addrs))}
	for _, a := range info.Addrs {
		if err := checkSpaceRelayAddr(a, info.ID); err != nil {
			return nil, err
		}
		ab := a.Bytes()
		b = append(append(b, byte(len(ab))), ab...)
	}
	return b, nil
}

// decodeSpaceRelay decodes the entry of key id (a peer ID as text), within
// the bounds above: peer input, whatever a writer wrote.
func decodeSpaceRelay(id string, b []byte) (peer.AddrInfo, error) {
	var info peer.AddrInfo
	if len(id) == 0 || len(id) > maxSpaceRelayID {
		return info, fmt.Errorf("%w: peer ID of %d bytes", errSpaceRelay, len(id))
	}
	pid, err := peer.Decode(id)
	if err != nil {
		return info, fmt.Errorf("%w: peer ID: %v", errSpaceRelay, err)
	}
	if len(b) > maxSpaceRelayEntry {
		return info, fmt.Errorf("%w: %d bytes (at most %d)", errSpaceRelay, len(b), maxSpaceRelayEntry)
	}
	if len(b) < 2 || b[0] != spaceRelayVersion {
		return info, fmt.Errorf("%w: not version %d", errSpaceRelay, spaceRelayVersion)
	}
	count := int(b[1])
	if count == 0 || count > maxSpaceRelayAddrs {
		return info, fmt.Errorf("%w: %d addresses (1–%d)", errSpaceRelay, count, maxSpaceRelayAddrs)
	}
	b = b[2:]
	info.ID = pid
	for range count {
		if len(b) == 0 || int(b[0]) == 0 || int(b[0]) > maxSpaceRelayAddr || int(b[0]) > len(b)-1 {
			return peer.AddrInfo{}, fmt.Errorf("%w: address length", errSpaceRelay)
		}
		a, err := ma.NewMultiaddrBytes(b[1 : 1+int(b[0])])
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("%w: address: %v", errSpaceRelay, err)
		}
		if err := checkSpaceRelayAddr(a, pid); err != nil {
			return peer.AddrInfo{}, err
		}
		b = b[1+int(b[0]):]
		base, _ := peer.SplitAddr(a)
		if !slices.ContainsFunc(info.Addrs, base.Equal) {
			info.Addrs = append(info.Addrs, base)
		}
	}
	if len(b) != 0 {
		return peer.AddrInfo{}, fmt.Errorf("%w: %d bytes after the addresses", errSpaceRelay, len(b))
	}
	return info, nil
}

// checkSpaceRelayAddr: a transport address of relay id, of at most
// maxSpaceRelayAddr bytes, not a circuit.
func checkSpaceRelayAddr(a ma.Multiaddr, id peer.ID) error {
	if len(a.Bytes()) == 0 || len(a.Bytes()) > maxSpaceRelayAddr {
		return fmt.Errorf("%w: address of %d bytes (1–%d)", errSpaceRelay, len(a.Bytes()), maxSpaceRelayAddr)
	}
	if hasProto(a, ma.P_CIRCUIT) {
		return fmt.Errorf("%w: %s is a circuit address", errSpaceRelay, a)
	}
	base, pid := peer.SplitAddr(a)
	if base == nil || hasProto(base, ma.P_P2P) || (pid != "" && pid != id) {
		return fmt.Errorf("%w: %s is not an address of %s", errSpaceRelay, a, id)
	}
	for _, c := range base {
		switch c.Code() {
		case ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR:
			if !hostname(c.Value()) {
				return fmt.Errorf("%w: %q is not a host name", errSpaceRelay, c.Value())
			}
		}
	}
	return nil
}

// hostname reports whether s is a DNS host name: dot-separated labels of
// letters, digits and inner hyphens (or underscores), 253 bytes at most.
// go-multiaddr takes any bytes but '/' in a /dns name, and a writer's list
// is shown to other members and dialled by their daemons.
func hostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// spaceRelays decodes the relays space sp lists: the first maxSpaceRelays
// that decode, in key order. bad receives the key and reason of each
// entry refused.
func spaceRelays(sp *space.Space, bad func(id string, err error)) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, e := range sp.Relays(spaceRelayListReads) {
		info, err := decodeSpaceRelay(e.ID, e.Entry)
		if err != nil {
			bad(e.ID, err)
			continue
		}
		out = append(out, info)
		if len(out) == maxSpaceRelays {
			break
		}
	}
	return out
}

// keepSpaceRelays keeps the relays in use those the open spaces list (see
// above). Node.life owns it.
func (n *Node) keepSpaceRelays(ctx context.Context) {
	for {
		n.syncSpaceRelays()
		t := time.NewTimer(n.limits.Net.MinBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-n.relays.listChanged:
			t.Stop()
		case <-t.C:
		}
	}
}

// spaceRelaysChanged has keepSpaceRelays read the lists again now.
func (n *Node) spaceRelaysChanged() {
	select {
	case n.relays.listChanged <- struct{}{}:
	default:
	}
}

// syncSpaceRelays reads the lists of the open spaces this device is a
// member of, and starts keepers for the relays newly listed and releases
// those no list names any longer.
func (n *Node) syncSpaceRelays() {
	want := map[peer.ID]*relayState{}
	var order []peer.ID
	for _, m := range n.openSpaces() {
		if !m.isServed() {
			continue
		}
		sid := m.sp.ID()
		for _, info := range spaceRelays(m.sp, func(id string, err error) { n.badSpaceRelay(sid, id, err) }) {
			w := want[info.ID]
			if w == nil {
				w = &relayState{info: peer.AddrInfo{ID: info.ID}, spaces: map[auth.SpaceID]bool{}}
				want[info.ID] = w
				order = append(order, info.ID)
			}
			w.spaces[sid] = true
			for _, a := range info.Addrs {
				if len(w.info.Addrs) < maxSpaceRelayAddrs && !slices.ContainsFunc(w.info.Addrs, a.Equal) {
					w.info.Addrs = append(w.info.Addrs, a)
				}
			}
		}
	}
	slices.SortFunc(order, func(a, b peer.ID) int { return strings.Compare(string(a), string(b)) })

	var release []peer.ID
	s := n.relays
	s.mu.Lock()
	listed := 0
	for i, r := range s.relays {
		w := want[r.info.ID]
		delete(want, r.info.ID)
		if r.config {
			r.spaces = nil
			if w != nil {
				r.spaces = w.spaces
			}
			continue
		}
		switch {
		case w != nil && listed < maxListedRelays:
			listed++
			r.spaces, r.info.Addrs = w.spaces, w.info.Addrs
			if r.keeper == nil {
				n.startListedLocked(i)
			}
		case r.keeper != nil:
			n.log.Info("relay: no longer listed by a space, released", "relay", r.info.ID)
			s.releaseLocked(r)
			release = append(release, r.info.ID)
		}
	}
	for _, id := range order {
		w := want[id]
		if w == nil {
			continue // in the set already
		}
		if listed >= maxListedRelays {
			n.log.Warn("relay: the spaces list too many relays; the rest are not used", "max", maxListedRelays)
			break
		}
		listed++
		i := slices.IndexFunc(s.relays, reusable)
		if i < 0 {
			s.relays = append(s.relays, w)
			i = len(s.relays) - 1
		} else {
			s.relays[i] = w
		}
		n.startListedLocked(i)
		n.log.Info("relay: listed by a space", "relay", id, "spaces", len(w.spaces))
	}
	s.mu.Unlock()
	for _, id := range release {
		// Closing the connection ends the reservation at the relay.
		_ = n.host.Network().ClosePeer(id)
	}
}

// reusable reports whether r's slot may hold another relay: a listed
// relay released whose keeper ended, so that nothing refers to the slot's
// index any longer. A writer that keeps changing the list cannot make the
// set grow past the relays in use and those whose keepers are ending.
func reusable(r *relayState) bool {
	return !r.config && r.keeper == nil && (r.prevKeeper == nil || r.prevKeeper.stats().Finished)
}

// startListedLocked starts a keeper for listed relay i, once its previous
// one (if it was released before) has ended. n.relays.mu is held.
func (n *Node) startListedLocked(i int) {
	r := n.relays.relays[i]
	prev := r.prevKeeper
	r.keeper = newOwner(n.life)
	r.keeper.start(func(ctx context.Context) {
		if prev != nil {
			if prev.wait(ctx) != nil {
				return
			}
		}
		n.keepRelay(ctx, i)
	})
}

// releaseLocked stops using listed relay r: its keeper ends, its
// reservation and circuit addresses are forgotten (no longer advertised),
// and so are the tokens it was handed. s.mu is held, so that a keeper that
// reserved meanwhile does not record it (reserved checks its context).
func (s *relaySet) releaseLocked(r *relayState) {
	r.keeper.close()
	r.prevKeeper, r.keeper = r.keeper, nil
	r.spaces = nil
	r.until, r.addrs, r.err, r.errAt = time.Time{}, nil, "", time.Time{}
	r.mirror = mirrorHanded{}
}

// badSpaceRelay logs an entry of space sid's list that is refused, once
// per entry and reason.
func (n *Node) badSpaceRelay(sid auth.SpaceID, id string, err error) {
	key := sid.String() + "\x00" + id + "\x00" + err.Error()
	n.relays.mu.Lock()
	if n.relays.badLogged == nil {
		n.relays.badLogged = map[string]bool{}
	}
	seen := n.relays.badLogged[key]
	if !seen && len(n.relays.badLogged) < maxSpaceRelayLogged {
		n.relays.badLogged[key] = true
	}
	n.relays.mu.Unlock()
	if !seen {
		n.log.Warn("relay: the space lists a relay this device cannot use", "space", sid, "relay", truncate(id, maxSpaceRelayID), "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

var _ api.SpaceRelayer = (*Node)(nil)

// HandToRelay implements api.RelayHander: it lists the relay at addr in
// space id (merging its addresses with those already listed) after it
// connected to the relay (within Limits.Net.DialTimeout) and handed it the
// space's newest mirror token. Every device of the space then uses it
// (keepSpaceRelays), and hands it the next token after each rotation.
func (n *Node) HandToRelay(ctx context.Context, id, addr string) error {
	if len(addr) > 1024 {
		return fmt.Errorf("%w: relay address of %d bytes", api.ErrBadRequest, len(addr))
	}
	info, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("%w: relay address %q: %v (want a multiaddr ending in /p2p/<peer ID>)", api.ErrBadRequest, addr, err)
	}
	if len(info.Addrs) != 1 {
		return fmt.Errorf("%w: relay address %q: want one transport address before /p2p/<peer ID>", api.ErrBadRequest, addr)
	}
	if err := checkSpaceRelayAddr(info.Addrs[0], info.ID); err != nil {
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	m, err := n.opened(id)
	if err != nil {
		return err
	}
	if !m.sp.IsWriter() {
		return fmt.Errorf("%w: only a writer lists relays (and the relay believes only a writer's token)", api.ErrReadOnly)
	}
	listed := spaceRelays(m.sp, func(string, error) {})
	i := slices.IndexFunc(listed, func(l peer.AddrInfo) bool { return l.ID == info.ID })
	if i < 0 && len(listed) >= maxSpaceRelays {
		return fmt.Errorf("%w: the space lists %d relays already, the most a device uses: remove one first", api.ErrConflict, len(listed))
	}
	entry := peer.AddrInfo{ID: info.ID, Addrs: info.Addrs}
	if i >= 0 {
		for _, a := range listed[i].Addrs {
			if len(entry.Addrs) < maxSpaceRelayAddrs && !slices.ContainsFunc(entry.Addrs, a.Equal) {
				entry.Addrs = append(entry.Addrs, a)
			}
		}
	}
	b, err := encodeSpaceRelay(entry)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	if err := n.handOnce(ctx, id, *info); err != nil {
		return err
	}
	if err := m.sp.SetRelay(ctx, info.ID.String(), b); err != nil {
		return spaceError(err)
	}
	m.wrote()
	n.spaceRelaysChanged()
	return nil
}

// handOnce connects to the relay and hands it the newest mirror token of
// space id.
func (n *Node) handOnce(ctx context.Context, id string, info peer.AddrInfo) error {
	tok, err := n.MirrorToken(id)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrNoKeys, err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
	defer cancel()
	if n.host.Network().Connectedness(info.ID) != network.Connected {
		if err := n.host.Connect(ctx, info); err != nil {
			return fmt.Errorf("%w: connect to the relay: %v", api.ErrConflict, err)
		}
	}
	if err := relay.HandMirrorToken(ctx, n.host, info.ID, tok); err != nil {
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	n.log.Info("relay: handed the mirror token", "relay", info.ID, "space", tok.Space, "epoch", tok.Epoch)
	return nil
}

// DropRelay implements api.SpaceRelayer: it takes relay peerID off space
// id's list. Every device releases it once the op reaches it.
func (n *Node) DropRelay(ctx context.Context, id, peerID string) error {
	pid, err := peer.Decode(peerID)
	if err != nil {
		return fmt.Errorf("%w: relay peer ID %q: %v", api.ErrBadRequest, truncate(peerID, maxSpaceRelayID), err)
	}
	m, err := n.opened(id)
	if err != nil {
		return err
	}
	if !m.sp.IsWriter() {
		return fmt.Errorf("%w: only a writer lists relays", api.ErrReadOnly)
	}
	if !slices.ContainsFunc(m.sp.Relays(spaceRelayListReads), func(e space.RelayEntry) bool { return e.ID == pid.String() }) {
		return fmt.Errorf("%w: the space does not list relay %s", api.ErrNotFound, pid)
	}
	if err := m.sp.DropRelay(ctx, pid.String()); err != nil {
		return spaceError(err)
	}
	m.wrote()
	n.spaceRelaysChanged()
	return nil
}

// SpaceRelays implements api.SpaceRelayer: the relays space id lists, with
// this device's use of each.
func (n *Node) SpaceRelays(id string) ([]api.SpaceRelay, error) {
	m, err := n.opened(id)
	if err != nil {
		return nil, err
	}
	sid := m.sp.ID()
	var out []api.SpaceRelay
	valid := 0
	for _, e := range m.sp.Relays(spaceRelayListReads) {
		sr := api.SpaceRelay{ID: truncate(e.ID, maxSpaceRelayID)}
		info, err := decodeSpaceRelay(e.ID, e.Entry)
		if err != nil {
			sr.Problem = err.Error()
			out = append(out, sr)
			continue
		}
		if valid++; valid > maxSpaceRelays {
			sr.Problem = fmt.Sprintf("beyond the %d relays of a space a device uses", maxSpaceRelays)
		}
		for _, a := range info.Addrs {
			sr.Addrs = append(sr.Addrs, a.String())
		}
		n.relays.mu.Lock()
		if i := slices.IndexFunc(n.relays.relays, func(r *relayState) bool { return r.info.ID == info.ID }); i >= 0 && n.relays.relays[i].serves(sid) {
			r := n.relays.relays[i]
			st := n.relayStatusLocked(r)
			sr.Connected, sr.ReservedUntil, sr.Circuit, sr.Error = st.Connected, st.ReservedUntil, st.Circuit, st.Error
			sr.MirrorEpoch, sr.MirrorHanded = r.mirror.epoch[sid]
			sr.MirrorError = r.mirror.err[sid]
			sr.InUse = true
		}
		n.relays.mu.Unlock()
		out = append(out, sr)
	}
	return out, nil
}
