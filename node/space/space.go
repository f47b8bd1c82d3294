package space

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// Errors of a Space.
var (
	// ErrReadOnly: this device is not (or no longer) a writer of the space.
	ErrReadOnly = errors.New("space: this device is not a writer")
	// ErrNoKeys: this device holds no key of the space yet (not approved).
	ErrNoKeys = errors.New("space: no keys for this space yet")
	// ErrClosed: the space was closed.
	ErrClosed = errors.New("space: closed")
	// ErrWatchOverflow: a watcher fell too far behind and was dropped.
	ErrWatchOverflow = errors.New("space: watcher fell behind")
	// ErrViewStorage: a read or write of the view's storage failed while
	// the view changed. The view stopped (see View); the Space opens it
	// again from what its storage last committed and reads the feeds into
	// it at its next use, so a call made once the storage works again
	// succeeds. What a failed write appended to the feed stays written.
	ErrViewStorage = errors.New("space: the view's storage failed")

	// errAppended: a write's entries are in the feed, though it failed.
	errAppended = errors.New("entries appended")
)

// Config is what a Space needs from its node.
type Config struct {
	// Feeds holds the feeds of the space (and maybe of others).
	Feeds *feed.DB
	// Store keeps the space's own records (the sealed keyring). It may be
	// the Storage under Feeds.
	Store feed.Storage
	// Writer is this device's feed key in this space.
	Writer ed25519.PrivateKey
	// Device is this device's HPKE key: keyrings and rotated secrets are
	// sealed to it.
	Device *auth.DeviceKey
	// Rand defaults to crypto/rand; Now to time.Now; Logger discards.
	Rand   io.Reader
	Now    func() time.Time
	Logger Logger
}

// Logger receives a space's diagnostics: a *slog.Logger is one. It is an
// interface so that the browser node, which logs nothing, leaves log/slog
// (and the encoding/json it keeps alive) out of its wasm.
type Logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// discard is the default Logger.
type discard struct{}

func (discard) Info(string, ...any)  {}
func (discard) Warn(string, ...any)  {}
func (discard) Error(string, ...any) {}

// Space is one shared database on this device: its own feed, the feeds of
// the other devices, the keys, and the view.
type Space struct {
	id     auth.SpaceID
	origin feed.PublicKey
	own    feed.PublicKey
	cfg    Config
	w      *feed.Writer

	mu      sync.Mutex
	closed  bool
	view    *View
	damaged error         // the first error a read of the stored view met, kept when the view is opened again (Err)
	keyring *auth.Keyring // nil until approved
	removed bool          // a member showed this device its removal (LearnRemoval)
	// stale: a member showed this device the removal of the writer that
	// approved it, before that writer learned of it (LearnApproverRemoval);
	// zero if none. Cleared once its view holds that removal and still
	// counts this device a writer (approved again by a member).
	stale    feed.PublicKey
	trial    *auth.Keyring // before approval: an approval's keyring being tried (TryKeyring)
	byKeyID  map[[16]byte]auth.EpochSecret
	told     map[feed.PublicKey]uint64 // lengths declared in own ops so far
	hlc      uint64
	keyWait  map[feed.PublicKey]bool         // feeds stopped at an entry whose key is unknown
	named    map[feed.PublicKey]bool         // feeds added by entries read only by their clear header
	peeked   map[feed.PublicKey][]feed.Range // entries whose headers findKeyring looked at
	watchers []*Watcher
	read     int // entries read from the feeds into the view (diagnostics, tests)

	// ShareDue's answer, and what it was computed from.
	shareAt   shareState
	shareRank int
	shareDue  bool

	// feedsLocked's answer, and what it was computed from.
	feeds   []feed.PublicKey
	feedsAt feedsState
}

// Create makes a new space with this device as its origin: a feed, an
// epoch-0 secret and a first op naming the device.
func Create(ctx context.Context, cfg Config, name string) (*Space, error) {
	cfg.defaults()
	var origin feed.PublicKey
	copy(origin[:], cfg.Writer.Public().(ed25519.PublicKey))
	id := auth.SpaceID(origin)
	kr, err := auth.NewKeyring(id, cfg.Rand)
	if err != nil {
		return nil, err
	}
	s, err := open(cfg, id)
	if err != nil {
		return nil, err
	}
	if s.w.Length() != 0 {
		return nil, fmt.Errorf("space: feed %x already has entries", origin[:8])
	}
	if err := s.setKeyring(kr); err != nil {
		return nil, err
	}
	if _, err := s.write(ctx, &Op{Kind: OpAddWriter, Target: origin, Name: name, DevicePublic: cfg.Device.Public().Bytes()}); err != nil {
		return nil, err
	}
	return s, nil
}

// Open opens a space this device belongs to or has asked to join: it loads
// the keyring (if approved) and reads every feed held.
func Open(cfg Config, id auth.SpaceID) (*Space, error) {
	cfg.defaults()
	s, err := open(cfg, id)
	if err != nil {
		return nil, err
	}
	if err := s.loadKeyring(); err != nil {
		return nil, err
	}
	if err := s.loadRemoved(); err != nil {
		return nil, err
	}
	if err := s.loadStale(); err != nil {
		return nil, err
	}
	if _, err := s.Refresh(); err != nil {
		return nil, err
	}
	return s, nil
}

func (cfg *Config) defaults() {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = discard{}
	}
}

func open(cfg Config, id auth.SpaceID) (*Space, error) {
	w, err := cfg.Feeds.Writer(cfg.Writer)
	if err != nil {
		return nil, err
	}
	view, err := OpenView(feed.PublicKey(id), cfg.Store, cfg.Device.LocalKey(id), cfg.Rand)
	if err != nil {
		return nil, err
	}
	return &Space{
		id:      id,
		origin:  feed.PublicKey(id),
		own:     w.Key(),
		cfg:     cfg,
		w:       w,
		view:    view,
		hlc:     view.MaxHLC(),
		byKeyID: make(map[[16]byte]auth.EpochSecret),
		told:    make(map[feed.PublicKey]uint64),
		keyWait: make(map[feed.PublicKey]bool),
		named:   make(map[feed.PublicKey]bool),
		peeked:  make(map[feed.PublicKey][]feed.Range),
	}, nil
}

// ID returns the space ID.
func (s *Space) ID() auth.SpaceID { return s.id }

// Feed returns this device's feed key in the space.
func (s *Space) Feed() feed.PublicKey { return s.own }

// keyringKey is where the keyring is stored, sealed to this device's key.
func (s *Space) keyringKey() []byte { return keyringKey(s.id) }

func keyringKey(id auth.SpaceID) []byte { return append([]byte("sk"), id[:]...) }

// StorePrefixes returns the prefixes of the keys a space keeps in its
// Config.Store besides the feeds: its sealed keyring and its view. (The
// node moves them when it moves a space into a namespace of its own.)
func StorePrefixes(id auth.SpaceID) [][]byte {
	tag := sha256.Sum256(append([]byte("mycel/v1/view\x00"), id[:]...))
	return [][]byte{keyringKey(id), append([]byte("v"), tag[:8]...)}
}

func (s *Space) binding() auth.Binding { return auth.Binding{Space: s.id, Feed: s.own} }

// Flush stores the view's state, so that reopening does not read again the
// ops applied so far. Refresh and Close flush; so does the view itself when
// it has buffered a lot.
func (s *Space) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	return s.view.Flush()
}

// Close flushes the view and closes every watcher. The feeds and storage
// belong to the caller.
func (s *Space) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, w := range s.watchers {
		close(w.C)
	}
	s.watchers = nil
	return s.view.Flush()
}
