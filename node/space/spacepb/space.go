// Package spacepb holds the encoding of the ops of a mycel space: the
// messages of space.proto, the schema of record, with hand-written codecs
// over protowire (internal/pbwire) that write the bytes protoc-gen-go's
// code wrote, without protobuf's reflection runtime. See ../FORMAT.md for
// the additional data that binds entry and body, for the bounds the decoder
// enforces and for what a relay may read. Never decode these messages
// directly from a peer: go through space.OpenEntry and space.PeekEntry.
package spacepb

import "strconv"

// Entry is the whole of one feed entry of a space. Only KeyId and
// Membership are in the clear; the op itself is in Sealed.
type Entry struct {
	Version    uint32      // entry format version: 1
	KeyId      []byte      // 16-byte auth key ID of the epoch secret that sealed the body
	Membership *Membership // present exactly for add-writer and remove-writer
	Sealed     []byte      // nonce (24) ‖ XChaCha20-Poly1305(OpBody) ‖ tag (16)
}

// MembershipKind says which membership op an entry holds. Its value is
// also the membership-kind byte of the additional data (0 when absent).
type MembershipKind int32

const (
	MembershipKind_MEMBERSHIP_KIND_UNSPECIFIED MembershipKind = 0 // never valid in a Membership
	MembershipKind_MEMBERSHIP_KIND_ADD         MembershipKind = 1 // add-writer
	MembershipKind_MEMBERSHIP_KIND_REMOVE      MembershipKind = 2 // remove-writer
)

// String returns the name space.proto gives k, or its number.
func (k MembershipKind) String() string {
	switch k {
	case MembershipKind_MEMBERSHIP_KIND_UNSPECIFIED:
		return "MEMBERSHIP_KIND_UNSPECIFIED"
	case MembershipKind_MEMBERSHIP_KIND_ADD:
		return "MEMBERSHIP_KIND_ADD"
	case MembershipKind_MEMBERSHIP_KIND_REMOVE:
		return "MEMBERSHIP_KIND_REMOVE"
	}
	return strconv.Itoa(int(k))
}

// Membership is the clear copy of an add-writer or remove-writer target,
// which relays need to know the writer set. It must agree with the body.
type Membership struct {
	Kind MembershipKind
	Feed []byte // 32-byte Ed25519 feed key of the writer added or removed
	// Add only: the space's keyring sealed to the new device (auth.SealKeyring,
	// HPKE, at most 768 KiB). In the clear because the device must open it
	// before it can read anything; it is a ciphertext only that device opens.
	SealedKeyring []byte
}

// OpBody is the plaintext of Entry.Sealed: one op with its causal context.
type OpBody struct {
	Seen []*Seen // causal delta: feeds whose seen length changed since the writer's previous op
	Hlc  uint64  // hybrid logical clock: (Unix ms << 16) | counter
	// Op is one of *OpBody_Put, *OpBody_Delete, *OpBody_AddWriter,
	// *OpBody_RemoveWriter, *OpBody_Rotate.
	Op isOpBody_Op
}

type isOpBody_Op interface {
	isOpBody_Op()
}

type OpBody_Put struct {
	Put *Put
}

type OpBody_Delete struct {
	Delete *Delete
}

type OpBody_AddWriter struct {
	AddWriter *AddWriter
}

type OpBody_RemoveWriter struct {
	RemoveWriter *RemoveWriter
}

type OpBody_Rotate struct {
	Rotate *Rotation
}

func (*OpBody_Put) isOpBody_Op()          {}
func (*OpBody_Delete) isOpBody_Op()       {}
func (*OpBody_AddWriter) isOpBody_Op()    {}
func (*OpBody_RemoveWriter) isOpBody_Op() {}
func (*OpBody_Rotate) isOpBody_Op()       {}

// Seen: the writer had seen the first Length entries of Feed.
type Seen struct {
	Feed   []byte // 32-byte feed key
	Length uint64
}

type Put struct {
	Key   []byte // UTF-8, 1..1024 bytes
	Value []byte // at most 512 KiB
}

type Delete struct {
	Key []byte // UTF-8, 1..1024 bytes
}

type AddWriter struct {
	Feed         []byte // 32-byte feed key of the new writer (also in the clear)
	Name         string // device name, at most 256 bytes
	DevicePublic []byte // the device's HPKE public key (auth device key bytes), at most 2 KiB
	// Field 4 was the sealed keyring; it travels in the clear header
	// (Membership), so that the new device can open it before it holds any key.
}

type RemoveWriter struct {
	Feed     []byte    // 32-byte feed key of the writer removed (also in the clear)
	Rotation *Rotation // optional: the new epoch that cuts the removed writer off
}

// Rotation starts a new epoch: its secret, named by KeyId, sealed to each
// remaining member.
type Rotation struct {
	Epoch uint32
	KeyId []byte          // 16-byte auth key ID of the new secret
	Boxes []*SealedSecret // at most 1024, one per member feed
}

type SealedSecret struct {
	Feed []byte // 32-byte feed key of the member
	Box  []byte // auth.SealEpochSecret box, 1..2048 bytes
}

func (x *OpBody) GetOp() isOpBody_Op {
	if x != nil {
		return x.Op
	}
	return nil
}

func (x *OpBody) GetPut() *Put {
	if x, ok := x.GetOp().(*OpBody_Put); ok {
		return x.Put
	}
	return nil
}

func (x *OpBody) GetDelete() *Delete {
	if x, ok := x.GetOp().(*OpBody_Delete); ok {
		return x.Delete
	}
	return nil
}

func (x *OpBody) GetAddWriter() *AddWriter {
	if x, ok := x.GetOp().(*OpBody_AddWriter); ok {
		return x.AddWriter
	}
	return nil
}

func (x *OpBody) GetRemoveWriter() *RemoveWriter {
	if x, ok := x.GetOp().(*OpBody_RemoveWriter); ok {
		return x.RemoveWriter
	}
	return nil
}

func (x *OpBody) GetRotate() *Rotation {
	if x, ok := x.GetOp().(*OpBody_Rotate); ok {
		return x.Rotate
	}
	return nil
}

func (x *Entry) GetVersion() uint32 {
	if x != nil {
		return x.Version
	}
	return 0
}

func (x *Entry) GetKeyId() []byte {
	if x != nil {
		return x.KeyId
	}
	return nil
}

func (x *Entry) GetMembership() *Membership {
	if x != nil {
		return x.Membership
	}
	return nil
}

func (x *Entry) GetSealed() []byte {
	if x != nil {
		return x.Sealed
	}
	return nil
}

func (x *Membership) GetKind() MembershipKind {
	if x != nil {
		return x.Kind
	}
	return 0
}

func (x *Membership) GetFeed() []byte {
	if x != nil {
		return x.Feed
	}
	return nil
}

func (x *Membership) GetSealedKeyring() []byte {
	if x != nil {
		return x.SealedKeyring
	}
	return nil
}

func (x *OpBody) GetSeen() []*Seen {
	if x != nil {
		return x.Seen
	}
	return nil
}

func (x *OpBody) GetHlc() uint64 {
	if x != nil {
		return x.Hlc
	}
	return 0
}

func (x *Seen) GetFeed() []byte {
	if x != nil {
		return x.Feed
	}
	return nil
}

func (x *Seen) GetLength() uint64 {
	if x != nil {
		return x.Length
	}
	return 0
}

func (x *Put) GetKey() []byte {
	if x != nil {
		return x.Key
	}
	return nil
}

func (x *Put) GetValue() []byte {
	if x != nil {
		return x.Value
	}
	return nil
}

func (x *Delete) GetKey() []byte {
	if x != nil {
		return x.Key
	}
	return nil
}

func (x *AddWriter) GetFeed() []byte {
	if x != nil {
		return x.Feed
	}
	return nil
}

func (x *AddWriter) GetName() string {
	if x != nil {
		return x.Name
	}
	return ""
}

func (x *AddWriter) GetDevicePublic() []byte {
	if x != nil {
		return x.DevicePublic
	}
	return nil
}

func (x *RemoveWriter) GetFeed() []byte {
	if x != nil {
		return x.Feed
	}
	return nil
}

func (x *RemoveWriter) GetRotation() *Rotation {
	if x != nil {
		return x.Rotation
	}
	return nil
}

func (x *Rotation) GetEpoch() uint32 {
	if x != nil {
		return x.Epoch
	}
	return 0
}

func (x *Rotation) GetKeyId() []byte {
	if x != nil {
		return x.KeyId
	}
	return nil
}

func (x *Rotation) GetBoxes() []*SealedSecret {
	if x != nil {
		return x.Boxes
	}
	return nil
}

func (x *SealedSecret) GetFeed() []byte {
	if x != nil {
		return x.Feed
	}
	return nil
}

func (x *SealedSecret) GetBox() []byte {
	if x != nil {
		return x.Box
	}
	return nil
}
