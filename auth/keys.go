package auth

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/mycelsync/mycel/auth/authpb"
)

// Sizes of the fixed-size values of this package.
const (
	SpaceIDSize      = 32 // Ed25519 public key
	SecretSize       = 32 // epoch secret
	KeySize          = 32 // every derived symmetric key, token and capability
	KeyIDSize        = 16
	ProofSize        = sha256.Size
	DiscoveryKeySize = 32
)

// HKDF and HMAC labels. Each derivation uses its own; they are ASCII without
// NUL, so that label ‖ 0x00 ‖ fixed-size fields is an injective encoding.
// Changing one changes every key derived with it: they are part of the
// format (FORMAT.md) and pinned by known-answer tests.
const (
	labelDiscoveryKey     = "mycel/v1/discovery-key"
	labelContentKey       = "mycel/v1/content-key"
	labelEphemeralKey     = "mycel/v1/ephemeral-key"
	labelKeyID            = "mycel/v1/key-id"
	labelMirrorToken      = "mycel/v1/mirror-token"
	labelReplicationCap   = "mycel/v1/replication-cap"
	labelReplicationProof = "mycel/v1/replication-proof"
)

// SpaceID names a space: the Ed25519 public key of its origin feed. It is a
// feed.PublicKey by another name (convert with auth.SpaceID(k)); this
// package does not import feed so that it stays a leaf of stdlib crypto.
type SpaceID [SpaceIDSize]byte

// SpaceIDFromBytes returns the space ID held in b, which must be exactly
// SpaceIDSize bytes.
func SpaceIDFromBytes(b []byte) (SpaceID, error) {
	var id SpaceID
	if len(b) != SpaceIDSize {
		return id, errorf(ErrMalformed, "space ID of %d bytes, want %d", len(b), SpaceIDSize)
	}
	copy(id[:], b)
	return id, nil
}

// String returns the ID in lowercase hex.
func (id SpaceID) String() string { return hex.EncodeToString(id[:]) }

// DiscoveryKey names the space on the network (gossipsub topic, DHT, relay
// mailbox) without revealing its ID: HKDF-SHA256 with the ID as input keying
// material, no salt, and info "mycel/v1/discovery-key". Anyone who knows the
// ID can compute it; nobody can go back from it to the ID. It does not change
// when the epoch does.
func DiscoveryKey(id SpaceID) [DiscoveryKeySize]byte {
	return derive(id[:], labelDiscoveryKey)
}

// derive is HKDF-SHA256(ikm, salt = none, info, 32 bytes).
func derive(ikm []byte, info string) [KeySize]byte {
	k, err := hkdf.Key(sha256.New, ikm, nil, info, KeySize)
	if err != nil {
		// Only a length beyond 255·32 bytes fails; ours is fixed.
		panic("auth: hkdf: " + err.Error())
	}
	return [KeySize]byte(k)
}

// epochInfo is the HKDF info of every epoch-bound derivation:
// label ‖ 0x00 ‖ space ID (32) ‖ epoch (uint32 big-endian).
func epochInfo(label string, space SpaceID, epoch uint32) string {
	b := make([]byte, 0, len(label)+1+SpaceIDSize+4)
	b = append(b, label...)
	b = append(b, 0)
	b = append(b, space[:]...)
	b = binary.BigEndian.AppendUint32(b, epoch)
	return string(b)
}

// EpochSecret is the random secret of one epoch of a space. Only members
// hold it; every key of the epoch is derived from it (see the package
// documentation for the hierarchy). The zero Secret is not a valid secret.
type EpochSecret struct {
	Epoch  uint32
	Secret [SecretSize]byte
}

// NewEpochSecret returns a fresh secret for the given epoch, read from rand
// (crypto/rand when nil).
func NewEpochSecret(epoch uint32, rand io.Reader) (EpochSecret, error) {
	es := EpochSecret{Epoch: epoch}
	if _, err := io.ReadFull(orCryptoRand(rand), es.Secret[:]); err != nil {
		return EpochSecret{}, fmt.Errorf("auth: new epoch secret: %w", err)
	}
	return es, nil
}

func orCryptoRand(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// String hides the secret so that logging an EpochSecret leaks nothing.
func (es EpochSecret) String() string {
	return fmt.Sprintf("EpochSecret{Epoch: %d, Secret: <redacted>}", es.Epoch)
}

// GoString hides the secret from %#v too.
func (es EpochSecret) GoString() string { return es.String() }

// ContentKey is the XChaCha20-Poly1305 key (for SealContent) of the payloads
// of the space's feed entries written in this epoch.
func (es EpochSecret) ContentKey(space SpaceID) [KeySize]byte {
	return derive(es.Secret[:], epochInfo(labelContentKey, space, es.Epoch))
}

// EphemeralKey is the AEAD key of the members' ephemeral messages of this
// epoch (presence, nudges, app messages). Join requests cannot use it: the
// asking device holds no secret yet.
func (es EpochSecret) EphemeralKey(space SpaceID) [KeySize]byte {
	return derive(es.Secret[:], epochInfo(labelEphemeralKey, space, es.Epoch))
}

// KeyID names this secret in public (in a rotation op, beside a sealed
// secret, in an entry) without revealing anything about it. Two concurrent
// rotations to the same epoch number produce different key IDs.
func (es EpochSecret) KeyID(space SpaceID) [KeyIDSize]byte {
	k := derive(es.Secret[:], epochInfo(labelKeyID, space, es.Epoch))
	return [KeyIDSize]byte(k[:KeyIDSize])
}

// MirrorToken is the token a member hands to a relay that mirrors the space:
// HKDF(secret, "mycel/v1/mirror-token"). It is one-way from the secret, so
// its holder can derive the replication capability and nothing else.
func (es EpochSecret) MirrorToken(space SpaceID) MirrorToken {
	return MirrorToken{
		Space: space,
		Epoch: es.Epoch,
		Token: derive(es.Secret[:], epochInfo(labelMirrorToken, space, es.Epoch)),
	}
}

// ReplicationCapability is the epoch's replication capability. Members
// derive it through the mirror token, exactly as a relay does, so that the
// proofs of both are the same.
func (es EpochSecret) ReplicationCapability(space SpaceID) ReplicationCapability {
	return es.MirrorToken(space).ReplicationCapability()
}

// MirrorToken lets a relay open replication of one space for one epoch and
// decrypts nothing. After each rotation the relay needs the new epoch's
// token.
type MirrorToken struct {
	Space SpaceID
	Epoch uint32
	Token [KeySize]byte
}

// MaxMirrorTokenSize bounds an encoded MirrorToken (its fields take at most
// 74 bytes; the rest is room for fields added later).
const MaxMirrorTokenSize = 256

// String hides the token.
func (t MirrorToken) String() string {
	return fmt.Sprintf("MirrorToken{Space: %s, Epoch: %d, Token: <redacted>}", t.Space, t.Epoch)
}

// GoString hides the token from %#v too.
func (t MirrorToken) GoString() string { return t.String() }

// ReplicationCapability derives the capability of the token's epoch:
// HKDF(token, "mycel/v1/replication-cap").
func (t MirrorToken) ReplicationCapability() ReplicationCapability {
	return ReplicationCapability{
		Space: t.Space,
		Epoch: t.Epoch,
		Key:   derive(t.Token[:], epochInfo(labelReplicationCap, t.Space, t.Epoch)),
	}
}

// MarshalBinary encodes the token as an authpb.MirrorToken.
func (t MirrorToken) MarshalBinary() ([]byte, error) {
	return (&authpb.MirrorToken{
		Space: t.Space[:],
		Epoch: t.Epoch,
		Token: t.Token[:],
	}).Marshal()
}

// UnmarshalBinary decodes a token encoded by MarshalBinary, refusing
// anything larger than MaxMirrorTokenSize or with a field of the wrong size.
func (t *MirrorToken) UnmarshalBinary(b []byte) error {
	if len(b) > MaxMirrorTokenSize {
		return errorf(ErrTooLarge, "mirror token of %d bytes, limit %d", len(b), MaxMirrorTokenSize)
	}
	var m authpb.MirrorToken
	if err := m.Unmarshal(b); err != nil {
		return errorf(ErrMalformed, "mirror token: %v", err)
	}
	space, err := SpaceIDFromBytes(m.Space)
	if err != nil {
		return fmt.Errorf("mirror token: %w", err)
	}
	if len(m.Token) != KeySize {
		return errorf(ErrMalformed, "mirror token: token of %d bytes, want %d", len(m.Token), KeySize)
	}
	*t = MirrorToken{Space: space, Epoch: m.Epoch, Token: [KeySize]byte(m.Token)}
	return nil
}

// ReplicationCapability is what a peer proves it holds when it opens
// replication of a space (and what a relay checks before it hands out the
// space's mailbox). Members and the relays holding the epoch's mirror token
// have the same one.
type ReplicationCapability struct {
	Space SpaceID
	Epoch uint32
	Key   [KeySize]byte
}

// String hides the key.
func (c ReplicationCapability) String() string {
	return fmt.Sprintf("ReplicationCapability{Space: %s, Epoch: %d, Key: <redacted>}", c.Space, c.Epoch)
}

// GoString hides the key from %#v too.
func (c ReplicationCapability) GoString() string { return c.String() }

// Proof proves possession of the capability for one connection:
// HMAC-SHA256(key, "mycel/v1/replication-proof" ‖ 0x00 ‖ binding).
//
// The binding is the caller's and must make the proof useless anywhere
// else: it should name the protocol, the prover and then the verifier (so
// that a proof cannot be reflected back), and fresh nonces chosen by both
// ends (so that it cannot be replayed), or a channel binding of the secure
// connection. The proof reveals nothing about the key.
func (c ReplicationCapability) Proof(binding []byte) [ProofSize]byte {
	m := hmac.New(sha256.New, c.Key[:])
	m.Write([]byte(labelReplicationProof))
	m.Write([]byte{0})
	m.Write(binding)
	return [ProofSize]byte(m.Sum(nil))
}

// Verify reports, in constant time, whether proof is the capability's proof
// for binding.
func (c ReplicationCapability) Verify(binding, proof []byte) bool {
	want := c.Proof(binding)
	return hmac.Equal(want[:], proof)
}
