package space

import (
	"fmt"
	"maps"
	"slices"

	"github.com/mycelsync/mycel/feed"
)

func (s *kvStore) needsFlush() bool {
	return s.bufBytes >= s.lim.flushBytes || s.dirtyFull()
}

func (s *kvStore) dirtyFull() bool {
	return len(s.dirty) >= s.lim.dirtyMax || s.dirtyBytes >= s.lim.dirtyBytes
}

func (s *kvStore) needsCheckpoint() bool {
	return s.member || s.dirtyFull() || s.seq-s.ckpt >= s.lim.checkpointOps ||
		s.tailBytes >= s.lim.checkpointBytes
}

// flush commits the log buffered since the last flush, then meta. When the
// writes exceed one commit, the pages go first, in as many commits as
// needed: until meta says the log is longer they are ignored (and deleted
// on open). Then, when one is due, it makes a checkpoint: a flush that has
// nothing new to write makes one whenever the log has a tail.
func (s *kvStore) flush(meta func() []byte) error {
	if s.err != nil {
		return s.err
	}
	// Nothing logged since the last flush (meta may still have changed:
	// an invalid op is not logged).
	quiet := s.seq == s.flushed && len(s.writes) == 0 && s.pageN == 0
	s.endPage()
	metaKey := s.recKey('m')
	seq := s.seq
	s.flushed = seq
	if err := s.commit(s.writes, func() feed.Write { return s.seal(metaKey, meta()) }); err != nil {
		s.flushed -= uint64(len(s.recent))
		return fmt.Errorf("space: flush view: %w", err)
	}
	s.writes, s.bufBytes = nil, 0
	s.recent = nil
	if !(quiet && s.ckpt < seq) && !s.needsCheckpoint() {
		return nil
	}
	if err := s.checkpoint(); err != nil {
		return fmt.Errorf("space: flush view: %w", err)
	}
	ckpt := s.ckpt
	s.ckpt = seq
	if err := s.commit(nil, func() feed.Write { return s.seal(metaKey, meta()) }); err != nil {
		s.ckpt = ckpt
		return fmt.Errorf("space: flush view: %w", err)
	}
	s.tailBytes, s.member = 0, false
	return nil
}

// commit writes ws and the record last() returns, in one commit if they
// fit, otherwise ws in several and last alone after them.
func (s *kvStore) commit(ws []feed.Write, last func() feed.Write) error {
	final := last()
	if s.err != nil {
		return s.err
	}
	size := len(final.Key) + len(final.Value)
	for _, w := range ws {
		size += len(w.Key) + len(w.Value)
	}
	if size <= s.lim.commitBytes && len(ws) < s.lim.commitWrites {
		return s.st.Commit(append(ws, final))
	}
	for len(ws) > 0 {
		n, size := 0, 0
		for n < len(ws) && n < s.lim.commitWrites && (n == 0 || size+len(ws[n].Key)+len(ws[n].Value) <= s.lim.commitBytes) {
			size += len(ws[n].Key) + len(ws[n].Value)
			n++
		}
		if err := s.st.Commit(ws[:n]); err != nil {
			return err
		}
		ws = ws[n:]
	}
	return s.st.Commit([]feed.Write{final})
}

// checkpoint writes every register changed since the last checkpoint, as
// of s.seq (all flushed). A checkpoint cut short leaves registers newer
// than meta's checkpoint: each says which ops it reflects, so reading the
// tail again skips them.
func (s *kvStore) checkpoint() error {
	for key := range s.pending {
		s.register(key)
	}
	if s.err != nil {
		return s.err
	}
	if s.stored == nil {
		s.loadStored()
	}
	var batch []feed.Write
	size := 0
	for _, key := range slices.Sorted(maps.Keys(s.dirty)) {
		reg := s.dirty[key].reg
		h := s.keyHash(key)
		w := s.seal(s.recKey('r', h), s.encodeRegister(key, reg, s.seq))
		batch = append(batch, w)
		size += len(w.Key) + len(w.Value)
		s.stored.add(h)
		if size >= s.lim.commitBytes/2 || len(batch) == s.lim.commitWrites {
			if err := s.st.Commit(batch); err != nil {
				return err
			}
			batch, size = batch[:0], 0
		}
	}
	if len(batch) > 0 {
		if err := s.st.Commit(batch); err != nil {
			return err
		}
	}
	if s.err != nil {
		return s.err
	}
	// The registers are clean now (and lean since setDirty).
	for key, m := range s.dirty {
		m.reg.seq = s.seq
		s.cache(key, m.reg)
	}
	clear(s.dirty)
	s.dirtyBytes = 0
	return nil
}
