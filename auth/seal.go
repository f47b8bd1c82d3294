package auth

import (
	"crypto/hpke"
	"encoding/binary"
	"fmt"
)

// HPKE info labels of the two kinds of sealed box. Distinct labels keep a
// sealed keyring from being opened as a sealed epoch secret and back.
const (
	labelSealKeyring     = "mycel/v1/seal-keyring"
	labelSealEpochSecret = "mycel/v1/seal-epoch-secret"
)

// Sizes of sealed boxes: suite (1) ‖ HPKE enc (1120) ‖ ciphertext ‖ tag (16).
const (
	// SealOverhead is what sealing adds to the plaintext.
	SealOverhead = 1 + xwingEncSize + hpkeTagSize
	// MaxSealedKeyringSize bounds a sealed keyring.
	MaxSealedKeyringSize = SealOverhead + MaxKeyringSize
	// SealedEpochSecretSize is the exact size of a sealed epoch secret.
	SealedEpochSecretSize = SealOverhead + epochSecretPlainSize

	epochSecretPlainSize = 4 + SecretSize // epoch (uint32 BE) ‖ secret
)

// Binding names who a sealed box is for: the space and the recipient
// device's feed in it. It becomes the HPKE info (FORMAT.md), so a box sealed
// for one space or device does not open as another's, even with the same
// device key: opening with another binding fails with ErrDecrypt.
type Binding struct {
	Space SpaceID
	// Feed is the recipient device's feed key (Ed25519 public key) in the
	// space: the one its join request named and its add-writer op adds.
	Feed [32]byte
	// Request, when not zero, is the hash of the join request the box
	// answers (JoinRequest.Hash): an approval's keyring opens only for the
	// device that asked with exactly that request. Zero for the boxes of
	// add-writer ops and rotations, which name no request.
	Request [RequestHashSize]byte
}

// info returns label ‖ 0x00 ‖ space ID (32) ‖ feed key (32), followed by
// the request hash (32) when there is one. Both sizes are fixed, so the
// encoding stays injective.
func (b Binding) info(label string) []byte {
	out := make([]byte, 0, len(label)+1+SpaceIDSize+len(b.Feed)+len(b.Request))
	out = append(out, label...)
	out = append(out, 0)
	out = append(out, b.Space[:]...)
	out = append(out, b.Feed[:]...)
	if b.Request != ([RequestHashSize]byte{}) {
		out = append(out, b.Request[:]...)
	}
	return out
}

// SealKeyring seals the whole keyring to a device (an approval). The
// keyring must be valid and of the binding's space.
func SealKeyring(pub *DevicePublicKey, kr *Keyring, b Binding) ([]byte, error) {
	if kr.Space != b.Space {
		return nil, errorf(ErrMalformed, "seal keyring of space %s bound to space %s", kr.Space, b.Space)
	}
	pt, err := kr.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("seal keyring: %w", err)
	}
	return seal(pub, b.info(labelSealKeyring), pt)
}

// OpenKeyring opens a box sealed by SealKeyring with the same binding.
// Input larger than MaxSealedKeyringSize is ErrTooLarge, shorter than
// SealOverhead or of an unknown suite ErrMalformed, anything that does not
// open ErrDecrypt.
func OpenKeyring(k *DeviceKey, sealed []byte, b Binding) (*Keyring, error) {
	if len(sealed) > MaxSealedKeyringSize {
		return nil, errorf(ErrTooLarge, "sealed keyring of %d bytes, limit %d", len(sealed), MaxSealedKeyringSize)
	}
	pt, err := open(k, b.info(labelSealKeyring), sealed)
	if err != nil {
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	kr := new(Keyring)
	if err := kr.UnmarshalBinary(pt); err != nil {
		// Authentic but undecodable: a sealer's bug, not a forgery.
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	if kr.Space != b.Space {
		return nil, errorf(ErrMalformed, "open keyring: keyring of space %s bound to space %s", kr.Space, b.Space)
	}
	return kr, nil
}

// SealEpochSecret seals one epoch's secret to a remaining member (a key
// rotation seals the new secret once per member). The epoch number is
// sealed with it.
func SealEpochSecret(pub *DevicePublicKey, es EpochSecret, b Binding) ([]byte, error) {
	pt := make([]byte, 0, epochSecretPlainSize)
	pt = binary.BigEndian.AppendUint32(pt, es.Epoch)
	pt = append(pt, es.Secret[:]...)
	return seal(pub, b.info(labelSealEpochSecret), pt)
}

// OpenEpochSecret opens a box sealed by SealEpochSecret with the same
// binding. The caller checks the epoch it returns against the one the
// rotation op claims.
func OpenEpochSecret(k *DeviceKey, sealed []byte, b Binding) (EpochSecret, error) {
	if len(sealed) != SealedEpochSecretSize {
		return EpochSecret{}, errorf(ErrMalformed, "sealed epoch secret of %d bytes, want %d", len(sealed), SealedEpochSecretSize)
	}
	pt, err := open(k, b.info(labelSealEpochSecret), sealed)
	if err != nil {
		return EpochSecret{}, fmt.Errorf("open epoch secret: %w", err)
	}
	if len(pt) != epochSecretPlainSize { // cannot happen: sizes checked above
		return EpochSecret{}, errorf(ErrMalformed, "open epoch secret: %d bytes", len(pt))
	}
	return EpochSecret{
		Epoch:  binary.BigEndian.Uint32(pt),
		Secret: [SecretSize]byte(pt[4:]),
	}, nil
}

// seal returns suite ‖ enc ‖ HPKE ciphertext (single-shot HPKE base mode).
func seal(pub *DevicePublicKey, info, pt []byte) ([]byte, error) {
	if pub == nil {
		return nil, errorf(ErrMalformed, "seal: no recipient key")
	}
	ct, err := hpke.Seal(pub.pub, suiteKDF, suiteAEAD, info, pt)
	if err != nil {
		// The X25519 half of a crafted public key can make encapsulation
		// fail (an all-zero shared secret).
		return nil, errorf(ErrMalformed, "seal: %v", err)
	}
	return append([]byte{suiteXWing}, ct...), nil
}

// open checks the suite and size, then opens the HPKE ciphertext.
func open(k *DeviceKey, info, sealed []byte) ([]byte, error) {
	if k == nil {
		return nil, errorf(ErrMalformed, "open: no device key")
	}
	if len(sealed) < SealOverhead {
		return nil, errorf(ErrMalformed, "sealed box of %d bytes, at least %d", len(sealed), SealOverhead)
	}
	if sealed[0] != suiteXWing {
		return nil, errorf(ErrMalformed, "sealed box of unknown suite %d", sealed[0])
	}
	pt, err := hpke.Open(k.priv, suiteKDF, suiteAEAD, info, sealed[1:])
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
