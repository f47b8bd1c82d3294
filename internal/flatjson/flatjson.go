// Package flatjson encodes and decodes the flat JSON objects that are the
// plaintext bodies of ephemeral envelopes (node/messages.Body,
// node/signin.Body): one object whose members are strings, byte strings
// (standard base64 with padding), booleans and unsigned integers.
//
// It replaces encoding/json in the protocol core because encoding/json and
// the reflection it keeps alive weigh about 73 KB of the browser node's
// gzipped wasm. The wire format is unchanged: Object writes the bytes
// encoding/json.Marshal writes for the same struct (HTML-safe escaping
// included), and Decode accepts what encoding/json.Unmarshal accepts into
// such a struct, with the same values (member names matched without
// regard to case, the last of duplicates winning, unknown members skipped,
// invalid UTF-8 and lone surrogates read as U+FFFD, null leaving a field
// as it is except a byte string, which it clears), with one exception: a
// byte string given as an array of numbers, which encoding/json accepts
// and no encoder writes, is refused. The fuzz tests compare both ways with
// encoding/json.
//
// It does no I/O; its input is bounded by the caller (the envelope bounds
// a body's size) and its nesting by MaxDepth.
package flatjson

import (
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects in skipped members, as
// encoding/json does.
const MaxDepth = 10000

// Object writes one JSON object, member by member, in the order of the
// calls. The caller leaves out empty members (omitempty).
type Object struct {
	b []byte
}

// NewObject starts an object.
func NewObject() *Object { return &Object{b: []byte{'{'}} }

func (o *Object) name(name string) {
	if len(o.b) > 1 {
		o.b = append(o.b, ',')
	}
	o.b = appendString(o.b, name)
	o.b = append(o.b, ':')
}

// String writes a string member.
func (o *Object) String(name, v string) {
	o.name(name)
	o.b = appendString(o.b, v)
}

// Bytes writes a byte string member: standard base64 with padding.
func (o *Object) Bytes(name string, v []byte) {
	o.name(name)
	o.b = append(o.b, '"')
	o.b = base64.StdEncoding.AppendEncode(o.b, v)
	o.b = append(o.b, '"')
}

// Bool writes a boolean member.
func (o *Object) Bool(name string, v bool) {
	o.name(name)
	o.b = strconv.AppendBool(o.b, v)
}

// Uint writes an unsigned integer member.
func (o *Object) Uint(name string, v uint64) {
	o.name(name)
	o.b = strconv.AppendUint(o.b, v, 10)
}

// End closes the object and returns its bytes.
func (o *Object) End() []byte { return append(o.b, '}') }

const hex = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping: <, > and
// & as \u003c, \u003e, \u0026; U+2028 and U+2029 escaped; invalid UTF-8 as
// \ufffd (as Go 1.26's encoding/json does; Go 1.27's writes U+FFFD itself,
// which reads back the same).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// Field is a member of a struct that Decode fills.
type Field struct {
	Name string // matched without regard to case (strings.EqualFold)
	// One of these is set: where the member's value goes.
	String *string
	Bytes  *[]byte
	Bool   *bool
	Uint32 *uint32
}

// Errors of Decode.
var (
	ErrSyntax = errors.New("flatjson: invalid JSON")
	ErrType   = errors.New("flatjson: value of the wrong type")
	ErrDepth  = errors.New("flatjson: nested too deep")
)

type decoder struct {
	s   []byte
	i   int
	err error // the first type error: decoding goes on, as encoding/json's does
}

// Decode decodes data, one JSON object or null, into fields. Members that
// match no field are skipped. A type error does not stop the decoding (the
// fields after it are filled, as encoding/json fills them) but is
// returned.
func Decode(data []byte, fields []Field) error {
	d := &decoder{s: data}
	d.space()
	if d.literal("null") {
		d.space()
		if d.i != len(d.s) {
			return ErrSyntax
		}
		return nil
	}
	if d.i >= len(d.s) {
		return ErrSyntax
	}
	if d.s[d.i] != '{' {
		// Not an object: a syntax error wins over the type error.
		if err := d.skip(0); err != nil {
			return err
		}
		d.space()
		if d.i != len(d.s) {
			return ErrSyntax
		}
		return ErrType
	}
	if err := d.object(fields); err != nil {
		return err
	}
	d.space()
	if d.i != len(d.s) {
		return ErrSyntax
	}
	return d.err
}

func (d *decoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) literal(lit string) bool {
	if len(d.s)-d.i >= len(lit) && string(d.s[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

func (d *decoder) typeErr() {
	if d.err == nil {
		d.err = ErrType
	}
}

// object decodes the top-level object into fields.
func (d *decoder) object(fields []Field) error {
	d.i++ // '{'
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return nil
	}
	for {
		d.space()
		name, err := d.str()
		if err != nil {
			return err
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return ErrSyntax
		}
		d.i++
		d.space()
		var f *Field
		for k := range fields {
			if strings.EqualFold(fields[k].Name, name) {
				f = &fields[k]
				break
			}
		}
		if f == nil {
			err = d.skip(1)
		} else {
			err = d.value(f)
		}
		if err != nil {
			return err
		}
		d.space()
		if d.i >= len(d.s) {
			return ErrSyntax
		}
		switch d.s[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return ErrSyntax
		}
	}
}

// value decodes a member's value into f.
func (d *decoder) value(f *Field) error {
	if d.i >= len(d.s) {
		return ErrSyntax
	}
	switch c := d.s[d.i]; {
	case c == 'n':
		if !d.literal("null") {
			return ErrSyntax
		}
		if f.Bytes != nil {
			*f.Bytes = nil
		}
		return nil
	case c == '"':
		s, err := d.str()
		if err != nil {
			return err
		}
		switch {
		case f.String != nil:
			*f.String = s
		case f.Bytes != nil:
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				d.typeErr()
			} else {
				*f.Bytes = b
			}
		default:
			d.typeErr()
		}
		return nil
	case c == 't' || c == 'f':
		v := c == 't'
		if !d.literal("true") && !d.literal("false") {
			return ErrSyntax
		}
		if f.Bool != nil {
			*f.Bool = v
		} else {
			d.typeErr()
		}
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		start := d.i
		if err := d.number(); err != nil {
			return err
		}
		n, err := strconv.ParseUint(string(d.s[start:d.i]), 10, 64)
		if f.Uint32 != nil && err == nil && n <= math.MaxUint32 {
			*f.Uint32 = uint32(n)
		} else {
			d.typeErr()
		}
		return nil
	default:
		// An array or an object: of the wrong type for every field
		// (encoding/json would read an array of numbers into a byte
		// string; no encoder writes one).
		if err := d.skip(1); err != nil {
			return err
		}
		d.typeErr()
		return nil
	}
}

// skip checks and skips one value at nesting depth depth.
func (d *decoder) skip(depth int) error {
	if d.i >= len(d.s) {
		return ErrSyntax
	}
	switch c := d.s[d.i]; {
	case c == '"':
		_, err := d.str()
		return err
	case c == 'n':
		if !d.literal("null") {
			return ErrSyntax
		}
		return nil
	case c == 't':
		if !d.literal("true") {
			return ErrSyntax
		}
		return nil
	case c == 'f':
		if !d.literal("false") {
			return ErrSyntax
		}
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == '[' || c == '{':
		if depth >= MaxDepth {
			return ErrDepth
		}
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		d.i++
		d.space()
		if d.i < len(d.s) && d.s[d.i] == end {
			d.i++
			return nil
		}
		for {
			d.space()
			if c == '{' {
				if _, err := d.str(); err != nil {
					return err
				}
				d.space()
				if d.i >= len(d.s) || d.s[d.i] != ':' {
					return ErrSyntax
				}
				d.i++
				d.space()
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			d.space()
			if d.i >= len(d.s) {
				return ErrSyntax
			}
			switch d.s[d.i] {
			case ',':
				d.i++
			case end:
				d.i++
				return nil
			default:
				return ErrSyntax
			}
		}
	default:
		return ErrSyntax
	}
}

func (d *decoder) digits() int {
	n := 0
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

// number checks and skips a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() error {
	if d.s[d.i] == '-' {
		d.i++
	}
	if d.i >= len(d.s) {
		return ErrSyntax
	}
	if d.s[d.i] == '0' {
		d.i++
	} else if d.digits() == 0 {
		return ErrSyntax
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return ErrSyntax
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return ErrSyntax
		}
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape at s, or -1.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// str reads a quoted string at d.i.
func (d *decoder) str() (string, error) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", ErrSyntax
	}
	d.i++
	var b []byte
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b), nil
		case c < 0x20:
			return "", ErrSyntax
		case c == '\\':
			if d.i+1 >= len(d.s) {
				return "", ErrSyntax
			}
			e := d.s[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(d.s[d.i:])
				if r < 0 {
					return "", ErrSyntax
				}
				d.i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if d.i+1 < len(d.s) && d.s[d.i] == '\\' && d.s[d.i+1] == 'u' {
						r2 = hex4(d.s[d.i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						d.i += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", ErrSyntax
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.i++
		default:
			r, n := utf8.DecodeRune(d.s[d.i:])
			if r == utf8.RuneError && n == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, d.s[d.i:d.i+n]...)
			}
			d.i += n
		}
	}
	return "", ErrSyntax
}
