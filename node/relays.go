package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/syncnet"
)

// Relays (Config.Relays) are circuit relays v2 (`mycel relay`) that this
// node keeps a reservation on, so that peers that cannot dial it reach it
// at <relay addr>/p2p/<relay>/p2p-circuit/p2p/<self>.
//
// The node makes its reservations itself rather than through libp2p's
// autorelay, which advertises only circuit addresses built from the
// relay's public addresses (those the relay vouches for in the
// reservation): on a LAN, or on loopback, there are none. The circuit
// addresses here are built from the relay's configured addresses and the
// ones its reservation names, and added to the host's addresses by an
// AddrsFactory (relaySet.addrsFactory), so that Addrs, Status and the
// invite hints carry them while the reservation holds.

// relayCircuitAddrs bounds the circuit addresses advertised per relay.
const relayCircuitAddrs = 4

// relayRenewMargin is how long before its expiry a reservation is
// renewed; one shorter than twice that is renewed halfway.
const relayRenewMargin = 2 * time.Minute

// relaySet is the state of the node's relays, shared by their keepers and
// the host's AddrsFactory (made before the node and its host exist).
type relaySet struct {
	mu     sync.Mutex
	relays []*relayState
	// locators to deposit at, or remove from, every relay
	// (relays_locators.go).
	locators map[auth.InviteID]*relayLocator
}

type relayState struct {
	info     peer.AddrInfo
	until    time.Time      // the reservation's expiry; zero when none
	addrs    []ma.Multiaddr // circuit addresses while reserved, without /p2p/<self>
	limitDur time.Duration  // the relay's limits on one relayed connection
	limitB   uint64
	err      string // the last failure, until a reservation succeeds
	errAt    time.Time
	mirror   mirrorHanded // the mirror tokens handed (relays_mirror.go)
	mailbox  mailboxState // envelopes to deposit, fetches (relays_mailbox.go)

	// memberRenewals counts the early renewals made since the reservation
	// began to learn the members' limits (memberRenewDue); first are the
	// limits of its first reply.
	memberRenewals int
	memberAt       time.Time
	first          [2]uint64
}

// newRelaySet holds one relay per peer ID, with every address given for
// it (several --relay addresses of one relay are one relay, one
// reservation).
func newRelaySet(infos []peer.AddrInfo) *relaySet {
	s := &relaySet{}
	for _, info := range infos {
		i := slices.IndexFunc(s.relays, func(r *relayState) bool { return r.info.ID == info.ID })
		if i < 0 {
			s.relays = append(s.relays, &relayState{info: peer.AddrInfo{ID: info.ID}})
			i = len(s.relays) - 1
		}
		for _, a := range info.Addrs {
			if !slices.ContainsFunc(s.relays[i].info.Addrs, a.Equal) {
				s.relays[i].info.Addrs = append(s.relays[i].info.Addrs, a)
			}
		}
	}
	return s
}

// addrsFactory adds the circuit addresses of the reservations held to the
// host's own.
func (s *relaySet) addrsFactory(addrs []ma.Multiaddr) []ma.Multiaddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, r := range s.relays {
		if r.until.After(now) {
			addrs = append(addrs, r.addrs...)
		}
	}
	return addrs
}

// circuitAddrs builds the circuit addresses through relay r: its
// configured addresses first, then those its reservation vouches for,
// each once, at most relayCircuitAddrs.
func circuitAddrs(r peer.AddrInfo, vouched []ma.Multiaddr) []ma.Multiaddr {
	suffix, err := ma.NewMultiaddr("/p2p/" + r.ID.String() + "/p2p-circuit")
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range append(slices.Clone(r.Addrs), vouched...) {
		base, id := peer.SplitAddr(a)
		if base == nil || (id != "" && id != r.ID) || hasProto(base, ma.P_CIRCUIT) {
			continue
		}
		c := base.Encapsulate(suffix)
		if !slices.ContainsFunc(out, c.Equal) {
			out = append(out, c)
		}
		if len(out) == relayCircuitAddrs {
			break
		}
	}
	return out
}

func (s *relaySet) reserved(i int, rsvp *client.Reservation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.relays[i]
	if r.until.IsZero() {
		// A new reservation, not a renewal: the relay may be another
		// process since (restarted, its store lost or moved), so every
		// token is handed again (relays_mirror.go).
		r.mirror = mirrorHanded{}
		r.memberRenewals, r.first = 0, [2]uint64{uint64(rsvp.LimitDuration), rsvp.LimitData}
	}
	r.until, r.limitDur, r.limitB = rsvp.Expiration, rsvp.LimitDuration, rsvp.LimitData
	r.addrs = circuitAddrs(r.info, rsvp.Addrs)
	r.err, r.errAt = "", time.Time{}
}

func (s *relaySet) failed(i int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.relays[i]
	r.until, r.addrs = time.Time{}, nil
	r.err, r.errAt = err.Error(), time.Now()
}

// lost forgets relay i's reservation: the relay went away.
func (s *relaySet) lost(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.relays[i].until, s.relays[i].addrs = time.Time{}, nil
}

// keepRelay keeps a reservation on relay i: it connects, reserves, renews
// the reservation before it expires, and starts again, backing off after
// failures, once the connection to the relay is gone (checked every
// Limits.Net.MinBackoff).
func (n *Node) keepRelay(ctx context.Context, i int) {
	info := n.relays.relays[i].info
	backoff := n.limits.Net.MinBackoff
	for {
		rsvp, err := n.reserve(ctx, info)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			n.relays.failed(i, err)
			n.log.Debug("relay: reservation failed", "relay", info.ID, "err", err, "retry", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, n.limits.Net.MaxBackoff)
			continue
		}
		n.relays.reserved(i, rsvp)
		n.log.Info("relay: reserved", "relay", info.ID, "until", rsvp.Expiration)
		backoff = n.limits.Net.MinBackoff
		left := time.Until(rsvp.Expiration)
		wait := left / 2
		if left > 2*relayRenewMargin {
			wait = left - relayRenewMargin
		}
		renew := time.Now().Add(max(wait, n.limits.Net.MinBackoff))
		for time.Now().Before(renew) {
			n.handMirrorTokens(ctx, i, info.ID)
			n.syncMailbox(ctx, i, info.ID)
			n.syncLocators(ctx, info.ID)
			if !sleep(ctx, min(n.limits.Net.MinBackoff, time.Until(renew))) {
				return
			}
			if n.relays.memberRenewDue(i, n.syncingWith(info.ID), 2*n.limits.Net.MinBackoff) {
				break // renew now: the reply tells the members' limits
			}
			if n.host.Network().Connectedness(info.ID) != network.Connected {
				// A relay keeps its reservations in memory only: one that
				// went away may come back without it.
				n.relays.lost(i)
				n.relays.forgetMailbox(i)
				n.log.Info("relay: disconnected", "relay", info.ID)
				break
			}
		}
	}
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reserve connects to the relay if need be and makes (or renews) a
// reservation, within Limits.Net.DialTimeout.
func (n *Node) reserve(ctx context.Context, info peer.AddrInfo) (*client.Reservation, error) {
	ctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
	defer cancel()
	if n.host.Network().Connectedness(info.ID) != network.Connected {
		if err := n.host.Connect(ctx, info); err != nil {
			return nil, err
		}
	}
	if slices.ContainsFunc(info.Addrs, manet.IsPublicAddr) {
		n.awaitHolePunching(ctx)
	}
	return client.Reserve(ctx, n.host, info)
}

// awaitHolePunching waits, at most holePunchWait, until this host handles
// DCUtR (holepunch.Protocol), and reports whether it does. libp2p's hole
// punching starts once identify brought an observed public address (the
// relay's answer), and it tries once, when a relayed connection opens: an
// inbound one that opens before then is never punched, and stays relayed
// for good. So a device reserves a slot at a relay at a public address
// (the only kind that gives a public observed address) only once it can
// punch, or after the wait.
func (n *Node) awaitHolePunching(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, holePunchWait)
	defer cancel()
	for !slices.Contains(n.host.Mux().Protocols(), holepunch.Protocol) {
		if !sleep(ctx, 50*time.Millisecond) {
			return false
		}
	}
	return true
}

// maxMemberRenewals bounds the early renewals of one reservation
// (memberRenewDue).
const maxMemberRenewals = 3

// memberRenewDue reports whether relay i's reservation should be renewed
// now to learn the members' circuit limits, and counts the renewal. A
// relay lifts the circuit limits of a peer once its mirror accepted the
// peer's replication proof, which comes after the first reservation; the
// relay tells a reservation's limits in its reply only, so the status
// would show the default ones until the renewal an hour later. So, while
// the reservation still has the limits of its first reply and a sync
// session with the relay is established (its mirror accepted this node's
// proof), the reservation is renewed at once, at most maxMemberRenewals
// times per reservation and once per interval.
func (s *relaySet) memberRenewDue(i int, established bool, interval time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.relays[i]
	now := time.Now()
	if !established || r.until.IsZero() || r.memberRenewals >= maxMemberRenewals || now.Sub(r.memberAt) < interval ||
		r.first != [2]uint64{uint64(r.limitDur), r.limitB} {
		return false
	}
	r.memberRenewals++
	r.memberAt = now
	return true
}

// syncingWith reports whether a sync session with p is established: p
// accepted this node's proof, or is verifying it.
func (n *Node) syncingWith(p peer.ID) bool {
	return slices.ContainsFunc(n.repl.Sessions(), func(s syncnet.SessionInfo) bool { return s.Peer == p && s.Established })
}

// relayStatus is the state of each relay, for the API.
func (n *Node) relayStatus() []api.Relay {
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	now := time.Now()
	var out []api.Relay
	for _, r := range n.relays.relays {
		ar := api.Relay{ID: r.info.ID.String(), Error: r.err,
			Connected: n.host.Network().Connectedness(r.info.ID) == network.Connected}
		for _, a := range r.info.Addrs {
			ar.Addrs = append(ar.Addrs, a.String())
		}
		if r.until.After(now) {
			until := r.until
			ar.ReservedUntil = &until
			ar.LimitSeconds = int64(r.limitDur / time.Second)
			ar.LimitBytes = r.limitB
			for _, a := range r.addrs {
				ar.Circuit = append(ar.Circuit, a.String()+"/p2p/"+n.host.ID().String())
			}
		}
		out = append(out, ar)
	}
	return out
}

// relayIndex is the index of relay id in n.relays, or -1.
func (n *Node) relayIndex(id peer.ID) int {
	return slices.IndexFunc(n.relays.relays, func(r *relayState) bool { return r.info.ID == id })
}
