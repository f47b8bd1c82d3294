package space

import (
	"errors"
	"fmt"

	"github.com/mycelsync/mycel/feed"
)

// A removed device's sessions are refused from the moment its removal is
// known, so it never replicates the removal itself: it would go on
// believing it is a writer. Members therefore hand it the evidence — the
// signed remove-writer entry, with a signed head of the remover's feed and
// the entry's inclusion proof (a feed.Batch of that one entry) — over the
// ephemeral channel. It verifies from the remover's feed key alone, which
// the removed device knows; the device accepts it only if the remover is a
// writer in its own view and the entry, opened with a key it holds, is a
// remove-writer op naming it (LearnRemoval).

// MaxRemovalEvidence bounds the evidence of a removal: one entry (a
// remove-writer op carries a sealed secret of 1,173 bytes per remaining
// writer) and a compact range of at most 128 hashes on each side.
const MaxRemovalEvidence = 40 << 10

// ErrNotRemoval: evidence that does not prove this device's removal.
var ErrNotRemoval = errors.New("space: not evidence of this device's removal")

func (s *Space) removalKey() []byte { return append([]byte("sr"), s.id[:]...) }

// RemovalEvidence returns the evidence of the standing removal of target
// (a feed.Batch holding the remove-writer entry, encoded), if this device
// holds that entry.
func (s *Space) RemovalEvidence(target feed.PublicKey) ([]byte, bool) {
	s.mu.Lock()
	rs := s.view.ws.removals[target]
	var id OpID
	if len(rs) > 0 {
		id = rs[0].ID
	}
	s.mu.Unlock()
	if len(rs) == 0 {
		return nil, false
	}
	f, err := s.cfg.Feeds.Feed(id.Feed)
	if err != nil {
		return nil, false
	}
	b, err := f.Batch(feed.BatchRequest{Want: []feed.Range{{Start: id.Index, End: id.Index + 1}}, Base: f.Length()})
	if err != nil || len(b.Runs) != 1 || b.Runs[0].Start != id.Index || len(b.Runs[0].Entries) != 1 {
		return nil, false
	}
	raw, err := b.MarshalBinary()
	if err != nil || len(raw) > MaxRemovalEvidence {
		return nil, false
	}
	return raw, true
}

// LearnRemoval checks evidence that this device was removed and, if it
// holds, records it: from then on the device is no writer (IsWriter,
// Removed), whatever its view says, and admits no peer. The evidence must
// be one entry proven against a signed head of a feed that is a writer in
// this device's view, that opens with a key this device holds, and whose
// op removes this device. ErrNotRemoval otherwise.
func (s *Space) LearnRemoval(evidence []byte) error {
	if len(evidence) > MaxRemovalEvidence {
		return fmt.Errorf("%w: %d bytes", ErrNotRemoval, len(evidence))
	}
	var b feed.Batch
	if err := b.UnmarshalBinary(evidence); err != nil {
		return fmt.Errorf("%w: %v", ErrNotRemoval, err)
	}
	if len(b.Runs) != 1 || len(b.Runs[0].Entries) != 1 || b.Consistency != nil {
		return fmt.Errorf("%w: not one entry", ErrNotRemoval)
	}
	if err := b.Verify(); err != nil {
		return fmt.Errorf("%w: %v", ErrNotRemoval, err)
	}
	author, index, data := b.Head.Key, b.Runs[0].Start, b.Runs[0].Entries[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return nil
	}
	if s.keyring == nil {
		return fmt.Errorf("%w: this device holds no key", ErrNotRemoval)
	}
	if author == s.own || !s.view.ws.IsWriter(author) {
		return fmt.Errorf("%w: the remover is not a writer here", ErrNotRemoval)
	}
	op, err := OpenEntry(s.id, author, index, data, s.keys)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotRemoval, err)
	}
	if op.Kind != OpRemoveWriter || op.Target != s.own {
		return fmt.Errorf("%w: op of kind %d on %x", ErrNotRemoval, op.Kind, op.Target[:8])
	}
	if err := s.cfg.Store.Commit([]feed.Write{{Key: s.removalKey(), Value: evidence}}); err != nil {
		return err
	}
	s.removed = true
	s.cfg.Logger.Warn("space: this device was removed", "space", s.id, "by", fmt.Sprintf("%x", author[:8]))
	return nil
}

// loadRemoved restores the mark LearnRemoval stored. The caller holds s.mu
// or has not published s.
func (s *Space) loadRemoved() error {
	_, err := s.cfg.Store.Get(s.removalKey())
	switch {
	case errors.Is(err, feed.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	s.removed = true
	return nil
}

// Removed reports whether this device was removed from the space: its
// view shows its removal, or a member showed it the evidence.
func (s *Space) Removed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removedLocked()
}

func (s *Space) removedLocked() bool {
	return s.removed || len(s.view.ws.removals[s.own]) > 0
}

// WasRemoved reports whether k is the feed of a device whose removal stands.
func (s *Space) WasRemoved(k feed.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.view.ws.removals[k]) > 0
}
