package signin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/internal/flatjson"
)

// Envelope key kinds of sign-in (ephemeral/FORMAT.md, FORMAT.md here).
const (
	KeyKindInvite   = 2 // an invite's request key
	KeyKindPassword = 3 // the space's password's request key
)

// Body kinds (FORMAT.md, "Bodies").
const (
	KindJoinRequest = "join-request"
	KindApproval    = "approval"
	KindDenial      = "denial"
	KindRefusal     = "refusal"
	KindPending     = "pending" // a member shows the request to a person
)

// Bounds of what a body carries (the envelope bounds its size:
// ephemeral.MaxPlaintextSize).
const (
	// MaxAnswer bounds an approval or a denial: an approval's sealed
	// keyring is the largest.
	MaxAnswer = 8 << 10
	// MaxReason bounds a refusal's reason.
	MaxReason = 256
)

// Body is the plaintext of a sign-in envelope (FORMAT.md). Its JSON is the
// wire format: field names and omitempty are part of it. Encode and
// DecodeBody write and read it with internal/flatjson, as encoding/json
// would (the core leaves encoding/json out of the browser node's wasm).
type Body struct {
	Kind     string `json:"kind"`
	Request  []byte `json:"request,omitempty"`  // join-request: auth.JoinRequest
	Answer   []byte `json:"answer,omitempty"`   // approval or denial: auth.Approval / auth.Denial
	Hash     []byte `json:"hash,omitempty"`     // refusal, pending: the request's hash
	Reason   string `json:"reason,omitempty"`   // refusal
	Password bool   `json:"password,omitempty"` // refusal: of a password whose key no member holds
	// refusal of a password: the generation of the members' password key
	// (auth.PasswordKeyAt), so that a device that asked with an older one
	// derives it and asks again.
	Generation uint32 `json:"generation,omitempty"`
}

// Encode returns the body's wire form.
func (b Body) Encode() ([]byte, error) {
	o := flatjson.NewObject()
	o.String("kind", b.Kind)
	if len(b.Request) != 0 {
		o.Bytes("request", b.Request)
	}
	if len(b.Answer) != 0 {
		o.Bytes("answer", b.Answer)
	}
	if len(b.Hash) != 0 {
		o.Bytes("hash", b.Hash)
	}
	if b.Reason != "" {
		o.String("reason", b.Reason)
	}
	if b.Password {
		o.Bool("password", b.Password)
	}
	if b.Generation != 0 {
		o.Uint("generation", uint64(b.Generation))
	}
	return o.End(), nil
}

// DecodeBody decodes and bounds a sign-in body. Unknown fields are
// ignored; an unknown kind is returned for the caller to ignore.
func DecodeBody(plain []byte) (Body, error) {
	var b Body
	err := flatjson.Decode(plain, []flatjson.Field{
		{Name: "kind", String: &b.Kind},
		{Name: "request", Bytes: &b.Request},
		{Name: "answer", Bytes: &b.Answer},
		{Name: "hash", Bytes: &b.Hash},
		{Name: "reason", String: &b.Reason},
		{Name: "password", Bool: &b.Password},
		{Name: "generation", Uint32: &b.Generation},
	})
	if err != nil {
		return b, fmt.Errorf("sign-in body: %w", err)
	}
	switch {
	case len(b.Request) > auth.MaxJoinRequestSize:
		return b, fmt.Errorf("sign-in body: request of %d bytes", len(b.Request))
	case len(b.Answer) > MaxAnswer:
		return b, fmt.Errorf("sign-in body: answer of %d bytes", len(b.Answer))
	case len(b.Hash) != 0 && len(b.Hash) != auth.RequestHashSize:
		return b, fmt.Errorf("sign-in body: hash of %d bytes", len(b.Hash))
	case len(b.Reason) > MaxReason:
		return b, fmt.Errorf("sign-in body: reason of %d bytes", len(b.Reason))
	}
	return b, nil
}

// KeyKind is the envelope key kind of a request key.
func KeyKind(k auth.RequestKind) uint32 {
	if k == auth.RequestByPassword {
		return KeyKindPassword
	}
	return KeyKindInvite
}

// RefusalKey is the key of the refusal of a password no member holds: it
// is derived from the key ID alone, which the asking device knows. The
// refusal is therefore not secret; it only says "wrong password".
func RefusalKey(id [auth.KeyIDSize]byte) auth.RequestKey {
	k := sha256.Sum256(append([]byte("mycel/v1/password-refusal\x00"), id[:]...))
	return auth.RequestKey{Kind: auth.RequestByPassword, ID: id, Key: k}
}

// RequestID names a request to a person and the API: the hex of its
// hash's first 8 bytes.
func RequestID(h [auth.RequestHashSize]byte) string {
	return hex.EncodeToString(h[:8])
}
