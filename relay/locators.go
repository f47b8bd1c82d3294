package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/prometheus/client_golang/prometheus"
)

// DirectoryLimits bound the relay's directory of invite locators and
// aliases. Zero fields take their defaults (DefaultDirectoryLimits).
type DirectoryLimits struct {
	// MaxLocators bounds the live locators overall. Default 16384 (at
	// most about 20 MiB of records).
	MaxLocators int
	// LocatorsPerSpace bounds the live locators of one space. Default 64.
	LocatorsPerSpace int
	// MaxAliases bounds the aliases overall. Default 4096.
	MaxAliases int
	// AliasesPerSpace bounds the aliases of one space. Default 4.
	AliasesPerSpace int
	// WritesPerPeer writes (deposits, removals, registrations) per
	// Window from one peer are served; more are refused
	// (ErrDirectoryBusy). Default 64.
	WritesPerPeer int
	// LookupsPerPeer lookups per Window from one peer are served; more
	// are refused. Default 64.
	LookupsPerPeer int
	// Window of the per-peer rates. Default 10 minutes.
	Window time.Duration
}

// DefaultDirectoryLimits returns the documented defaults.
func DefaultDirectoryLimits() DirectoryLimits {
	return DirectoryLimits{MaxLocators: 16384, LocatorsPerSpace: 64, MaxAliases: 4096, AliasesPerSpace: 4,
		WritesPerPeer: 64, LookupsPerPeer: 64, Window: 10 * time.Minute}
}

func (l *DirectoryLimits) setDefaults() {
	d := DefaultDirectoryLimits()
	for _, f := range []struct{ v, d *int }{{&l.MaxLocators, &d.MaxLocators}, {&l.LocatorsPerSpace, &d.LocatorsPerSpace},
		{&l.MaxAliases, &d.MaxAliases}, {&l.AliasesPerSpace, &d.AliasesPerSpace},
		{&l.WritesPerPeer, &d.WritesPerPeer}, {&l.LookupsPerPeer, &d.LookupsPerPeer}} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	if l.Window <= 0 {
		l.Window = d.Window
	}
}

// Keys of the directory in the relay's store (the mirror's, beside its
// "S", "m" and "w" keys):
//
//	"L" ‖ invite ID (16) → locator record (encodeLocator)
//	"A" ‖ alias          → alias record (encodeAlias)
func locatorKey(id auth.InviteID) []byte { return append([]byte("L"), id[:]...) }
func aliasKey(name string) []byte        { return append([]byte("A"), name...) }

// writerChecker tells whether a feed key is a writer of a space, as far
// as the relay follows it (the Mirror); known is false for a space the
// relay does not mirror.
type writerChecker interface {
	isWriter(id auth.SpaceID, k feed.PublicKey) (known, ok bool)
}

// Directory is the relay's directory: invite locators that members
// deposit so that a device holding only an invite's short code finds the
// space while no member is online, and aliases that name a space at this
// relay (FORMAT.md, "Locators and aliases"). It shares the mirror's store
// and asks the mirror who the writers of a space are.
type Directory struct {
	h     host.Host
	self  peer.ID
	st    feed.Storage
	w     writerChecker
	lim   DirectoryLimits
	now   func() time.Time
	stats dirStats

	mu        sync.Mutex
	closed    bool
	locs      map[auth.InviteID]*locEntry
	perSpace  map[auth.SpaceID]int // live locators
	aliases   map[string]*aliasEntry
	aliasesOf map[auth.SpaceID]int // live aliases
	writes    map[peer.ID][]time.Time
	lookups   map[peer.ID][]time.Time
	swept     time.Time
}

// locEntry is what the directory keeps in memory of a locator; the blob
// stays in the store.
type locEntry struct {
	space   auth.SpaceID
	at      int64     // the signed time of the deposit, or the relay's time of the removal
	expires time.Time // the invite's expiry; for a tombstone, when it is forgotten
	removal [32]byte  // SHA-256 of the removal secret
	gone    bool      // a tombstone: removed, kept so that a replayed deposit is refused
}

// NewDirectory starts the directory on h over st (the mirror's store,
// which the Mirror closes), asking m about writers. Its aggregate metrics
// go to reg if it is not nil.
func NewDirectory(h host.Host, st feed.Storage, m *Mirror, lim DirectoryLimits, reg prometheus.Registerer) (*Directory, error) {
	return newDirectory(h, st, m, lim, reg, time.Now)
}

func newDirectory(h host.Host, st feed.Storage, w writerChecker, lim DirectoryLimits, reg prometheus.Registerer, now func() time.Time) (*Directory, error) {
	lim.setDefaults()
	d := &Directory{h: h, self: h.ID(), st: st, w: w, lim: lim, now: now, stats: newDirStats(reg),
		locs: map[auth.InviteID]*locEntry{}, perSpace: map[auth.SpaceID]int{},
		aliases: map[string]*aliasEntry{}, aliasesOf: map[auth.SpaceID]int{},
		writes: map[peer.ID][]time.Time{}, lookups: map[peer.ID][]time.Time{}}
	if err := d.load(); err != nil {
		return nil, err
	}
	h.SetStreamHandler(LocatorProtocol, d.handle)
	return d, nil
}

// load reads the directory's records, dropping those past their expiry.
func (d *Directory) load() error {
	now := d.now()
	var drop []feed.Write
	err := d.st.Scan([]byte("L"), []byte("M"), func(k, v []byte) error {
		e, _, err := decodeLocator(v)
		if len(k) != 1+auth.InviteIDSize || err != nil {
			return fmt.Errorf("relay: directory: bad locator record %x", k)
		}
		if !now.Before(e.expires) {
			drop = append(drop, feed.Write{Key: slices.Clone(k), Delete: true})
			return nil
		}
		d.addLoc(auth.InviteID(k[1:]), e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("relay: directory: load: %w", err)
	}
	err = d.st.Scan([]byte("A"), []byte("B"), func(k, v []byte) error {
		a, err := decodeAlias(v)
		if err != nil || len(k) < 2 {
			return fmt.Errorf("relay: directory: bad alias record %x", k)
		}
		if a.gone && !now.Before(a.forget) {
			drop = append(drop, feed.Write{Key: slices.Clone(k), Delete: true})
			return nil
		}
		d.addAlias(string(k[1:]), a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("relay: directory: load: %w", err)
	}
	return d.commit(drop)
}

func (d *Directory) commit(ws []feed.Write) error {
	for len(ws) > 0 {
		n := min(len(ws), 1024)
		if err := d.st.Commit(ws[:n]); err != nil {
			return err
		}
		ws = ws[n:]
	}
	return nil
}

func (d *Directory) addLoc(id auth.InviteID, e *locEntry) {
	d.locs[id] = e
	if !e.gone {
		d.perSpace[e.space]++
		d.stats.locators.Inc()
	}
}

func (d *Directory) dropLoc(id auth.InviteID) {
	e := d.locs[id]
	if e == nil {
		return
	}
	delete(d.locs, id)
	if !e.gone {
		if d.perSpace[e.space]--; d.perSpace[e.space] <= 0 {
			delete(d.perSpace, e.space)
		}
		d.stats.locators.Dec()
	}
}

// sweepLocked forgets expired locators, tombstones and per-peer rates, at
// most once a minute.
func (d *Directory) sweepLocked(now time.Time) {
	if now.Sub(d.swept) < time.Minute {
		return
	}
	d.swept = now
	var ws []feed.Write
	for id, e := range d.locs {
		if !now.Before(e.expires) {
			d.dropLoc(id)
			ws = append(ws, feed.Write{Key: locatorKey(id), Delete: true})
		}
	}
	for name, a := range d.aliases {
		if a.gone && !now.Before(a.forget) {
			delete(d.aliases, name)
			ws = append(ws, feed.Write{Key: aliasKey(name), Delete: true})
		}
	}
	for _, m := range []map[peer.ID][]time.Time{d.writes, d.lookups} {
		for p, ts := range m {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= d.lim.Window {
				delete(m, p)
			}
		}
	}
	d.commit(ws) // a failed delete is retried at the next sweep or load
}

// allowLocked counts a request of p against its rate in m.
func (d *Directory) allowLocked(m map[peer.ID][]time.Time, p peer.ID, limit int, now time.Time) error {
	ts := m[p]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= d.lim.Window {
		i++
	}
	ts = ts[i:]
	if len(ts) >= limit {
		m[p] = ts
		return ErrDirectoryBusy
	}
	m[p] = append(ts, now)
	return nil
}

// checkSigned checks what every signed request must pass: the signature
// for this relay, the signed time within MaxClockSkew, and the signer a
// writer of space.
func (d *Directory) checkSigned(q *dirRequest, space auth.SpaceID, now time.Time) error {
	if !q.verify(d.self) {
		return fmt.Errorf("%w: bad signature", ErrDirectoryForbidden)
	}
	if t := time.Unix(q.Time, 0); t.Before(now.Add(-MaxClockSkew)) || t.After(now.Add(MaxClockSkew)) {
		return ErrDirectoryStale
	}
	return d.writerOf(space, q.Signer)
}

func (d *Directory) writerOf(space auth.SpaceID, k [32]byte) error {
	known, ok := d.w.isWriter(space, feed.PublicKey(k))
	switch {
	case !known:
		return ErrUnknownSpace
	case !ok:
		return ErrDirectoryForbidden
	}
	return nil
}

// putLocator takes a deposit (opPutLocator) from p.
func (d *Directory) putLocator(p peer.ID, q *dirRequest) error {
	now := d.now()
	exp := time.Unix(q.Expires, 0)
	if !now.Before(exp) || exp.After(now.Add(MaxLocatorLifetime)) {
		return fmt.Errorf("%w: expiry %s", ErrMalformedDirectory, exp.UTC().Format(time.RFC3339))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.admitWriteLocked(p, now); err != nil {
		return err
	}
	if err := d.checkSigned(q, q.Space, now); err != nil {
		return err
	}
	old := d.locs[q.ID]
	switch {
	case old != nil && old.space != q.Space:
		// Another space's invite ID: nobody takes it over.
		return ErrDirectoryForbidden
	case old != nil && q.Time < old.at, old != nil && old.gone && q.Time <= old.at:
		return ErrDirectoryStale
	case old == nil || old.gone:
		if d.perSpace[q.Space] >= d.lim.LocatorsPerSpace || d.stats.locators.n() >= int64(d.lim.MaxLocators) {
			return ErrDirectoryFull
		}
	}
	e := &locEntry{space: q.Space, at: q.Time, expires: exp, removal: q.Removal}
	if err := d.st.Commit([]feed.Write{{Key: locatorKey(q.ID), Value: encodeLocator(e, q.Blob)}}); err != nil {
		return err
	}
	d.dropLoc(q.ID)
	d.addLoc(q.ID, e)
	return nil
}

// getLocator answers a lookup (opGetLocator): expiry ‖ blob.
func (d *Directory) getLocator(p peer.ID, id auth.InviteID) ([]byte, error) {
	now := d.now()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrNoDirectory
	}
	d.sweepLocked(now)
	if err := d.allowLocked(d.lookups, p, d.lim.LookupsPerPeer, now); err != nil {
		d.mu.Unlock()
		return nil, err
	}
	e := d.locs[id]
	d.mu.Unlock()
	if e == nil || e.gone || !now.Before(e.expires) {
		return nil, ErrDirectoryNotFound
	}
	v, err := d.st.Get(locatorKey(id))
	if errors.Is(err, feed.ErrNotFound) {
		return nil, ErrDirectoryNotFound // removed meanwhile
	} else if err != nil {
		return nil, err
	}
	e2, blob, err := decodeLocator(v)
	if err != nil || e2.gone {
		return nil, ErrDirectoryNotFound
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(e2.expires.Unix())), blob...), nil
}

// delLocator removes a locator (opDelLocator) whose removal secret q
// carries, leaving a tombstone until MaxClockSkew has passed, so that the
// deposit replayed meanwhile is refused (and later, its signed time is).
func (d *Directory) delLocator(p peer.ID, q *dirRequest) error {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.admitWriteLocked(p, now); err != nil {
		return err
	}
	e := d.locs[q.ID]
	if e == nil || e.gone {
		return ErrDirectoryNotFound
	}
	h := sha256.Sum256(q.Removal[:])
	if subtle.ConstantTimeCompare(h[:], e.removal[:]) != 1 {
		return ErrDirectoryForbidden
	}
	t := &locEntry{space: e.space, at: max(now.Unix(), e.at), expires: now.Add(2 * MaxClockSkew), gone: true}
	if err := d.st.Commit([]feed.Write{{Key: locatorKey(q.ID), Value: encodeLocator(t, nil)}}); err != nil {
		return err
	}
	d.dropLoc(q.ID)
	d.addLoc(q.ID, t)
	return nil
}

// encodeLocator encodes a locator record (FORMAT.md):
//
//	version (1) = 1 ‖ gone (1) ‖ space (32) ‖ at (int64) ‖
//	expires (int64, Unix s) ‖ removal hash (32) ‖ blob
func encodeLocator(e *locEntry, blob []byte) []byte {
	b := []byte{1, 0}
	if e.gone {
		b[1] = 1
	}
	b = append(b, e.space[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.at))
	b = binary.BigEndian.AppendUint64(b, uint64(e.expires.Unix()))
	b = append(b, e.removal[:]...)
	return append(b, blob...)
}

func decodeLocator(b []byte) (*locEntry, []byte, error) {
	const n = 2 + 32 + 8 + 8 + 32
	if len(b) < n || b[0] != 1 || b[1] > 1 || len(b) > n+MaxLocatorBlob {
		return nil, nil, errors.New("relay: directory: bad locator record")
	}
	e := &locEntry{gone: b[1] == 1, space: auth.SpaceID(b[2:34]), at: int64(binary.BigEndian.Uint64(b[34:42])),
		expires: time.Unix(int64(binary.BigEndian.Uint64(b[42:50])), 0), removal: [32]byte(b[50:82])}
	return e, b[n:], nil
}

// handle serves one directory stream: one request, one reply.
func (d *Directory) handle(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(LocatorTimeout))
	p := st.Conn().RemotePeer()
	q, err := decodeDirRequest(io.LimitReader(st, maxLocatorRequest))
	var body []byte
	if err == nil {
		switch q.Op {
		case opPutLocator:
			err = d.putLocator(p, q)
		case opGetLocator:
			body, err = d.getLocator(p, q.ID)
		case opDelLocator:
			err = d.delLocator(p, q)
		case opPutAlias:
			err = d.putAlias(p, q)
		case opDelAlias:
			err = d.delAlias(p, q)
		case opGetAlias:
			body, err = d.getAlias(p, q.Name)
		}
	}
	code := dirCode(err)
	op := "malformed"
	if q != nil {
		op = opNames[q.Op]
	}
	d.stats.requests.WithLabelValues(op, dirNames[code]).Inc()
	if _, err := st.Write(encodeDirReply(code, body)); err != nil {
		st.Reset()
	}
}

// Close stops serving the directory. The store is the mirror's: the
// Mirror closes it.
func (d *Directory) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		d.h.RemoveStreamHandler(LocatorProtocol)
	}
	return nil
}

// DirectoryCounts are the directory's live locators and aliases.
type DirectoryCounts struct{ Locators, Aliases int }

// Counts returns how many live locators and aliases the directory holds.
func (d *Directory) Counts() DirectoryCounts {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, a := range d.aliases {
		if !a.gone {
			n++
		}
	}
	return DirectoryCounts{Locators: int(d.stats.locators.n()), Aliases: n}
}

// dirStats are the directory's aggregate metrics: none names a peer, a
// space or an invite.
type dirStats struct {
	locators *gauge
	requests *prometheus.CounterVec
}

// gauge is a Prometheus gauge whose value the directory reads back.
type gauge struct {
	prometheus.Gauge
	v int64
}

func (g *gauge) Inc()     { g.v++; g.Gauge.Inc() }
func (g *gauge) Dec()     { g.v--; g.Gauge.Dec() }
func (g *gauge) n() int64 { return g.v }

func newDirStats(reg prometheus.Registerer) dirStats {
	s := dirStats{
		locators: &gauge{Gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mycel_relay_locators",
			Help: "Live invite locators in the relay's directory."})},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_relay_directory_requests_total",
			Help: "Directory requests, by operation and reply."}, []string{"op", "reply"}),
	}
	if reg != nil {
		reg.MustRegister(s.locators, s.requests)
	}
	return s
}

// exchange sends q to relay on LocatorProtocol and reads the reply.
func exchange(ctx context.Context, h host.Host, relay peer.ID, q *dirRequest) ([]byte, error) {
	req, err := q.encode()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, LocatorTimeout)
	defer cancel()
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "locator"), relay, LocatorProtocol)
	if err != nil {
		return nil, fmt.Errorf("relay: directory: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if _, err := st.Write(req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("relay: directory: %w", err)
	}
	st.CloseWrite()
	code, body, err := decodeDirReply(st)
	if err != nil {
		st.Reset()
		return nil, err
	}
	return body, dirError(code)
}

// Locator is what a member deposits at a relay for an invite it made.
type Locator struct {
	Space   auth.SpaceID
	ID      auth.InviteID
	Expires time.Time
	// RemovalHash is SHA-256 of the secret that removes the locator
	// (RemoveLocator): only whoever knows the secret can remove it.
	RemovalHash [32]byte
	// Blob is opaque to the relay, 1 to MaxLocatorBlob bytes: the daemon
	// puts the invite's sealed locator and sealed hints there
	// (node/relays_locators.go).
	Blob []byte
}

// DepositLocator deposits loc at relay, signed by signer (the member's
// feed key in loc.Space) at now. The relay takes it only from a writer of
// a space it mirrors (ErrUnknownSpace otherwise: hand it the mirror token
// first). A refusal wraps ErrDirectoryRefused and the reason.
func DepositLocator(ctx context.Context, h host.Host, relay peer.ID, loc Locator, signer ed25519.PrivateKey, now time.Time) error {
	q := &dirRequest{Op: opPutLocator, Space: loc.Space, Time: now.Unix(), ID: loc.ID,
		Expires: loc.Expires.Unix(), Removal: loc.RemovalHash, Blob: loc.Blob}
	if err := q.sign(relay, signer); err != nil {
		return err
	}
	_, err := exchange(ctx, h, relay, q)
	return err
}

// LookupLocator asks relay for the locator of invite id: its expiry and
// blob. ErrDirectoryNotFound (wrapped) when the relay has none.
func LookupLocator(ctx context.Context, h host.Host, relay peer.ID, id auth.InviteID) (time.Time, []byte, error) {
	body, err := exchange(ctx, h, relay, &dirRequest{Op: opGetLocator, ID: id})
	if err != nil {
		return time.Time{}, nil, err
	}
	if len(body) < 9 || len(body) > 8+MaxLocatorBlob {
		return time.Time{}, nil, fmt.Errorf("%w: locator reply of %d bytes", ErrMalformedDirectory, len(body))
	}
	return time.Unix(int64(binary.BigEndian.Uint64(body)), 0), body[8:], nil
}

// RemoveLocator removes the locator of invite id from relay, with the
// secret whose SHA-256 the deposit named.
func RemoveLocator(ctx context.Context, h host.Host, relay peer.ID, id auth.InviteID, secret [32]byte) error {
	_, err := exchange(ctx, h, relay, &dirRequest{Op: opDelLocator, ID: id, Removal: secret})
	return err
}

// admitWriteLocked admits a write request of p at now: the directory is
// open, expired records are swept, and p is within WritesPerPeer.
func (d *Directory) admitWriteLocked(p peer.ID, now time.Time) error {
	if d.closed {
		return ErrNoDirectory
	}
	d.sweepLocked(now)
	return d.allowLocked(d.writes, p, d.lim.WritesPerPeer, now)
}
