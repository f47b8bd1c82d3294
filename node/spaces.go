package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/space"
	"github.com/mycelsync/mycel/node/syncnet"
)

// openSpace is a space the node has open: the space, its namespace of the
// store with the feeds in it, and its face to the replicator
// (syncnet.Space).
type openSpace struct {
	n    *Node
	sp   *space.Space
	name string
	st   feed.Storage // the space's namespace (spacePrefix)
	db   *feed.DB     // the space's feeds, in st

	// life owns the space's goroutines (refresher, asker, ephemeral
	// reader and announcer): a child of the node's owner, closed when the
	// device leaves the space or the node closes.
	life *owner

	mu     sync.Mutex
	served bool
	left   bool // the device left the space: it serves and accepts nothing
	// While the device leaves: the length of its feed with its removal,
	// and how many sessions have served that much to their peer.
	leaveAt uint64
	reached int
	feeds   int    // length of sp.Feeds() when last announced to the replicator
	admits  [2]int // space.Admission when the sessions' proofs were last checked

	// leaving maps each session that served this device's feed since the
	// leave began to the furthest index it served (spaces_leave.go); nil
	// when not leaving.
	leaving map[*sessionModel]uint64
	// leaveHook, if set (tests), is called once the removal is written,
	// before leaveAt is known.
	leaveHook func()

	eph  *channel      // ephemeral messages (messages.go)
	join *joining      // this device's own request to join (signin.go)
	ask  chan struct{} // cap 1: publish the request now

	kick  chan struct{} // cap 1: entries were ingested, refresh the view
	share sharer        // the refresher's: sharing the newest secret (spaces_sharekeys.go)
}

var _ syncnet.Space = (*openSpace)(nil)

func (m *openSpace) ID() auth.SpaceID { return m.sp.ID() }

// Model serves the feeds of the space (space.Space.Feeds) from the space's
// own namespace: never a feed of another space that shares the store. One
// Model per session: it also tells a leaving device when the session
// served its removal (spaces_leave.go).
func (m *openSpace) Model() replication.Model {
	return &sessionModel{Model: syncnet.NewDBModel(m.db, m.sp.Feeds), m: m, own: m.sp.Feed()}
}

// Credentials are only asked for once the member is served, which needs
// the keys.
func (m *openSpace) Credentials() replication.Credentials {
	caps, _ := m.sp.Capabilities()
	return replication.Credentials{Caps: caps, Writer: m.sp.WriterKey()}
}

func (m *openSpace) Verify(binding []byte, p replication.Proof) bool {
	if m.hasLeft() {
		return false
	}
	return m.sp.Admits(func(c auth.ReplicationCapability) bool {
		return replication.VerifyCap(c)(binding, p)
	}, p.Writer)
}

// errNotOfSpace refuses a feed that is not one of the space's.
var errNotOfSpace = errors.New("node: not a feed of this space")

func (m *openSpace) Ingest(k feed.PublicKey, b *feed.Batch) error {
	if m.hasLeft() || !m.sp.HasFeed(k) {
		return fmt.Errorf("%w: %x", errNotOfSpace, k[:8])
	}
	f, err := m.db.Feed(k)
	if err != nil {
		return err
	}
	var entries, dup, size int
	held := f.Ranges()
	for _, r := range b.Runs {
		entries += len(r.Entries)
		for _, e := range r.Entries {
			size += len(e)
		}
		dup += overlap(held, r.Start, r.End())
	}
	if err := f.Ingest(b); err != nil {
		return err
	}
	m.n.stats.received.Add(float64(entries))
	m.n.stats.receivedBytes.Add(float64(size))
	m.n.stats.duplicates.Add(float64(dup))
	m.refreshSoon()
	return nil
}

// overlap counts the indices of [start, end) that ranges hold.
func overlap(ranges []feed.Range, start, end uint64) int {
	n := 0
	for _, r := range ranges {
		if lo, hi := max(r.Start, start), min(r.End, end); lo < hi {
			n += int(hi - lo)
		}
	}
	return n
}

func (m *openSpace) ImportEvidence(ev *feed.ForkEvidence) error {
	if !m.sp.HasFeed(ev.A.Key) {
		return fmt.Errorf("%w: %x", errNotOfSpace, ev.A.Key[:8])
	}
	f, err := m.db.Feed(ev.A.Key)
	if err != nil {
		return err
	}
	if err := f.ImportEvidence(ev); err != nil {
		return err
	}
	m.n.log.Warn("space: a feed forked; it is frozen", "space", m.sp.ID(), "feed", ev.A.Key)
	return nil
}

// refreshSoon asks the refresher to read what was ingested, without
// blocking the session that ingested it.
func (m *openSpace) refreshSoon() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// refresher applies ingested entries to the view, one Refresh for however
// many batches arrived meanwhile, and tells the replicator when the space's
// feeds changed (a writer was added).
func (m *openSpace) refresher(ctx context.Context) {
	defer m.share.stop()
	m.checkShare(time.Now())
	failed := "" // the last Refresh's error, logged once while it lasts
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
		// After an error the space reads the view again at its next use;
		// reads refuse meanwhile (space.Space.Err).
		_, err := m.sp.Refresh()
		switch {
		case err != nil && err.Error() != failed:
			failed = err.Error()
			m.n.log.Error("space: refresh", "space", m.sp.ID(), "err", err)
		case err == nil && failed != "":
			failed = ""
			m.n.log.Info("space: refresh works again", "space", m.sp.ID())
		}
		m.changed()
		m.checkJoined()
		m.renewPassword()
		m.checkShare(time.Now())
	}
}

// changed tells the replicator what a local write or a refresh changed:
// new feeds, or a space that can now be served, or a writer removed or an
// epoch started, after which the open sessions' peers must prove again
// that they are admitted.
func (m *openSpace) changed() {
	n := len(m.sp.Feeds())
	removed, secrets := m.sp.Admission()
	admits := [2]int{removed, secrets}
	m.mu.Lock()
	grew := n != m.feeds
	recheck := admits != m.admits
	m.feeds, m.admits = n, admits
	m.mu.Unlock()
	if m.serve() {
		// Served from now on. A session opened while this device tried an
		// approval's keyring (tryApproval) runs on: it must learn the
		// feeds found since and check its peer's proof with the keys.
		m.n.repl.Refresh(m.sp.ID())
		m.n.repl.Recheck(m.sp.ID())
		return
	}
	if grew {
		m.n.repl.Refresh(m.sp.ID())
	}
	if recheck {
		m.n.repl.Recheck(m.sp.ID())
	}
}

// serve starts replicating the space once this device holds its keys. It
// reports whether it started now.
func (m *openSpace) serve() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.served || !m.sp.Approved() || m.sp.Removed() {
		return false
	}
	if err := m.n.repl.Serve(m); err != nil {
		m.n.log.Error("space: serve", "space", m.sp.ID(), "err", err)
		return false
	}
	m.served = true
	return true
}

func (m *openSpace) isServed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.served
}

// wrote tells the peers of a local write.
func (m *openSpace) wrote() {
	m.n.stats.written.Inc()
	m.n.repl.Appended(m.sp.ID(), m.sp.Feed())
	m.changed()
}

// loadSpaces opens every space recorded in the store, after moving the
// spaces of a store made by an older version into namespaces (migrate).
func (n *Node) loadSpaces() error {
	ids, err := n.recordedSpaces()
	if err != nil {
		return err
	}
	if err := n.migrate(ids); err != nil {
		return err
	}
	for _, id := range ids {
		rec, err := n.readRecord(id)
		if err != nil {
			return err
		}
		if rec.Leaving {
			if err := n.deleteSpace(id); err != nil {
				return fmt.Errorf("node: finish leaving space %s: %w", id, err)
			}
			n.log.Info("space: finished deleting a space this device left", "space", id)
			continue
		}
		cfg, st, db, err := n.spaceConfig(id, rec)
		if err != nil {
			return err
		}
		sp, err := space.Open(cfg, id)
		if err != nil {
			db.Close()
			return fmt.Errorf("node: open space %s: %w", id, err)
		}
		m, err := n.addOpenSpace(sp, rec.Name, st, db)
		if err != nil {
			return err
		}
		m.loadJoin(rec.Join)
	}
	return nil
}

// spaceConfig opens the namespace of space id and its feeds.
func (n *Node) spaceConfig(id auth.SpaceID, rec *spaceRecord) (space.Config, feed.Storage, *feed.DB, error) {
	st := feed.Prefixed(n.kept, spacePrefix(id))
	db, err := feed.Open(st, n.feedOpts...)
	if err != nil {
		return space.Config{}, nil, nil, err
	}
	return space.Config{
		Feeds:  db,
		Store:  st,
		Writer: ed25519.NewKeyFromSeed(rec.Writer),
		Device: n.device,
		Logger: n.log,
	}, st, db, nil
}

// addOpenSpace registers an open space, starts its refresher and serves it if
// this device holds its keys. n.mu must not be held. Once the node is
// closing it closes the space and its feeds and returns api.ErrClosed.
func (n *Node) addOpenSpace(sp *space.Space, name string, st feed.Storage, db *feed.DB) (*openSpace, error) {
	m := &openSpace{n: n, sp: sp, name: name, st: st, db: db, feeds: len(sp.Feeds()),
		life: newOwner(n.life), kick: make(chan struct{}, 1), ask: make(chan struct{}, 1)}
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		m.life.close()
		sp.Close()
		db.Close()
		return nil, api.ErrClosed
	}
	n.spaces[sp.ID()] = m
	n.mu.Unlock()
	// Registered first: should the node close in between, the starts are
	// refused and closeSpaces closes the space all the same.
	m.life.start(m.refresher)
	m.life.start(m.asker)
	// The space's topic carries sign-in before this device is approved,
	// and members' messages after.
	m.mu.Lock()
	m.startEphemeral()
	m.mu.Unlock()
	m.serve()
	return m, nil
}

// newSpace records a space with a fresh feed key for this device and
// opens it: created (origin) or joined (waiting for approval).
func (n *Node) newSpace(ctx context.Context, name string, id *auth.SpaceID) (*openSpace, error) {
	// Counted as a call, so that Close does not close the store under it.
	ctx, done, err := n.call(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	rec := &spaceRecord{Name: name, Writer: seed}
	sid := auth.SpaceID(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	if id != nil {
		sid = *id
	}
	if err := n.checkEmpty(sid); err != nil {
		return nil, err
	}
	cfg, st, db, err := n.spaceConfig(sid, rec)
	if err != nil {
		return nil, err
	}
	// The origin feed's key is the space ID: the record is written before
	// the first entry, so that a crash does not leave a feed without its
	// key.
	if err := n.writeRecord(sid, rec); err != nil {
		db.Close()
		return nil, err
	}
	var sp *space.Space
	if id == nil {
		sp, err = space.Create(ctx, cfg, n.cfg.Name)
	} else {
		sp, err = space.Open(cfg, sid)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return n.addOpenSpace(sp, name, st, db)
}

// checkEmpty refuses to start a space whose namespace holds data: left
// behind by a leave cut short, it would mix with the new copy.
func (n *Node) checkEmpty(id auth.SpaceID) error {
	p := spacePrefix(id)
	found := false
	err := n.store.Scan(p, feed.PrefixEnd(p), func(_, _ []byte) error {
		found = true
		return feed.ErrStopScan
	})
	if err != nil {
		return err
	}
	if found {
		if err := n.deletePrefix(p); err != nil {
			return fmt.Errorf("node: clear what a previous copy of space %s left: %w", id, err)
		}
	}
	return nil
}

// opened returns the open space whose hex ID is id or starts with it (at
// least 8 hex digits, matching one space).
func (n *Node) opened(id string) (*openSpace, error) {
	if len(id) < 8 {
		return nil, fmt.Errorf("%w: space ID %q: give at least 8 hex digits", api.ErrBadRequest, id)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return nil, api.ErrClosed
	}
	var found []*openSpace
	for sid, m := range n.spaces {
		if s := sid.String(); s == id {
			return m, nil
		} else if len(id) < len(s) && s[:len(id)] == id {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no space %s on this device", api.ErrNotFound, id)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %q names %d spaces; give more digits", api.ErrBadRequest, id, len(found))
}

// openSpaces returns the open spaces, sorted by ID.
func (n *Node) openSpaces() []*openSpace {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*openSpace, 0, len(n.spaces))
	for _, m := range n.spaces {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *openSpace) int {
		x, y := a.sp.ID(), b.sp.ID()
		return bytes.Compare(x[:], y[:])
	})
	return out
}

// closeSpaces ends the spaces' goroutines and closes every space (flushing
// the views). The replicator must be closed first.
func (n *Node) closeSpaces() error {
	var errs []error
	for _, m := range n.openSpaces() {
		m.life.close()
		m.life.wait(context.Background())
		if err := m.sp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close space %s: %w", m.sp.ID(), err))
		}
		if err := m.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close feeds of space %s: %w", m.sp.ID(), err))
		}
	}
	return errors.Join(errs...)
}
