package auth

import (
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/mycelsync/mycel/auth/authpb"
)

// Keyring bounds.
const (
	// MaxEpochs bounds the epochs of a keyring (so the number of rotations a
	// space can go through). It keeps a sealed keyring within one feed entry
	// (feed.MaxEntrySize, 1 MiB): 16,384 epochs encode in 557,090 bytes.
	MaxEpochs = 1 << 14
	// MaxKeyringSize bounds an encoded keyring: MaxEpochs epochs with room
	// for fields added later.
	MaxKeyringSize = 576 << 10
)

// Keyring holds the secrets of every epoch of one space so far: a new
// device must read the whole database, written under every epoch. Epochs is
// sorted and contiguous from 0 (Epochs[n].Epoch == n); Validate checks it,
// and every method keeps it so.
//
// A Keyring is a plain value with no lock: share one between goroutines
// only behind the caller's own.
type Keyring struct {
	Space  SpaceID
	Epochs []EpochSecret
	// Concurrent holds further secrets for epochs already in Epochs: two
	// members that rotate at once create two secrets for one epoch number,
	// and entries written under either must stay readable. Which one a
	// writer uses is the space's decision (it knows which rotation counts).
	Concurrent []EpochSecret
}

// NewKeyring returns the keyring of a new space: a fresh epoch-0 secret
// read from rand (crypto/rand when nil).
func NewKeyring(space SpaceID, rand io.Reader) (*Keyring, error) {
	es, err := NewEpochSecret(0, rand)
	if err != nil {
		return nil, err
	}
	return &Keyring{Space: space, Epochs: []EpochSecret{es}}, nil
}

// Validate checks the invariants: at least one epoch, at most MaxEpochs,
// Epochs[n].Epoch == n.
func (kr *Keyring) Validate() error {
	if len(kr.Epochs) == 0 {
		return errorf(ErrMalformed, "keyring of space %s holds no epoch", kr.Space)
	}
	if len(kr.Epochs) > MaxEpochs {
		return errorf(ErrTooLarge, "keyring of %d epochs, limit %d", len(kr.Epochs), MaxEpochs)
	}
	for i, es := range kr.Epochs {
		if es.Epoch != uint32(i) {
			return errorf(ErrEpochOrder, "keyring position %d holds epoch %d", i, es.Epoch)
		}
	}
	return nil
}

// Current returns the newest epoch's secret, the one to write with.
func (kr *Keyring) Current() (EpochSecret, error) {
	if len(kr.Epochs) == 0 {
		return EpochSecret{}, errorf(ErrUnknownEpoch, "keyring of space %s holds no epoch", kr.Space)
	}
	return kr.Epochs[len(kr.Epochs)-1], nil
}

// Epoch returns the secret of epoch n, or ErrUnknownEpoch if the keyring
// does not hold it yet (a rotation this device has not yet seen).
func (kr *Keyring) Epoch(n uint32) (EpochSecret, error) {
	if uint64(n) >= uint64(len(kr.Epochs)) {
		return EpochSecret{}, errorf(ErrUnknownEpoch, "epoch %d, keyring holds %d", n, len(kr.Epochs))
	}
	return kr.Epochs[n], nil
}

// Add adds the secret of the next epoch. Adding a secret already held is a
// no-op, so a rotation seen twice (from the network and from the feeds) is
// harmless; a different secret for an epoch held is kept in Concurrent (a
// rotation made at the same time as another), and an epoch beyond the next
// one is ErrEpochOrder.
func (kr *Keyring) Add(es EpochSecret) error {
	n := uint64(len(kr.Epochs))
	switch e := uint64(es.Epoch); {
	case e < n:
		if kr.holds(es) {
			return nil
		}
		if len(kr.Epochs)+len(kr.Concurrent) >= MaxEpochs {
			return errorf(ErrTooLarge, "add epoch %d: limit of %d secrets", e, MaxEpochs)
		}
		kr.Concurrent = append(kr.Concurrent, es)
		return nil
	case e > n:
		return errorf(ErrEpochOrder, "add epoch %d to a keyring holding %d", e, n)
	case n >= MaxEpochs:
		return errorf(ErrTooLarge, "add epoch %d: limit of %d epochs", e, MaxEpochs)
	}
	kr.Epochs = append(kr.Epochs, es)
	return nil
}

// holds reports whether es is in the keyring.
func (kr *Keyring) holds(es EpochSecret) bool {
	if uint64(es.Epoch) < uint64(len(kr.Epochs)) && subtle.ConstantTimeCompare(kr.Epochs[es.Epoch].Secret[:], es.Secret[:]) == 1 {
		return true
	}
	for _, c := range kr.Concurrent {
		if c.Epoch == es.Epoch && subtle.ConstantTimeCompare(c.Secret[:], es.Secret[:]) == 1 {
			return true
		}
	}
	return false
}

// All returns every secret: the epochs in order, then the concurrent ones.
func (kr *Keyring) All() []EpochSecret {
	return append(append([]EpochSecret(nil), kr.Epochs...), kr.Concurrent...)
}

// Rotate adds a fresh secret for the next epoch, read from rand
// (crypto/rand when nil), and returns it. A caller that must append the
// rotation op before the keyring changes uses NewEpochSecret and Add.
func (kr *Keyring) Rotate(rand io.Reader) (EpochSecret, error) {
	es, err := NewEpochSecret(uint32(len(kr.Epochs)), rand)
	if err != nil {
		return EpochSecret{}, err
	}
	if err := kr.Add(es); err != nil {
		return EpochSecret{}, err
	}
	return es, nil
}

// Clone returns a deep copy.
func (kr *Keyring) Clone() *Keyring {
	return &Keyring{Space: kr.Space, Epochs: append([]EpochSecret(nil), kr.Epochs...),
		Concurrent: append([]EpochSecret(nil), kr.Concurrent...)}
}

// MarshalBinary encodes a valid keyring as an authpb.Keyring (FORMAT.md).
func (kr *Keyring) MarshalBinary() ([]byte, error) {
	if err := kr.Validate(); err != nil {
		return nil, fmt.Errorf("encode keyring: %w", err)
	}
	m := &authpb.Keyring{Space: kr.Space[:], Secrets: make([][]byte, len(kr.Epochs))}
	for i := range kr.Epochs {
		m.Secrets[i] = kr.Epochs[i].Secret[:]
	}
	for _, c := range kr.Concurrent {
		m.Concurrent = append(m.Concurrent, &authpb.ConcurrentSecret{Epoch: c.Epoch, Secret: c.Secret[:]})
	}
	return m.Marshal()
}

// UnmarshalBinary decodes a keyring, refusing input larger than
// MaxKeyringSize, a space ID or secret of the wrong size, and no epochs or
// more than MaxEpochs. Unknown fields are ignored. On error kr is unchanged.
func (kr *Keyring) UnmarshalBinary(b []byte) error {
	if len(b) > MaxKeyringSize {
		return errorf(ErrTooLarge, "keyring of %d bytes, limit %d", len(b), MaxKeyringSize)
	}
	var m authpb.Keyring
	if err := m.Unmarshal(b); err != nil {
		return errorf(ErrMalformed, "keyring: %v", err)
	}
	space, err := SpaceIDFromBytes(m.Space)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if len(m.Secrets) == 0 {
		return errorf(ErrMalformed, "keyring holds no epoch")
	}
	if len(m.Secrets) > MaxEpochs {
		return errorf(ErrTooLarge, "keyring of %d epochs, limit %d", len(m.Secrets), MaxEpochs)
	}
	epochs := make([]EpochSecret, len(m.Secrets))
	for i, s := range m.Secrets {
		if len(s) != SecretSize {
			return errorf(ErrMalformed, "keyring: epoch %d secret of %d bytes, want %d", i, len(s), SecretSize)
		}
		epochs[i] = EpochSecret{Epoch: uint32(i), Secret: [SecretSize]byte(s)}
	}
	if len(m.Secrets)+len(m.Concurrent) > MaxEpochs {
		return errorf(ErrTooLarge, "keyring of %d secrets, limit %d", len(m.Secrets)+len(m.Concurrent), MaxEpochs)
	}
	var concurrent []EpochSecret
	for _, c := range m.Concurrent {
		if len(c.Secret) != SecretSize || int(c.Epoch) >= len(epochs) {
			return errorf(ErrMalformed, "keyring: concurrent secret for epoch %d of %d bytes", c.Epoch, len(c.Secret))
		}
		concurrent = append(concurrent, EpochSecret{Epoch: c.Epoch, Secret: [SecretSize]byte(c.Secret)})
	}
	kr.Space, kr.Epochs, kr.Concurrent = space, epochs, concurrent
	return nil
}
