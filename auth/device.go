package auth

import (
	"bytes"
	"crypto/hpke"
	"crypto/subtle"
	"fmt"
	"io"
)

// The HPKE suite of device keys and sealed boxes, named on the wire by its
// first byte (FORMAT.md). Suite 1: KEM MLKEM768-X25519 (X-Wing, hybrid
// post-quantum, 0x647a), KDF HKDF-SHA256, AEAD ChaCha20-Poly1305.
const suiteXWing byte = 1

var (
	suiteKEM  = hpke.MLKEM768X25519()
	suiteKDF  = hpke.HKDFSHA256()
	suiteAEAD = hpke.ChaCha20Poly1305()
)

// Sizes of suite 1's encodings.
const (
	deviceSeedSize  = 32        // X-Wing private key: a seed
	xwingPublicSize = 1184 + 32 // ML-KEM-768 encapsulation key ‖ X25519 point
	xwingEncSize    = 1088 + 32 // ML-KEM-768 ciphertext ‖ X25519 point
	hpkeTagSize     = 16        // ChaCha20-Poly1305

	// DeviceKeySize is the size of an encoded DeviceKey: suite ‖ seed.
	DeviceKeySize = 1 + deviceSeedSize
	// DevicePublicKeySize is the size of an encoded DevicePublicKey:
	// suite ‖ X-Wing public key.
	DevicePublicKeySize = 1 + xwingPublicSize
)

// DeviceKey is a device's HPKE key pair: approvals and rotations seal space
// secrets to its public half. It never leaves the device; Bytes is for its
// data directory.
type DeviceKey struct {
	seed [deviceSeedSize]byte
	priv hpke.PrivateKey
	pub  *DevicePublicKey
}

// GenerateDeviceKey returns a new device key whose 32-byte seed is read from
// rand (crypto/rand when nil).
func GenerateDeviceKey(rand io.Reader) (*DeviceKey, error) {
	var seed [deviceSeedSize]byte
	if _, err := io.ReadFull(orCryptoRand(rand), seed[:]); err != nil {
		return nil, fmt.Errorf("auth: generate device key: %w", err)
	}
	return newDeviceKey(seed)
}

// ParseDeviceKey decodes a key encoded by DeviceKey.Bytes.
func ParseDeviceKey(b []byte) (*DeviceKey, error) {
	if len(b) != DeviceKeySize {
		return nil, errorf(ErrMalformed, "device key of %d bytes, want %d", len(b), DeviceKeySize)
	}
	if b[0] != suiteXWing {
		return nil, errorf(ErrMalformed, "device key of unknown suite %d", b[0])
	}
	return newDeviceKey([deviceSeedSize]byte(b[1:]))
}

func newDeviceKey(seed [deviceSeedSize]byte) (*DeviceKey, error) {
	priv, err := suiteKEM.NewPrivateKey(seed[:])
	if err != nil {
		return nil, errorf(ErrMalformed, "device key: %v", err)
	}
	pub := priv.PublicKey()
	return &DeviceKey{
		seed: seed,
		priv: priv,
		pub:  &DevicePublicKey{pub: pub, raw: append([]byte{suiteXWing}, pub.Bytes()...)},
	}, nil
}

// Bytes encodes the private key for storage: suite (1) ‖ seed (32). Keep it
// as secret as the space secrets it opens.
func (k *DeviceKey) Bytes() []byte {
	return append([]byte{suiteXWing}, k.seed[:]...)
}

// Public returns the public half, to send in a join request.
func (k *DeviceKey) Public() *DevicePublicKey { return k.pub }

// String hides the private key.
func (k *DeviceKey) String() string { return "DeviceKey{<redacted>}" }

// GoString hides the private key from %#v too.
func (k *DeviceKey) GoString() string { return k.String() }

// Equal reports whether k and o are the same key, in constant time.
func (k *DeviceKey) Equal(o *DeviceKey) bool {
	return subtle.ConstantTimeCompare(k.seed[:], o.seed[:]) == 1
}

// DevicePublicKey is the public half of a DeviceKey, as carried in a join
// request.
type DevicePublicKey struct {
	pub hpke.PublicKey
	raw []byte // suite ‖ public key
}

// ParseDevicePublicKey decodes a key encoded by DevicePublicKey.Bytes,
// checking its size, suite and that its ML-KEM half is well formed.
func ParseDevicePublicKey(b []byte) (*DevicePublicKey, error) {
	if len(b) != DevicePublicKeySize {
		return nil, errorf(ErrMalformed, "device public key of %d bytes, want %d", len(b), DevicePublicKeySize)
	}
	if b[0] != suiteXWing {
		return nil, errorf(ErrMalformed, "device public key of unknown suite %d", b[0])
	}
	pub, err := suiteKEM.NewPublicKey(b[1:])
	if err != nil {
		return nil, errorf(ErrMalformed, "device public key: %v", err)
	}
	return &DevicePublicKey{pub: pub, raw: bytes.Clone(b)}, nil
}

// Bytes encodes the key: suite (1) ‖ ML-KEM-768 encapsulation key (1184) ‖
// X25519 public key (32). The slice is the caller's.
func (p *DevicePublicKey) Bytes() []byte { return bytes.Clone(p.raw) }

// Equal reports whether p and o are the same key.
func (p *DevicePublicKey) Equal(o *DevicePublicKey) bool { return bytes.Equal(p.raw, o.raw) }

// labelLocalKey names the device's local storage key of a space.
const labelLocalKey = "mycel/v1/local-storage-key"

// LocalKey returns the key this device encrypts its own derived state of a
// space with at rest (the space's view): HKDF-SHA256 of the device's seed,
// info "mycel/v1/local-storage-key" ‖ 0x00 ‖ space ID. It never leaves the
// device and no other device can derive it; it is lost with the device key,
// which only costs rebuilding that state from the feeds.
func (k *DeviceKey) LocalKey(space SpaceID) [KeySize]byte {
	return derive(k.seed[:], labelLocalKey+"\x00"+string(space[:]))
}
