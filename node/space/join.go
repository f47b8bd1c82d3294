package space

import (
	"crypto/ed25519"
	"fmt"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// Approved reports whether this device holds the space's keys.
func (s *Space) Approved() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyring != nil && !s.staleLocked()
}

// Capabilities returns the replication capabilities of every epoch this
// device holds, oldest first, to prove to peers. ErrNoKeys until the
// device is approved.
func (s *Space) Capabilities() ([]auth.ReplicationCapability, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kr := s.keyring
	if kr == nil || s.staleLocked() && s.trial != nil {
		kr = s.trial
	}
	if kr == nil {
		return nil, ErrNoKeys
	}
	var out []auth.ReplicationCapability
	for _, es := range kr.Epochs {
		out = append(out, es.ReplicationCapability(s.id))
	}
	return out, nil
}

// TryKeyring makes kr, which an approval brought (auth.OpenApproval), the
// keyring this device proves to peers while it holds none: an approval's
// keyring is not taken on trust, since anyone holding the invite or the
// password can seal one of its own making to the device. It is neither
// stored nor used to read anything; the device is approved (Approved) only
// once it fetches the add-writer entry that a writer of the space made
// for it and opens the keyring that entry seals (findKeyring). A bogus
// keyring opens no member's session, so nothing comes of it. No-op once
// the device holds a keyring.
func (s *Space) TryKeyring(kr *auth.Keyring) error {
	if kr.Space != s.id {
		return fmt.Errorf("space: keyring of space %s", kr.Space)
	}
	if err := kr.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyring == nil || s.staleLocked() {
		s.trial = kr.Clone()
	}
	return nil
}

// Trying reports whether this device, holding no keyring, tries one
// (TryKeyring).
func (s *Space) Trying() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (s.keyring == nil || s.staleLocked()) && s.trial != nil
}

// WriterKey returns this device's feed key in the space, which signs its
// replication proofs.
func (s *Space) WriterKey() ed25519.PrivateKey { return s.cfg.Writer }

// Admits decides whether a peer may replicate the space, given proves,
// which reports whether the peer proved a capability, and the writer
// whose signature it showed (nil if none). The capability of the newest
// epoch this device holds admits anyone who proves it: a member, or a
// device approved since, whose keyring has every epoch so far. An older
// epoch's admits only a writer that has not been removed: a member that
// was offline during a rotation proves what it holds and fetches the new
// secret from the feeds, while a removed device — which holds every epoch
// up to its removal and no later one — is refused, once this device knows
// of the removal.
func (s *Space) Admits(proves func(auth.ReplicationCapability) bool, writer *feed.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return false // a removed device replicates with nobody
	}
	if (s.keyring == nil || s.staleLocked()) && s.trial != nil {
		// Trying an approval: a peer that proves the newest epoch of the
		// keyring tried opens a session, from which this device fetches
		// its add-writer entry (and the keyring it seals) — or nothing.
		newest := s.trial.Epochs[len(s.trial.Epochs)-1]
		return proves(newest.ReplicationCapability(s.id))
	}
	if s.keyring == nil || s.staleLocked() {
		return false // approved by a removed writer: nobody's session counts
	}
	all := s.keyring.All() // with the secrets of concurrent rotations
	newest := s.keyring.Epochs[len(s.keyring.Epochs)-1].Epoch
	for _, es := range all {
		if es.Epoch == newest && proves(es.ReplicationCapability(s.id)) {
			return true
		}
	}
	if writer == nil || !s.view.WriterSet().IsWriter(*writer) {
		return false
	}
	for _, es := range all {
		if es.Epoch != newest && proves(es.ReplicationCapability(s.id)) {
			return true
		}
	}
	return false
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
	return s.AcceptKeyring(kr)
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

// EphemeralKey returns the key of this device's ephemeral messages in the
// space — the ephemeral key of the epoch it writes with — and that epoch's
// key ID, which names it to receivers. ErrNoKeys until the device holds
// the space's keys (or while it waits for a rotated secret).
func (s *Space) EphemeralKey() (keyID [auth.KeyIDSize]byte, key [auth.KeySize]byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	es, err := s.writeKey()
	if err != nil {
		return keyID, key, err
	}
	return es.KeyID(s.id), es.EphemeralKey(s.id), nil
}

// EphemeralKeyFor returns the ephemeral key of the epoch that keyID
// names, if this device holds its secret.
func (s *Space) EphemeralKeyFor(keyID [auth.KeyIDSize]byte) ([auth.KeySize]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	es, ok := s.byKeyID[keyID]
	if !ok {
		return [auth.KeySize]byte{}, false
	}
	return es.EphemeralKey(s.id), true
}

// IsDevice reports whether k is the feed of a current writer.
func (s *Space) IsDevice(k feed.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.view.ws.IsWriter(k)
}

// Keyring returns a copy of the space's keyring: the secrets of every epoch
// this device holds, to seal to a device it approves (auth.NewApproval).
// ErrNoKeys until this device is approved.
func (s *Space) Keyring() (*auth.Keyring, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyring == nil {
		return nil, ErrNoKeys
	}
	return s.keyring.Clone(), nil
}

// AcceptKeyring installs a keyring an approval brought (opened with
// auth.OpenApproval), stores it and reads the feeds held with its keys.
func (s *Space) AcceptKeyring(kr *auth.Keyring) error {
	if kr.Space != s.id {
		return fmt.Errorf("space: keyring of space %s", kr.Space)
	}
	if err := kr.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	err := s.setKeyring(kr)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = s.Refresh()
	return err
}

// Admission counts what Admits depends on, cheaply: the writers removed and
// the epoch secrets held. When either changes, peers admitted before must
// be checked again.
func (s *Space) Admission() (removed, secrets int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyring != nil {
		secrets = len(s.keyring.Epochs) + len(s.keyring.Concurrent)
	}
	return len(s.view.WriterSet().removals), secrets
}
