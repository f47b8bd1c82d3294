package relay

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
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
//
// Each member holds the grants it proved by (at most maxGrants, the
// newest): a space, the token epoch of its proof and, if it proved it,
// the writer feed it signs for. The mirror revokes grants when what they
// rest on goes (Revoke): a writer's removal takes the grants of that
// writer at once, the confirmation of a newer epoch the grants of older
// epochs that no writer's signature still backs. A member left with no
// grant leaves the list at once, and the relayed connections it holds
// with lifted limits are reset (onDrop): a new one gets the default
// limits.
type ACL struct {
	mu        sync.Mutex
	members   map[peer.ID]*aclMember
	max       int
	ttl       time.Duration
	now       func() time.Time
	connected func(peer.ID) bool // nil: none counts as connected
	onDrop    func(peer.ID)      // called, not under mu, for each peer Revoke drops

	decisions *prometheus.CounterVec
	counts    [2][2]atomic.Int64 // [connect?][members?]
}

var _ relayv2.ACLFilter = (*ACL)(nil)

// aclMember is one peer on the allow-list.
type aclMember struct {
	at     time.Time // when it last proved
	grants []Grant   // oldest first, at most maxGrants
}

// Grant is what a member proved: membership of Space with a token of
// Epoch, and, unless Writer is zero, that it is that writer. The zero
// Grant (Admit, SetMembers) is never revoked.
type Grant struct {
	Space  auth.SpaceID
	Epoch  uint32
	Writer feed.PublicKey
}

// maxGrants bounds the grants kept per member: a peer proving in more
// spaces keeps the newest.
const maxGrants = 8

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
		members: make(map[peer.ID]*aclMember),
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
	a.members = make(map[peer.ID]*aclMember, len(ids))
	for _, id := range ids {
		a.admitLocked(id, Grant{}, now)
	}
}

// Admit puts p on the allow-list, or renews it: p proved just now that
// it belongs to a space the relay serves. Its entry is never revoked,
// only expires.
func (a *ACL) Admit(p peer.ID) { a.AdmitGrant(p, Grant{}) }

// AdmitGrant puts p on the allow-list, or renews it, by g: p proved g
// just now.
func (a *ACL) AdmitGrant(p peer.ID, g Grant) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admitLocked(p, g, a.now())
}

func (a *ACL) admitLocked(p peer.ID, g Grant, now time.Time) {
	m, ok := a.members[p]
	if !ok {
		if len(a.members) >= a.max {
			a.pruneLocked(now)
		}
		m = &aclMember{}
		a.members[p] = m
	}
	m.at = now
	if i := slices.Index(m.grants, g); i >= 0 {
		m.grants = slices.Delete(m.grants, i, i+1)
	}
	if len(m.grants) >= maxGrants {
		m.grants = slices.Delete(m.grants, 0, 1)
	}
	m.grants = append(m.grants, g)
}

// Revoke takes from every member the grants revoked reports true for;
// members left with none leave the list at once (onDrop is told). It
// returns how many left.
func (a *ACL) Revoke(revoked func(Grant) bool) int {
	a.mu.Lock()
	var dropped []peer.ID
	for p, m := range a.members {
		m.grants = slices.DeleteFunc(m.grants, revoked)
		if len(m.grants) == 0 {
			delete(a.members, p)
			dropped = append(dropped, p)
		}
	}
	onDrop := a.onDrop
	a.mu.Unlock()
	if onDrop != nil {
		for _, p := range dropped {
			onDrop(p)
		}
	}
	return len(dropped)
}

// setOnDrop sets what is called with each peer Revoke drops (the hop
// service resets its lifted circuits).
func (a *ACL) setOnDrop(fn func(peer.ID)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onDrop = fn
}

// pruneLocked drops the expired members that are not connected; if the
// list is still full, the one that proved longest ago.
func (a *ACL) pruneLocked(now time.Time) {
	var oldest peer.ID
	var oldestAt time.Time
	for p, m := range a.members {
		at := m.at
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
	m, ok := a.members[p]
	if ok && a.expiredLocked(p, m.at, a.now()) {
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

// admit puts the prover of binding on the ACL's allow-list by g.
func (m *Mirror) admit(binding []byte, g Grant) {
	if m.acl == nil {
		return
	}
	if p, ok := prover(binding); ok {
		m.acl.AdmitGrant(p, g)
	}
}

// revoke takes from the ACL the grants revoked reports true for.
func (m *Mirror) revoke(revoked func(Grant) bool) {
	if m.acl != nil {
		m.acl.Revoke(revoked)
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
