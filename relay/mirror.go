package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/space"
	"github.com/mycelsync/mycel/node/syncnet"
	"github.com/prometheus/client_golang/prometheus"
)

// MirrorLimits bound what the blind mirror keeps. Zero fields take their
// defaults (DefaultMirrorLimits).
type MirrorLimits struct {
	// BytesPerSpace bounds the entry bytes mirrored for one space.
	// Default 1 GiB. The relay fills the fields a program leaves zero from
	// Limits' Mirror* fields (--mirror-* flags).
	BytesPerSpace int64
	// MaxSpaces bounds the spaces mirrored, confirmed or not. Default 1024.
	MaxSpaces int
	// MaxUnconfirmedSpaces bounds the spaces whose every token is still
	// unconfirmed (no writer proved it yet). Default 64. A new space
	// beyond it, or beyond MaxSpaces, takes the place of the unconfirmed
	// one handed least recently.
	MaxUnconfirmedSpaces int
	// MaxPendingPerSpace bounds the unconfirmed tokens of one space.
	// Default 4.
	MaxPendingPerSpace int
	// KeepEpochs is how many confirmed epochs of a space are kept: the
	// newest, and older ones for members behind on rotations who also
	// prove they are writers. Default 2.
	KeepEpochs int
	// PendingTTL is how long an unconfirmed token is kept. Default 1 hour.
	PendingTTL time.Duration
	// HandoversPerPeer handovers per HandoverWindow from one peer are
	// served; more are refused (ErrMirrorBusy). Defaults 16 per hour.
	HandoversPerPeer int
	HandoverWindow   time.Duration
}

// DefaultMirrorLimits returns the documented defaults.
func DefaultMirrorLimits() MirrorLimits {
	return MirrorLimits{
		BytesPerSpace: 1 << 30, MaxSpaces: 1024, MaxUnconfirmedSpaces: 64,
		MaxPendingPerSpace: 4, KeepEpochs: 2, PendingTTL: time.Hour,
		HandoversPerPeer: 16, HandoverWindow: time.Hour,
	}
}

func (l *MirrorLimits) setDefaults() {
	d := DefaultMirrorLimits()
	if l.BytesPerSpace <= 0 {
		l.BytesPerSpace = d.BytesPerSpace
	}
	if l.MaxSpaces <= 0 {
		l.MaxSpaces = d.MaxSpaces
	}
	if l.MaxUnconfirmedSpaces <= 0 {
		l.MaxUnconfirmedSpaces = d.MaxUnconfirmedSpaces
	}
	if l.MaxPendingPerSpace <= 0 {
		l.MaxPendingPerSpace = d.MaxPendingPerSpace
	}
	if l.KeepEpochs <= 0 {
		l.KeepEpochs = d.KeepEpochs
	}
	if l.PendingTTL <= 0 {
		l.PendingTTL = d.PendingTTL
	}
	if l.HandoversPerPeer <= 0 {
		l.HandoversPerPeer = d.HandoversPerPeer
	}
	if l.HandoverWindow <= 0 {
		l.HandoverWindow = d.HandoverWindow
	}
}

// Errors of the mirror's spaces.
var (
	// ErrNotWriter refuses a feed that is not one the mirror follows.
	ErrNotWriter = errors.New("relay: not a feed of the space's writers")
	// ErrMirrorQuota refuses a batch that would take the space over
	// MirrorLimits.BytesPerSpace.
	ErrMirrorQuota = errors.New("relay: mirror quota of the space reached")
)

// Keys of the mirror in the relay's store. A space's feeds live in the
// namespace "S" ‖ space ID (feed.Prefixed, as in the daemon); its record
// and its membership ops beside it:
//
//	"m" ‖ space ID                    → record (encodeRecord)
//	"w" ‖ space ID ‖ author ‖ index   → kind (1 add, 2 remove) ‖ target
func spaceNS(id auth.SpaceID) []byte { return append([]byte("S"), id[:]...) }
func recordKey(id auth.SpaceID) []byte {
	return append([]byte("m"), id[:]...)
}
func opKey(id auth.SpaceID, op space.ClearOp) []byte {
	k := append(append(append([]byte("w"), id[:]...), op.Author[:]...), make([]byte, 8)...)
	binary.BigEndian.PutUint64(k[len(k)-8:], op.Index)
	return k
}

// Mirror is the relay's blind mirror: for each space a member handed it a
// token of, it replicates the feeds of the space's writers over the
// relay's host with the daemons' protocol (syncnet), verifies and stores
// them as they are — ciphertext — and serves them to members. See
// FORMAT.md, "Mirror handover", and doc.go.
type Mirror struct {
	h    host.Host
	st   feed.Storage
	repl *syncnet.Replicator
	lim  MirrorLimits
	log  *slog.Logger
	now  func() time.Time

	stats mirrorStats
	// onChange is called when the spaces served may have changed (the
	// message router's Refresh).
	onChange atomic.Pointer[func()]
	acl      *ACL // admits the peers whose proofs open sessions; nil: none

	mu        sync.Mutex
	closed    bool
	spaces    map[auth.SpaceID]*mirrorSpace
	handovers map[peer.ID][]time.Time
}

// NewMirror starts the mirror on h over st (which it closes on Close):
// it serves every space recorded in st and takes handovers on
// MirrorProtocol.
// Its aggregate metrics go to reg if it is not nil.
func NewMirror(h host.Host, st feed.Storage, lim MirrorLimits, log *slog.Logger, reg prometheus.Registerer, opts ...MirrorOption) (*Mirror, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim.setDefaults()
	m := &Mirror{h: h, st: st, lim: lim, log: log, now: time.Now, stats: newMirrorStats(reg),
		spaces: make(map[auth.SpaceID]*mirrorSpace), handovers: make(map[peer.ID][]time.Time)}
	for _, o := range opts {
		o(m)
	}
	// The replicator logs sessions with their peers (standing, failed
	// proofs): a relay keeps no per-peer logs, so it gets none.
	m.repl = syncnet.New(h, nil)
	if err := m.load(); err != nil {
		m.repl.Close()
		return nil, err
	}
	h.SetStreamHandler(MirrorProtocol, m.handleHandover)
	return m, nil
}

// load opens every recorded space.
func (m *Mirror) load() error {
	type rec struct {
		id auth.SpaceID
		v  []byte
	}
	var recs []rec
	err := m.st.Scan([]byte("m"), []byte("n"), func(k, v []byte) error {
		if len(k) != 1+auth.SpaceIDSize {
			return nil
		}
		recs = append(recs, rec{auth.SpaceID(k[1:]), slices.Clone(v)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("relay: mirror: load: %w", err)
	}
	for _, r := range recs {
		tokens, used, err := decodeRecord(r.id, r.v)
		if err != nil {
			return fmt.Errorf("relay: mirror: space %s: %w", r.id, err)
		}
		ms, err := m.newSpace(r.id)
		if err != nil {
			return err
		}
		ms.tokens, ms.used = tokens, used
		if err := ms.loadOps(); err != nil {
			return err
		}
		m.spaces[r.id] = ms
		m.stats.spaces.Inc()
		if err := m.repl.Serve(ms); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mirror) newSpace(id auth.SpaceID) (*mirrorSpace, error) {
	db, err := feed.Open(feed.Prefixed(m.st, spaceNS(id)))
	if err != nil {
		return nil, err
	}
	ms := &mirrorSpace{m: m, id: id, db: db, seen: make(map[space.OpID]bool), boot: make(map[string]bool)}
	ms.recompute()
	return ms, nil
}

// Spaces returns the IDs of the spaces mirrored.
func (m *Mirror) Spaces() []auth.SpaceID {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]auth.SpaceID, 0, len(m.spaces))
	for id := range m.spaces {
		out = append(out, id)
	}
	return out
}

// ServedSpaces returns the IDs of the spaces the mirror serves: those it
// holds a confirmed token of (RouterSource).
func (m *Mirror) ServedSpaces() []auth.SpaceID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []auth.SpaceID
	for id, ms := range m.spaces {
		if ms.confirmed() {
			out = append(out, id)
		}
	}
	return out
}

// IsWriter reports whether k is a feed of space id's writers that the
// mirror follows and has seen no removal of (RouterSource).
func (m *Mirror) IsWriter(id auth.SpaceID, k feed.PublicKey) bool {
	m.mu.Lock()
	ms := m.spaces[id]
	m.mu.Unlock()
	if ms == nil {
		return false
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.follow[k] && !ms.removed[k]
}

// OnChange sets fn, called whenever the spaces served may have changed (a
// first confirmation, a space forgotten). fn must not block (RouterSource).
func (m *Mirror) OnChange(fn func()) { m.onChange.Store(&fn) }

func (m *Mirror) changed() {
	if fn := m.onChange.Load(); fn != nil {
		(*fn)()
	}
}

// Stored returns, for each feed the mirror stores of space id, how many
// of its entries it holds; nil if the space is not mirrored.
func (m *Mirror) Stored(id auth.SpaceID) map[feed.PublicKey]uint64 {
	m.mu.Lock()
	ms := m.spaces[id]
	m.mu.Unlock()
	if ms == nil {
		return nil
	}
	keys, err := ms.db.Feeds()
	if err != nil {
		return nil
	}
	out := make(map[feed.PublicKey]uint64, len(keys))
	for _, k := range keys {
		f, err := ms.db.Feed(k)
		if err != nil {
			continue
		}
		var n uint64
		for _, r := range f.Ranges() {
			n += r.End - r.Start
		}
		out[k] = n
	}
	return out
}

// Replicator returns the replicator serving the mirrored spaces.
func (m *Mirror) Replicator() *syncnet.Replicator { return m.repl }

// Hand takes a token handed by peer p (MirrorProtocol): a new space is
// mirrored from now on, a known one gets the token. The token is pending
// until a writer of the space proves its capability (mirrorSpace.Verify).
func (m *Mirror) Hand(p peer.ID, tok auth.MirrorToken) error {
	_, err := m.hand(p, tok)
	return err
}

func (m *Mirror) hand(p peer.ID, tok auth.MirrorToken) (*mirrorSpace, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrMirrorUnavailable
	}
	marks := m.handovers[p][:0]
	for _, t := range m.handovers[p] {
		if now.Sub(t) < m.lim.HandoverWindow {
			marks = append(marks, t)
		}
	}
	if len(marks) >= m.lim.HandoversPerPeer {
		m.handovers[p] = marks
		return nil, ErrMirrorBusy
	}
	m.handovers[p] = append(marks, now)
	m.sweepLocked(now)
	if ms, ok := m.spaces[tok.Space]; ok {
		if err := ms.add(tok, now); err != nil {
			return ms, err
		}
		ms.handedBy(p)
		return ms, nil
	}
	unconfirmed, victim, victimHanded := 0, auth.SpaceID{}, time.Time{}
	for id, ms := range m.spaces {
		if h, ok := ms.unconfirmedSince(); ok {
			unconfirmed++
			if unconfirmed == 1 || h.Before(victimHanded) {
				victim, victimHanded = id, h
			}
		}
	}
	if len(m.spaces) >= m.lim.MaxSpaces || unconfirmed >= m.lim.MaxUnconfirmedSpaces {
		if unconfirmed == 0 {
			return nil, ErrMirrorFull
		}
		// The unconfirmed space handed least recently makes room: a
		// member's space is confirmed as soon as a writer proves its
		// token (seconds after the handover), so a full table of them is
		// what peer IDs of anyone's making handed, and must not keep a
		// new space out until they expire (FORMAT.md, "What a bogus
		// token costs the relay").
		m.dropLocked(victim)
		m.stats.evicted.Inc()
	}
	ms, err := m.newSpace(tok.Space)
	if err != nil {
		return nil, err
	}
	if err := ms.add(tok, now); err != nil {
		return nil, err
	}
	ms.handedBy(p)
	m.spaces[tok.Space] = ms
	m.stats.spaces.Inc()
	return ms, m.repl.Serve(ms)
}

// sweepLocked forgets the handover marks of the past window, and the
// spaces that hold no token any more (every one was pending and expired),
// with what bootstrap sessions brought of them.
func (m *Mirror) sweepLocked(now time.Time) {
	for p, marks := range m.handovers {
		if len(marks) == 0 || now.Sub(marks[len(marks)-1]) >= m.lim.HandoverWindow {
			delete(m.handovers, p)
		}
	}
	for id, ms := range m.spaces {
		if !ms.expire(now) {
			m.dropLocked(id)
		}
	}
}

// dropLocked stops mirroring space id and forgets what the store holds of
// it.
func (m *Mirror) dropLocked(id auth.SpaceID) {
	delete(m.spaces, id)
	m.stats.spaces.Dec()
	// syncnet has no way to stop serving a space: its handler goes, and
	// its sessions are asked to prove again (they fail: no token).
	m.h.RemoveStreamHandler(syncnet.ProtocolFor(id))
	m.repl.Recheck(id)
	if err := m.forget(id); err != nil {
		m.log.Warn("relay: mirror: forget space", "err", err)
	}
	m.changed()
}

// forget deletes what the store holds of space id: its record, its
// membership ops and its feeds (what bootstrap sessions brought).
func (m *Mirror) forget(id auth.SpaceID) error {
	for _, p := range [][]byte{spaceNS(id), append([]byte("w"), id[:]...), recordKey(id)} {
		for {
			var writes []feed.Write
			size := 0
			err := m.st.Scan(p, feed.PrefixEnd(p), func(k, _ []byte) error {
				if size+len(k) > feed.MaxCommitBytes/2 {
					return feed.ErrStopScan
				}
				writes = append(writes, feed.Write{Key: slices.Clone(k), Delete: true})
				size += len(k) + 16
				return nil
			})
			if err != nil {
				return err
			}
			if len(writes) == 0 {
				break
			}
			if err := m.st.Commit(writes); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close stops the handovers and the replication and closes the store.
func (m *Mirror) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.h.RemoveStreamHandler(MirrorProtocol)
	return errors.Join(m.repl.Close(), m.st.Close())
}

// mtoken is a mirror token the relay holds for a space.
type mtoken struct {
	tok       auth.MirrorToken
	cap       auth.ReplicationCapability
	confirmed bool
	expires   time.Time // of a pending token
	handed    time.Time // last handed (memory only; a restart forgets it)
}

// mirrorSpace is one mirrored space: a syncnet.Space over the space's
// namespace of the relay's store.
type mirrorSpace struct {
	m  *Mirror
	id auth.SpaceID
	db *feed.DB

	mu     sync.Mutex
	tokens []mtoken // newest epoch first
	used   int64    // entry bytes stored
	// reserved: bytes of batches being ingested, counted against the
	// quota until they are stored (or not).
	reserved int64
	ops      []space.ClearOp
	seen     map[space.OpID]bool
	follow   map[feed.PublicKey]bool
	removed  map[feed.PublicKey]bool
	feeds    []feed.PublicKey
	// boot holds the bindings of the sessions opened while no token was
	// confirmed (bootstrap sessions and the confirming writer's), the
	// newest maxBootSessions (bootOrder, oldest first): at the first
	// confirmation their recheck ends them, for their model shows nothing
	// for the session's whole life; new sessions, shown everything,
	// replace them (Mirror.reopen, peers.go). A session whose binding was
	// evicted goes on showing nothing: a matter of liveness, not of what
	// is shown.
	boot      map[string]bool
	bootOrder []string
	// handers are the peers that handed a token of the space last (at
	// most maxHanders); after the first confirmation the relay opens
	// sessions with them again until reopenUntil (Mirror.reopen), for
	// their bootstrap sessions ended.
	handers     []peer.ID
	reopenUntil time.Time
}

// maxHanders bounds the handing peers remembered per space.
const maxHanders = 8

// maxBootSessions bounds the bindings of bootstrap sessions kept per
// space.
const maxBootSessions = 64

// bootLocked remembers the binding of a session opened before the first
// confirmation, evicting the oldest past maxBootSessions.
func (ms *mirrorSpace) bootLocked(binding []byte) {
	b := string(binding)
	if ms.boot[b] {
		return
	}
	if len(ms.bootOrder) >= maxBootSessions {
		delete(ms.boot, ms.bootOrder[0])
		ms.bootOrder = ms.bootOrder[1:]
	}
	ms.boot[b] = true
	ms.bootOrder = append(ms.bootOrder, b)
}

var _ syncnet.Space = (*mirrorSpace)(nil)

func (ms *mirrorSpace) confirmed() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, t := range ms.tokens {
		if t.confirmed {
			return true
		}
	}
	return false
}

// unconfirmedSince reports whether no token of the space is confirmed,
// and then when one was handed last.
func (ms *mirrorSpace) unconfirmedSince() (time.Time, bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var last time.Time
	for _, t := range ms.tokens {
		if t.confirmed {
			return time.Time{}, false
		}
		if t.handed.After(last) {
			last = t.handed
		}
	}
	return last, true
}

// expire drops the expired pending tokens and reports whether any token
// is left.
func (ms *mirrorSpace) expire(now time.Time) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.tokens = slices.DeleteFunc(ms.tokens, func(t mtoken) bool { return !t.confirmed && !now.Before(t.expires) })
	return len(ms.tokens) > 0
}

// add records a handed token as pending (or does nothing if it is held).
func (ms *mirrorSpace) add(tok auth.MirrorToken, now time.Time) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	pending := 0
	oldest, kept := uint32(0), 0
	for i, t := range ms.tokens {
		if t.tok == tok {
			ms.tokens[i].handed = now
			if !t.confirmed {
				ms.tokens[i].expires = now.Add(ms.m.lim.PendingTTL)
			}
			return nil
		}
		if t.confirmed {
			oldest, kept = t.tok.Epoch, kept+1
		} else {
			pending++
		}
	}
	if kept >= ms.m.lim.KeepEpochs && tok.Epoch < oldest {
		return ErrMirrorStale
	}
	if pending >= ms.m.lim.MaxPendingPerSpace {
		return ErrMirrorFull
	}
	ms.tokens = append(ms.tokens, mtoken{tok: tok, cap: tok.ReplicationCapability(), expires: now.Add(ms.m.lim.PendingTTL), handed: now})
	ms.sortLocked()
	return ms.saveLocked(nil)
}

func (ms *mirrorSpace) sortLocked() {
	slices.SortStableFunc(ms.tokens, func(a, b mtoken) int {
		if a.tok.Epoch != b.tok.Epoch {
			return int(int64(b.tok.Epoch) - int64(a.tok.Epoch))
		}
		if a.confirmed != b.confirmed {
			if a.confirmed {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.tok.Token[:], b.tok.Token[:])
	})
}

// saveLocked commits the record with extra writes.
func (ms *mirrorSpace) saveLocked(extra []feed.Write) error {
	return ms.m.st.Commit(append(extra, feed.Write{Key: recordKey(ms.id), Value: encodeRecord(ms.tokens, ms.used)}))
}

// loadOps reads the membership ops recorded for the space.
func (ms *mirrorSpace) loadOps() error {
	start := append([]byte("w"), ms.id[:]...)
	end := slices.Clone(start)
	end = append(end, 0xff)
	err := ms.m.st.Scan(start, end, func(k, v []byte) error {
		if len(k) != len(start)+feed.KeySize+8 || len(v) != 1+feed.KeySize {
			return fmt.Errorf("relay: mirror: bad membership record %x", k)
		}
		op := space.ClearOp{
			Author: feed.PublicKey(k[len(start) : len(start)+feed.KeySize]),
			Index:  binary.BigEndian.Uint64(k[len(k)-8:]),
			Remove: v[0] == 2,
			Target: feed.PublicKey(v[1:]),
		}
		ms.ops = append(ms.ops, op)
		ms.seen[space.OpID{Feed: op.Author, Index: op.Index}] = true
		return nil
	})
	if err != nil {
		return err
	}
	ms.mu.Lock()
	ms.recompute()
	ms.mu.Unlock()
	return nil
}

// recompute derives the followed feeds from the membership ops (under
// ms.mu, or before ms is shared).
func (ms *mirrorSpace) recompute() {
	follow, removed := space.MirrorWriters(feed.PublicKey(ms.id), ms.ops)
	ms.feeds = follow
	ms.follow = make(map[feed.PublicKey]bool, len(follow))
	for _, k := range follow {
		ms.follow[k] = true
	}
	ms.removed = make(map[feed.PublicKey]bool, len(removed))
	for _, k := range removed {
		ms.removed[k] = true
	}
}

// ID implements syncnet.Space.
func (ms *mirrorSpace) ID() auth.SpaceID { return ms.id }

// Model implements syncnet.Space: the followed feeds of the space's
// namespace. A session that starts while no token of the space is
// confirmed gets a model that shows nothing, for its whole life: it can
// only bring the relay the writers' feeds (bootstrap, see Verify).
// Sessions that start after a confirmation are served.
func (ms *mirrorSpace) Model() replication.Model {
	model := syncnet.NewDBModel(ms.db, func() []feed.PublicKey {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		return slices.Clone(ms.feeds)
	})
	if !ms.confirmed() {
		return hiddenModel{model}
	}
	return model
}

// hiddenModel fetches the feeds of its Model and shows none of them.
type hiddenModel struct{ replication.Model }

func (hiddenModel) Head(feed.PublicKey) (feed.SignedHead, bool) { return feed.SignedHead{}, false }
func (hiddenModel) Evidence(feed.PublicKey) *feed.ForkEvidence  { return nil }
func (hiddenModel) Batch(feed.PublicKey, feed.BatchRequest) (*feed.Batch, error) {
	return nil, feed.ErrNotHeld
}

// Credentials implements syncnet.Space: one capability per epoch held (a
// Prove carries one proof per epoch): the confirmed token's, else the
// pending token handed last — a member hands its token right before it
// syncs, and a bogus token of the same epoch handed earlier must not stand
// in for it. The relay is no writer.
func (ms *mirrorSpace) Credentials() replication.Credentials {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	now := ms.m.now()
	pick := make(map[uint32]mtoken)
	for _, t := range ms.tokens {
		if !t.confirmed && !now.Before(t.expires) {
			continue
		}
		cur, ok := pick[t.tok.Epoch]
		switch {
		case !ok, t.confirmed && !cur.confirmed, !cur.confirmed && !t.confirmed && t.handed.After(cur.handed):
			pick[t.tok.Epoch] = t
		}
	}
	var caps []auth.ReplicationCapability
	for _, confirmed := range []bool{true, false} {
		for _, t := range ms.tokens {
			if p, ok := pick[t.tok.Epoch]; ok && p.tok == t.tok && t.confirmed == confirmed && len(caps) < replication.MaxProofs-1 {
				caps = append(caps, t.cap)
			}
		}
	}
	return replication.Credentials{Caps: caps}
}

// Verify implements syncnet.Space. A proof of the newest confirmed epoch
// opens the session. A proof of any other token held opens it only if the
// peer also proves it is the writer of a followed feed that no followed
// feed removed — and then confirms the token: a writer holds it, so it is
// the space's. A non-member's bogus token is thus never confirmed.
//
// Bootstrap: while no token of the space is confirmed, a proof of a
// pending token opens a session too, whose model shows nothing (Model):
// the relay only fetches the followed feeds, starting with the origin's,
// whose entries only the origin's key signs. As they arrive the followed
// set grows and the open sessions are checked again (Ingest), so that a
// member whose add was just fetched confirms the token it handed. Every
// session opened before the first confirmation (a bootstrap session, the
// confirming writer's too: its model shows nothing for its whole life)
// ends when it is checked again after it; the relay then opens new ones,
// shown everything, with the peers that handed the token (Mirror.reopen)
// and the other relays (peers.go).
func (ms *mirrorSpace) Verify(binding []byte, p replication.Proof) bool {
	ms.mu.Lock()
	now := ms.m.now()
	newest, haveConfirmed := uint32(0), false
	for _, t := range ms.tokens {
		if t.confirmed {
			newest, haveConfirmed = t.tok.Epoch, true
			break
		}
	}
	writer := p.Writer != nil && ms.follow[*p.Writer] && !ms.removed[*p.Writer]
	// A removed writer's proof of the newest token still opens a
	// session until the keys rotate, but puts no one on the ACL.
	removedWriter := p.Writer != nil && ms.removed[*p.Writer]
	admit := func(epoch uint32) {
		if removedWriter {
			return
		}
		g := Grant{Space: ms.id, Epoch: epoch}
		if writer {
			g.Writer = *p.Writer
		}
		ms.m.admit(binding, g)
	}
	if haveConfirmed && ms.boot[string(binding)] {
		// A bootstrap session, checked again after the first
		// confirmation: it ends (its model shows nothing for its whole
		// life); Mirror.reopen opens a new one with the handing peers.
		delete(ms.boot, string(binding))
		ms.mu.Unlock()
		ms.m.stats.proofsRefused.Inc()
		return false
	}
	for i, t := range ms.tokens {
		if !t.confirmed && !now.Before(t.expires) {
			continue
		}
		if !replication.VerifyCap(t.cap)(binding, p) {
			continue
		}
		if t.confirmed && t.tok.Epoch == newest {
			ms.mu.Unlock()
			admit(t.tok.Epoch)
			return true
		}
		if !writer {
			if !haveConfirmed && !t.confirmed {
				ms.bootLocked(binding)
				ms.mu.Unlock()
				return true // bootstrap
			}
			continue
		}
		if t.confirmed {
			ms.mu.Unlock()
			admit(t.tok.Epoch)
			return true
		}
		ms.tokens[i].confirmed = true
		ms.m.stats.confirmed.Inc()
		if !haveConfirmed {
			// This session's model shows nothing: the recheck below ends
			// it, and reopen opens a new one.
			ms.bootLocked(binding)
			ms.reopenUntil = now.Add(reopenFor)
		}
		ms.pruneLocked()
		err := ms.saveLocked(nil)
		grew := !haveConfirmed || t.tok.Epoch > newest
		ms.mu.Unlock()
		if err != nil {
			ms.m.log.Warn("relay: mirror: save record", "err", err)
		}
		if grew {
			// Sessions proving the previous epoch alone must prove again,
			// and members admitted by it alone are members no more.
			epoch := t.tok.Epoch
			ms.m.revoke(func(g Grant) bool { return g.Space == ms.id && g.Epoch < epoch && g.Writer == (feed.PublicKey{}) })
			ms.m.repl.Recheck(ms.id)
		}
		if !haveConfirmed {
			ms.m.changed()
		}
		admit(t.tok.Epoch)
		return true
	}
	ms.mu.Unlock()
	ms.m.stats.proofsRefused.Inc()
	return false
}

// pruneLocked keeps the newest KeepEpochs confirmed epochs, and the
// pending tokens newer than the oldest of them.
func (ms *mirrorSpace) pruneLocked() {
	ms.sortLocked()
	kept, oldest := 0, uint32(0)
	ms.tokens = slices.DeleteFunc(ms.tokens, func(t mtoken) bool {
		if !t.confirmed {
			return false
		}
		if kept >= ms.m.lim.KeepEpochs {
			return true
		}
		kept++
		oldest = t.tok.Epoch
		return false
	})
	if kept >= ms.m.lim.KeepEpochs {
		ms.tokens = slices.DeleteFunc(ms.tokens, func(t mtoken) bool { return !t.confirmed && t.tok.Epoch < oldest })
	}
}

// Ingest implements syncnet.Space: it stores a verified batch of a
// followed feed within the space's quota, and follows the writers its
// add-writer ops name.
func (ms *mirrorSpace) Ingest(k feed.PublicKey, b *feed.Batch) error {
	ms.mu.Lock()
	followed := ms.follow[k]
	ms.mu.Unlock()
	if !followed {
		ms.m.stats.feedsRefused.Inc()
		return fmt.Errorf("%w: %x", ErrNotWriter, k[:8])
	}
	f, err := ms.db.Feed(k)
	if err != nil {
		return err
	}
	held := f.Ranges()
	var size int64
	var fresh uint64
	for _, r := range b.Runs {
		for i, e := range r.Entries {
			if !holds(held, r.Start+uint64(i)) {
				size += int64(len(e))
				fresh++
			}
		}
	}
	// Reserved under ms.mu, so that sessions ingesting at once cannot
	// pass the quota together.
	ms.mu.Lock()
	if ms.used+ms.reserved+size > ms.m.lim.BytesPerSpace {
		used := ms.used
		ms.mu.Unlock()
		ms.m.stats.quotaRefused.Inc()
		// Not the peer's fault: the session goes on without a strike.
		return fmt.Errorf("%w: %w: %d of %d bytes", ErrMirrorQuota, replication.ErrNotStored, used, ms.m.lim.BytesPerSpace)
	}
	ms.reserved += size
	ms.mu.Unlock()
	if err := f.Ingest(b); err != nil {
		ms.mu.Lock()
		ms.reserved -= size
		ms.mu.Unlock()
		return err
	}
	var found []space.ClearOp
	for _, r := range b.Runs {
		for i, e := range r.Entries {
			op, ok, err := space.PeekMembership(k, r.Start+uint64(i), e)
			if err == nil && ok {
				found = append(found, op)
			}
		}
	}
	ms.mu.Lock()
	var writes []feed.Write
	for _, op := range found {
		id := space.OpID{Feed: op.Author, Index: op.Index}
		if ms.seen[id] {
			continue
		}
		ms.seen[id] = true
		ms.ops = append(ms.ops, op)
		kind := byte(1)
		if op.Remove {
			kind = 2
		}
		writes = append(writes, feed.Write{Key: opKey(ms.id, op), Value: append([]byte{kind}, op.Target[:]...)})
	}
	n := len(ms.feeds)
	var removed []feed.PublicKey // writers removed by these ops
	if len(writes) > 0 {
		before := ms.removed
		ms.recompute()
		for k := range ms.removed {
			if !before[k] {
				removed = append(removed, k)
			}
		}
	}
	grew := len(ms.feeds) != n
	ms.reserved -= size
	ms.used += size
	err = ms.saveLocked(writes)
	if err == nil {
		ms.m.stats.stored.add(fresh)
	}
	bootstrap := !slices.ContainsFunc(ms.tokens, func(t mtoken) bool { return t.confirmed })
	ms.mu.Unlock()
	if len(removed) > 0 {
		// A removed writer's device is a member no more, here at once.
		ms.m.revoke(func(g Grant) bool { return g.Space == ms.id && slices.Contains(removed, g.Writer) })
	}
	if grew {
		if bootstrap {
			// A writer just added may be the peer of an open session:
			// its proof now confirms its token.
			ms.m.repl.Recheck(ms.id)
		}
		ms.m.repl.Refresh(ms.id)
	}
	return err
}

func holds(rs []feed.Range, i uint64) bool {
	for _, r := range rs {
		if r.Start <= i && i < r.End {
			return true
		}
	}
	return false
}

// ImportEvidence implements syncnet.Space, for followed feeds only.
func (ms *mirrorSpace) ImportEvidence(ev *feed.ForkEvidence) error {
	ms.mu.Lock()
	followed := ms.follow[ev.A.Key]
	ms.mu.Unlock()
	if !followed {
		return fmt.Errorf("%w: %x", ErrNotWriter, ev.A.Key[:8])
	}
	f, err := ms.db.Feed(ev.A.Key)
	if err != nil {
		return err
	}
	return f.ImportEvidence(ev)
}

// The record of a mirrored space (local storage, not peer input):
//
//	version (1) ‖ used bytes (uint64) ‖ count (uint8) ‖ count × token
//	token: confirmed (1: 0 or 1) ‖ epoch (uint32) ‖ token (32) ‖ expiry (int64 Unix ns)
const recordVersion = 1

const tokenRecordSize = 1 + 4 + auth.KeySize + 8

func encodeRecord(tokens []mtoken, used int64) []byte {
	out := make([]byte, 0, 10+len(tokens)*tokenRecordSize)
	out = append(out, recordVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(used))
	out = append(out, byte(len(tokens)))
	for _, t := range tokens {
		c := byte(0)
		if t.confirmed {
			c = 1
		}
		out = append(out, c)
		out = binary.BigEndian.AppendUint32(out, t.tok.Epoch)
		out = append(out, t.tok.Token[:]...)
		var exp int64
		if !t.expires.IsZero() {
			exp = t.expires.UnixNano()
		}
		out = binary.BigEndian.AppendUint64(out, uint64(exp))
	}
	return out
}

func decodeRecord(id auth.SpaceID, b []byte) ([]mtoken, int64, error) {
	if len(b) < 10 || b[0] != recordVersion {
		return nil, 0, errors.New("bad mirror record")
	}
	used := int64(binary.BigEndian.Uint64(b[1:9]))
	n := int(b[9])
	b = b[10:]
	if len(b) != n*tokenRecordSize {
		return nil, 0, errors.New("bad mirror record length")
	}
	out := make([]mtoken, 0, n)
	for i := 0; i < n; i++ {
		r := b[i*tokenRecordSize:]
		tok := auth.MirrorToken{Space: id, Epoch: binary.BigEndian.Uint32(r[1:5]), Token: [auth.KeySize]byte(r[5 : 5+auth.KeySize])}
		t := mtoken{tok: tok, cap: tok.ReplicationCapability(), confirmed: r[0] == 1}
		if exp := int64(binary.BigEndian.Uint64(r[5+auth.KeySize:])); exp != 0 {
			t.expires = time.Unix(0, exp)
		}
		out = append(out, t)
	}
	return out, used, nil
}

// MirrorDir is the directory of the mirror's store in the relay's data
// directory.
const MirrorDir = "mirror"

// openMirror opens the mirror's store in the data directory and starts
// the mirror on h.
func openMirror(cfg *Config, h host.Host, log *slog.Logger, reg prometheus.Registerer, opts ...MirrorOption) (*Mirror, error) {
	st, err := badgerstore.Open(filepath.Join(cfg.DataDir, MirrorDir), badgerstore.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("relay: mirror store: %w", err)
	}
	m, err := NewMirror(h, st, cfg.Limits.mirror(cfg.MirrorLimits), log, reg, opts...)
	if err != nil {
		st.Close()
		return nil, err
	}
	return m, nil
}

// mirrorStats are the mirror's aggregate metrics: none names a peer or a
// space.
type mirrorStats struct {
	spaces        prometheus.Gauge
	handovers     *prometheus.CounterVec
	confirmed     *counter
	proofsRefused *counter
	feedsRefused  *counter
	quotaRefused  *counter
	stored        *counter
	evicted       *counter
}

// counter is a Prometheus counter whose total the mirror reads back
// (Counts).
type counter struct {
	prometheus.Counter
	n atomic.Uint64
}

func (c *counter) Inc() { c.add(1) }

func (c *counter) add(n uint64) {
	c.n.Add(n)
	c.Counter.Add(float64(n))
}

func newMirrorStats(reg prometheus.Registerer) mirrorStats {
	c := func(name, help string) *counter {
		return &counter{Counter: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_relay_mirror_" + name, Help: help})}
	}
	s := mirrorStats{
		spaces: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mycel_relay_mirror_spaces", Help: "Spaces the blind mirror holds a token of."}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_relay_mirror_handovers_total",
			Help: "Mirror token handovers, by reply (ok, malformed, full, busy, stale, unavailable, internal)."}, []string{"reply"}),
		confirmed:     c("tokens_confirmed_total", "Mirror tokens confirmed by a writer's proof."),
		proofsRefused: c("proofs_refused_total", "Replication openings whose proof no held token accepts."),
		feedsRefused:  c("feeds_refused_total", "Batches refused because their feed is not a writer's."),
		quotaRefused:  c("quota_refused_total", "Batches refused because the space's mirror is full."),
		stored:        c("entries_stored_total", "Feed entries the mirror verified and stored, all spaces together."),
		evicted:       c("unconfirmed_evicted_total", "Unconfirmed spaces dropped to make room for a new one."),
	}
	if reg != nil {
		reg.MustRegister(s.spaces, s.handovers, s.confirmed, s.proofsRefused, s.feedsRefused, s.quotaRefused, s.stored, s.evicted)
	}
	return s
}

// MirrorCounts are totals of the mirror's refusals and confirmations
// since it started (the same as its metrics).
type MirrorCounts struct {
	Confirmed, ProofsRefused, FeedsRefused, QuotaRefused uint64
	// Stored counts the entries stored, all spaces together.
	Stored uint64
	// Evicted counts the unconfirmed spaces dropped to make room for a
	// new one.
	Evicted uint64
}

// Counts returns the mirror's totals.
func (m *Mirror) Counts() MirrorCounts {
	v := func(c *counter) uint64 { return c.n.Load() }
	return MirrorCounts{Confirmed: v(m.stats.confirmed), ProofsRefused: v(m.stats.proofsRefused),
		FeedsRefused: v(m.stats.feedsRefused), QuotaRefused: v(m.stats.quotaRefused),
		Stored: v(m.stats.stored), Evicted: v(m.stats.evicted)}
}
