package space

import (
	"slices"
	"strings"
)

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
