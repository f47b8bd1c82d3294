package relay

import (
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// ACL is the circuit relay service's access control (libp2p's
// relayv2.ACLFilter): the service asks it before it grants a slot and
// before it opens each relayed connection.
//
// Today it admits everyone, held to the circuit limits of Limits
// (libp2p's defaults), and only counts its decisions, in aggregate. It
// keeps the allow-list of peers that belong to a space the relay serves:
// those are the ones whose circuits are to get lifted limits, so that a
// whole sync and the message traffic cross the relay. The list is empty
// until the relay serves spaces (issue 12), and a circuit between two
// listed peers is only counted apart for now: libp2p's ACLFilter answers
// yes or no, and the limits it applies are one setting for the whole
// service, so lifting them per circuit needs more than this hook.
type ACL struct {
	mu      sync.RWMutex
	members map[peer.ID]struct{}

	decisions *prometheus.CounterVec
	counts    [2][2]atomic.Int64 // [connect?][members?]
}

var _ relayv2.ACLFilter = (*ACL)(nil)

// NewACL returns an ACL with an empty allow-list, counting its decisions
// in reg (mycel_relay_acl_decisions_total) if reg is not nil.
func NewACL(reg prometheus.Registerer) *ACL {
	a := &ACL{
		members: make(map[peer.ID]struct{}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mycel_relay_acl_decisions_total",
			Help: "Decisions of the circuit relay's ACL, by request (reserve or connect) and by whether the peers are all members of a served space.",
		}, []string{"request", "members"}),
	}
	if reg != nil {
		reg.MustRegister(a.decisions)
	}
	return a
}

// SetMembers replaces the allow-list: the peers that proved they belong to
// a space the relay serves.
func (a *ACL) SetMembers(ids ...peer.ID) {
	m := make(map[peer.ID]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	a.mu.Lock()
	a.members = m
	a.mu.Unlock()
}

// Member reports whether p is on the allow-list.
func (a *ACL) Member(p peer.ID) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	_, ok := a.members[p]
	return ok
}

// AllowReserve admits every peer's reservation; the service then holds
// it to the reservation limits.
func (a *ACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	a.count("reserve", a.Member(p))
	return true
}

// AllowConnect admits every circuit; the service then holds it to the
// circuit limits.
func (a *ACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	a.count("connect", a.Member(src) && a.Member(dest))
	return true
}

func (a *ACL) count(request string, members bool) {
	a.decisions.WithLabelValues(request, yesNo(members)).Inc()
	a.counts[b2i(request == "connect")][b2i(members)].Add(1)
}

// Decisions returns how many requests of a kind ("reserve" or "connect")
// the ACL decided, with all peers members or not.
func (a *ACL) Decisions(request string, members bool) int64 {
	return a.counts[b2i(request == "connect")][b2i(members)].Load()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
