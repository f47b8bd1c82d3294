package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mycelsync/mycel/auth/authpb"
)

// Join request sizes and bounds (FORMAT.md, "Join requests").
const (
	MaxDeviceNameSize = 128 // bytes of UTF-8
	JoinNonceSize     = 16
	RequestHashSize   = sha256.Size
	// MaxJoinRequestSize bounds an encoded join request (its fields take
	// at most 1,447 bytes; the rest is room for fields added later).
	MaxJoinRequestSize = 2048
	// MaxSealedJoinRequestSize bounds a sealed join request.
	MaxSealedJoinRequestSize = ContentOverhead + MaxJoinRequestSize
)

const labelJoinRequest = "mycel/v1/join-request"

// JoinRequest is a new device asking to join a space. It names the feed
// the device will write (the one an approval's add-writer op adds) and the
// HPKE key the keyring is to be sealed to. Validate checks it; the decoders
// return only valid requests.
type JoinRequest struct {
	Space  SpaceID
	Name   string // shown to the approver: 1..MaxDeviceNameSize bytes of printable UTF-8
	Feed   [32]byte
	Device *DevicePublicKey
	Nonce  [JoinNonceSize]byte
	Time   time.Time // whole milliseconds, after 1970
}

// NewJoinRequest returns a request asking to join space as name, for the
// device's new feed and HPKE key, at now, with a nonce read from rand
// (crypto/rand when nil).
func NewJoinRequest(space SpaceID, name string, feed [32]byte, device *DevicePublicKey, now time.Time, rand io.Reader) (*JoinRequest, error) {
	req := &JoinRequest{Space: space, Name: name, Feed: feed, Device: device, Time: time.UnixMilli(now.UnixMilli())}
	if _, err := io.ReadFull(orCryptoRand(rand), req.Nonce[:]); err != nil {
		return nil, fmt.Errorf("auth: new join request: %w", err)
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return req, nil
}

// Validate checks every field: a device name of 1..MaxDeviceNameSize bytes
// of UTF-8 with no control, line-breaking or bidirectional-override
// characters (it is shown in a one-line prompt, and must not be able to
// disguise itself), a feed key that is not zero, a device key, and a time
// after 1970 in whole milliseconds.
//
// The feed key's curve point is not checked here (that needs an Ed25519
// decoder the standard library does not export): a feed key that is no
// point never verifies a signature, so its feed stays empty.
func (r *JoinRequest) Validate() error {
	if err := ValidateDeviceName(r.Name); err != nil {
		return err
	}
	switch {
	case r.Feed == [32]byte{}:
		return errorf(ErrMalformed, "join request: zero feed key")
	case r.Device == nil:
		return errorf(ErrMalformed, "join request: no device key")
	case r.Time.UnixMilli() <= 0:
		return errorf(ErrMalformed, "join request: time %s", r.Time)
	case !r.Time.Equal(time.UnixMilli(r.Time.UnixMilli())):
		return errorf(ErrMalformed, "join request: time not in whole milliseconds")
	}
	return nil
}

// ValidateDeviceName checks a device name as Validate does.
func ValidateDeviceName(name string) error {
	switch {
	case name == "":
		return errorf(ErrMalformed, "empty device name")
	case len(name) > MaxDeviceNameSize:
		return errorf(ErrTooLarge, "device name of %d bytes, limit %d", len(name), MaxDeviceNameSize)
	case !utf8.ValidString(name):
		return errorf(ErrMalformed, "device name is not valid UTF-8")
	}
	for _, c := range name {
		if unicode.IsControl(c) || unicode.In(c, unicode.Zl, unicode.Zp) || unicode.Is(unicode.Bidi_Control, c) {
			return errorf(ErrMalformed, "device name holds the control character %U", c)
		}
	}
	return nil
}

// MarshalBinary encodes a valid request as an authpb.JoinRequest.
func (r *JoinRequest) MarshalBinary() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return (&authpb.JoinRequest{
		Space:  r.Space[:],
		Name:   r.Name,
		Feed:   r.Feed[:],
		Device: r.Device.Bytes(),
		Nonce:  r.Nonce[:],
		Time:   r.Time.UnixMilli(),
	}).Marshal()
}

// UnmarshalJoinRequest decodes a request encoded by MarshalBinary and
// validates it: its size (MaxJoinRequestSize), every field's size, the
// device name, and the device key (ParseDevicePublicKey).
func UnmarshalJoinRequest(b []byte) (*JoinRequest, error) {
	if len(b) > MaxJoinRequestSize {
		return nil, errorf(ErrTooLarge, "join request of %d bytes, limit %d", len(b), MaxJoinRequestSize)
	}
	var m authpb.JoinRequest
	if err := m.Unmarshal(b); err != nil {
		return nil, errorf(ErrMalformed, "join request: %v", err)
	}
	space, err := SpaceIDFromBytes(m.Space)
	if err != nil {
		return nil, fmt.Errorf("join request: %w", err)
	}
	switch {
	case len(m.Feed) != 32:
		return nil, errorf(ErrMalformed, "join request: feed key of %d bytes, want 32", len(m.Feed))
	case len(m.Nonce) != JoinNonceSize:
		return nil, errorf(ErrMalformed, "join request: nonce of %d bytes, want %d", len(m.Nonce), JoinNonceSize)
	}
	dev, err := ParseDevicePublicKey(m.Device)
	if err != nil {
		return nil, fmt.Errorf("join request: %w", err)
	}
	req := &JoinRequest{
		Space:  space,
		Name:   m.Name,
		Feed:   [32]byte(m.Feed),
		Device: dev,
		Nonce:  [JoinNonceSize]byte(m.Nonce),
		Time:   time.UnixMilli(m.Time),
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return req, nil
}

// canonical is the request's canonical encoding, which its hash and safety
// code are taken over (protobuf's encoding is not canonical):
//
//	"mycel/v1/join-request" ‖ 0x00 ‖ space ID (32) ‖ feed key (32) ‖
//	nonce (16) ‖ time (int64 BE, ms, 8) ‖ name length (1) ‖ name ‖
//	device public key (1217)
func (r *JoinRequest) canonical() []byte {
	dev := r.Device.raw
	b := make([]byte, 0, len(labelJoinRequest)+1+SpaceIDSize+32+JoinNonceSize+8+1+len(r.Name)+len(dev))
	b = append(b, labelJoinRequest...)
	b = append(b, 0)
	b = append(b, r.Space[:]...)
	b = append(b, r.Feed[:]...)
	b = append(b, r.Nonce[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixMilli()))
	b = append(b, byte(len(r.Name)))
	b = append(b, r.Name...)
	return append(b, dev...)
}

// Hash is SHA-256 of the request's canonical encoding (FORMAT.md). An
// approval or denial names the request it answers by it, and the keyring
// an approval carries is sealed bound to it. Only for valid requests.
func (r *JoinRequest) Hash() [RequestHashSize]byte {
	return sha256.Sum256(r.canonical())
}

// SealJoinRequest encodes req and seals it under k (SealContent, with
// additional data naming k's kind and ID: FORMAT.md). The nonce is read
// from rand (crypto/rand when nil).
func SealJoinRequest(k RequestKey, req *JoinRequest, rand io.Reader) ([]byte, error) {
	ad, err := k.ad()
	if err != nil {
		return nil, err
	}
	pt, err := req.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("seal join request: %w", err)
	}
	return SealContent(k.Key, pt, ad, rand)
}

// OpenJoinRequest opens a request sealed by SealJoinRequest under the same
// key and decodes it (UnmarshalJoinRequest). Input over
// MaxSealedJoinRequestSize is ErrTooLarge; a request that does not open
// (another key, another kind, bytes changed) ErrDecrypt. The caller checks
// that its Space is the one the key belongs to.
func OpenJoinRequest(k RequestKey, sealed []byte) (*JoinRequest, error) {
	if len(sealed) > MaxSealedJoinRequestSize {
		return nil, errorf(ErrTooLarge, "sealed join request of %d bytes, limit %d", len(sealed), MaxSealedJoinRequestSize)
	}
	ad, err := k.ad()
	if err != nil {
		return nil, err
	}
	pt, err := OpenContent(k.Key, sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open join request: %w", err)
	}
	return UnmarshalJoinRequest(pt)
}
