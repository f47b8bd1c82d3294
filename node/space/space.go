package space

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
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
	Logger *slog.Logger
}

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

type feedsState struct {
	gen   uint64 // View.gen
	keyed bool   // s.keyring != nil
	named int    // len(s.named)
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
		cfg.Logger = slog.New(slog.DiscardHandler)
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

// OpensFeed reports whether the first entry this device holds of feed k
// opens under the space's keys, bound to the space and the feed: it is an
// entry of this space, not of another one that used the same feed key.
func (s *Space) OpensFeed(k feed.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.cfg.Feeds.Feed(k)
	if err != nil {
		return false
	}
	held := f.Ranges()
	if len(held) == 0 {
		return false
	}
	data, err := f.Get(held[0].Start)
	if err != nil {
		return false
	}
	_, err = OpenEntry(s.id, k, held[0].Start, data, s.keys)
	return err == nil
}

func (s *Space) binding() auth.Binding { return auth.Binding{Space: s.id, Feed: s.own} }

// setKeyring merges secrets into the keyring and stores it sealed to this
// device. The caller holds s.mu (or has not published s yet).
func (s *Space) setKeyring(kr *auth.Keyring) error {
	s.trial = nil
	if s.keyring == nil {
		s.keyring = kr.Clone()
	} else {
		for _, es := range kr.All() {
			if err := s.keyring.Add(es); err != nil && !errors.Is(err, auth.ErrEpochOrder) {
				return err
			}
		}
	}
	for _, es := range s.keyring.All() {
		s.byKeyID[es.KeyID(s.id)] = es
	}
	sealed, err := auth.SealKeyring(s.cfg.Device.Public(), s.keyring, s.binding())
	if err != nil {
		return err
	}
	return s.cfg.Store.Commit([]feed.Write{{Key: s.keyringKey(), Value: sealed}})
}

func (s *Space) loadKeyring() error {
	sealed, err := s.cfg.Store.Get(s.keyringKey())
	if errors.Is(err, feed.ErrNotFound) {
		return nil // not approved yet
	}
	if err != nil {
		return err
	}
	kr, err := auth.OpenKeyring(s.cfg.Device, sealed, s.binding())
	if err != nil {
		return fmt.Errorf("space: open stored keyring: %w", err)
	}
	return s.setKeyring(kr)
}

// learnSecret adds a secret opened from a rotation box. An error is the
// keyring's storage failing.
func (s *Space) learnSecret(es auth.EpochSecret) error {
	kr := &auth.Keyring{Space: s.id}
	if s.keyring == nil {
		if es.Epoch != 0 {
			return nil // cannot hold a later epoch without the earlier ones
		}
		kr.Epochs = []auth.EpochSecret{es}
		return s.setKeyring(kr)
	}
	if err := s.keyring.Add(es); err != nil {
		s.cfg.Logger.Warn("space: rotated secret not added", "err", err)
		return nil
	}
	return s.setKeyring(s.keyring)
}

// writeKey returns the secret to seal new entries with.
//
// Without removals, that is the secret of the newest epoch started by a
// rotation that counts (either one, when two members rotated at once). Once
// a device is removed, a secret qualifies only if the removed device cannot
// hold it: its rotation is the removal itself or comes causally after it,
// and seals no box to the removed device. (A member that rotates without
// knowing of a concurrent removal seals its secret to the removed device
// too; that secret must not carry anything written after the removal.) A
// device that holds no qualifying secret does not fall back to one the
// removed device may hold: it waits (ErrNoKeys).
func (s *Space) writeKey() (auth.EpochSecret, error) {
	if s.keyring == nil {
		return auth.EpochSecret{}, ErrNoKeys
	}
	var removals []MemberOp
	for _, rs := range s.view.ws.removals {
		removals = append(removals, rs...)
	}
	safe := func(r *opRec) bool {
		for _, x := range removals {
			if r.id != x.ID && !r.clock.sees(x.ID) {
				return false
			}
			for _, b := range r.op.Rotation.Boxes {
				if b.Feed == x.Target {
					return false
				}
			}
		}
		return true
	}
	var best *Rotation
	newest, eligible := uint32(0), false
	for _, r := range s.view.special {
		rot := r.op.Rotation
		if !r.count || rot == nil || !safe(r) {
			continue
		}
		eligible = true
		newest = max(newest, rot.Epoch)
		if _, held := s.byKeyID[rot.KeyID]; !held {
			continue
		}
		if best == nil || rot.Epoch > best.Epoch || rot.Epoch == best.Epoch && bytes.Compare(rot.KeyID[:], best.KeyID[:]) > 0 {
			best = rot
		}
	}
	switch {
	case best != nil && best.Epoch == newest:
		return s.byKeyID[best.KeyID], nil
	case !eligible && len(removals) == 0:
		return s.keyring.Epochs[0], nil // no rotation yet
	case !eligible:
		return auth.EpochSecret{}, fmt.Errorf("%w: no secret that the removed devices lack has reached this device yet", ErrNoKeys)
	}
	return auth.EpochSecret{}, fmt.Errorf("%w: the secret of epoch %d has not reached this device yet", ErrNoKeys, newest)
}

// nextHLC returns a hybrid logical clock after every op this device has
// seen and written: (Unix ms << 16) | counter.
func (s *Space) nextHLC() uint64 {
	phys := uint64(s.cfg.Now().UnixMilli()) << 16
	s.hlc = max(s.hlc+1, phys)
	return s.hlc
}

// write appends ops to this device's feed and applies them. The caller
// must not hold s.mu.
func (s *Space) write(ctx context.Context, ops ...*Op) ([]Change, error) {
	return s.writeWith(ctx, nil, ops...)
}

// writeWith writes ops sealed under secret, or under writeKey when nil.
func (s *Space) writeWith(ctx context.Context, secret *auth.EpochSecret, ops ...*Op) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	if secret == nil {
		es, err := s.writeKey()
		if err != nil {
			return nil, err
		}
		secret = &es
	}
	var err error
	index := s.w.Length()
	entries := make([][]byte, len(ops))
	for i, op := range ops {
		op.Seen = s.delta()
		op.HLC = s.nextHLC()
		entries[i], err = SealEntry(s.id, s.own, index+uint64(i), *secret, op, s.cfg.Rand)
		if err != nil {
			return nil, err
		}
	}
	first, err := s.w.Append(ctx, entries...)
	if err != nil {
		return nil, err
	}
	if first != index {
		return nil, fmt.Errorf("space: feed appended at %d, expected %d", first, index)
	}
	var changes []Change
	for i, op := range ops {
		c, err := s.view.Apply(s.own, index+uint64(i), op)
		if err != nil {
			return nil, fmt.Errorf("space: %w to the feed, but %w", errAppended, err)
		}
		changes = append(changes, c...)
	}
	s.notify(changes)
	return changes, nil
}

// delta returns the feeds whose applied length grew since this device's
// last op, and records them as told.
func (s *Space) delta() []Seen {
	var out []Seen
	for k, st := range s.view.feeds {
		if k != s.own && st.applied > s.told[k] {
			out = append(out, Seen{Feed: k, Length: st.applied})
			s.told[k] = st.applied
		}
	}
	slices.SortFunc(out, func(a, b Seen) int { return OpID{Feed: a.Feed}.compare(OpID{Feed: b.Feed}) })
	return out
}

// Put sets key to value.
func (s *Space) Put(ctx context.Context, key string, value []byte) error {
	if err := appKeys(key); err != nil {
		return err
	}
	return s.writeData(ctx, &Op{Kind: OpPut, Key: key, Value: value})
}

// KV is a key and a value, for PutMany.
type KV struct {
	Key   string
	Value []byte
}

// PutMany sets several keys in one append: one storage commit, one sync
// and one signature for all of them (at most feed.MaxAppendEntries keys
// and feed.MaxAppendBytes in all).
func (s *Space) PutMany(ctx context.Context, kvs []KV) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	ops := make([]*Op, len(kvs))
	for i, kv := range kvs {
		if err := appKeys(kv.Key); err != nil {
			return err
		}
		ops[i] = &Op{Kind: OpPut, Key: kv.Key, Value: kv.Value}
	}
	_, err := s.write(ctx, ops...)
	return err
}

// Delete deletes key (a delete is an op in the key's register too).
func (s *Space) Delete(ctx context.Context, key string) error {
	if err := appKeys(key); err != nil {
		return err
	}
	return s.writeData(ctx, &Op{Kind: OpDelete, Key: key})
}

func (s *Space) writeData(ctx context.Context, op *Op) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	_, err := s.write(ctx, op)
	return err
}

// IsWriter reports whether this device's new ops count: it is a writer
// in the view, and no member showed it its removal (LearnRemoval).
func (s *Space) IsWriter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.removed && !s.staleLocked() && s.view.WriterSet().IsWriter(s.own)
}

// AddWriter approves a device: an add-writer op naming it, with the
// keyring sealed to its device key.
func (s *Space) AddWriter(ctx context.Context, target feed.PublicKey, name string, device *auth.DevicePublicKey) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	s.mu.Lock()
	kr := s.keyring
	s.mu.Unlock()
	if kr == nil {
		return ErrNoKeys
	}
	sealed, err := auth.SealKeyring(device, kr, auth.Binding{Space: s.id, Feed: target})
	if err != nil {
		return err
	}
	_, err = s.write(ctx, &Op{Kind: OpAddWriter, Target: target, Name: name, DevicePublic: device.Bytes(), SealedKeyring: sealed})
	return err
}

// RemoveWriter removes a device and starts a new epoch: a fresh secret
// sealed to every remaining writer, so the removed device reads nothing
// written after.
func (s *Space) RemoveWriter(ctx context.Context, target feed.PublicKey) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	rot, es, err := s.rotation(target)
	if err != nil {
		return err
	}
	_, err = s.write(ctx, &Op{Kind: OpRemoveWriter, Target: target, Rotation: rot})
	if err != nil && !errors.Is(err, errAppended) {
		return err
	}
	// The op is in the feed: its secret is the newest.
	s.mu.Lock()
	defer s.mu.Unlock()
	return cmp.Or(err, s.learnSecret(es))
}

// Rotate starts a new epoch without removing anyone.
func (s *Space) Rotate(ctx context.Context) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	rot, es, err := s.rotation(feed.PublicKey{})
	if err != nil {
		return err
	}
	_, err = s.write(ctx, &Op{Kind: OpRotate, Rotation: rot})
	if err != nil && !errors.Is(err, errAppended) {
		return err
	}
	// The op is in the feed: its secret is the newest.
	s.mu.Lock()
	defer s.mu.Unlock()
	return cmp.Or(err, s.learnSecret(es))
}

// ShareKeys seals the secret new entries are written with to every writer
// that may lack it: one approved concurrently with the rotation that
// started the epoch (its keyring predates the rotation, and the rotation
// has no box for it). Each box travels in a rotation op naming the same
// secret, so the epoch does not change; the op is sealed under the newest
// secret its recipient does hold, so that it can be opened (it carries
// nothing but the box). Only writers that count in the view get a box: a
// removed device never does. It writes nothing when every writer has the
// secret, so a second call, or a call by another holder after the share
// reached it, is harmless; it returns the number of ops written.
//
// The node calls it when ShareDue says so, after each refresh and at open.
func (s *Space) ShareKeys(ctx context.Context) (int, error) {
	if !s.IsWriter() {
		return 0, ErrReadOnly
	}
	type share struct {
		op     *Op
		secret auth.EpochSecret
	}
	var shares []share
	s.mu.Lock()
	es, missing, _, err := s.lacking()
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	keyID := es.KeyID(s.id)
	for _, m := range missing {
		d := m.device
		box, err := auth.SealEpochSecret(m.pub, es, auth.Binding{Space: s.id, Feed: d.Feed})
		if err != nil {
			s.mu.Unlock()
			return 0, err
		}
		under, found := auth.EpochSecret{}, false
		for _, held := range s.keyring.All() {
			if s.holds(d, held.KeyID(s.id)) && (!found || held.Epoch >= under.Epoch) {
				under, found = held, true
			}
		}
		if !found {
			continue // cannot happen: epoch 0 is in every keyring
		}
		shares = append(shares, share{
			op:     &Op{Kind: OpRotate, Rotation: &Rotation{Epoch: es.Epoch, KeyID: keyID, Boxes: []SealedSecret{{Feed: d.Feed, Box: box}}}},
			secret: under,
		})
	}
	s.mu.Unlock()
	for i, sh := range shares {
		if _, err := s.writeWith(ctx, &sh.secret, sh.op); err != nil {
			return i, err
		}
	}
	return len(shares), nil
}

// ShareDue reports whether a writer of the space lacks the secret new
// entries are written with and this device should share it (ShareKeys),
// and this device's rank among the writers that hold the secret, by feed
// key: the holder ranked 0 shares at once; the holder ranked r shares only
// if, r turns later, the writer still lacks it (the ones before it may be
// offline). So one member, not every member at once, appends the share,
// and a writer that lacks the secret gets it while any holder is online.
// due is false when no writer lacks the secret, or when this device cannot
// share it: it is not a writer, or lacks the secret itself. The answer is
// kept until a membership or rotation op is applied or a secret learned,
// so asking after every refresh costs nothing otherwise.
func (s *Space) ShareDue() (rank int, due bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := shareState{special: len(s.view.special), secrets: len(s.byKeyID), keyed: s.keyring != nil, removed: s.removed}
	if s.shareAt == at && s.shareAt.valid {
		return s.shareRank, s.shareDue
	}
	s.shareRank, s.shareDue = 0, false
	if !s.removed && s.view.WriterSet().IsWriter(s.own) {
		if _, missing, holders, err := s.lacking(); err == nil && len(missing) > 0 {
			i, found := slices.BinarySearchFunc(holders, s.own, func(a, b feed.PublicKey) int { return OpID{Feed: a}.compare(OpID{Feed: b}) })
			if !found {
				i = len(holders) // holds it by a way holds does not see: last
			}
			s.shareRank, s.shareDue = i, true
		}
	}
	at.valid = true
	s.shareAt = at
	return s.shareRank, s.shareDue
}

// shareState is what ShareDue's answer was computed from.
type shareState struct {
	valid          bool
	special        int // len(View.special): membership and rotation ops applied
	secrets        int // len(Space.byKeyID)
	keyed, removed bool
}

// missingKey is a writer that lacks the secret new entries are written
// with, and its device key.
type missingKey struct {
	device Device
	pub    *auth.DevicePublicKey
}

// lacking returns the secret new entries are written with (writeKey), the
// writers of the view that lack it and have a device key to seal it to,
// and the writers that hold it, sorted by feed key. The caller holds s.mu.
func (s *Space) lacking() (auth.EpochSecret, []missingKey, []feed.PublicKey, error) {
	es, err := s.writeKey()
	if err != nil {
		return es, nil, nil, err
	}
	keyID := es.KeyID(s.id)
	var missing []missingKey
	var holders []feed.PublicKey
	for _, d := range s.view.Devices() { // the writers that count: no removed device
		if d.Feed == s.own || s.holds(d, keyID) {
			holders = append(holders, d.Feed)
			continue
		}
		pub, err := auth.ParseDevicePublicKey(d.Public)
		if err != nil {
			continue // no device key to seal to
		}
		missing = append(missing, missingKey{device: d, pub: pub})
	}
	slices.SortFunc(holders, func(a, b feed.PublicKey) int { return OpID{Feed: a}.compare(OpID{Feed: b}) })
	return es, missing, holders, nil
}

// holds reports whether device d holds the secret named keyID: epoch 0 is
// in every keyring; a rotated secret when a rotation of it seals d a box,
// or d's approval came after such a rotation (the approver's keyring held
// it). The caller holds s.mu.
func (s *Space) holds(d Device, keyID [16]byte) bool {
	var started []*opRec
	for _, r := range s.view.special {
		if r.op.Rotation != nil && r.op.Rotation.KeyID == keyID {
			started = append(started, r)
		}
	}
	if len(started) == 0 {
		return s.keyring != nil && s.keyring.Epochs[0].KeyID(s.id) == keyID
	}
	return hasSecret(s.view, d, started)
}

// hasSecret reports whether device d holds the secret that rotations
// started: one of them seals it a box, or its approval came after one of
// them (the approver's keyring held it).
func hasSecret(v *View, d Device, started []*opRec) bool {
	add := v.specialOp(d.Added)
	for _, r := range started {
		for _, b := range r.op.Rotation.Boxes {
			if b.Feed == d.Feed {
				return true
			}
		}
		if add != nil && add.clock.sees(r.id) {
			return true
		}
	}
	return false
}

// rotation makes a new epoch secret sealed to every writer but skip.
func (s *Space) rotation(skip feed.PublicKey) (*Rotation, auth.EpochSecret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyring == nil {
		return nil, auth.EpochSecret{}, ErrNoKeys
	}
	n := uint32(len(s.keyring.Epochs))
	es, err := auth.NewEpochSecret(n, s.cfg.Rand)
	if err != nil {
		return nil, es, err
	}
	rot := &Rotation{Epoch: n, KeyID: es.KeyID(s.id)}
	for _, d := range s.view.Devices() {
		if d.Feed == skip {
			continue
		}
		pub, err := auth.ParseDevicePublicKey(d.Public)
		if err != nil {
			s.cfg.Logger.Warn("space: writer without a usable device key; it will need the new secret re-shared", "feed", fmt.Sprintf("%x", d.Feed[:8]))
			continue
		}
		box, err := auth.SealEpochSecret(pub, es, auth.Binding{Space: s.id, Feed: d.Feed})
		if err != nil {
			return nil, es, err
		}
		rot.Boxes = append(rot.Boxes, SealedSecret{Feed: d.Feed, Box: box})
	}
	return rot, es, nil
}

// Feeds returns the feeds of the space: the ones this device reads into
// the view and replicates — serves to peers, fetches from them and accepts
// from them. They are
//
//   - the origin feed and this device's own;
//   - the feed of every writer whose add counts (removed writers too:
//     their ops before the removal still count);
//   - the causal past of those: every feed an op of theirs has seen (to
//     decide whether an op counts, and to apply it, its causal past must
//     be held), including the feed an op waits for;
//   - before this device holds a key, the feeds the clear headers of
//     add-writer ops name, followed from the origin (findKeyring): it
//     cannot yet tell which adds count, and needs the writers' feeds to
//     find its approval and build the view.
//
// The target of an add-writer op that does not count is not a feed of the
// space, unless an op that counts has it in its causal past.
func (s *Space) Feeds() []feed.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.feedsLocked()
}

// HasFeed reports whether k is one of Feeds.
func (s *Space) HasFeed(k feed.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feedsLocked()
	_, ok := slices.BinarySearchFunc(s.feeds, k, func(a, b feed.PublicKey) int { return OpID{Feed: a}.compare(OpID{Feed: b}) })
	return ok
}

func (s *Space) feedsLocked() []feed.PublicKey {
	at := feedsState{gen: s.view.gen, keyed: s.keyring != nil, named: len(s.named)}
	if s.feeds == nil || s.feedsAt != at {
		s.feeds, s.feedsAt = s.computeFeeds(), at
	}
	return slices.Clone(s.feeds)
}

func (s *Space) computeFeeds() []feed.PublicKey {
	set := map[feed.PublicKey]bool{s.origin: true, s.own: true}
	for k := range s.view.ws.adds {
		set[k] = true
	}
	if s.keyring == nil {
		for k := range s.named {
			set[k] = true
		}
	}
	// What an op waits for, by the feed of the op.
	waits := make(map[feed.PublicKey][]feed.PublicKey)
	for dep, ids := range s.view.blocked {
		for _, id := range ids {
			waits[id.Feed] = append(waits[id.Feed], dep)
		}
	}
	queue := make([]feed.PublicKey, 0, len(set))
	for k := range set {
		queue = append(queue, k)
	}
	for len(queue) > 0 {
		k := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		var past []feed.PublicKey
		if st := s.view.feeds[k]; st != nil {
			for f := range st.clock {
				past = append(past, f)
			}
		}
		past = append(past, waits[k]...)
		for _, f := range past {
			if !set[f] {
				set[f] = true
				queue = append(queue, f)
			}
		}
	}
	out := make([]feed.PublicKey, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b feed.PublicKey) int { return OpID{Feed: a}.compare(OpID{Feed: b}) })
	return out
}

// Refresh reads the entries the feeds hold that the view has not applied
// yet, in order, applies them and flushes the view. The node calls it
// after ingesting data from a peer. An error is the storage failing
// (ErrViewStorage, or the keyring's); the changes are then told to
// watchers once a later call has read the feeds again.
func (s *Space) Refresh() ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.reopenLocked(); err != nil {
		return nil, err
	}
	return s.refreshLocked()
}

// usableLocked opens the view again and reads the feeds into it if a
// storage error stopped it (see View). The caller holds s.mu.
func (s *Space) usableLocked() error {
	if s.view.err == nil {
		return nil
	}
	if err := s.reopenLocked(); err != nil {
		return err
	}
	_, err := s.refreshLocked()
	return err
}

// reopenLocked replaces a view that a storage error stopped with one
// opened again from what its storage last committed; the caller reads the
// feeds into it (refreshLocked). The caller holds s.mu.
func (s *Space) reopenLocked() error {
	if s.view.err == nil {
		return nil
	}
	view, err := OpenView(s.origin, s.cfg.Store, s.cfg.Device.LocalKey(s.id), s.cfg.Rand)
	if err != nil {
		return fmt.Errorf("%w: open the view again: %w", ErrViewStorage, err)
	}
	s.view = view
	s.feeds, s.shareAt = nil, shareState{} // computed from the old view
	return nil
}

// refreshLocked is Refresh. The caller holds s.mu.
func (s *Space) refreshLocked() ([]Change, error) {
	if s.keyring == nil || s.stale != (feed.PublicKey{}) {
		s.findKeyring()
	}
	var all []Change
	for progress := true; progress; {
		progress = false
		for _, k := range s.feedsLocked() {
			if k == s.own && s.view.Applied(k) == s.w.Length() {
				continue
			}
			changes, n, err := s.readFeed(k)
			if err != nil {
				return nil, err
			}
			all = append(all, changes...)
			progress = progress || n > 0
		}
	}
	s.checkStaleLocked()
	if err := s.view.Flush(); err != nil {
		return nil, err
	}
	s.notify(all)
	return all, nil
}

// readFeed applies the held entries of feed k from the first not applied.
// An error is the storage failing.
func (s *Space) readFeed(k feed.PublicKey) ([]Change, int, error) {
	f, err := s.cfg.Feeds.Feed(k)
	if err != nil {
		return nil, 0, nil
	}
	next := s.view.Applied(k) + uint64(s.view.waitingFrom(k))
	var changes []Change
	n := 0
	for _, r := range f.Ranges() {
		if r.End <= next {
			continue
		}
		if r.Start > next {
			break // a gap: the view applies a feed in order
		}
		entries, err := f.GetRange(next, r.End)
		if err != nil {
			return changes, n, nil
		}
		for i, data := range entries {
			idx := next + uint64(i)
			s.read++
			op, err := OpenEntry(s.id, k, idx, data, s.keys)
			if errors.Is(err, ErrUnknownKey) && (s.keyringFromHeader(k, data) || s.keysAhead(f, k, idx, data)) {
				op, err = OpenEntry(s.id, k, idx, data, s.keys)
			}
			if errors.Is(err, ErrUnknownKey) {
				s.keyWait[k] = true
				return changes, n, nil
			}
			delete(s.keyWait, k)
			var c []Change
			if err != nil {
				c, err = s.view.ApplyInvalid(k, idx, err.Error())
			} else if err = s.collectKeys(k, op); err == nil {
				s.hlc = max(s.hlc, op.HLC) // stay ahead of every op seen
				c, err = s.view.Apply(k, idx, op)
			}
			if err != nil {
				return nil, n, err
			}
			changes = append(changes, c...)
			n++
		}
		next = r.End
	}
	return changes, n, nil
}

// keyringFromHeader opens the keyring an add-writer entry seals to this
// device in its clear header: the way an approved device gets its first
// keys. It reports whether it learned any.
func (s *Space) keyringFromHeader(author feed.PublicKey, data []byte) bool {
	h, err := PeekEntry(data)
	if err != nil || h.Membership != OpAddWriter || h.Target != s.own || len(h.SealedKeyring) == 0 {
		return false
	}
	kr, err := auth.OpenKeyring(s.cfg.Device, h.SealedKeyring, s.binding())
	if err != nil {
		s.cfg.Logger.Warn("space: keyring sealed to this device does not open", "author", fmt.Sprintf("%x", author[:8]), "err", err)
		return false
	}
	if err := s.setKeyring(kr); err != nil {
		s.cfg.Logger.Warn("space: store keyring", "err", err)
		return false
	}
	return true
}

// findKeyring looks through the clear headers of the entries held for an
// add-writer that seals the keyring to this device: until it holds a key, a
// device cannot read the ops before its approval, so it cannot reach the
// approval in order. It follows the feeds the headers add, from the origin,
// which also tells the node which feeds to fetch before approval.
func (s *Space) findKeyring() {
	queue := s.feedsLocked()
	seen := map[feed.PublicKey]bool{}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		if seen[k] {
			continue
		}
		seen[k] = true
		f, err := s.cfg.Feeds.Feed(k)
		if err != nil {
			continue
		}
		// A header's answer never changes: look only at entries not
		// peeked at before (held ranges only grow).
		held := f.Ranges()
		for _, r := range unpeeked(held, s.peeked[k]) {
			for i := r.Start; i < r.End; i++ {
				data, err := f.Get(i)
				if err != nil {
					continue
				}
				if s.keyringFromHeader(k, data) && s.stale == (feed.PublicKey{}) {
					return
				}
				if h, err := PeekEntry(data); err == nil && h.Membership == OpAddWriter && !seen[h.Target] {
					s.named[h.Target] = true
					queue = append(queue, h.Target)
				}
			}
		}
		s.peeked[k] = held
	}
}

// unpeeked returns the parts of the held ranges not in done (both sorted
// and disjoint; done is a subset of an earlier held).
func unpeeked(held, done []feed.Range) []feed.Range {
	var out []feed.Range
	for _, r := range held {
		start := r.Start
		for _, d := range done {
			if d.End <= start || d.Start >= r.End {
				continue
			}
			if d.Start > start {
				out = append(out, feed.Range{Start: start, End: d.Start})
			}
			start = max(start, d.End)
		}
		if start < r.End {
			out = append(out, feed.Range{Start: start, End: r.End})
		}
	}
	return out
}

// keysAhead looks for the key an entry at index of feed k needs in the
// entries after it that this device can open: a secret shared with it
// later in the same feed (ShareKeys) sits behind the entries it unlocks.
func (s *Space) keysAhead(f *feed.Feed, k feed.PublicKey, index uint64, data []byte) bool {
	h, err := PeekEntry(data)
	if err != nil {
		return false
	}
	for _, r := range f.Ranges() {
		for i := max(r.Start, index+1); i < r.End; i++ {
			later, err := f.Get(i)
			if err != nil {
				continue
			}
			op, err := OpenEntry(s.id, k, i, later, s.keys)
			if err != nil || op.Rotation == nil {
				continue
			}
			if s.collectKeys(k, op) != nil {
				return false // the entry's own reading reports it
			}
			if _, ok := s.byKeyID[h.KeyID]; ok {
				return true
			}
		}
	}
	return false
}

// keys looks up an epoch secret for OpenEntry.
func (s *Space) keys(id [16]byte) (auth.EpochSecret, bool) {
	es, ok := s.byKeyID[id]
	return es, ok
}

// collectKeys opens what an op seals to this device: a keyring on an
// add-writer naming it, a secret in a rotation. An error is the keyring's
// storage failing (what does not open is logged: a peer may have sealed
// it wrong).
func (s *Space) collectKeys(author feed.PublicKey, op *Op) error {
	if op.Kind == OpAddWriter && op.Target == s.own && len(op.SealedKeyring) > 0 {
		kr, err := auth.OpenKeyring(s.cfg.Device, op.SealedKeyring, s.binding())
		if err != nil {
			s.cfg.Logger.Warn("space: keyring sealed to this device does not open", "author", fmt.Sprintf("%x", author[:8]), "err", err)
		} else if err := s.setKeyring(kr); err != nil {
			return fmt.Errorf("space: store keyring: %w", err)
		}
	}
	if op.Rotation != nil {
		for _, b := range op.Rotation.Boxes {
			if b.Feed != s.own {
				continue
			}
			es, err := auth.OpenEpochSecret(s.cfg.Device, b.Box, s.binding())
			if err != nil {
				s.cfg.Logger.Warn("space: rotated secret sealed to this device does not open", "err", err)
				continue
			}
			if err := s.learnSecret(es); err != nil {
				return fmt.Errorf("space: store keyring: %w", err)
			}
		}
	}
	return nil
}

// Err says whether Get, List, Digest and Keys could answer in full, for
// the caller to check after them. It reports a storage error that stopped
// the view and that reading it again has not yet overcome (ErrViewStorage:
// those calls, and the next write or Refresh, try again), or else the
// first error a read of the stored view met (View.Err): after one, Get
// and List may miss what the failed record held. The store is damaged;
// mycel check says where.
func (s *Space) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.view.err; err != nil {
		return fmt.Errorf("space %s: %w (if this lasts, run mycel check)", s.id, err)
	}
	if err := s.view.Err(); err != nil {
		return fmt.Errorf("space %s: the stored view is damaged (%w): run mycel check", s.id, err)
	}
	return nil
}

// Get returns the versions of key, winner first (nil if never written).
func (s *Space) Get(key string) []Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.usableLocked() // Err reports it
	return s.view.Get(key)
}

// List returns up to limit keys with the prefix, after `after`, whose
// winning version is not a delete. The space's own keys (SystemPrefix)
// are listed only for a prefix that starts with SystemPrefix.
func (s *Space) List(prefix, after string, limit int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.usableLocked() // Err reports it
	return s.view.List(prefix, after, limit)
}

// Digest returns the view's digest.
func (s *Space) Digest() [32]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.usableLocked() // Err reports it
	return s.view.Digest()
}

// Keys returns the number of keys whose winning version is not a delete.
func (s *Space) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.usableLocked() // Err reports it
	return s.view.Keys()
}

// Devices returns the writers and what their adds said.
func (s *Space) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.view.Devices()
}

// Invalid returns the entries that were refused and why.
func (s *Space) Invalid() []Invalid {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.view.Invalid()
}

// Diagnostics says what the view refused or holds back: refusals with
// reasons, ops that do not count, ops stuck waiting for entries that may
// never come.
func (s *Space) Diagnostics() Diagnostics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.view.Diagnostics()
}

// Watcher receives the changes of keys with a prefix.
type Watcher struct {
	prefix string
	C      chan Change
	err    error
}

// Err returns why the watcher's channel was closed, if it was.
func (w *Watcher) Err() error { return w.err }

// Watch returns a watcher of keys with prefix. Its channel holds up to 1024
// changes; a watcher that falls further behind is closed with
// ErrWatchOverflow (read the current values again and watch anew).
func (s *Space) Watch(prefix string) *Watcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &Watcher{prefix: prefix, C: make(chan Change, 1024)}
	s.watchers = append(s.watchers, w)
	return w
}

// Unwatch stops a watcher and closes its channel.
func (s *Space) Unwatch(w *Watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.watchers, w); i >= 0 {
		s.watchers = slices.Delete(s.watchers, i, i+1)
		close(w.C)
	}
}

// notify sends changes to watchers. The caller holds s.mu.
func (s *Space) notify(changes []Change) {
	if len(changes) == 0 {
		return
	}
	kept := s.watchers[:0]
	for _, w := range s.watchers {
		ok := true
		for _, c := range changes {
			if !strings.HasPrefix(c.Key, w.prefix) || hidden(c.Key, w.prefix) {
				continue
			}
			select {
			case w.C <- c:
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok {
			kept = append(kept, w)
		} else {
			w.err = ErrWatchOverflow
			close(w.C)
		}
	}
	s.watchers = kept
}

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
