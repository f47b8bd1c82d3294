package space

import (
	"cmp"
	"fmt"
)

// Err says whether Get, List, Digest and Keys could answer in full, for
// the caller to check after them. It reports the first error a read of
// the stored view met (View.Err), for as long as the Space is open: after
// one, Get and List may miss what the failed record held; the store is
// damaged, and mycel check says where. Or else a storage error that
// stopped the view and that reading it again has not yet overcome
// (ErrViewStorage: those calls, and the next write or Refresh, try again).
func (s *Space) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmp.Or(s.view.damage(), s.damaged); err != nil {
		return fmt.Errorf("space %s: the stored view is damaged (%w): run mycel check", s.id, err)
	}
	if err := s.view.err; err != nil {
		return fmt.Errorf("space %s: %w (if this lasts, run mycel check)", s.id, err)
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
