package feed

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mycelsync/mycel/feed/feedpb"
	"github.com/transparency-dev/merkle/compact"
)

// Options configure a DB.
type Options struct {
	// Now is the clock heads are stamped with. Default time.Now.
	Now func() time.Time
	// Logger receives diagnostics. Default discards.
	Logger Logger
	// NoAppend refuses every Append with ErrAppendsHeld (WithoutAppends).
	NoAppend bool
}

// Option sets an Options field.
type Option func(*Options)

// WithClock sets the clock heads are stamped with.
func WithClock(now func() time.Time) Option { return func(o *Options) { o.Now = now } }

// WithoutAppends makes Writer.Append fail with ErrAppendsHeld; ingest
// still works. A node restoring a damaged or lost store from its peers
// opens the feeds so, until it holds its own feed back: appending to a
// feed whose signed entries it lacks would fork it.
func WithoutAppends() Option { return func(o *Options) { o.NoAppend = true } }

// WithLogger sets the logger.
func WithLogger(l Logger) Option { return func(o *Options) { o.Logger = l } }

// Logger receives a DB's diagnostics: a *slog.Logger is one. It is an
// interface so that the browser node, which logs nothing, leaves log/slog
// (and the encoding/json it keeps alive) out of its wasm: about 30 KB
// gzipped with node/space's.
type Logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
}

// discard is the default Logger.
type discard struct{}

func (discard) Info(string, ...any) {}
func (discard) Warn(string, ...any) {}

// DB holds many feeds in one Storage. It does not own the Storage: Close
// flushes and stops the DB, and the caller closes the Storage after.
type DB struct {
	st   Storage
	opts Options

	mu     sync.Mutex
	feeds  map[PublicKey]*Feed
	closed bool
}

// Open returns a DB over st.
func Open(st Storage, opts ...Option) (*DB, error) {
	o := Options{Now: time.Now, Logger: discard{}}
	for _, opt := range opts {
		opt(&o)
	}
	return &DB{st: st, opts: o, feeds: make(map[PublicKey]*Feed)}, nil
}

// Feed returns the handle of the feed named by key, loading its state from
// storage on first use. A feed nothing is known of yet is empty.
func (db *DB) Feed(key PublicKey) (*Feed, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, ErrClosed
	}
	if f := db.feeds[key]; f != nil {
		return f, nil
	}
	f, err := db.load(key)
	if err != nil {
		return nil, err
	}
	db.feeds[key] = f
	return f, nil
}

// Writer returns the writable handle of the feed of priv's public key. If the
// process stopped after entries became durable but before the head covering
// them was stored, Writer signs that head now (those entries were never
// announced, so this cannot fork the feed).
func (db *DB) Writer(priv ed25519.PrivateKey) (*Writer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("feed: writer key of %d bytes", len(priv))
	}
	var key PublicKey
	copy(key[:], priv.Public().(ed25519.PublicKey))
	f, err := db.Feed(key)
	if err != nil {
		return nil, err
	}
	f.commitMu.Lock()
	defer f.commitMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.priv = priv
	if f.length > 0 && (f.head == nil || f.head.Length < f.length) {
		h := signHead(priv, f.length, rangeRoot(f.frontier), db.opts.Now())
		f.head = &h
		f.headDirty = true
		db.opts.Logger.Info("feed: signed head for entries stored before a crash", "feed", fmt.Sprintf("%x", key[:8]), "length", f.length)
	}
	return &Writer{Feed: f}, nil
}

// Feeds lists every feed the DB holds a head or fork evidence for.
func (db *DB) Feeds() ([]PublicKey, error) {
	var out []PublicKey
	seen := make(map[PublicKey]bool)
	for _, tag := range []byte{tagHead, tagEvidence} {
		p := []byte{'f', tag}
		err := db.st.Scan(p, PrefixEnd(p), func(k, _ []byte) error {
			if len(k) != 2+KeySize {
				return nil
			}
			var key PublicKey
			copy(key[:], k[2:])
			if !seen[key] {
				seen[key] = true
				out = append(out, key)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("feed: list feeds: %w", err)
		}
	}
	return out, nil
}

// Close stores the latest signed head of every writer and stops the DB;
// later calls on it or its feeds return ErrClosed. Appends in progress finish
// first.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	feeds := make([]*Feed, 0, len(db.feeds))
	for _, f := range db.feeds {
		feeds = append(feeds, f)
	}
	db.mu.Unlock()
	var errs []error
	for _, f := range feeds {
		f.commitMu.Lock()
		f.mu.Lock()
		if f.headDirty {
			if err := db.st.Commit([]Write{f.headRecordWrite(f.head, f.length, f.frontier)}); err != nil {
				errs = append(errs, err)
			} else {
				f.headDirty = false
			}
		}
		f.closed = true
		f.mu.Unlock()
		f.commitMu.Unlock()
	}
	return errors.Join(errs...)
}

// load reads a feed's state: head record, ranges held, fork evidence.
func (db *DB) load(key PublicKey) (*Feed, error) {
	f := &Feed{db: db, key: key, frontier: factory.NewEmptyRange(0)}
	rec, err := db.st.Get(headKey(key))
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("feed: load head: %w", err)
	default:
		var p feedpb.HeadRecord
		if err := p.Unmarshal(rec); err != nil {
			return nil, fmt.Errorf("feed: stored head record of %x: %w", key[:8], err)
		}
		if p.Head != nil {
			h, err := headFromProto(p.Head)
			if err != nil {
				return nil, fmt.Errorf("feed: stored head of %x: %w", key[:8], err)
			}
			f.head = &h
		}
		fr, err := newRange(0, p.Length, p.Frontier)
		if err != nil {
			return nil, fmt.Errorf("feed: stored frontier of %x: %w", key[:8], err)
		}
		f.length, f.frontier = p.Length, fr
		if f.head != nil && (f.head.Length > f.length || f.head.Length == f.length && rangeRoot(fr) != f.head.Root) {
			return nil, fmt.Errorf("feed: stored head of %x does not match its tree", key[:8])
		}
	}
	p := feedKey(tagRange, key, 0)
	err = db.st.Scan(p, PrefixEnd(p), func(k, v []byte) error {
		if len(k) != len(p)+8 || len(v) != 8 {
			return fmt.Errorf("bad range record")
		}
		r := Range{binary.BigEndian.Uint64(k[len(p):]), binary.BigEndian.Uint64(v)}
		if r.Start >= r.End || len(f.held) > 0 && f.held[len(f.held)-1].End >= r.Start {
			return fmt.Errorf("range record [%d, %d) out of order", r.Start, r.End)
		}
		f.held = append(f.held, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("feed: load ranges of %x: %w", key[:8], err)
	}
	ev, err := db.st.Get(evidenceKey(key))
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("feed: load evidence: %w", err)
	default:
		f.evidence = new(ForkEvidence)
		if err := f.evidence.UnmarshalBinary(ev); err != nil {
			return nil, fmt.Errorf("feed: stored evidence of %x: %w", key[:8], err)
		}
	}
	return f, nil
}

// Feed is one feed in a DB: its latest signed head, the entries this replica
// holds, proofs over them, and verified ingest of what peers send. All
// methods are safe for concurrent use.
type Feed struct {
	db  *DB
	key PublicKey

	// commitMu serialises changes (ingest, append commits), which read the
	// state, verify, write storage and then update the state.
	commitMu sync.Mutex

	mu        sync.RWMutex // guards the fields below
	head      *SignedHead  // latest signed head; nil if none
	length    uint64       // tree size: head.Length, or more for a writer between commit and sign
	frontier  *compact.Range
	held      rangeSet
	evidence  *ForkEvidence
	priv      ed25519.PrivateKey // set for writers
	headDirty bool               // head newer than the stored head record
	closed    bool

	qmu     sync.Mutex // guards the group-commit queue of a writer
	queue   []*appendReq
	leading bool
}

// Key returns the feed's public key.
func (f *Feed) Key() PublicKey { return f.key }

// Head returns the latest signed head, if any.
func (f *Feed) Head() (SignedHead, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.head == nil {
		return SignedHead{}, false
	}
	return *f.head, true
}

// Length returns the length of the latest signed head (0 if none).
func (f *Feed) Length() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.headLength()
}

func (f *Feed) headLength() uint64 {
	if f.head == nil {
		return 0
	}
	return f.head.Length
}

// Evidence returns the fork evidence that froze the feed, or nil.
func (f *Feed) Evidence() *ForkEvidence {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.evidence
}

// Ranges returns the ranges of entries this replica holds that are covered by
// the latest signed head.
func (f *Feed) Ranges() []Range {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.held.intersect(0, f.headLength())
}

// Has reports whether the entry at index i is held.
func (f *Feed) Has(i uint64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return i < f.headLength() && f.held.contains(i)
}

// Missing returns the ranges of [0, Length) this replica does not hold.
func (f *Feed) Missing() []Range {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.held.missing(0, f.headLength())
}

// Get returns the entry at index i.
func (f *Feed) Get(i uint64) ([]byte, error) {
	f.mu.RLock()
	n, held, closed := f.headLength(), f.held.contains(i), f.closed
	f.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrClosed
	case i >= n:
		return nil, errorf(ErrOutOfRange, "entry %d of feed with length %d", i, n)
	case !held:
		return nil, errorf(ErrNotHeld, "entry %d", i)
	}
	v, err := f.db.st.Get(entryKey(f.key, i))
	if err != nil {
		return nil, fmt.Errorf("feed: get entry %d: %w", i, err)
	}
	return v, nil
}

// GetRange returns the entries [start, end), all of which must be held.
func (f *Feed) GetRange(start, end uint64) ([][]byte, error) {
	f.mu.RLock()
	n, covered, closed := f.headLength(), f.held.covers(start, end), f.closed
	f.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrClosed
	case start > end || end > n:
		return nil, errorf(ErrOutOfRange, "entries [%d, %d) of feed with length %d", start, end, n)
	case !covered:
		return nil, errorf(ErrNotHeld, "entries [%d, %d)", start, end)
	}
	out := make([][]byte, 0, end-start)
	err := f.db.st.Scan(entryKey(f.key, start), entryKey(f.key, end), func(_, v []byte) error {
		out = append(out, append([]byte(nil), v...))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("feed: get entries [%d, %d): %w", start, end, err)
	}
	if uint64(len(out)) != end-start {
		return nil, fmt.Errorf("feed: storage returned %d of %d entries in [%d, %d)", len(out), end-start, start, end)
	}
	return out, nil
}
