package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
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
	// listChanged wakes keepSpaceRelays: this device changed a space's
	// relay list (relays_space.go).
	listChanged chan struct{}
	badLogged   map[string]bool // refused list entries logged (relays_space.go)
}

type relayState struct {
	info peer.AddrInfo
	// config: one of Config.Relays, used for every space, for as long as
	// the node runs. Otherwise the relay is one that spaces list
	// (relays_space.go), used for those spaces only, while one lists it.
	config bool
	spaces map[auth.SpaceID]bool // the spaces whose list names it
	// keeper runs keepRelay for a listed relay; nil once released. The
	// relays of the config have theirs started by New.
	keeper     *owner
	prevKeeper *owner         // the keeper of before a release, until a new one starts
	until      time.Time      // the reservation's expiry; zero when none
	addrs      []ma.Multiaddr // circuit addresses while reserved, without /p2p/<self>
	limitDur   time.Duration  // the relay's limits on one relayed connection
	limitB     uint64
	err        string // the last failure, until a reservation succeeds
	errAt      time.Time
	mirror     mirrorHanded // the mirror tokens handed (relays_mirror.go)
	mailbox    mailboxState // envelopes to deposit, fetches (relays_mailbox.go)

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
	s := &relaySet{listChanged: make(chan struct{}, 1)}
	for _, info := range infos {
		i := slices.IndexFunc(s.relays, func(r *relayState) bool { return r.info.ID == info.ID })
		if i < 0 {
			s.relays = append(s.relays, &relayState{info: peer.AddrInfo{ID: info.ID}, config: true})
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

// reserved records relay i's reservation, unless ctx (its keeper's) ended:
// a relay released meanwhile (relaySet.release cancels the keeper under
// s.mu) is not advertised again.
func (s *relaySet) reserved(ctx context.Context, i int, rsvp *client.Reservation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
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

func (s *relaySet) failed(ctx context.Context, i int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
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
	backoff := n.limits.Net.MinBackoff
	for {
		info := n.relays.info(i) // a space's list may have changed a listed relay's addresses
		rsvp, err := n.reserve(ctx, info)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			n.relays.failed(ctx, i, err)
			n.log.Debug("relay: reservation failed", "relay", info.ID, "err", err, "retry", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, n.limits.Net.MaxBackoff)
			continue
		}
		n.relays.reserved(ctx, i, rsvp)
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
		// The keeper backs off by itself (Limits.Net). The swarm's own
		// backoff after failed dials (5 s + tries² s per address, up to
		// 5 minutes) would leave a relay that was down a while, and is
		// back, unreached that long: cleared here.
		if sw, ok := n.host.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
			sw.Backoff().Clear(info.ID)
		}
		if err := n.host.Connect(ctx, info); err != nil {
			return nil, err
		}
	}
	if slices.ContainsFunc(info.Addrs, manet.IsPublicAddr) {
		n.awaitHolePunching(ctx)
	}
	rsvp, err := client.Reserve(ctx, n.host, info)
	if err != nil && !runsRelay(n.host.Peerstore().GetProtocols, info.ID) {
		err = fmt.Errorf("%w (%s runs no circuit relay: is it a daemon's address? --relay takes a mycel relay's)", err, info.ID)
	}
	return rsvp, err
}

// runsRelay reports whether peer p may run a circuit relay: false only
// when identify told its protocols and the relay's hop protocol is not
// among them.
func runsRelay(protocols func(peer.ID) ([]protocol.ID, error), p peer.ID) bool {
	ps, err := protocols(p)
	return err != nil || len(ps) == 0 || slices.Contains(ps, proto.ProtoIDv2Hop)
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

// relayStatus is the state of each relay in use (the config's, and those
// the spaces list), for the API.
func (n *Node) relayStatus() []api.Relay {
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	var out []api.Relay
	for _, r := range n.relays.relays {
		if r.active() {
			out = append(out, n.relayStatusLocked(r))
		}
	}
	return out
}

func (n *Node) relayStatusLocked(r *relayState) api.Relay {
	ar := api.Relay{ID: r.info.ID.String(), Error: r.err, Config: r.config,
		Connected: n.host.Network().Connectedness(r.info.ID) == network.Connected}
	for _, a := range r.info.Addrs {
		ar.Addrs = append(ar.Addrs, a.String())
	}
	for sid := range r.spaces {
		ar.Spaces = append(ar.Spaces, sid.String())
	}
	slices.Sort(ar.Spaces)
	if r.until.After(time.Now()) {
		until := r.until
		ar.ReservedUntil = &until
		ar.LimitSeconds = int64(r.limitDur / time.Second)
		ar.LimitBytes = r.limitB
		for _, a := range r.addrs {
			ar.Circuit = append(ar.Circuit, a.String()+"/p2p/"+n.host.ID().String())
		}
	}
	return ar
}

// relayIndex is the index of relay id in n.relays, if it is in use, or
// -1.
func (n *Node) relayIndex(id peer.ID) int {
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	return slices.IndexFunc(n.relays.relays, func(r *relayState) bool { return r.info.ID == id && r.active() })
}

// active reports whether the node uses r: one of its config, or listed
// by a space.
func (r *relayState) active() bool { return r.config || len(r.spaces) > 0 }

// serves reports whether r is to be used for space id: the config's
// relays serve every space, a listed one the spaces that list it. A relay
// learns a space's ID (a mirror token, a mailbox, a locator) only from a
// device whose config or space names it.
func (r *relayState) serves(id auth.SpaceID) bool { return r.config || r.spaces[id] }

// info is relay i's peer ID and addresses.
func (s *relaySet) info(i int) peer.AddrInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.relays[i].info
	r.Addrs = slices.Clone(r.Addrs)
	return r
}

// count is the number of relays in use.
func (s *relaySet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := 0
	for _, r := range s.relays {
		if r.active() {
			k++
		}
	}
	return k
}

// servingLocked counts the relays used for space id. s.mu is held.
func (s *relaySet) servingLocked(id auth.SpaceID) int {
	k := 0
	for _, r := range s.relays {
		if r.serves(id) {
			k++
		}
	}
	return k
}
