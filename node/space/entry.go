package space

// The entry codec: how an op becomes the opaque bytes of a feed entry and
// back. FORMAT.md documents the byte layout; spacepb/space.proto the
// messages.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/space/spacepb"
	"google.golang.org/protobuf/encoding/protowire"
)

// EntryVersion is the version of the entry format this package writes and
// the only one it reads. The additional data's label ("mycel/v1/entry")
// names it too, so an entry cannot be opened as another version.
const EntryVersion = 1

// Bounds of an op, part of the format: a node refuses an entry that breaks
// one, so every node must use the same. They are checked on sealing too, so
// a node never writes what others would refuse. The entry as a whole is
// bounded by feed.MaxEntrySize, which binds first for the largest
// rotations (see FORMAT.md).
const (
	MaxKeySize           = 1024      // put/delete key: UTF-8, non-empty
	MaxValueSize         = 512 << 10 // put value
	MaxNameSize          = 256       // add-writer device name: UTF-8
	MaxSeen              = 4096      // causal delta items per op
	MaxDevicePublicSize  = 2 << 10   // add-writer device public key
	MaxSealedKeyringSize = 768 << 10 // add-writer sealed keyring
	MaxBoxes             = 1024      // sealed secrets per rotation
	MaxBoxSize           = 2 << 10   // one sealed secret, non-empty
)

// Errors of the entry codec; every error it returns wraps one of them or,
// for SealEntry, the rand reader's error.
var (
	// ErrUnknownKey: the entry was sealed under an epoch secret that the
	// Keys given do not hold (yet). Not final: open the entry again once
	// the key is known (a rotation op delivers it).
	ErrUnknownKey = errors.New("space: unknown key")
	// ErrInvalidEntry: anything else. The entry does not decode, does not
	// authenticate (changed, or moved to another feed or position), its
	// clear header disagrees with its body, its op kind is
	// unknown, or it breaks a bound. Final: the entry never becomes valid.
	// SealEntry returns it for an op it refuses to write.
	ErrInvalidEntry = errors.New("space: invalid entry")
)

// Keys finds an epoch secret by key ID.
type Keys func(id [auth.KeyIDSize]byte) (auth.EpochSecret, bool)

// EntryHeader is the clear part of an entry: all that a node without the
// space's keys (a relay) can learn from it.
type EntryHeader struct {
	// KeyID names the epoch secret that sealed the op (auth KeyID).
	KeyID [auth.KeyIDSize]byte
	// Membership is OpAddWriter or OpRemoveWriter for a membership op and 0
	// for every other op, whose kind is sealed.
	Membership OpKind
	// Target is the feed the membership op adds or removes; zero when
	// Membership is 0.
	Target feed.PublicKey
	// SealedKeyring, on an add-writer, is the space's keyring sealed to the
	// new device. It is in the clear so that the device can open it before
	// it holds any key of the space.
	SealedKeyring []byte
}

// SealEntry encodes op and seals it under secret's content key, bound to its
// place: the space, the author's feed and the op's index in it. The result
// is the entry to append at that index. Randomness (the nonce) comes from
// rand, crypto/rand when nil. An op that breaks a bound or sets a field its
// kind does not use is refused with ErrInvalidEntry.
func SealEntry(space auth.SpaceID, author feed.PublicKey, index uint64, secret auth.EpochSecret, op *Op, rand io.Reader) ([]byte, error) {
	body, err := encodeBody(op)
	if err != nil {
		return nil, fmt.Errorf("seal entry: %w", err)
	}
	h := EntryHeader{KeyID: secret.KeyID(space)}
	if isMembership(op.Kind) {
		h.Membership, h.Target = op.Kind, op.Target
	}
	if op.Kind == OpAddWriter {
		h.SealedKeyring = op.SealedKeyring
	}
	return sealBody(space, author, index, secret, h, body, rand)
}

// OpenEntry authenticates, decrypts and decodes the entry at index of the
// author's feed in space. The key comes from keys by the entry's key ID; if
// keys does not know it the error is ErrUnknownKey. Everything else that is
// wrong is ErrInvalidEntry.
//
// keys must return the secret whose auth KeyID in this space is id, as a
// map built with EpochSecret.KeyID does. Given another secret the entry
// does not authenticate and is reported invalid: the codec cannot tell a
// wrong secret from a tampered entry.
func OpenEntry(space auth.SpaceID, author feed.PublicKey, index uint64, data []byte, keys Keys) (*Op, error) {
	h, sealed, err := parseEntry(data)
	if err != nil {
		return nil, fmt.Errorf("open entry: %w", err)
	}
	var secret auth.EpochSecret
	ok := false
	if keys != nil {
		secret, ok = keys(h.KeyID)
	}
	if !ok {
		return nil, fmt.Errorf("open entry: %w %x", ErrUnknownKey, h.KeyID)
	}
	op, err := openSealed(space, author, index, h, sealed, secret)
	if err != nil {
		return nil, fmt.Errorf("open entry: %w", err)
	}
	return op, nil
}

// PeekEntry returns the clear header of an entry, which needs no key: the
// key ID to open it with and, for add-writer and remove-writer, the target
// feed. It checks the header only; the entry may still fail to open.
func PeekEntry(data []byte) (EntryHeader, error) {
	h, _, err := parseEntry(data)
	if err != nil {
		return EntryHeader{}, fmt.Errorf("peek entry: %w", err)
	}
	return h, nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEntry, fmt.Sprintf(format, args...))
}

func isMembership(k OpKind) bool { return k == OpAddWriter || k == OpRemoveWriter }

func kindName(k OpKind) string {
	switch k {
	case 0:
		return "none"
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpAddWriter:
		return "add-writer"
	case OpRemoveWriter:
		return "remove-writer"
	case OpRotate:
		return "rotate"
	}
	return fmt.Sprintf("kind %d", k)
}

// adLabel starts the additional data. It is ASCII without NUL and the
// fields after it have fixed sizes, so the encoding is injective.
const adLabel = "mycel/v1/entry"

// adSize is the size of the additional data: label ‖ 0x00 ‖ space (32) ‖
// author (32) ‖ index (8) ‖ key ID (16) ‖ membership kind (1) ‖
// membership feed (32) ‖ SHA-256 of the sealed keyring (32).
const adSize = len(adLabel) + 1 + auth.SpaceIDSize + feed.KeySize + 8 + auth.KeyIDSize + 1 + feed.KeySize + sha256.Size

// entryAD returns the additional data that binds the sealed body to its
// space, feed, position, epoch and clear header.
func entryAD(space auth.SpaceID, author feed.PublicKey, index uint64, h EntryHeader) []byte {
	ad := make([]byte, 0, adSize)
	ad = append(ad, adLabel...)
	ad = append(ad, 0)
	ad = append(ad, space[:]...)
	ad = append(ad, author[:]...)
	ad = binary.BigEndian.AppendUint64(ad, index)
	ad = append(ad, h.KeyID[:]...)
	ad = append(ad, byte(membershipKind(h.Membership)))
	ad = append(ad, h.Target[:]...)
	if len(h.SealedKeyring) == 0 {
		return append(ad, noKeyringHash[:]...)
	}
	kr := sha256.Sum256(h.SealedKeyring)
	return append(ad, kr[:]...)
}

// noKeyringHash is the SHA-256 of an empty sealed keyring, the additional
// data's last field for every entry but an add-writer's.
var noKeyringHash = sha256.Sum256(nil)

// lastContentKey keeps the content key openSealed derived last. Opening a
// feed's entries derives the same key (an HKDF) for each; in the browser's
// wasm build, where SHA-256 runs without assembly, that was a fifth of the
// time spent opening an entry. One key is kept: the memo is bounded, and the
// entries of a catch-up come by the thousand under one epoch.
var lastContentKey struct {
	mu     sync.Mutex
	space  auth.SpaceID
	secret auth.EpochSecret
	key    [auth.KeySize]byte
	ok     bool
}

// contentKey is secret.ContentKey(space), memoised in lastContentKey.
func contentKey(space auth.SpaceID, secret auth.EpochSecret) [auth.KeySize]byte {
	c := &lastContentKey
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || c.space != space || c.secret != secret {
		c.key, c.space, c.secret, c.ok = secret.ContentKey(space), space, secret, true
	}
	return c.key
}

// membershipKind maps an op kind to the clear header's kind (0 for none).
func membershipKind(k OpKind) spacepb.MembershipKind {
	switch k {
	case OpAddWriter:
		return spacepb.MembershipKind_MEMBERSHIP_KIND_ADD
	case OpRemoveWriter:
		return spacepb.MembershipKind_MEMBERSHIP_KIND_REMOVE
	}
	return spacepb.MembershipKind_MEMBERSHIP_KIND_UNSPECIFIED
}

// sealBody seals an encoded body under h. SealEntry derives h from the op;
// tests pass others to build entries SealEntry would refuse to write.
func sealBody(space auth.SpaceID, author feed.PublicKey, index uint64, secret auth.EpochSecret, h EntryHeader, body []byte, rand io.Reader) ([]byte, error) {
	if limit := feed.MaxEntrySize - auth.ContentOverhead; len(body) > limit {
		return nil, fmt.Errorf("seal entry: %w", invalidf("op of %d bytes, limit %d", len(body), limit))
	}
	sealed, err := auth.SealContent(secret.ContentKey(space), body, entryAD(space, author, index, h), rand)
	if err != nil {
		return nil, fmt.Errorf("seal entry: %w", err)
	}
	e := &spacepb.Entry{Version: EntryVersion, KeyId: h.KeyID[:], Sealed: sealed}
	if h.Membership != 0 {
		e.Membership = &spacepb.Membership{Kind: membershipKind(h.Membership), Feed: h.Target[:], SealedKeyring: h.SealedKeyring}
	}
	data, err := e.Marshal()
	if err != nil {
		return nil, fmt.Errorf("seal entry: %w", err)
	}
	if len(data) > feed.MaxEntrySize {
		return nil, fmt.Errorf("seal entry: %w", invalidf("entry of %d bytes, limit %d", len(data), feed.MaxEntrySize))
	}
	return data, nil
}

// parseEntry decodes and checks the clear part of an entry and returns it
// with the sealed body.
func parseEntry(data []byte) (EntryHeader, []byte, error) {
	var h EntryHeader
	if len(data) > feed.MaxEntrySize {
		return h, nil, invalidf("entry of %d bytes, limit %d", len(data), feed.MaxEntrySize)
	}
	var e spacepb.Entry
	if err := e.Unmarshal(data); err != nil {
		return h, nil, invalidf("%v", err)
	}
	if e.Version != EntryVersion {
		return h, nil, invalidf("version %d, this node reads %d", e.Version, EntryVersion)
	}
	if len(e.KeyId) != auth.KeyIDSize {
		return h, nil, invalidf("key ID of %d bytes, want %d", len(e.KeyId), auth.KeyIDSize)
	}
	h.KeyID = [auth.KeyIDSize]byte(e.KeyId)
	if m := e.Membership; m != nil {
		switch m.Kind {
		case spacepb.MembershipKind_MEMBERSHIP_KIND_ADD:
			h.Membership = OpAddWriter
		case spacepb.MembershipKind_MEMBERSHIP_KIND_REMOVE:
			h.Membership = OpRemoveWriter
		default:
			return h, nil, invalidf("membership of kind %d", m.Kind)
		}
		if len(m.Feed) != feed.KeySize {
			return h, nil, invalidf("membership feed of %d bytes, want %d", len(m.Feed), feed.KeySize)
		}
		h.Target = feed.PublicKey(m.Feed)
		switch {
		case len(m.SealedKeyring) > MaxSealedKeyringSize:
			return h, nil, invalidf("sealed keyring of %d bytes, limit %d", len(m.SealedKeyring), MaxSealedKeyringSize)
		case len(m.SealedKeyring) > 0 && h.Membership != OpAddWriter:
			return h, nil, invalidf("sealed keyring on a %s", kindName(h.Membership))
		}
		h.SealedKeyring = m.SealedKeyring
	}
	if len(e.Sealed) < auth.ContentOverhead {
		return h, nil, invalidf("sealed op of %d bytes, at least %d", len(e.Sealed), auth.ContentOverhead)
	}
	return h, e.Sealed, nil
}

// openSealed decrypts a sealed body with secret under h and checks that
// the body agrees with h.
func openSealed(space auth.SpaceID, author feed.PublicKey, index uint64, h EntryHeader, sealed []byte, secret auth.EpochSecret) (*Op, error) {
	body, err := auth.OpenContent(contentKey(space, secret), sealed, entryAD(space, author, index, h))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	op, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	want := EntryHeader{KeyID: h.KeyID}
	if isMembership(op.Kind) {
		want.Membership, want.Target = op.Kind, op.Target
	}
	if want.KeyID != h.KeyID || want.Membership != h.Membership || want.Target != h.Target {
		return nil, invalidf("clear header (%s %x) disagrees with the %s op (target %x)",
			kindName(h.Membership), h.Target[:], kindName(op.Kind), op.Target[:])
	}
	if op.Kind == OpAddWriter {
		op.SealedKeyring = h.SealedKeyring
	}
	return op, nil
}

// Field numbers of spacepb.OpBody and what it holds, for scanBody.
const (
	fieldBodySeen         = 1
	fieldBodyRemoveWriter = 6
	fieldBodyRotate       = 7
	fieldRemoveRotation   = 2
	fieldRotationBoxes    = 3
)

// scanBody counts the repeated messages of an encoded body before it is
// decoded, so that a body of tiny items cannot make the decoder allocate
// many times its size. It counts every occurrence in the encoding, which
// is at least as many as the decoder would keep (protobuf merges repeated
// occurrences of a message field). It allocates nothing.
func scanBody(b []byte) error {
	seen, boxes := 0, 0
	for len(b) > 0 {
		num, v, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case v == nil:
		case num == fieldBodySeen:
			if seen++; seen > MaxSeen {
				return invalidf("causal context of more than %d feeds", MaxSeen)
			}
		case num == fieldBodyRotate:
			if err := countBoxes(v, &boxes); err != nil {
				return err
			}
		case num == fieldBodyRemoveWriter:
			for len(v) > 0 {
				num, r, rest, err := nextField(v)
				if err != nil {
					return err
				}
				v = rest
				if r != nil && num == fieldRemoveRotation {
					if err := countBoxes(r, &boxes); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// countBoxes adds the boxes of an encoded Rotation to *n.
func countBoxes(rotation []byte, n *int) error {
	for len(rotation) > 0 {
		num, v, rest, err := nextField(rotation)
		if err != nil {
			return err
		}
		rotation = rest
		if v != nil && num == fieldRotationBoxes {
			if *n++; *n > MaxBoxes {
				return invalidf("rotation of more than %d boxes", MaxBoxes)
			}
		}
	}
	return nil
}

// nextField consumes the first field of the message encoding b. v is its
// value when it is length-delimited (non-nil even when empty), else nil.
func nextField(b []byte) (num protowire.Number, v, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, nil, nil, invalidf("op: %v", protowire.ParseError(n))
	}
	b = b[n:]
	if typ == protowire.BytesType {
		v, n = protowire.ConsumeBytes(b)
		if v == nil && n >= 0 {
			v = b[:0]
		}
	} else {
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return 0, nil, nil, invalidf("op: %v", protowire.ParseError(n))
	}
	return num, v, b[n:], nil
}

// encodeBody checks op and encodes it as a spacepb.OpBody.
func encodeBody(op *Op) ([]byte, error) {
	if err := checkOp(op); err != nil {
		return nil, err
	}
	return marshalBody(op)
}

// marshalBody encodes op without checking it (tests use it to build bodies
// that break the rules).
func marshalBody(op *Op) ([]byte, error) {
	m := &spacepb.OpBody{Hlc: op.HLC}
	if len(op.Seen) > 0 {
		m.Seen = make([]*spacepb.Seen, len(op.Seen))
		for i, s := range op.Seen {
			m.Seen[i] = &spacepb.Seen{Feed: s.Feed[:], Length: s.Length}
		}
	}
	switch op.Kind {
	case OpPut:
		m.Op = &spacepb.OpBody_Put{Put: &spacepb.Put{Key: []byte(op.Key), Value: op.Value}}
	case OpDelete:
		m.Op = &spacepb.OpBody_Delete{Delete: &spacepb.Delete{Key: []byte(op.Key)}}
	case OpAddWriter:
		m.Op = &spacepb.OpBody_AddWriter{AddWriter: &spacepb.AddWriter{
			Feed:         op.Target[:],
			Name:         op.Name,
			DevicePublic: op.DevicePublic,
		}}
	case OpRemoveWriter:
		m.Op = &spacepb.OpBody_RemoveWriter{RemoveWriter: &spacepb.RemoveWriter{
			Feed:     op.Target[:],
			Rotation: rotationToPB(op.Rotation),
		}}
	case OpRotate:
		m.Op = &spacepb.OpBody_Rotate{Rotate: rotationToPB(op.Rotation)}
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, invalidf("op: %v", err)
	}
	return b, nil
}

func rotationToPB(r *Rotation) *spacepb.Rotation {
	if r == nil {
		return nil
	}
	m := &spacepb.Rotation{Epoch: r.Epoch, KeyId: r.KeyID[:]}
	if len(r.Boxes) > 0 {
		m.Boxes = make([]*spacepb.SealedSecret, len(r.Boxes))
		for i, b := range r.Boxes {
			m.Boxes[i] = &spacepb.SealedSecret{Feed: b.Feed[:], Box: b.Box}
		}
	}
	return m
}

// decodeBody decodes and checks a decrypted body. It is the only place that
// reads an op's plaintext encoding.
func decodeBody(b []byte) (*Op, error) {
	if len(b) > feed.MaxEntrySize {
		return nil, invalidf("op of %d bytes, limit %d", len(b), feed.MaxEntrySize)
	}
	if err := scanBody(b); err != nil {
		return nil, err
	}
	var m spacepb.OpBody
	if err := m.Unmarshal(b); err != nil {
		return nil, invalidf("op: %v", err)
	}
	op := &Op{HLC: m.Hlc}
	if len(m.Seen) > 0 {
		op.Seen = make([]Seen, len(m.Seen))
		for i, s := range m.Seen {
			f, err := feedKey("causal context", s.GetFeed())
			if err != nil {
				return nil, err
			}
			op.Seen[i] = Seen{Feed: f, Length: s.GetLength()}
		}
	}
	var err error
	switch x := m.Op.(type) {
	case *spacepb.OpBody_Put:
		op.Kind, op.Key, op.Value = OpPut, string(x.Put.GetKey()), x.Put.GetValue()
	case *spacepb.OpBody_Delete:
		op.Kind, op.Key = OpDelete, string(x.Delete.GetKey())
	case *spacepb.OpBody_AddWriter:
		a := x.AddWriter
		op.Kind = OpAddWriter
		op.Name, op.DevicePublic = a.GetName(), a.GetDevicePublic()
		op.Target, err = feedKey("add-writer", a.GetFeed())
	case *spacepb.OpBody_RemoveWriter:
		op.Kind = OpRemoveWriter
		op.Target, err = feedKey("remove-writer", x.RemoveWriter.GetFeed())
		if err == nil && x.RemoveWriter.GetRotation() != nil {
			op.Rotation, err = rotationFromPB(x.RemoveWriter.GetRotation())
		}
	case *spacepb.OpBody_Rotate:
		op.Kind = OpRotate
		if x.Rotate == nil {
			return nil, invalidf("rotate: no rotation")
		}
		op.Rotation, err = rotationFromPB(x.Rotate)
	default: // none, or a kind added after this version
		return nil, invalidf("op of no or an unknown kind")
	}
	if err != nil {
		return nil, err
	}
	if err := checkOp(op); err != nil {
		return nil, err
	}
	return op, nil
}

func rotationFromPB(m *spacepb.Rotation) (*Rotation, error) {
	if len(m.KeyId) != auth.KeyIDSize {
		return nil, invalidf("rotation: key ID of %d bytes, want %d", len(m.KeyId), auth.KeyIDSize)
	}
	r := &Rotation{Epoch: m.Epoch, KeyID: [auth.KeyIDSize]byte(m.KeyId)}
	if len(m.Boxes) > 0 {
		r.Boxes = make([]SealedSecret, len(m.Boxes))
		for i, b := range m.Boxes {
			f, err := feedKey("rotation box", b.GetFeed())
			if err != nil {
				return nil, err
			}
			r.Boxes[i] = SealedSecret{Feed: f, Box: b.GetBox()}
		}
	}
	return r, nil
}

func feedKey(what string, b []byte) (feed.PublicKey, error) {
	if len(b) != feed.KeySize {
		return feed.PublicKey{}, invalidf("%s: feed key of %d bytes, want %d", what, len(b), feed.KeySize)
	}
	return feed.PublicKey(b), nil
}

// checkOp checks the bounds of op and that it sets only the fields its kind
// uses. Sealing and opening run the same checks, so that what one node
// writes every node reads.
func checkOp(op *Op) error {
	if op == nil {
		return invalidf("no op")
	}
	if len(op.Seen) > MaxSeen {
		return invalidf("causal context of %d feeds, limit %d", len(op.Seen), MaxSeen)
	}
	if len(op.Seen) > 1 {
		seen := make(map[feed.PublicKey]struct{}, len(op.Seen))
		for _, s := range op.Seen {
			if _, dup := seen[s.Feed]; dup {
				return invalidf("causal context names feed %x twice", s.Feed[:])
			}
			seen[s.Feed] = struct{}{}
		}
	}
	k := kindName(op.Kind)
	switch op.Kind {
	case OpPut, OpDelete:
		switch {
		case op.Key == "":
			return invalidf("%s: empty key", k)
		case len(op.Key) > MaxKeySize:
			return invalidf("%s: key of %d bytes, limit %d", k, len(op.Key), MaxKeySize)
		case !utf8.ValidString(op.Key):
			return invalidf("%s: key is not UTF-8", k)
		case len(op.Value) > MaxValueSize:
			return invalidf("%s: value of %d bytes, limit %d", k, len(op.Value), MaxValueSize)
		case op.Kind == OpDelete && len(op.Value) > 0:
			return invalidf("delete with a value")
		}
		return unused(op, k, true, true, false, false, false)
	case OpAddWriter:
		switch {
		case len(op.Name) > MaxNameSize:
			return invalidf("%s: name of %d bytes, limit %d", k, len(op.Name), MaxNameSize)
		case !utf8.ValidString(op.Name):
			return invalidf("%s: name is not UTF-8", k)
		case len(op.DevicePublic) > MaxDevicePublicSize:
			return invalidf("%s: device public key of %d bytes, limit %d", k, len(op.DevicePublic), MaxDevicePublicSize)
		case len(op.SealedKeyring) > MaxSealedKeyringSize:
			return invalidf("%s: sealed keyring of %d bytes, limit %d", k, len(op.SealedKeyring), MaxSealedKeyringSize)
		}
		return unused(op, k, false, false, true, true, false)
	case OpRemoveWriter:
		if op.Rotation != nil {
			if err := checkRotation(k, op.Rotation); err != nil {
				return err
			}
		}
		return unused(op, k, false, false, true, false, true)
	case OpRotate:
		if op.Rotation == nil {
			return invalidf("rotate: no rotation")
		}
		if err := checkRotation(k, op.Rotation); err != nil {
			return err
		}
		return unused(op, k, false, false, false, false, true)
	}
	return invalidf("unknown op kind %d", op.Kind)
}

// unused refuses the fields of op that its kind does not use (the others
// are allowed): they would be lost on the way through the entry.
func unused(op *Op, kind string, key, value, target, device, rotation bool) error {
	var field string
	switch {
	case !key && op.Key != "":
		field = "key"
	case !value && len(op.Value) > 0:
		field = "value"
	case !target && op.Target != (feed.PublicKey{}):
		field = "target"
	case !device && op.Name != "":
		field = "name"
	case !device && len(op.DevicePublic) > 0:
		field = "device public key"
	case !device && len(op.SealedKeyring) > 0:
		field = "sealed keyring"
	case !rotation && op.Rotation != nil:
		field = "rotation"
	default:
		return nil
	}
	return invalidf("%s op with a %s", kind, field)
}

func checkRotation(kind string, r *Rotation) error {
	if len(r.Boxes) > MaxBoxes {
		return invalidf("%s: rotation of %d boxes, limit %d", kind, len(r.Boxes), MaxBoxes)
	}
	feeds := make(map[feed.PublicKey]struct{}, len(r.Boxes))
	for _, b := range r.Boxes {
		if len(b.Box) == 0 || len(b.Box) > MaxBoxSize {
			return invalidf("%s: box of %d bytes, want 1 to %d", kind, len(b.Box), MaxBoxSize)
		}
		if _, dup := feeds[b.Feed]; dup {
			return invalidf("%s: two boxes for feed %x", kind, b.Feed[:])
		}
		feeds[b.Feed] = struct{}{}
	}
	return nil
}
