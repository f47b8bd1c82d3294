package core

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/messages"
)

// The page's side of a relay's mailbox (relay/FORMAT.md, "Mailbox"): it
// fetches, as a writer of its space, the kept app messages (key kind 4)
// the relay kept while the tab was closed. The wire is relay/FORMAT.md's;
// relay/mailbox_wire.go is the relay's (and the daemon's) code of it,
// which imports libp2p: the page's few lines of it are here, and
// webui's TestBrowserPageMailbox runs them against a real relay.

// Bounds and constants of the mailbox's wire (relay/FORMAT.md).
const (
	MailboxProtocol     = "/mycel/mailbox/1.0.0"
	mailboxVersion      = 1
	mailboxOpFetch      = 2
	mailboxChallenge    = 32
	MailboxHelloSize    = 1 + mailboxChallenge
	mailboxMaxFetch     = 256
	mailboxMaxBytes     = 1 << 20
	mailboxLabel        = "mycel/mailbox/1\x00"
	MaxMailboxReplySize = 1 + 1 + 2 + mailboxMaxFetch*4 + mailboxMaxBytes + ephemeral.MaxEnvelopeSize
)

// MailboxFetch answers a relay's hello (version ‖ challenge) with the
// fetch request of the space's mailbox, signed by this device's feed key
// over the relay's and the page's peer IDs (their bytes) and the
// challenge: version ‖ op 2 ‖ space ‖ feed key ‖ signature.
func (m *Members) MailboxFetch(hello, relayID, selfID []byte) ([]byte, error) {
	if len(hello) != MailboxHelloSize || hello[0] != mailboxVersion {
		return nil, fmt.Errorf("mailbox: a hello of %d bytes (version %d), want %d of version %d", len(hello), firstByte(hello), MailboxHelloSize, mailboxVersion)
	}
	if len(relayID) == 0 || len(relayID) > 255 || len(selfID) == 0 || len(selfID) > 255 {
		return nil, errors.New("mailbox: peer IDs of 1 to 255 bytes")
	}
	mem, err := m.n.memberOf()
	if err != nil {
		return nil, err
	}
	key := mem.sp.WriterKey()
	signed := append([]byte(mailboxLabel), m.id[:]...)
	signed = append(append(signed, byte(len(relayID))), relayID...)
	signed = append(append(signed, byte(len(selfID))), selfID...)
	signed = append(signed, hello[1:]...)
	out := append([]byte{mailboxVersion, mailboxOpFetch}, m.id[:]...)
	out = append(out, key.Public().(ed25519.PublicKey)...)
	return append(out, ed25519.Sign(key, signed)...), nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// mailboxCodes names the relay's reply codes (relay/FORMAT.md); another
// is read as 8.
var mailboxCodes = [...]string{"ok", "malformed", "unknown space", "forbidden", "busy", "full", "stale", "unavailable", "failed"}

// DecodeMailboxReply reads a fetch reply: code ‖ more ‖ count (uint16, at
// most 256) ‖ count × (uint32 length, 1 to ephemeral.MaxEnvelopeSize ‖
// envelope), at most MaxMailboxReplySize bytes, and nothing after. A
// refusal's code is the error.
func DecodeMailboxReply(b []byte) (envs [][]byte, more bool, err error) {
	if len(b) > MaxMailboxReplySize {
		return nil, false, fmt.Errorf("mailbox: a reply of %d bytes, limit %d", len(b), MaxMailboxReplySize)
	}
	if len(b) < 1 {
		return nil, false, errors.New("mailbox: an empty reply")
	}
	if b[0] != 0 {
		c := int(b[0])
		if c >= len(mailboxCodes) {
			c = len(mailboxCodes) - 1
		}
		return nil, false, fmt.Errorf("mailbox refused: %s", mailboxCodes[c])
	}
	if len(b) < 4 {
		return nil, false, errors.New("mailbox: a reply cut short")
	}
	if b[1] > 1 {
		return nil, false, fmt.Errorf("mailbox: more flag %d", b[1])
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n > mailboxMaxFetch {
		return nil, false, fmt.Errorf("mailbox: %d envelopes, limit %d", n, mailboxMaxFetch)
	}
	rest := b[4:]
	for range n {
		if len(rest) < 4 {
			return nil, false, errors.New("mailbox: an envelope length cut short")
		}
		l := binary.BigEndian.Uint32(rest)
		if l == 0 || l > ephemeral.MaxEnvelopeSize || uint64(l) > uint64(len(rest)-4) {
			return nil, false, fmt.Errorf("mailbox: an envelope of %d bytes (1 to %d, %d left)", l, ephemeral.MaxEnvelopeSize, len(rest)-4)
		}
		envs = append(envs, rest[4:4+l])
		rest = rest[4+l:]
	}
	if len(rest) != 0 {
		return nil, false, fmt.Errorf("mailbox: %d bytes after the envelopes", len(rest))
	}
	return envs, b[1] == 1, nil
}

// Stored takes a relay's fetch reply received at nowMs: the kept app
// messages (key kind 4) of the space's writers, sealed under an epoch
// held, go oldest first through the Filter's mailbox path
// (ephemeral.Filter.DeliverStored: up to ephemeral.KeptFor + Window old,
// none delivered before, live or from a mailbox, while the page runs) and
// are opened as Open opens them, Stored set. It returns them, whether the
// relay holds more (fetch again), and how many envelopes it refused. A
// kept message of a sender or an epoch the page does not know yet is
// refused (the daemon holds it back until a sync tells; the page does
// not yet); so are envelopes of the other key kinds.
func (m *Members) Stored(reply []byte, nowMs int64) (out []MemberMessage, more bool, refused int, err error) {
	raw, more, err := DecodeMailboxReply(reply)
	if err != nil {
		return nil, false, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = time.UnixMilli(nowMs)
	dk := auth.DiscoveryKey(m.id)
	type kept struct {
		e   *ephemeral.Envelope
		key [ephemeral.KeySize]byte
	}
	var ks []kept
	for _, b := range raw {
		e, err := ephemeral.Parse(b)
		if err != nil || e.Topic != ephemeral.Topic(dk) || e.KeyKind != messages.KeyKindKept || len(e.KeyID) != auth.KeyIDSize {
			refused++
			continue
		}
		key, ok := m.keys[[auth.KeyIDSize]byte(e.KeyID)]
		if !ok || !m.n.isWriter(feed.PublicKey(e.Sender)) {
			refused++
			continue
		}
		ks = append(ks, kept{e, key})
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].e.Time < ks[j].e.Time })
	envs := make([]*ephemeral.Envelope, len(ks))
	for i, k := range ks {
		envs[i] = k.e
	}
	errs := m.filter.DeliverStored(envs)
	for i, k := range ks {
		if errs[i] != nil {
			refused++
			continue
		}
		msg, err := openMember(k.e, k.key, true)
		if err != nil {
			refused++
			continue
		}
		msg.Stored = true
		out = append(out, msg)
	}
	return out, more, refused, nil
}

// openMember opens a members' envelope the Filter let through with key.
func openMember(e *ephemeral.Envelope, key [ephemeral.KeySize]byte, kept bool) (MemberMessage, error) {
	plain, err := e.Open(key)
	if err != nil {
		return MemberMessage{}, err
	}
	body, err := messages.Decode(plain)
	if err != nil {
		return MemberMessage{}, err
	}
	if kept && body.Kind != messages.KindApp {
		return MemberMessage{}, fmt.Errorf("members' message: a body of kind %q under the kept key kind", body.Kind)
	}
	switch body.Kind {
	case messages.KindPresence:
		err = messages.CheckPresence(body)
	case messages.KindApp:
		err = messages.CheckApp(body.Topic, body.Data)
	}
	if err != nil {
		return MemberMessage{}, err
	}
	return MemberMessage{Sender: e.Sender[:], Time: e.Time, Kind: body.Kind, Name: body.Name, Topic: body.Topic, Data: body.Data, Kept: kept}, nil
}

// keptSeen is the Members' seen-set: in memory, and the IDs held longer
// than a live message's (kept app messages: ephemeral.Config.Kept, held
// until KeptFor + Window after their time) queued for the page to keep
// across reloads (Members.TakeSeen; the page hands them back to
// Node.Members), so that a kept message delivered once — live or from a
// mailbox — is not delivered again by another relay's mailbox, or by a
// relay that kept it anew, after the tab was reopened. The page stores
// them after the call that delivered: a tab closed in between may show
// such a message once more.
type keptSeen struct {
	*ephemeral.MemSeenStore
	mu      sync.Mutex
	pending []ephemeral.Seen
	now     func() time.Time
}

// seenEntrySize is a kept seen entry's size: key ‖ expiry (uint64 Unix ms).
const seenEntrySize = ephemeral.SeenKeySize + 8

// maxKeptSeen bounds the entries a page hands back (a relay keeps at most
// 8192 envelopes of a space).
const maxKeptSeen = 8192

func (s *keptSeen) long(expires time.Time) bool {
	return expires.Sub(s.now()) > 2*time.Hour
}

// Add implements ephemeral.SeenStore.
func (s *keptSeen) Add(k ephemeral.SeenKey, expires time.Time) error {
	return s.AddMany([]ephemeral.Seen{{Key: k, Expires: expires}})
}

// AddMany implements ephemeral.SeenStore.
func (s *keptSeen) AddMany(entries []ephemeral.Seen) error {
	if err := s.MemSeenStore.AddMany(entries); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		if s.long(e.Expires) && len(s.pending) < maxKeptSeen {
			s.pending = append(s.pending, e)
		}
	}
	return nil
}

// TakeSeen returns the seen entries of kept messages delivered since the
// last call (seenEntrySize bytes each), for the page to keep until their
// expiry and hand back to Node.Members after a reload.
func (m *Members) TakeSeen() [][]byte {
	m.seen.mu.Lock()
	defer m.seen.mu.Unlock()
	out := make([][]byte, len(m.seen.pending))
	for i, e := range m.seen.pending {
		out[i] = binary.BigEndian.AppendUint64(append([]byte(nil), e.Key[:]...), uint64(e.Expires.UnixMilli()))
	}
	m.seen.pending = nil
	return out
}

// SeenExpiry returns a seen entry's expiry (Unix ms), for the page to
// drop those past.
func SeenExpiry(entry []byte) (int64, error) {
	if len(entry) != seenEntrySize {
		return 0, fmt.Errorf("seen entry of %d bytes, want %d", len(entry), seenEntrySize)
	}
	return int64(binary.BigEndian.Uint64(entry[ephemeral.SeenKeySize:])), nil
}

// loadSeen records the entries the page kept (at most maxKeptSeen, each
// seenEntrySize bytes; the others are refused) in the store the Filter
// loads from.
func loadSeen(s *ephemeral.MemSeenStore, entries [][]byte) error {
	if len(entries) > maxKeptSeen {
		return fmt.Errorf("%d seen entries, limit %d", len(entries), maxKeptSeen)
	}
	seen := make([]ephemeral.Seen, 0, len(entries))
	for _, b := range entries {
		ms, err := SeenExpiry(b)
		if err != nil {
			return err
		}
		seen = append(seen, ephemeral.Seen{Key: ephemeral.SeenKey(b[:ephemeral.SeenKeySize]), Expires: time.UnixMilli(ms)})
	}
	return s.AddMany(seen)
}
