package space

import (
	"context"
	"slices"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

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
