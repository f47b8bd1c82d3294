package relay

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/signin"
)

// MailboxLimits bound the mailbox. Zero fields take their defaults
// (DefaultMailboxLimits).
type MailboxLimits struct {
	// BytesPerSpace bounds the envelope bytes kept for one space
	// (Limits.MailboxBytesPerSpace). Default 16 MiB.
	BytesPerSpace int64
	// Expiry is how long an envelope of a writer is kept at most
	// (Limits.MailboxExpiry). Default a week.
	Expiry time.Duration
	// MaxEnvelopesPerSpace bounds the envelopes kept for one space, so
	// that the relay's index of them (about 120 bytes each) stays small.
	// Default 8192.
	MaxEnvelopesPerSpace int
	// GuestShare divides BytesPerSpace and MaxEnvelopesPerSpace into the
	// share that envelopes of non-writers (devices signing in) may take
	// together: 4 is a quarter, so that a flood of sign-in envelopes from
	// throwaway keys leaves room for the members'. Default 4.
	GuestShare int
	// SenderShare divides BytesPerSpace and MaxEnvelopesPerSpace into what
	// one sender's envelopes may take: 8 is an eighth, so that one device
	// (a member's presence the router hands over while another member is
	// away for days, say) cannot fill the space's mailbox. Default 8.
	SenderShare int
	// MaxGuests bounds the devices waiting to sign in (non-writers that
	// deposited a sign-in envelope) the relay keeps a pointer for, per
	// space. Default 16.
	MaxGuests int
	// GuestTTL is how long a waiting device's pointer, and its envelopes,
	// are kept after its last deposit. Default 1 h (a password sign-in's
	// lifetime).
	GuestTTL time.Duration
	// MaxGuestKeyIDs bounds the request key IDs one waiting device may
	// fetch answers of. Default 4.
	MaxGuestKeyIDs int
	// RequestsPerPeer requests per RateWindow from one peer are served;
	// more are refused (ErrMailboxBusy). Defaults 240 per minute.
	RequestsPerPeer int
	RateWindow      time.Duration
	// SweepEvery is how often expired envelopes are deleted. Default 1 min.
	SweepEvery time.Duration
}

// DefaultMailboxLimits returns the documented defaults.
func DefaultMailboxLimits() MailboxLimits {
	return MailboxLimits{
		BytesPerSpace: 16 << 20, Expiry: 7 * 24 * time.Hour, MaxEnvelopesPerSpace: 8192,
		GuestShare: 4, SenderShare: 8, MaxGuests: 16, GuestTTL: time.Hour, MaxGuestKeyIDs: 4,
		RequestsPerPeer: 240, RateWindow: time.Minute, SweepEvery: time.Minute,
	}
}

func (l *MailboxLimits) setDefaults() {
	d := DefaultMailboxLimits()
	if l.BytesPerSpace <= 0 {
		l.BytesPerSpace = d.BytesPerSpace
	}
	if l.Expiry <= 0 {
		l.Expiry = d.Expiry
	}
	if l.MaxEnvelopesPerSpace <= 0 {
		l.MaxEnvelopesPerSpace = d.MaxEnvelopesPerSpace
	}
	if l.GuestShare <= 0 {
		l.GuestShare = d.GuestShare
	}
	if l.SenderShare <= 0 {
		l.SenderShare = d.SenderShare
	}
	if l.MaxGuests <= 0 {
		l.MaxGuests = d.MaxGuests
	}
	if l.GuestTTL <= 0 {
		l.GuestTTL = d.GuestTTL
	}
	if l.MaxGuestKeyIDs <= 0 {
		l.MaxGuestKeyIDs = d.MaxGuestKeyIDs
	}
	if l.RequestsPerPeer <= 0 {
		l.RequestsPerPeer = d.RequestsPerPeer
	}
	if l.RateWindow <= 0 {
		l.RateWindow = d.RateWindow
	}
	if l.SweepEvery <= 0 {
		l.SweepEvery = d.SweepEvery
	}
}

// MailboxSpaces is what the mailbox asks about the spaces it keeps
// envelopes of: the relay's mirror (Mirror implements it), which follows
// each space's writer set from the add/remove ops it stores.
type MailboxSpaces interface {
	// Writers returns the current devices of the space: the writers the
	// mirror follows (space.MirrorWriters) minus those it saw removed;
	// false if the relay mirrors no such space.
	Writers(id auth.SpaceID) ([]feed.PublicKey, bool)
	// Spaces lists the spaces mirrored.
	Spaces() []auth.SpaceID
}

// Mailbox keeps envelopes of the spaces the relay mirrors for their
// devices that are offline, and delivers each once to each device that
// fetches, with a pointer per device (FORMAT.md, "Mailbox"). It holds no
// key: envelopes are kept as they are, sealed.
//
// Its state is in the relay's store (the mirror's badger store, keys
// "x" ‖ …) and in memory an index of the envelopes kept (no bodies).
// Every operation takes its time from the injected clock.
type Mailbox struct {
	st     feed.Storage
	spaces MailboxSpaces
	lim    MailboxLimits
	log    *slog.Logger
	now    func() time.Time
	stats  mailboxStats

	mu     sync.Mutex
	closed bool
	boxes  map[auth.SpaceID]*mbox
	topics map[ephemeral.Topic]auth.SpaceID // discovery key → space, for Keep
	rate   map[peer.ID][]time.Time
}

// mbox is one space's mailbox.
type mbox struct {
	next  uint64 // the sequence number of the next envelope kept
	envs  []mbEnv
	bytes int64 // of all envelopes kept
	guest struct {
		bytes int64
		count int
	}
	seen map[ephemeral.SeenKey]bool
	// gone holds, until when (Unix ns) a deposit of it could still be
	// fresh, the seen key of each envelope deleted once every device took
	// it: a late copy (a daemon's queued deposit of what the router
	// already kept) is a duplicate, not a new envelope to deliver again.
	// In memory only; at most 2 × MaxEnvelopesPerSpace.
	gone   map[ephemeral.SeenKey]int64
	ptrs   map[feed.PublicKey]*mbPtr
	sender map[feed.PublicKey]*senderUse // what each sender's envelopes take
}

type senderUse struct {
	count int
	bytes int64
}

// mbEnv is the index entry of one kept envelope.
type mbEnv struct {
	seq     uint64
	expires int64 // Unix ns
	size    int
	sender  feed.PublicKey
	signin  bool     // of a sign-in key kind (invite, password)
	keyID   [16]byte // its key ID, if signin
	byGuest bool     // its sender was no writer when it was kept
	seen    ephemeral.SeenKey
}

// mbPtr is a device's delivery pointer: it took every envelope up to seq.
// A guest's (a device that deposited a sign-in envelope while no writer)
// also names the request key IDs it may fetch answers of, and expires.
type mbPtr struct {
	seq     uint64
	guest   bool
	expires int64 // Unix ns, guests only
	keyIDs  [][16]byte
}

// Errors of the mailbox's stored records (local storage, not peer input).
var errMailboxRecord = errors.New("relay: mailbox: bad record")

// NewMailbox returns the mailbox over st (which it does not close),
// loading what st holds. Its aggregate metrics go to reg if not nil.
func NewMailbox(st feed.Storage, spaces MailboxSpaces, lim MailboxLimits, log *slog.Logger, reg prometheus.Registerer) (*Mailbox, error) {
	return newMailbox(st, spaces, lim, log, reg, time.Now)
}

func newMailbox(st feed.Storage, spaces MailboxSpaces, lim MailboxLimits, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Mailbox, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim.setDefaults()
	mb := &Mailbox{st: st, spaces: spaces, lim: lim, log: log, now: now, stats: newMailboxStats(reg),
		boxes: map[auth.SpaceID]*mbox{}, topics: map[ephemeral.Topic]auth.SpaceID{}, rate: map[peer.ID][]time.Time{}}
	if err := mb.load(); err != nil {
		return nil, err
	}
	return mb, nil
}

// Keys of the mailbox in the relay's store:
//
//	"x" ‖ space ‖ "e" ‖ seq (uint64)  → envelope record (encodeEnvRecord)
//	"x" ‖ space ‖ "n"                 → next sequence number (uint64)
//	"x" ‖ space ‖ "p" ‖ device key    → pointer record (encodePtrRecord)
func mbKey(id auth.SpaceID, kind byte, rest []byte) []byte {
	k := make([]byte, 0, 2+auth.SpaceIDSize+len(rest))
	k = append(append(append(k, 'x'), id[:]...), kind)
	return append(k, rest...)
}

func seqBytes(s uint64) []byte { return binary.BigEndian.AppendUint64(nil, s) }

// load reads the store's mailbox records into the index.
func (mb *Mailbox) load() error {
	err := mb.st.Scan([]byte("x"), []byte("y"), func(k, v []byte) error {
		if len(k) < 2+auth.SpaceIDSize {
			return fmt.Errorf("%w: key %x", errMailboxRecord, k)
		}
		id := auth.SpaceID(k[1 : 1+auth.SpaceIDSize])
		box := mb.boxLocked(id)
		rest := k[2+auth.SpaceIDSize:]
		switch k[1+auth.SpaceIDSize] {
		case 'e':
			if len(rest) != 8 {
				return fmt.Errorf("%w: key %x", errMailboxRecord, k)
			}
			e, _, err := decodeEnvRecord(v)
			if err != nil {
				return err
			}
			e.seq = binary.BigEndian.Uint64(rest)
			box.add(e)
		case 'n':
			if len(v) != 8 {
				return fmt.Errorf("%w: next %x", errMailboxRecord, v)
			}
			box.next = max(box.next, binary.BigEndian.Uint64(v))
		case 'p':
			if len(rest) != feed.KeySize {
				return fmt.Errorf("%w: key %x", errMailboxRecord, k)
			}
			p, err := decodePtrRecord(v)
			if err != nil {
				return err
			}
			box.ptrs[feed.PublicKey(rest)] = p
		default:
			return fmt.Errorf("%w: key %x", errMailboxRecord, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("relay: mailbox: load: %w", err)
	}
	for _, box := range mb.boxes {
		slices.SortFunc(box.envs, func(a, b mbEnv) int { return cmpU64(a.seq, b.seq) })
		if n := len(box.envs); n > 0 {
			box.next = max(box.next, box.envs[n-1].seq+1)
		}
		mb.stats.kept.Add(float64(len(box.envs)))
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (mb *Mailbox) boxLocked(id auth.SpaceID) *mbox {
	box := mb.boxes[id]
	if box == nil {
		box = &mbox{next: 1, seen: map[ephemeral.SeenKey]bool{}, gone: map[ephemeral.SeenKey]int64{}, ptrs: map[feed.PublicKey]*mbPtr{},
			sender: map[feed.PublicKey]*senderUse{}}
		mb.boxes[id] = box
	}
	return box
}

func (box *mbox) add(e mbEnv) {
	box.envs = append(box.envs, e)
	box.bytes += int64(e.size)
	if e.byGuest {
		box.guest.bytes += int64(e.size)
		box.guest.count++
	}
	box.seen[e.seen] = true
	u := box.sender[e.sender]
	if u == nil {
		u = &senderUse{}
		box.sender[e.sender] = u
	}
	u.count++
	u.bytes += int64(e.size)
}

// remove takes e out of box's counts (not out of box.envs).
func (box *mbox) remove(e mbEnv) {
	box.bytes -= int64(e.size)
	if e.byGuest {
		box.guest.bytes -= int64(e.size)
		box.guest.count--
	}
	delete(box.seen, e.seen)
	if u := box.sender[e.sender]; u != nil {
		if u.count--; u.count <= 0 {
			delete(box.sender, e.sender)
		} else {
			u.bytes -= int64(e.size)
		}
	}
}

// isSignin reports whether a key kind is one of sign-in's (ephemeral
// FORMAT.md, "Key kinds"): its envelopes are what a device that is no
// writer yet may deposit and fetch.
func isSignin(kind uint32) bool {
	return kind == signin.KeyKindInvite || kind == signin.KeyKindPassword
}

// Keep keeps an envelope that the relay's router accepted on a space's
// topic, for the space's devices that are offline: the same checks as a
// deposit (FORMAT.md), without a peer's rate. It returns nil for an
// envelope kept already. The router wires it; until then deposits are how
// envelopes arrive.
func (mb *Mailbox) Keep(e *ephemeral.Envelope) error {
	b, err := e.Marshal()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMailboxMalformed, err)
	}
	id, ok := mb.spaceOf(e.Topic)
	if !ok {
		return ErrMailboxUnknownSpace
	}
	err = mb.keep(id, e, b)
	if errors.Is(err, ErrMailboxDuplicate) {
		return nil
	}
	return err
}

// spaceOf maps a topic (discovery key) to the mirrored space it names.
func (mb *Mailbox) spaceOf(t ephemeral.Topic) (auth.SpaceID, bool) {
	mb.mu.Lock()
	id, ok := mb.topics[t]
	mb.mu.Unlock()
	if ok {
		return id, true
	}
	m := make(map[ephemeral.Topic]auth.SpaceID)
	for _, id := range mb.spaces.Spaces() {
		m[ephemeral.Topic(auth.DiscoveryKey(id))] = id
	}
	mb.mu.Lock()
	mb.topics = m
	mb.mu.Unlock()
	id, ok = m[t]
	return id, ok
}

// Deposit keeps the envelopes b (encoded, as on gossipsub) for space id,
// handed over by peer p; it returns one error per envelope (nil if kept
// or kept already), or an error for the whole request (ErrMailboxBusy,
// ErrMailboxUnknownSpace).
func (mb *Mailbox) Deposit(p peer.ID, id auth.SpaceID, envs [][]byte) ([]error, error) {
	if err := mb.admit(p); err != nil {
		return nil, err
	}
	if _, ok := mb.spaces.Writers(id); !ok {
		return nil, ErrMailboxUnknownSpace
	}
	out := make([]error, len(envs))
	for i, b := range envs {
		e, err := ephemeral.Parse(b)
		if err == nil {
			err = mb.keep(id, e, b)
		}
		out[i] = err
		mb.stats.deposits.WithLabelValues(mailboxCodeNames[mailboxCode(err)]).Inc()
	}
	return out, nil
}

// admit counts a request of p against RequestsPerPeer.
func (mb *Mailbox) admit(p peer.ID) error {
	now := mb.now()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.closed {
		return ErrMailboxUnavailable
	}
	ts := slices.DeleteFunc(mb.rate[p], func(t time.Time) bool { return now.Sub(t) >= mb.lim.RateWindow })
	if len(ts) >= mb.lim.RequestsPerPeer {
		mb.rate[p] = ts
		mb.stats.busy.Inc()
		return ErrMailboxBusy
	}
	mb.rate[p] = append(ts, now)
	return nil
}

// keep checks a parsed envelope against space id and keeps it.
func (mb *Mailbox) keep(id auth.SpaceID, e *ephemeral.Envelope, raw []byte) error {
	if e.Topic != ephemeral.Topic(auth.DiscoveryKey(id)) {
		return fmt.Errorf("%w: the envelope's topic is another space's", ErrMailboxUnknownSpace)
	}
	now := mb.now()
	if d := now.Sub(e.Timestamp()); d > ephemeral.Window || d < -ephemeral.Window {
		return ErrMailboxStale
	}
	writers, ok := mb.spaces.Writers(id)
	if !ok {
		return ErrMailboxUnknownSpace
	}
	sender := feed.PublicKey(e.Sender)
	writer := slices.Contains(writers, sender)
	en := mbEnv{size: len(raw), sender: sender, signin: isSignin(e.KeyKind), byGuest: !writer, seen: e.SeenKey(),
		expires: now.Add(mb.lim.Expiry).UnixNano()}
	if en.signin {
		if len(e.KeyID) != auth.KeyIDSize {
			return fmt.Errorf("%w: sign-in key ID of %d bytes", ErrMailboxMalformed, len(e.KeyID))
		}
		en.keyID = [16]byte(e.KeyID)
	}
	if !writer {
		if !en.signin {
			// Members' key kinds are the members' only: anyone can sign
			// an envelope with a key of their own.
			return fmt.Errorf("%w: key kind %d from a sender that is no writer", ErrMailboxForbidden, e.KeyKind)
		}
		en.expires = min(en.expires, now.Add(mb.lim.GuestTTL).UnixNano())
	}

	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.closed {
		return ErrMailboxUnavailable
	}
	box := mb.boxLocked(id)
	if box.seen[en.seen] || box.gone[en.seen] > now.UnixNano() {
		return ErrMailboxDuplicate
	}
	var writes []feed.Write
	var newGuest *mbPtr
	if !writer {
		// The sender is a device waiting to sign in: it gets a pointer
		// (from now on: it fetches answers, not what came before) that
		// expires GuestTTL after its last deposit.
		g := &mbPtr{guest: true, seq: box.next - 1}
		if old := box.ptrs[sender]; old != nil && (!old.guest || old.expires > now.UnixNano()) {
			*g = *old
			g.keyIDs = slices.Clone(old.keyIDs)
		} else if box.guestsLocked(now) >= mb.lim.MaxGuests {
			mb.stats.full.Inc()
			return fmt.Errorf("%w: %d devices waiting to sign in", ErrMailboxFull, mb.lim.MaxGuests)
		}
		if !slices.Contains(g.keyIDs, en.keyID) {
			if len(g.keyIDs) >= mb.lim.MaxGuestKeyIDs {
				return fmt.Errorf("%w: more than %d request keys from one device", ErrMailboxForbidden, mb.lim.MaxGuestKeyIDs)
			}
			g.keyIDs = append(g.keyIDs, en.keyID)
		}
		if !g.guest {
			// A pointer of a device that was a writer and is not now
			// (removed): it asks again as a guest.
			g.guest = true
		}
		g.expires = now.Add(mb.lim.GuestTTL).UnixNano()
		if box.guest.bytes+int64(en.size) > mb.lim.BytesPerSpace/int64(mb.lim.GuestShare) ||
			box.guest.count+1 > max(1, mb.lim.MaxEnvelopesPerSpace/mb.lim.GuestShare) {
			mb.stats.full.Inc()
			return fmt.Errorf("%w: the share of devices signing in is used", ErrMailboxFull)
		}
		newGuest = g
		writes = append(writes, feed.Write{Key: mbKey(id, 'p', sender[:]), Value: encodePtrRecord(g)})
	}
	if u := box.sender[sender]; u != nil && (u.bytes+int64(en.size) > mb.lim.BytesPerSpace/int64(mb.lim.SenderShare) ||
		u.count+1 > max(1, mb.lim.MaxEnvelopesPerSpace/mb.lim.SenderShare)) {
		mb.stats.full.Inc()
		return fmt.Errorf("%w: the share of one sender is used", ErrMailboxFull)
	}
	if box.bytes+int64(en.size) > mb.lim.BytesPerSpace || len(box.envs)+1 > mb.lim.MaxEnvelopesPerSpace {
		mb.stats.full.Inc()
		return fmt.Errorf("%w: %d of %d bytes, %d envelopes", ErrMailboxFull, box.bytes, mb.lim.BytesPerSpace, len(box.envs))
	}
	en.seq = box.next
	if box.takenLocked(en, writers, now.UnixNano()) && newGuest == nil {
		// No device but its sender would take it (a space of one
		// device): nothing to keep.
		return nil
	}
	writes = append(writes,
		feed.Write{Key: mbKey(id, 'e', seqBytes(en.seq)), Value: encodeEnvRecord(en, raw)},
		feed.Write{Key: mbKey(id, 'n', nil), Value: seqBytes(en.seq + 1)})
	if err := mb.st.Commit(writes); err != nil {
		return fmt.Errorf("relay: mailbox: keep: %w", err)
	}
	box.next = en.seq + 1
	box.add(en)
	if newGuest != nil {
		box.ptrs[sender] = newGuest
	}
	mb.stats.kept.Inc()
	return nil
}

// guestsLocked counts the unexpired guests of box.
func (box *mbox) guestsLocked(now time.Time) int {
	n := 0
	for _, p := range box.ptrs {
		if p.guest && p.expires > now.UnixNano() {
			n++
		}
	}
	return n
}

// FetchResult is what one fetch hands a device.
type FetchResult struct {
	Envelopes [][]byte
	More      bool // the relay holds more for the device: fetch again
}

// Fetch hands the device key, which proved it holds the key over
// the stream's challenge, the envelopes of space id kept since its
// pointer, and moves its pointer past them (stored before they are
// handed: nothing is delivered twice, also across a restart — at most
// once, like gossipsub). A current writer gets every envelope but its
// own; a guest (a device that deposited a sign-in envelope, not expired)
// gets sign-in envelopes under the key IDs it asked with, but its own.
// Anyone else is refused (ErrMailboxForbidden).
func (mb *Mailbox) Fetch(id auth.SpaceID, key feed.PublicKey) (FetchResult, error) {
	var res FetchResult
	writers, ok := mb.spaces.Writers(id)
	if !ok {
		return res, ErrMailboxUnknownSpace
	}
	writer := slices.Contains(writers, key)
	now := mb.now()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.closed {
		return res, ErrMailboxUnavailable
	}
	box := mb.boxes[id]
	var p *mbPtr
	if box != nil {
		p = box.ptrs[key]
	}
	guest := !writer && p != nil && p.guest && p.expires > now.UnixNano()
	if !writer && !guest {
		mb.stats.fetches.WithLabelValues("forbidden").Inc()
		return res, ErrMailboxForbidden
	}
	if box == nil {
		mb.stats.fetches.WithLabelValues("ok").Inc()
		return res, nil
	}
	from := uint64(0)
	if p != nil {
		from = p.seq
	}
	to := from
	var writes []feed.Write
	size := 0
	for _, e := range box.envs {
		if e.seq <= from {
			continue
		}
		if e.expires <= now.UnixNano() {
			to = e.seq
			continue
		}
		if len(res.Envelopes) >= MaxFetchCount || size >= MaxFetchBytes {
			res.More = true
			break
		}
		to = e.seq
		if e.sender == key || (guest && !p.eligible(e)) {
			continue
		}
		v, err := mb.st.Get(mbKey(id, 'e', seqBytes(e.seq)))
		if err != nil {
			return FetchResult{}, fmt.Errorf("relay: mailbox: fetch: %w", err)
		}
		_, raw, err := decodeEnvRecord(v)
		if err != nil {
			return FetchResult{}, err
		}
		res.Envelopes = append(res.Envelopes, raw)
		size += len(raw)
	}
	if to != from || p == nil {
		np := &mbPtr{seq: to}
		if p != nil {
			*np = *p
			np.seq = to
		}
		if writer {
			np.guest, np.expires, np.keyIDs = false, 0, nil
		}
		writes = append(writes, feed.Write{Key: mbKey(id, 'p', key[:]), Value: encodePtrRecord(np)})
		box.ptrs[key] = np
	}
	writes = append(writes, mb.collectLocked(id, box, writers, now)...)
	if err := mb.st.Commit(writes); err != nil {
		return FetchResult{}, fmt.Errorf("relay: mailbox: fetch: %w", err)
	}
	mb.stats.fetches.WithLabelValues("ok").Inc()
	mb.stats.delivered.Add(float64(len(res.Envelopes)))
	return res, nil
}

// eligible reports whether a guest may take e: a writer's sign-in
// envelope (an answer) under one of the key IDs the guest asked with.
// Other devices' requests are not for it.
func (p *mbPtr) eligible(e mbEnv) bool {
	return e.signin && !e.byGuest && slices.Contains(p.keyIDs, e.keyID)
}

// collectLocked deletes from box (in memory; it returns the store's
// deletes) the envelopes that are expired or that every current device
// took — every writer but the sender, and every unexpired guest that may
// take it — and the pointers of devices that are neither writers nor
// unexpired guests.
func (mb *Mailbox) collectLocked(id auth.SpaceID, box *mbox, writers []feed.PublicKey, now time.Time) []feed.Write {
	var writes []feed.Write
	ns := now.UnixNano()
	for k, p := range box.ptrs {
		if (p.guest && p.expires <= ns) || (!p.guest && writers != nil && !slices.Contains(writers, k)) {
			delete(box.ptrs, k)
			writes = append(writes, feed.Write{Key: mbKey(id, 'p', k[:]), Delete: true})
		}
	}
	box.envs = slices.DeleteFunc(box.envs, func(e mbEnv) bool {
		if e.expires > ns && !box.takenLocked(e, writers, ns) {
			return false
		}
		box.remove(e)
		if e.expires > ns {
			// Taken, not expired: a copy is refused while it could pass
			// keep's freshness check (its time within Window of the
			// clock, and it was kept after that time minus Window).
			box.gone[e.seen] = ns + int64(2*ephemeral.Window)
		}
		writes = append(writes, feed.Write{Key: mbKey(id, 'e', seqBytes(e.seq)), Delete: true})
		mb.stats.kept.Dec()
		if e.expires <= ns {
			mb.stats.expired.Inc()
		} else {
			mb.stats.taken.Inc()
		}
		return true
	})
	for k, until := range box.gone {
		if until <= ns || len(box.gone) > 2*mb.lim.MaxEnvelopesPerSpace {
			delete(box.gone, k)
		}
	}
	return writes
}

// takenLocked reports whether every current device took e: every writer
// but its sender, and every unexpired guest that may take it. Nil writers
// (the space is not mirrored any more) take nothing: expiry only.
func (box *mbox) takenLocked(e mbEnv, writers []feed.PublicKey, now int64) bool {
	if writers == nil {
		return false
	}
	for _, w := range writers {
		if w == e.sender {
			continue
		}
		if p := box.ptrs[w]; p == nil || p.seq < e.seq {
			return false
		}
	}
	for k, p := range box.ptrs {
		if p.guest && p.expires > now && k != e.sender && p.seq < e.seq && p.eligible(e) && !slices.Contains(writers, k) {
			return false
		}
	}
	return true
}

// Sweep deletes what is expired, or taken by every current device, in
// every space (also spaces the relay stopped mirroring: expiry only).
// The relay calls it every MailboxLimits.SweepEvery.
func (mb *Mailbox) Sweep() error {
	mb.mu.Lock()
	ids := make([]auth.SpaceID, 0, len(mb.boxes))
	for id := range mb.boxes {
		ids = append(ids, id)
	}
	mb.topics = map[ephemeral.Topic]auth.SpaceID{} // relearnt on the next Keep
	now := mb.now()
	for p, ts := range mb.rate {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= mb.lim.RateWindow {
			delete(mb.rate, p)
		}
	}
	mb.mu.Unlock()
	var errs []error
	for _, id := range ids {
		writers, _ := mb.spaces.Writers(id)
		mb.mu.Lock()
		if mb.closed {
			mb.mu.Unlock()
			return ErrMailboxUnavailable
		}
		box := mb.boxes[id]
		writes := mb.collectLocked(id, box, writers, mb.now())
		if len(box.envs) == 0 && len(box.ptrs) == 0 && writers == nil {
			delete(mb.boxes, id)
			writes = append(writes, feed.Write{Key: mbKey(id, 'n', nil), Delete: true})
		}
		var err error
		if len(writes) > 0 {
			err = mb.st.Commit(writes)
		}
		mb.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops the mailbox; the store is its owner's to close.
func (mb *Mailbox) Close() error {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.closed = true
	return nil
}

// MailboxCounts are the mailbox's totals: envelopes kept now, and since
// it started delivered, deleted once taken, deleted at expiry.
type MailboxCounts struct {
	Kept                      int
	Delivered, Taken, Expired uint64
	Busy, Full                uint64
}

// Counts returns the mailbox's totals.
func (mb *Mailbox) Counts() MailboxCounts {
	mb.mu.Lock()
	kept := 0
	for _, b := range mb.boxes {
		kept += len(b.envs)
	}
	mb.mu.Unlock()
	return MailboxCounts{Kept: kept, Delivered: mb.stats.delivered.n.Load(), Taken: mb.stats.taken.n.Load(),
		Expired: mb.stats.expired.n.Load(), Busy: mb.stats.busy.n.Load(), Full: mb.stats.full.n.Load()}
}

// The envelope record (local storage):
//
//	version (1) ‖ expiry (int64 Unix ns) ‖ flags (1: bit 0 sign-in, bit 1 by a guest)
//	‖ sender (32) ‖ key ID (16, zero unless sign-in) ‖ seen key (16) ‖ envelope
const envRecordVersion = 1

const envRecordHeader = 1 + 8 + 1 + 32 + 16 + 16

func encodeEnvRecord(e mbEnv, raw []byte) []byte {
	out := make([]byte, 0, envRecordHeader+len(raw))
	out = append(out, envRecordVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(e.expires))
	var f byte
	if e.signin {
		f |= 1
	}
	if e.byGuest {
		f |= 2
	}
	out = append(out, f)
	out = append(out, e.sender[:]...)
	out = append(out, e.keyID[:]...)
	out = append(out, e.seen[:]...)
	return append(out, raw...)
}

func decodeEnvRecord(b []byte) (mbEnv, []byte, error) {
	if len(b) <= envRecordHeader || b[0] != envRecordVersion || b[9] > 3 || len(b)-envRecordHeader > ephemeral.MaxEnvelopeSize {
		return mbEnv{}, nil, fmt.Errorf("%w: envelope record of %d bytes", errMailboxRecord, len(b))
	}
	e := mbEnv{expires: int64(binary.BigEndian.Uint64(b[1:9])), signin: b[9]&1 != 0, byGuest: b[9]&2 != 0}
	e.sender = feed.PublicKey(b[10:42])
	e.keyID = [16]byte(b[42:58])
	e.seen = ephemeral.SeenKey(b[58:74])
	raw := b[envRecordHeader:]
	e.size = len(raw)
	return e, raw, nil
}

// The pointer record (local storage):
//
//	version (1) ‖ seq (uint64) ‖ guest (0/1) ‖ expiry (int64 Unix ns) ‖ count (1) ‖ count × key ID (16)
const ptrRecordVersion = 1

func encodePtrRecord(p *mbPtr) []byte {
	out := []byte{ptrRecordVersion}
	out = binary.BigEndian.AppendUint64(out, p.seq)
	g := byte(0)
	if p.guest {
		g = 1
	}
	out = append(out, g)
	out = binary.BigEndian.AppendUint64(out, uint64(p.expires))
	out = append(out, byte(len(p.keyIDs)))
	for _, k := range p.keyIDs {
		out = append(out, k[:]...)
	}
	return out
}

func decodePtrRecord(b []byte) (*mbPtr, error) {
	if len(b) < 19 || b[0] != ptrRecordVersion || b[9] > 1 || len(b) != 19+16*int(b[18]) {
		return nil, fmt.Errorf("%w: pointer record of %d bytes", errMailboxRecord, len(b))
	}
	p := &mbPtr{seq: binary.BigEndian.Uint64(b[1:9]), guest: b[9] == 1, expires: int64(binary.BigEndian.Uint64(b[10:18]))}
	for i := range int(b[18]) {
		p.keyIDs = append(p.keyIDs, [16]byte(b[19+16*i:]))
	}
	return p, nil
}

// verifyFetch checks a fetch request's signature over the stream's
// challenge.
func verifyFetch(req *mailboxRequest, relay, from peer.ID, challenge [ChallengeSize]byte) bool {
	return ed25519.Verify(ed25519.PublicKey(req.key[:]), fetchSigned(req.space, relay, from, challenge), req.sig[:])
}
