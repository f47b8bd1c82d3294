// Package pbwire holds the few helpers the hand-written protobuf codecs of
// mycel's message packages (feedpb, authpb, spacepb, syncpb, ephemeralpb)
// share. They sit on google.golang.org/protobuf/encoding/protowire, which
// does not pull in protobuf's reflection runtime: the browser node's wasm
// stays small (issue 14).
//
// The codecs write what protoc-gen-go's code writes with proto.Marshal
// (fields in number order; proto3 scalars, bytes and strings only when not
// zero; a message field when non-nil, even empty; a oneof member when set,
// a nil message in it as an empty one; every element of a repeated field,
// a nil message element as an empty one) and read what proto.Unmarshal
// reads: any valid encoding, the last value of a scalar winning, repeated
// occurrences of a message field merged, fields of an unknown number or of
// the wrong wire type skipped (and dropped: the types keep no unknown
// fields), strings checked for UTF-8 both ways. Each package's
// testdata/golden.txt holds what the generated code did, and its
// FuzzXxxDecode target fuzzes the decoders (package pbtest).
//
// proto.Unmarshal allocated a Go value for every element of a repeated
// field, so 2 bytes of input could cost a 24- to 120-byte value, and a
// 16 MiB frame a gigabyte. The decoders of peer frames therefore take
// limits on their repeated fields and refuse one too many as it comes
// (feedpb.Batch.UnmarshalWithin, syncpb.Message.UnmarshalWithin); space
// bounds its op bodies with its own scan before decoding them.
package pbwire

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Errors of the codecs. proto.Unmarshal and proto.Marshal refused the
// same inputs.
var (
	ErrDecode      = errors.New("protobuf: malformed encoding")
	ErrInvalidUTF8 = errors.New("protobuf: string field holds invalid UTF-8")
)

// Wire types, re-exported for the codecs' switches.
const (
	VarintType = protowire.VarintType
	BytesType  = protowire.BytesType
)

// AppendVarint appends field num as a varint unless v is 0.
func AppendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// AppendBool appends field num as a varint 1 when v.
func AppendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return AppendVarint(b, num, 1)
}

// AppendBytes appends field num unless v is empty.
func AppendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// AppendString appends field num unless v is empty. The caller checked v
// with ValidString.
func AppendString(b []byte, num protowire.Number, v string) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// AppendRepeatedBytes appends every element of vs as field num, empty
// ones included.
func AppendRepeatedBytes(b []byte, num protowire.Number, vs [][]byte) []byte {
	for _, v := range vs {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendBytes(b, v)
	}
	return b
}

// AppendMessage appends the tag and length of a message field of size
// bytes; the caller appends the message itself.
func AppendMessage(b []byte, num protowire.Number, size int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(size))
}

// SizeVarint is the size AppendVarint appends.
func SizeVarint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

// SizeBool is the size AppendBool appends.
func SizeBool(num protowire.Number, v bool) int {
	if !v {
		return 0
	}
	return protowire.SizeTag(num) + 1
}

// SizeBytes is the size AppendBytes and AppendString append for a value of
// n bytes.
func SizeBytes(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// SizeRepeatedBytes is the size AppendRepeatedBytes appends.
func SizeRepeatedBytes(num protowire.Number, vs [][]byte) int {
	n := len(vs) * protowire.SizeTag(num)
	for _, v := range vs {
		n += protowire.SizeBytes(len(v))
	}
	return n
}

// SizeMessage is the size of a message field whose message is size bytes.
func SizeMessage(num protowire.Number, size int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(size)
}

// ValidString reports whether a string field may be written: proto3
// strings are UTF-8.
func ValidString(s string) error {
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	return nil
}

// Field is one field read by Next. Varint holds a varint's value, Bytes a
// length-delimited field's contents (aliasing the input); fields of other
// wire types are skipped whole and have neither.
type Field struct {
	Num    protowire.Number
	Type   protowire.Type
	Varint uint64
	Bytes  []byte
}

// Next reads the field at the start of b and returns it with the number of
// bytes it took, refusing what proto.Unmarshal refuses: a malformed tag or
// value, a field number outside 1..2^29-1, an end-group without its start.
func Next(b []byte) (Field, int, error) {
	tag, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return Field{}, 0, ErrDecode
	}
	num := tag >> 3
	if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return Field{}, 0, ErrDecode
	}
	f := Field{Num: protowire.Number(num), Type: protowire.Type(tag & 7)}
	var m int
	switch f.Type {
	case protowire.VarintType:
		f.Varint, m = protowire.ConsumeVarint(b[n:])
	case protowire.BytesType:
		f.Bytes, m = protowire.ConsumeBytes(b[n:])
	case protowire.EndGroupType:
		return Field{}, 0, ErrDecode
	default:
		m = protowire.ConsumeFieldValue(f.Num, f.Type, b[n:])
	}
	if m < 0 {
		return Field{}, 0, ErrDecode
	}
	return f, n + m, nil
}

// Clone copies a singular bytes field's value out of the input, as
// proto.Unmarshal does (nil when empty).
func Clone(v []byte) []byte {
	return append([]byte(nil), v...)
}

// CloneElem copies an element of a repeated bytes field (never nil).
func CloneElem(v []byte) []byte {
	return append([]byte{}, v...)
}

// String reads a string field's value.
func String(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", ErrInvalidUTF8
	}
	return string(v), nil
}
