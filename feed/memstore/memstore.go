// Package memstore is an in-memory feed.Storage, for tests and for
// throwaway nodes that do not need to survive a restart.
//
// Entries are kept in a slice sorted by key, so Get is a binary search and
// Scan walks the slice. Inserting in the middle costs a copy of the tail,
// which is cheap for the append-mostly key patterns feeds produce and fine
// for test-sized data sets.
//
// Keys and values are copied on the way in and out, so callers may reuse or
// mutate their buffers freely. Commit applies all of its writes under one
// lock: readers see either none or all of them. Nothing is durable: Close
// drops the data.
//
// Scan does not hold the lock while it calls fn: it copies a small chunk of
// the range under the read lock, releases it, and hands the chunk to fn one
// entry at a time. fn may therefore call back into the store (Get, Commit,
// even Scan) without deadlocking. The price is that a Scan is not a
// point-in-time snapshot: a Commit that lands while a Scan is running may be
// visible for the keys the Scan has not reached yet. Every key is still
// visited at most once, in ascending order.
package memstore

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/mycelsync/mycel/feed"
)

// scanChunk is how many entries Scan copies per trip under the read lock.
const scanChunk = 64

type entry struct {
	key, value []byte
}

// Store is an in-memory feed.Storage. Use New to create one.
type Store struct {
	mu     sync.RWMutex
	closed bool
	// entries is sorted by key with no duplicates. The key and value byte
	// slices of an entry are never modified once stored (an overwrite
	// replaces the slice), so copies of entry values taken under the lock
	// stay valid after it is released.
	entries []entry
}

var _ feed.Storage = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{}
}

// search returns the index of key in s.entries, or where it would be
// inserted, and whether it is present. The caller holds s.mu.
func (s *Store) search(key []byte) (int, bool) {
	return slices.BinarySearchFunc(s.entries, key, func(e entry, k []byte) int {
		return bytes.Compare(e.key, k)
	})
}

// Get returns a copy of the value stored under key, or feed.ErrNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, feed.ErrStorageClosed
	}
	i, ok := s.search(key)
	if !ok {
		return nil, feed.ErrNotFound
	}
	return bytes.Clone(s.entries[i].value), nil
}

// Scan calls fn for each key in [start, end) in ascending order; a nil end
// means no upper bound. The key and value passed to fn are copies that are
// reused for the next call, so fn may modify them but must not keep them.
func (s *Store) Scan(start, end []byte, fn func(key, value []byte) error) error {
	var (
		chunk    = make([]entry, 0, scanChunk)
		from     = start
		inclFrom = true // whether the first chunk may include from itself
		kbuf     []byte
		vbuf     []byte
	)
	for {
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return feed.ErrStorageClosed
		}
		i, found := s.search(from)
		if found && !inclFrom {
			i++ // from was the last key handed out; resume after it
		}
		chunk = chunk[:0]
		for ; i < len(s.entries) && len(chunk) < scanChunk; i++ {
			e := s.entries[i]
			if end != nil && bytes.Compare(e.key, end) >= 0 {
				break
			}
			chunk = append(chunk, e)
		}
		more := i < len(s.entries) && len(chunk) == scanChunk
		s.mu.RUnlock()

		for _, e := range chunk {
			kbuf = append(kbuf[:0], e.key...)
			vbuf = append(vbuf[:0], e.value...)
			if err := fn(kbuf, vbuf); err != nil {
				if errors.Is(err, feed.ErrStopScan) {
					return nil
				}
				return err
			}
		}
		if !more {
			return nil
		}
		// The stored key slice is immutable, so it can serve as the next
		// lower bound without copying.
		from, inclFrom = chunk[len(chunk)-1].key, false
	}
}

// Commit applies writes atomically. Later writes to the same key win. A
// commit beyond feed.MaxCommitWrites or feed.MaxCommitBytes fails with an
// error wrapping feed.ErrCommitTooLarge and changes nothing.
func (s *Store) Commit(writes []feed.Write) error {
	if err := feed.CheckCommit(writes); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}

	// Copy before taking the lock, so the critical section is only the
	// slice surgery. Sorting (stably, so the last write to a key stays last)
	// lets the loop below insert in key order.
	own := make([]feed.Write, len(writes))
	for i, w := range writes {
		own[i] = feed.Write{Key: bytes.Clone(w.Key), Delete: w.Delete}
		if !w.Delete {
			own[i].Value = bytes.Clone(w.Value)
		}
	}
	slices.SortStableFunc(own, func(a, b feed.Write) int { return bytes.Compare(a.Key, b.Key) })

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return feed.ErrStorageClosed
	}
	var ins []entry // new keys, in key order
	for j, w := range own {
		if j+1 < len(own) && bytes.Equal(w.Key, own[j+1].Key) {
			continue // overridden by a later write in this commit
		}
		i, found := s.search(w.Key)
		switch {
		case w.Delete && found:
			s.entries = slices.Delete(s.entries, i, i+1)
		case w.Delete:
			// Deleting a missing key is a no-op.
		case found:
			s.entries[i].value = w.Value
		default:
			ins = append(ins, entry{key: w.Key, value: w.Value})
		}
	}
	s.insert(ins)
	return nil
}

// insert merges ins (sorted, none of its keys in s.entries) into
// s.entries, from the back: each entry moves once per commit, not once per
// key inserted before it, so a commit of m new keys costs O(n+m), not
// O(n·m). s.mu is held.
func (s *Store) insert(ins []entry) {
	if len(ins) == 0 {
		return
	}
	n := len(s.entries)
	s.entries = slices.Grow(s.entries, len(ins))[:n+len(ins)]
	i, j := n-1, len(ins)-1
	for k := len(s.entries) - 1; j >= 0; k-- {
		if i >= 0 && bytes.Compare(s.entries[i].key, ins[j].key) > 0 {
			s.entries[k] = s.entries[i]
			i--
		} else {
			s.entries[k] = ins[j]
			j--
		}
	}
}

// Close drops all data. Later calls, including Close, return
// feed.ErrStorageClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return feed.ErrStorageClosed
	}
	s.closed = true
	s.entries = nil
	return nil
}

// Len returns the number of keys in the store (0 once closed). It is meant
// for tests and diagnostics.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}
