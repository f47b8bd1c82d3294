package space

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

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
