package feed

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"time"

	"github.com/mycelsync/mycel/feed/feedpb"
)

// Limits on what a peer can make us hold or compute. See FORMAT.md.
const (
	// MaxEntrySize is the largest entry, in bytes.
	MaxEntrySize = 1 << 20
	// MaxLength is the largest feed length a head may claim.
	MaxLength = 1 << 40
	// MaxBatchBytes bounds the encoded size of a Batch.
	MaxBatchBytes = 16 << 20
	// MaxRuns bounds the number of runs in one Batch.
	MaxRuns = 4096
	// MaxEvidenceBytes bounds the encoded size of ForkEvidence.
	MaxEvidenceBytes = 16 << 10
)

// KeySize, HashSize and SignatureSize are the fixed sizes on the wire.
const (
	KeySize       = ed25519.PublicKeySize
	HashSize      = 32
	SignatureSize = ed25519.SignatureSize
)

// PublicKey names a feed: its writer's Ed25519 public key.
type PublicKey [KeySize]byte

// Hash is a SHA-256 Merkle tree hash.
type Hash [HashSize]byte

// SignedHead is a writer's signed statement that its feed's first Length
// entries have Merkle root Root.
type SignedHead struct {
	Key       PublicKey
	Length    uint64
	Root      Hash
	Time      int64 // Unix milliseconds, the writer's clock
	Signature [SignatureSize]byte
}

// headContext domain-separates head signatures from every other Ed25519
// signature mycel makes with the same key.
const headContext = "mycel/feed/head/v1\x00"

// SignedBytes returns the exact bytes the signature covers:
//
//	"mycel/feed/head/v1\x00" (19 bytes) || key (32) || length (uint64 BE)
//	|| root (32) || time (int64 BE, Unix ms)
func (h *SignedHead) SignedBytes() []byte {
	b := make([]byte, 0, len(headContext)+KeySize+8+HashSize+8)
	b = append(b, headContext...)
	b = append(b, h.Key[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Length)
	b = append(b, h.Root[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Time))
	return b
}

// Verify checks the signature and the documented bounds: Length ≤
// MaxLength, and an empty feed has the empty tree's root.
func (h *SignedHead) Verify() error {
	if h.Length > MaxLength {
		return errorf(ErrMalformed, "head length %d exceeds %d", h.Length, uint64(MaxLength))
	}
	if h.Length == 0 && h.Root != emptyRoot {
		return errorf(ErrMalformed, "empty head with non-empty root")
	}
	if !ed25519.Verify(h.Key[:], h.SignedBytes(), h.Signature[:]) {
		return errorf(ErrBadSignature, "head of feed %x at length %d", h.Key[:8], h.Length)
	}
	return nil
}

// signHead makes a head for (length, root) signed by priv.
func signHead(priv ed25519.PrivateKey, length uint64, root Hash, now time.Time) SignedHead {
	h := SignedHead{Length: length, Root: root, Time: now.UnixMilli()}
	copy(h.Key[:], priv.Public().(ed25519.PublicKey))
	copy(h.Signature[:], ed25519.Sign(priv, h.SignedBytes()))
	return h
}

// MarshalBinary encodes the head as a feedpb.SignedHead.
func (h *SignedHead) MarshalBinary() ([]byte, error) {
	return h.toProto().Marshal()
}

// UnmarshalBinary decodes a head encoded by MarshalBinary. It checks sizes,
// not the signature: call Verify.
func (h *SignedHead) UnmarshalBinary(b []byte) error {
	if len(b) > 1024 {
		return errorf(ErrMalformed, "head of %d bytes", len(b))
	}
	var p feedpb.SignedHead
	if err := p.Unmarshal(b); err != nil {
		return errorf(ErrMalformed, "head: %v", err)
	}
	v, err := headFromProto(&p)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

func (h *SignedHead) toProto() *feedpb.SignedHead {
	return &feedpb.SignedHead{
		Key:       bytes.Clone(h.Key[:]),
		Length:    h.Length,
		Root:      bytes.Clone(h.Root[:]),
		TimeMs:    h.Time,
		Signature: bytes.Clone(h.Signature[:]),
	}
}

func headFromProto(p *feedpb.SignedHead) (SignedHead, error) {
	var h SignedHead
	if p == nil {
		return h, errorf(ErrMalformed, "missing head")
	}
	if len(p.Key) != KeySize || len(p.Root) != HashSize || len(p.Signature) != SignatureSize {
		return h, errorf(ErrMalformed, "head field sizes key=%d root=%d sig=%d", len(p.Key), len(p.Root), len(p.Signature))
	}
	copy(h.Key[:], p.Key)
	copy(h.Root[:], p.Root)
	copy(h.Signature[:], p.Signature)
	h.Length = p.Length
	h.Time = p.TimeMs
	return h, nil
}
