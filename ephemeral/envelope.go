package ephemeral

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/mycelsync/mycel/ephemeral/ephemeralpb"
)

// Sizes of an envelope's fields. FORMAT.md has the byte layouts.
const (
	TopicSize     = 32 // a space's discovery key
	PublicKeySize = ed25519.PublicKeySize
	IDSize        = 16
	NonceSize     = chacha20poly1305.NonceSizeX
	TagSize       = chacha20poly1305.Overhead
	SignatureSize = ed25519.SignatureSize
	KeySize       = chacha20poly1305.KeySize
	// MaxKeyIDSize bounds Header.KeyID.
	MaxKeyIDSize = 64
	// MaxEnvelopeSize bounds an encoded envelope: what Parse accepts, what
	// Seal produces, the gossipsub message and the direct stream frame. 64
	// KiB is plenty for presence, nudges, join requests (an HPKE public key
	// is 1.2 KiB) and apps' small messages, and small enough that a relay
	// can forward thousands without holding much memory.
	MaxEnvelopeSize = 64 << 10
	// MaxPlaintextSize is the largest plaintext Seal accepts: with a key ID
	// of MaxKeyIDSize, the envelope is then still within MaxEnvelopeSize
	// (the fields around the body take at most 300 bytes; the rest is
	// slack for fields a later version may add).
	MaxPlaintextSize = MaxEnvelopeSize - 512
)

// Labels of the signed bytes, the AEAD's additional data and the seen key.
// They are part of the format (FORMAT.md), pinned by known-answer tests.
const (
	labelSignature = "mycel/v1/ephemeral-envelope"
	labelBody      = "mycel/v1/ephemeral-body"
	labelSeen      = "mycel/v1/ephemeral-seen"
)

// Topic names a space on the network: its discovery key
// (auth.DiscoveryKey). It says nothing about the space ID.
type Topic [TopicSize]byte

// String returns the topic in lowercase hex.
func (t Topic) String() string { return hex.EncodeToString(t[:]) }

// PublicKey is a sender's Ed25519 public key.
type PublicKey [PublicKeySize]byte

// String returns the key in lowercase hex.
func (k PublicKey) String() string { return hex.EncodeToString(k[:]) }

// ID is an envelope's random message ID.
type ID [IDSize]byte

// String returns the ID in lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Header is what the caller chooses of a new envelope besides its body.
type Header struct {
	// Topic is the space's discovery key.
	Topic Topic
	// KeyKind and KeyID say which key sealed the body, so that a receiver
	// holding several knows which to try. The package carries and
	// authenticates them and gives them no meaning; the conventions of
	// mycel's daemon are in FORMAT.md (1 = epoch key, 2 = invite key, 3 =
	// password key). KeyID is at most MaxKeyIDSize bytes.
	KeyKind uint32
	KeyID   []byte
}

// Envelope is one ephemeral message. Seal makes one, Parse decodes and
// authenticates one, Open decrypts its body. The fields are plain data:
// changing one after Seal or Parse invalidates the signature.
type Envelope struct {
	Topic      Topic
	Sender     PublicKey
	ID         ID
	Time       int64 // unix milliseconds, by the sender's clock
	KeyKind    uint32
	KeyID      []byte
	Nonce      [NonceSize]byte
	Ciphertext []byte // XChaCha20-Poly1305 ciphertext ‖ tag
	Signature  [SignatureSize]byte
}

// Seal encrypts plaintext under key (XChaCha20-Poly1305, a random nonce,
// the canonical header as additional data) and signs the envelope with
// signer, stamped with now. ID and nonce are read from rand (crypto/rand
// when nil).
func Seal(key [KeySize]byte, signer ed25519.PrivateKey, h Header, plaintext []byte, now time.Time, rand io.Reader) (*Envelope, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return nil, errorf(ErrMalformed, "seal: signing key of %d bytes, want %d", len(signer), ed25519.PrivateKeySize)
	}
	if len(h.KeyID) > MaxKeyIDSize {
		return nil, errorf(ErrTooLarge, "seal: key ID of %d bytes, limit %d", len(h.KeyID), MaxKeyIDSize)
	}
	if len(plaintext) > MaxPlaintextSize {
		return nil, errorf(ErrTooLarge, "seal: plaintext of %d bytes, limit %d", len(plaintext), MaxPlaintextSize)
	}
	e := &Envelope{
		Topic:   h.Topic,
		Sender:  PublicKey(signer.Public().(ed25519.PublicKey)),
		Time:    now.UnixMilli(),
		KeyKind: h.KeyKind,
		KeyID:   append([]byte(nil), h.KeyID...),
	}
	r := orCryptoRand(rand)
	if _, err := io.ReadFull(r, e.ID[:]); err != nil {
		return nil, fmt.Errorf("ephemeral: seal: id: %w", err)
	}
	if _, err := io.ReadFull(r, e.Nonce[:]); err != nil {
		return nil, fmt.Errorf("ephemeral: seal: nonce: %w", err)
	}
	hdr := e.appendHeader(make([]byte, 0, 256))
	e.Ciphertext = newAEAD(key).Seal(nil, e.Nonce[:], plaintext, bodyAD(hdr))
	e.Signature = [SignatureSize]byte(ed25519.Sign(signer, e.signed(hdr)))
	return e, nil
}

// Parse decodes an envelope and checks it as far as anyone can without
// the key (a relay, a router on the topic): its size, the size of every
// field and the sender's signature. It does not look at the time: that is
// the Filter's, which has a clock. Unknown protobuf fields are ignored,
// and are not signed. The envelope does not alias b.
func Parse(b []byte) (*Envelope, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, errorf(ErrTooLarge, "parse: %d bytes, limit %d", len(b), MaxEnvelopeSize)
	}
	var m ephemeralpb.Envelope
	if err := m.Unmarshal(b); err != nil {
		return nil, errorf(ErrMalformed, "parse: %v", err)
	}
	e, err := fromProto(&m)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if err := e.Verify(); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return e, nil
}

func fromProto(m *ephemeralpb.Envelope) (*Envelope, error) {
	for _, f := range []struct {
		name string
		b    []byte
		size int
	}{
		{"topic", m.Topic, TopicSize},
		{"sender", m.Sender, PublicKeySize},
		{"id", m.Id, IDSize},
		{"nonce", m.Nonce, NonceSize},
		{"signature", m.Signature, SignatureSize},
	} {
		if len(f.b) != f.size {
			return nil, errorf(ErrMalformed, "%s of %d bytes, want %d", f.name, len(f.b), f.size)
		}
	}
	if len(m.KeyId) > MaxKeyIDSize {
		return nil, errorf(ErrMalformed, "key ID of %d bytes, limit %d", len(m.KeyId), MaxKeyIDSize)
	}
	if len(m.Ciphertext) < TagSize {
		return nil, errorf(ErrMalformed, "ciphertext of %d bytes, at least %d", len(m.Ciphertext), TagSize)
	}
	e := &Envelope{
		Topic:      Topic(m.Topic),
		Sender:     PublicKey(m.Sender),
		ID:         ID(m.Id),
		Time:       m.Time,
		KeyKind:    m.KeyKind,
		KeyID:      m.KeyId,
		Nonce:      [NonceSize]byte(m.Nonce),
		Ciphertext: m.Ciphertext,
		Signature:  [SignatureSize]byte(m.Signature),
	}
	if len(e.KeyID) == 0 {
		e.KeyID = nil
	}
	return e, nil
}

// Verify checks the sender's signature over the envelope's fields.
func (e *Envelope) Verify() error {
	if !ed25519.Verify(e.Sender[:], e.signed(e.appendHeader(make([]byte, 0, 256))), e.Signature[:]) {
		return fmt.Errorf("%w: sender %s", ErrSignature, e.Sender)
	}
	return nil
}

// Open decrypts the body with key. A wrong key, or any change to the
// envelope since it was sealed, is ErrDecrypt.
func (e *Envelope) Open(key [KeySize]byte) ([]byte, error) {
	if len(e.Ciphertext) < TagSize {
		return nil, errorf(ErrMalformed, "open: ciphertext of %d bytes", len(e.Ciphertext))
	}
	pt, err := newAEAD(key).Open(nil, e.Nonce[:], e.Ciphertext, bodyAD(e.appendHeader(nil)))
	if err != nil {
		return nil, fmt.Errorf("%w: open", ErrDecrypt)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// Marshal encodes the envelope (deterministic protobuf; see FORMAT.md).
func (e *Envelope) Marshal() ([]byte, error) {
	if len(e.KeyID) > MaxKeyIDSize {
		return nil, errorf(ErrTooLarge, "marshal: key ID of %d bytes, limit %d", len(e.KeyID), MaxKeyIDSize)
	}
	b, err := (&ephemeralpb.Envelope{
		Topic:      e.Topic[:],
		Sender:     e.Sender[:],
		Id:         e.ID[:],
		Time:       e.Time,
		KeyKind:    e.KeyKind,
		KeyId:      e.KeyID,
		Nonce:      e.Nonce[:],
		Ciphertext: e.Ciphertext,
		Signature:  e.Signature[:],
	}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("ephemeral: marshal: %w", err)
	}
	if len(b) > MaxEnvelopeSize {
		return nil, errorf(ErrTooLarge, "marshal: %d bytes, limit %d", len(b), MaxEnvelopeSize)
	}
	return b, nil
}

// Timestamp is Time as a time.Time.
func (e *Envelope) Timestamp() time.Time { return time.UnixMilli(e.Time) }

// SeenKey is what the seen-set records of an envelope: the first 16 bytes
// of SHA-256(label ‖ 0x00 ‖ topic ‖ sender ‖ id). Binding the sender means
// nobody can shadow another sender's message by sending one of their own
// with the same ID first; binding the topic keeps spaces apart in a store
// they share.
func (e *Envelope) SeenKey() SeenKey {
	h := sha256.New()
	h.Write([]byte(labelSeen))
	h.Write([]byte{0})
	h.Write(e.Topic[:])
	h.Write(e.Sender[:])
	h.Write(e.ID[:])
	var k SeenKey
	copy(k[:], h.Sum(nil))
	return k
}

// appendHeader appends the canonical header:
// topic (32) ‖ sender (32) ‖ id (16) ‖ time (int64 BE) ‖ key kind (uint32
// BE) ‖ len(key ID) (1) ‖ key ID.
func (e *Envelope) appendHeader(b []byte) []byte {
	b = append(b, e.Topic[:]...)
	b = append(b, e.Sender[:]...)
	b = append(b, e.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time))
	b = binary.BigEndian.AppendUint32(b, e.KeyKind)
	b = append(b, byte(len(e.KeyID)))
	return append(b, e.KeyID...)
}

// signed returns the bytes the sender signs:
// label ‖ 0x00 ‖ header ‖ nonce (24) ‖ len(ciphertext) (uint32 BE) ‖ ciphertext.
func (e *Envelope) signed(hdr []byte) []byte {
	b := make([]byte, 0, len(labelSignature)+1+len(hdr)+NonceSize+4+len(e.Ciphertext))
	b = append(b, labelSignature...)
	b = append(b, 0)
	b = append(b, hdr...)
	b = append(b, e.Nonce[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Ciphertext)))
	return append(b, e.Ciphertext...)
}

// bodyAD is the AEAD's additional data: label ‖ 0x00 ‖ header.
func bodyAD(hdr []byte) []byte {
	b := make([]byte, 0, len(labelBody)+1+len(hdr))
	b = append(b, labelBody...)
	b = append(b, 0)
	return append(b, hdr...)
}

func newAEAD(key [KeySize]byte) interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
} {
	a, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("ephemeral: " + err.Error()) // only for a key of the wrong size
	}
	return a
}

func orCryptoRand(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
