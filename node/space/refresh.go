package space

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/mycelsync/mycel/feed"
)

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
	s.damaged = cmp.Or(s.damaged, s.view.damage())
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
