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

// provenEntry decodes removal evidence: one entry of a feed, proven
// against a signed head of that feed (feed.Batch.Verify). It returns the
// entry's feed, index and sealed bytes; the caller checks who wrote it and
// what it says.
func provenEntry(evidence []byte) (author feed.PublicKey, index uint64, data []byte, err error) {
	if len(evidence) > MaxRemovalEvidence {
		return author, 0, nil, fmt.Errorf("%w: %d bytes", ErrNotRemoval, len(evidence))
	}
	var b feed.Batch
	if err := b.UnmarshalBinary(evidence); err != nil {
		return author, 0, nil, fmt.Errorf("%w: %v", ErrNotRemoval, err)
	}
	if len(b.Runs) != 1 || len(b.Runs[0].Entries) != 1 || b.Consistency != nil {
		return author, 0, nil, fmt.Errorf("%w: not one entry", ErrNotRemoval)
	}
	if err := b.Verify(); err != nil {
		return author, 0, nil, fmt.Errorf("%w: %v", ErrNotRemoval, err)
	}
	return b.Head.Key, b.Runs[0].Start, b.Runs[0].Entries[0], nil
}

// LearnRemoval checks evidence that this device was removed and, if it
// holds, records it: from then on the device is no writer (IsWriter,
// Removed), whatever its view says, and admits no peer. The evidence must
// be one entry proven against a signed head of a feed that is a writer in
// this device's view, that opens with a key this device holds, and whose
// op removes this device. ErrNotRemoval otherwise.
func (s *Space) LearnRemoval(evidence []byte) error {
	author, index, data, err := provenEntry(evidence)
	if err != nil {
		return err
	}
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

// A device approved by a writer that was removed before it approved it —
// a removed device no member had told yet — holds a keyring and a view in
// which its add counts, but the members count neither: they refuse its
// sessions. A member shows it the evidence of its approver's removal, the
// same evidence as above, naming the approver instead of this device
// (LearnApproverRemoval). The device then is no writer and not approved
// (Approved, IsWriter) while it keeps what it holds: it tries an approval
// again (TryKeyring) and is approved once its view holds the removal and
// still counts it a writer — an add by a writer that was not removed.

func (s *Space) staleKey() []byte { return append([]byte("sa"), s.id[:]...) }

func (s *Space) staleLocked() bool { return s.stale != (feed.PublicKey{}) }

// Approver returns the writer whose add of this device counts first in its
// view, if any (the origin has none).
func (s *Space) Approver() (feed.PublicKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.approverLocked()
}

func (s *Space) approverLocked() (feed.PublicKey, bool) {
	adds := s.view.ws.adds[s.own]
	if len(adds) == 0 {
		return feed.PublicKey{}, false
	}
	return adds[0].Feed, true
}

// LearnApproverRemoval checks evidence that the writer that approved this
// device was removed and, if it holds, records it (Stale): the evidence
// must be one entry proven against a signed head of a feed that is a
// writer in this device's view (not the approver, not this device), that
// opens with a key this device holds, whose op removes the writer whose
// accepted adds are the only ones of this device in its view, and that
// removal must not be in the view already. ErrNotRemoval otherwise.
func (s *Space) LearnApproverRemoval(evidence []byte) error {
	author, index, data, err := provenEntry(evidence)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || s.staleLocked() {
		return nil
	}
	if s.keyring == nil {
		return fmt.Errorf("%w: this device holds no key", ErrNotRemoval)
	}
	approver, ok := s.approverLocked()
	if !ok {
		return fmt.Errorf("%w: this device was added by nobody", ErrNotRemoval)
	}
	for _, a := range s.view.ws.adds[s.own] {
		if a.Feed != approver {
			return fmt.Errorf("%w: this device was added by more than one writer", ErrNotRemoval)
		}
	}
	if len(s.view.ws.removals[approver]) > 0 {
		return fmt.Errorf("%w: the approver's removal is known already", ErrNotRemoval)
	}
	if author == s.own || author == approver || !s.view.ws.IsWriter(author) {
		return fmt.Errorf("%w: the remover is not a writer here", ErrNotRemoval)
	}
	op, err := OpenEntry(s.id, author, index, data, s.keys)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotRemoval, err)
	}
	if op.Kind != OpRemoveWriter || op.Target != approver {
		return fmt.Errorf("%w: op of kind %d on %x", ErrNotRemoval, op.Kind, op.Target[:8])
	}
	if err := s.cfg.Store.Commit([]feed.Write{{Key: s.staleKey(), Value: approver[:]}}); err != nil {
		return err
	}
	s.stale = approver
	s.cfg.Logger.Warn("space: the writer that approved this device was removed before; asking again", "space", s.id,
		"approver", fmt.Sprintf("%x", approver[:8]), "by", fmt.Sprintf("%x", author[:8]))
	return nil
}

// Stale reports whether this device was shown its approver's removal and
// is not yet approved again (LearnApproverRemoval).
func (s *Space) Stale() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.staleLocked()
}

// checkStaleLocked clears the mark once the view holds the approver's
// removal and still counts this device a writer. The caller holds s.mu.
func (s *Space) checkStaleLocked() {
	if !s.staleLocked() || len(s.view.ws.removals[s.stale]) == 0 || !s.view.ws.IsWriter(s.own) {
		return
	}
	if err := s.cfg.Store.Commit([]feed.Write{{Key: s.staleKey(), Delete: true}}); err != nil {
		s.cfg.Logger.Error("space: clear the approver's removal", "err", err)
		return
	}
	s.stale = feed.PublicKey{}
	s.trial = nil
	s.cfg.Logger.Info("space: approved again by a writer of the space", "space", s.id)
}

// loadStale restores the mark LearnApproverRemoval stored. The caller
// holds s.mu or has not published s.
func (s *Space) loadStale() error {
	v, err := s.cfg.Store.Get(s.staleKey())
	switch {
	case errors.Is(err, feed.ErrNotFound):
		return nil
	case err != nil:
		return err
	case len(v) != len(s.stale):
		return fmt.Errorf("space: approver's removal mark of %d bytes", len(v))
	}
	s.stale = feed.PublicKey(v)
	return nil
}
