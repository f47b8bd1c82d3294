package core

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/messages"
)

// EphemeralTopicPrefix starts a space's gossipsub topic of ephemeral
// messages, as ephemeral/p2p.TopicPrefix (which imports libp2p, so not
// here; a test holds the two equal).
const EphemeralTopicPrefix = "/mycel/eph/1/"

// Members receives the members' ephemeral messages of one space
// (node/EPHEMERAL.md) as the page gets them from gossipsub: each envelope
// goes through an ephemeral.Filter (signature, ±5 minutes of the page's
// clock, seen before), must be sealed under the members' key of an epoch
// held, signed by a current writer of the space in the view the node keeps
// (Node.View starts keeping it), and hold a body messages.Decode accepts.
// A kept app message (key kind messages.KeyKindKept, node/EPHEMERAL.md
// "Kept messages") heard live on the topic passes the same checks, must
// hold an app body, and its ID is held for as long as a mailbox may hand
// it over (ephemeral.Config.Kept); a relay's mailbox hands over those
// sent while the page was away (Stored, mailbox.go).
type Members struct {
	id     auth.SpaceID
	n      *Node
	keys   map[[auth.KeyIDSize]byte][ephemeral.KeySize]byte
	filter *ephemeral.Filter
	seen   *keptSeen

	mu  sync.Mutex
	now time.Time // the clock of the call in progress (Open's nowMs)
}

// MemberMessage is an opened members' message.
type MemberMessage struct {
	Sender []byte // the sender's feed key
	Time   int64  // Unix ms, the sender's clock
	Kind   string // presence, app, removed, or a later version's kind
	Name   string // presence: the sender's device name
	Topic  string // app: the app's topic
	Data   []byte // app: the payload
	Kept   bool   // an app message its sender asked relays to keep (key kind 4)
	Stored bool   // a relay's mailbox handed it over (Members.Stored), not heard live
}

// ErrNotWriter is Members.Open's answer to an envelope whose sender is
// not a writer in the node's view (or the node keeps no view yet).
var ErrNotWriter = errors.New("members' message: the sender is not a writer of the space")

// Members returns the receiver of the space's members' messages; the view
// the node keeps (call View first) tells it who the writers are. seen are
// the entries of Members.TakeSeen the page kept (kept messages delivered
// before a reload).
func (n *Node) Members(spaceB []byte, secrets []Secret, seen ...[]byte) (*Members, error) {
	id, err := spaceID(spaceB)
	if err != nil {
		return nil, err
	}
	m := &Members{id: id, n: n, keys: make(map[[auth.KeyIDSize]byte][ephemeral.KeySize]byte)}
	for _, s := range secrets {
		es, err := epochSecret(s)
		if err != nil {
			return nil, err
		}
		m.keys[es.KeyID(id)] = es.EphemeralKey(id)
	}
	if len(m.keys) == 0 {
		return nil, errors.New("members' messages need at least one epoch secret")
	}
	m.seen = &keptSeen{MemSeenStore: ephemeral.NewMemSeenStore(), now: func() time.Time { return m.now }}
	m.now = time.Now()
	if err := loadSeen(m.seen.MemSeenStore, seen); err != nil {
		return nil, err
	}
	m.filter, err = ephemeral.NewFilter(m.seen, ephemeral.Config{
		Now:     func() time.Time { return m.now },
		Trusted: func(_ ephemeral.Topic, sender ephemeral.PublicKey) bool { return n.isWriter(feed.PublicKey(sender)) },
		Kept:    func(e *ephemeral.Envelope) bool { return e.KeyKind == messages.KeyKindKept },
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Topic is the space's gossipsub topic of ephemeral messages.
func (m *Members) Topic() string {
	dk := auth.DiscoveryKey(m.id)
	return EphemeralTopicPrefix + hex.EncodeToString(dk[:])
}

// Open checks and opens one envelope received at nowMs (Unix ms, the
// page's clock). An envelope refused changes nothing but, once its
// signature verified and it was in the window, the seen-set (so that the
// same bytes are refused again at once).
func (m *Members) Open(b []byte, nowMs int64) (MemberMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = time.UnixMilli(nowMs)
	e, err := ephemeral.Parse(b)
	if err != nil {
		return MemberMessage{}, err
	}
	dk := auth.DiscoveryKey(m.id)
	if e.Topic != ephemeral.Topic(dk) {
		return MemberMessage{}, errors.New("members' message: another space's topic")
	}
	kept := e.KeyKind == messages.KeyKindKept
	if (e.KeyKind != messages.KeyKindEpoch && !kept) || len(e.KeyID) != auth.KeyIDSize {
		return MemberMessage{}, fmt.Errorf("members' message: key kind %d, key ID of %d bytes", e.KeyKind, len(e.KeyID))
	}
	key, ok := m.keys[[auth.KeyIDSize]byte(e.KeyID)]
	if !ok {
		return MemberMessage{}, errors.New("members' message: sealed under an epoch not held")
	}
	if !m.n.isWriter(feed.PublicKey(e.Sender)) {
		return MemberMessage{}, ErrNotWriter
	}
	if err := m.filter.Deliver(e); err != nil {
		return MemberMessage{}, err
	}
	return openMember(e, key, kept)
}

// Presence returns this device's presence envelope (node/EPHEMERAL.md),
// as a daemon announces it every ephemeral.AnnounceInterval: the body
// names the device as its add-writer op does and the writer that approved
// it, is sealed under the key of the epoch the device writes with (key
// kind messages.KeyKindEpoch) and signed by its feed key, stamped nowMs.
// A node that is not an approved, unremoved member has nothing to
// announce: an error.
func (m *Members) Presence(nowMs int64) ([]byte, error) {
	mem, err := m.n.memberOf()
	if err != nil {
		return nil, err
	}
	sp := mem.sp
	if !sp.Approved() || sp.Removed() {
		return nil, errors.New("members' message: not a member of the space (yet, or any more)")
	}
	own := sp.Feed()
	b := messages.Body{Kind: messages.KindPresence}
	for _, d := range sp.Devices() {
		if d.Feed == own {
			b.Name = d.Name
		}
	}
	if by, ok := sp.Approver(); ok {
		b.By = by[:]
	}
	return m.seal(mem, b, messages.KeyKindEpoch, nowMs)
}

// Send returns the envelope of an app message (topic, data; bounded as
// the daemon's API bounds them, messages.CheckApp) sealed like Presence's,
// under key kind messages.KeyKindKept when keep asks relays' mailboxes to
// keep it for members away (node/EPHEMERAL.md "Kept messages").
func (m *Members) Send(topic string, data []byte, keep bool, nowMs int64) ([]byte, error) {
	if err := messages.CheckApp(topic, data); err != nil {
		return nil, err
	}
	mem, err := m.n.memberOf()
	if err != nil {
		return nil, err
	}
	if !mem.sp.Approved() || mem.sp.Removed() {
		return nil, errors.New("members' message: not a member of the space (yet, or any more)")
	}
	kind := uint32(messages.KeyKindEpoch)
	if keep {
		kind = messages.KeyKindKept
	}
	return m.seal(mem, messages.Body{Kind: messages.KindApp, Topic: topic, Data: data}, kind, nowMs)
}

// seal seals b for the space's topic under the key of the epoch mem's
// device writes with, signed by its feed key.
func (m *Members) seal(mem *member, b messages.Body, kind uint32, nowMs int64) ([]byte, error) {
	if mem.sp.ID() != m.id {
		return nil, errors.New("members' message: the node is a member of another space")
	}
	plain, err := b.Encode()
	if err != nil {
		return nil, err
	}
	kid, key, err := mem.sp.EphemeralKey()
	if err != nil {
		return nil, err
	}
	e, err := ephemeral.Seal(key, mem.sp.WriterKey(), ephemeral.Header{Topic: ephemeral.Topic(auth.DiscoveryKey(m.id)), KeyKind: kind, KeyID: kid[:]},
		plain, time.UnixMilli(nowMs), nil)
	if err != nil {
		return nil, err
	}
	return e.Marshal()
}
