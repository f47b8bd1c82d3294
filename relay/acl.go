package relay

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// ACL is the circuit relay service's access control: the hop service
// (hop.go) asks it before it grants a slot and before it opens each
// relayed connection, and asks it which limits a circuit gets.
//
// It admits everyone. It keeps the allow-list of members: peers that
// proved, on this relay, that they belong to a space the relay serves —
// the blind mirror admits a peer whose replication opening it accepted
// with a proof of a confirmed token or a writer's signature (Mirror.Verify;
// a bootstrap session proves nothing and admits no one). A circuit whose
// source and destination are both members gets the lifted limits
// (Limits.MemberCircuitDuration, MemberCircuitBytes); every other circuit
// gets the default ones (CircuitDuration, CircuitBytes: libp2p's). Both
// ends, not one: the relay pays for the circuit's bytes, and a member
// cannot vouch for a peer that proved nothing; a device signing in needs
// little (a join request and its answer) and is a member once its first
// session with the mirror opens.
//
// The list is bounded (Limits.MaxMembers) and expires: a member stays on
// it while it is connected to the relay and for MemberTTL after its last
// proof; when the list is full, the oldest proof is dropped. Decisions are
// counted in aggregate only.
type ACL struct {
	mu        sync.Mutex
	members   map[peer.ID]time.Time // when each last proved
	max       int
	ttl       time.Duration
	now       func() time.Time
	connected func(peer.ID) bool // nil: none counts as connected

	decisions *prometheus.CounterVec
	counts    [2][2]atomic.Int64 // [connect?][members?]
}

var _ relayv2.ACLFilter = (*ACL)(nil)

// Default bounds of the allow-list of an ACL made by NewACL.
const (
	DefaultMaxMembers = 4096
	DefaultMemberTTL  = 24 * time.Hour
)

// NewACL returns an ACL with an empty allow-list of at most
// DefaultMaxMembers peers, each kept DefaultMemberTTL after its last proof,
// counting its decisions in reg (mycel_relay_acl_decisions_total) and
// the members it holds (mycel_relay_acl_members) if reg is not nil.
func NewACL(reg prometheus.Registerer) *ACL {
	a := &ACL{
		members: make(map[peer.ID]time.Time),
		max:     DefaultMaxMembers,
		ttl:     DefaultMemberTTL,
		now:     time.Now,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mycel_relay_acl_decisions_total",
			Help: "Decisions of the circuit relay's ACL, by request (reserve or connect) and by whether the peers are all members of a served space.",
		}, []string{"request", "members"}),
	}
	if reg != nil {
		reg.MustRegister(a.decisions, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mycel_relay_acl_members",
			Help: "Peers on the circuit relay ACL's allow-list of members of served spaces (expired ones until pruned).",
		}, func() float64 { return float64(a.Members()) }))
	}
	return a
}

// bound sets the allow-list's bounds; connected tells whether a peer is
// connected to the relay now (a connected member does not expire).
func (a *ACL) bound(max int, ttl time.Duration, connected func(peer.ID) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.max, a.ttl, a.connected = max, ttl, connected
}

// SetMembers replaces the allow-list with ids, as if each proved now.
func (a *ACL) SetMembers(ids ...peer.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.members = make(map[peer.ID]time.Time, len(ids))
	for _, id := range ids {
		a.admitLocked(id, now)
	}
}

// Admit puts p on the allow-list, or renews it: p proved just now that
// it belongs to a space the relay serves.
func (a *ACL) Admit(p peer.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admitLocked(p, a.now())
}

func (a *ACL) admitLocked(p peer.ID, now time.Time) {
	if _, ok := a.members[p]; !ok && len(a.members) >= a.max {
		a.pruneLocked(now)
	}
	a.members[p] = now
}

// pruneLocked drops the expired members that are not connected; if the
// list is still full, the one that proved longest ago.
func (a *ACL) pruneLocked(now time.Time) {
	var oldest peer.ID
	var oldestAt time.Time
	for p, at := range a.members {
		if a.expiredLocked(p, at, now) {
			delete(a.members, p)
			continue
		}
		if oldest == "" || at.Before(oldestAt) {
			oldest, oldestAt = p, at
		}
	}
	if len(a.members) >= a.max && oldest != "" {
		delete(a.members, oldest)
	}
}

func (a *ACL) expiredLocked(p peer.ID, at, now time.Time) bool {
	return now.Sub(at) >= a.ttl && (a.connected == nil || !a.connected(p))
}

// Member reports whether p is on the allow-list and not expired.
func (a *ACL) Member(p peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.members[p]
	if ok && a.expiredLocked(p, at, a.now()) {
		delete(a.members, p)
		ok = false
	}
	return ok
}

// Members returns how many peers the allow-list holds, expired ones
// included until they are pruned.
func (a *ACL) Members() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.members)
}

// Lifted reports whether a circuit from src to dest gets the members'
// limits: both are members.
func (a *ACL) Lifted(src, dest peer.ID) bool {
	return a.Member(src) && a.Member(dest)
}

// AllowReserve admits every peer's reservation; the service then holds
// it to the reservation limits.
func (a *ACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	a.count("reserve", a.Member(p))
	return true
}

// AllowConnect admits every circuit; the service then holds it to the
// circuit limits, lifted if Lifted.
func (a *ACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	a.count("connect", a.Lifted(src, dest))
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

// MirrorOption is an optional collaborator of NewMirror.
type MirrorOption func(*Mirror)

// WithMembers has the mirror admit to acl every peer whose replication
// opening it accepts as a member's: with a proof of a confirmed token, or
// a writer's signature (mirrorSpace.Verify). A bootstrap session admits
// no one.
func WithMembers(acl *ACL) MirrorOption { return func(m *Mirror) { m.acl = acl } }

// admit puts the prover of binding on the ACL's allow-list.
func (m *Mirror) admit(binding []byte) {
	if m.acl == nil {
		return
	}
	if p, ok := prover(binding); ok {
		m.acl.Admit(p)
	}
}

// bindingLabel opens a replication binding (replication.Binding):
//
//	"mycel/sync/2" ‖ 0x00 ‖ uvarint len ‖ prover ID ‖ uvarint len ‖ verifier ID ‖ nonces
//
// The session builds it from the authenticated peer IDs of the stream, so
// the prover is the peer at the other end of the session.
const bindingLabel = "mycel/sync/2\x00"

// prover returns the prover's peer ID in binding.
func prover(binding []byte) (peer.ID, bool) {
	rest, ok := bytes.CutPrefix(binding, []byte(bindingLabel))
	if !ok {
		return "", false
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > uint64(len(rest)-k) {
		return "", false
	}
	id, err := peer.IDFromBytes(rest[k : k+int(n)])
	if err != nil {
		return "", false
	}
	return id, true
}
