package feed

import (
	"bytes"
	"fmt"
	"sync/atomic"
)

// MaxPrefixSize is the longest prefix Prefixed takes. Every commit the
// feed package makes leaves room for this many bytes more per write, so
// that a DB over a Prefixed store never makes a commit its Storage refuses.
const MaxPrefixSize = 64

// Prefixed returns a Storage that keeps its keys under prefix in st: a
// namespace, so that several DBs (one per space) share one store and each
// sees only its own keys. Keys inside follow the Storage rules (CheckKey,
// CheckCommit); the commit st receives is larger by len(prefix) per write.
// Close ends the namespace's handle, not st. prefix must be 1 to
// MaxPrefixSize bytes, not a prefix of "!badger!", and not itself start
// the keys of another namespace in st (callers pick prefixes of one fixed
// length).
func Prefixed(st Storage, prefix []byte) Storage {
	if len(prefix) == 0 || len(prefix) > MaxPrefixSize || bytes.HasPrefix(reservedPrefix, prefix[:min(len(prefix), len(reservedPrefix))]) {
		panic(fmt.Sprintf("feed: namespace prefix %q", prefix))
	}
	return &prefixed{st: st, p: bytes.Clone(prefix)}
}

type prefixed struct {
	st     Storage
	p      []byte
	closed atomic.Bool
}

func (s *prefixed) key(k []byte) []byte {
	return append(append(make([]byte, 0, len(s.p)+len(k)), s.p...), k...)
}

func (s *prefixed) Get(key []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrStorageClosed
	}
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	return s.st.Get(s.key(key))
}

func (s *prefixed) Scan(start, end []byte, fn func(key, value []byte) error) error {
	if s.closed.Load() {
		return ErrStorageClosed
	}
	e := PrefixEnd(s.p)
	if end != nil {
		e = s.key(end)
	}
	return s.st.Scan(s.key(start), e, func(k, v []byte) error {
		if len(k) == len(s.p) {
			return nil // the prefix itself: no key of the namespace (keys are non-empty)
		}
		return fn(k[len(s.p):], v)
	})
}

func (s *prefixed) Commit(writes []Write) error {
	if s.closed.Load() {
		return ErrStorageClosed
	}
	if err := CheckCommit(writes); err != nil {
		return err
	}
	out := make([]Write, len(writes))
	for i, w := range writes {
		out[i] = Write{Key: s.key(w.Key), Value: w.Value, Delete: w.Delete}
	}
	return s.st.Commit(out)
}

func (s *prefixed) Close() error {
	s.closed.Store(true)
	return nil
}
