package space

import (
	"fmt"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// Approved reports whether this device holds the space's keys.
func (s *Space) Approved() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyring != nil
}

// Capability returns the replication capability this device proves to
// peers and accepts from them: the one derived from the space's first
// epoch, which every member holds however far behind on rotations it is
// (a member must reach peers to learn the secrets it lacks). ErrNoKeys
// until the device is approved.
//
// A removed device keeps it: after a removal it gets ciphertext it cannot
// read, nothing more. Refusing it replication altogether needs proofs
// bound to the writer set and comes with sign-in and removal over the
// network.
func (s *Space) Capability() (auth.ReplicationCapability, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyring == nil {
		return auth.ReplicationCapability{}, ErrNoKeys
	}
	return s.keyring.Epochs[0].ReplicationCapability(s.id), nil
}

// Welcome seals the keyring to a device this device approved (AddWriter)
// for delivery outside the feeds: the device cannot replicate the feeds,
// where its add-writer entry carries the same box, before it holds a key.
// Only the device with that device key, as the writer of that feed, opens
// it (Accept).
func (s *Space) Welcome(target feed.PublicKey, device *auth.DevicePublicKey) ([]byte, error) {
	s.mu.Lock()
	kr := s.keyring
	s.mu.Unlock()
	if kr == nil {
		return nil, ErrNoKeys
	}
	return auth.SealKeyring(device, kr, auth.Binding{Space: s.id, Feed: target})
}

// Accept opens a keyring sealed to this device as the writer of its feed
// in the space (Welcome, or an add-writer entry's box), stores it and
// reads the feeds held with the keys it brings.
func (s *Space) Accept(sealed []byte) error {
	kr, err := auth.OpenKeyring(s.cfg.Device, sealed, s.binding())
	if err != nil {
		return fmt.Errorf("space: welcome: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	err = s.setKeyring(kr)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.Refresh()
	return nil
}

// Held returns how many entries of feed k this device holds.
func (s *Space) Held(k feed.PublicKey) uint64 {
	f, err := s.cfg.Feeds.Feed(k)
	if err != nil {
		return 0
	}
	var n uint64
	for _, r := range f.Ranges() {
		n += r.End - r.Start
	}
	return n
}
