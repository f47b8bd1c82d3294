package auth

import (
	"crypto/subtle"
	"fmt"

	"github.com/mycelsync/mycel/auth/authpb"
)

// Answer bounds.
const (
	// MaxApprovalSize bounds an encoded approval: a sealed keyring at its
	// largest and room for the other fields.
	MaxApprovalSize = MaxSealedKeyringSize + 256
	// MaxDenialSize bounds an encoded denial.
	MaxDenialSize = 256
)

// Binding is the binding of the keyring an approval of r seals to r's
// device: r's space, r's feed and r's hash.
func (r *JoinRequest) Binding() Binding {
	return Binding{Space: r.Space, Feed: r.Feed, Request: r.Hash()}
}

// Approval is what a member sends back to a device whose join request it
// approved: the keyring, sealed to the request's device key and bound to
// the request's hash, and where the add-writer op that made the device a
// writer sits (AddWriterIndex in the approver's feed), which the device
// fetches and verifies once it can replicate.
//
// The keyring comes here and not only in the add-writer entry because the
// device cannot replicate before it holds a key. HPKE does not say who
// sealed it; the add-writer entry does: its signature chains to the
// space's writers, and it is encrypted under the epoch's content key, so a
// keyring that decrypts it is the space's. Until then the device treats
// the keyring as a claim. Approver and AddWriterIndex are hints that the
// box does not authenticate: they say where to look; the entry says what
// is true.
type Approval struct {
	Request        [RequestHashSize]byte
	Approver       [32]byte
	AddWriterIndex uint64
	Keyring        []byte // SealKeyring to the request's device key with req.Binding()
}

// NewApproval approves req: it seals kr to req's device key, bound to req
// (JoinRequest.Binding), and names the approver's feed and the index of
// the add-writer entry it wrote for req.Feed. kr must be of req's space.
func NewApproval(req *JoinRequest, kr *Keyring, approver [32]byte, addWriterIndex uint64) (*Approval, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("approve: %w", err)
	}
	box, err := SealKeyring(req.Device, kr, req.Binding())
	if err != nil {
		return nil, fmt.Errorf("approve: %w", err)
	}
	return &Approval{Request: req.Hash(), Approver: approver, AddWriterIndex: addWriterIndex, Keyring: box}, nil
}

// MarshalBinary encodes the approval as an authpb.Approval.
func (a *Approval) MarshalBinary() ([]byte, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	return (&authpb.Approval{
		Request:        a.Request[:],
		Approver:       a.Approver[:],
		AddWriterIndex: a.AddWriterIndex,
		Keyring:        a.Keyring,
	}).Marshal()
}

func (a *Approval) validate() error {
	switch {
	case a.Approver == [32]byte{}:
		return errorf(ErrMalformed, "approval: zero approver feed key")
	case len(a.Keyring) < SealOverhead:
		return errorf(ErrMalformed, "approval: sealed keyring of %d bytes, at least %d", len(a.Keyring), SealOverhead)
	case len(a.Keyring) > MaxSealedKeyringSize:
		return errorf(ErrTooLarge, "approval: sealed keyring of %d bytes, limit %d", len(a.Keyring), MaxSealedKeyringSize)
	}
	return nil
}

// UnmarshalApproval decodes an approval encoded by MarshalBinary, refusing
// anything over MaxApprovalSize, a field of the wrong size and a sealed
// keyring outside its bounds. It does not open the keyring: OpenApproval
// does.
func UnmarshalApproval(b []byte) (*Approval, error) {
	if len(b) > MaxApprovalSize {
		return nil, errorf(ErrTooLarge, "approval of %d bytes, limit %d", len(b), MaxApprovalSize)
	}
	var m authpb.Approval
	if err := m.Unmarshal(b); err != nil {
		return nil, errorf(ErrMalformed, "approval: %v", err)
	}
	switch {
	case len(m.Request) != RequestHashSize:
		return nil, errorf(ErrMalformed, "approval: request hash of %d bytes, want %d", len(m.Request), RequestHashSize)
	case len(m.Approver) != 32:
		return nil, errorf(ErrMalformed, "approval: approver feed key of %d bytes, want 32", len(m.Approver))
	}
	a := &Approval{
		Request:        [RequestHashSize]byte(m.Request),
		Approver:       [32]byte(m.Approver),
		AddWriterIndex: m.AddWriterIndex,
		Keyring:        m.Keyring,
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// OpenApproval is the new device's side: it decodes an approval, checks
// that it answers req (the request this device sent; ErrMismatch for an
// approval of another request, or when dk is not the key req names), and
// opens the keyring with req's binding. An approval sealed to another
// device key, or for another request, does not open.
func OpenApproval(dk *DeviceKey, req *JoinRequest, b []byte) (*Keyring, *Approval, error) {
	a, err := UnmarshalApproval(b)
	if err != nil {
		return nil, nil, err
	}
	if dk == nil || req == nil || req.Device == nil || !dk.Public().Equal(req.Device) {
		return nil, nil, errorf(ErrMismatch, "open approval: the device key is not the one the request names")
	}
	want := req.Hash()
	if subtle.ConstantTimeCompare(a.Request[:], want[:]) != 1 {
		return nil, nil, errorf(ErrMismatch, "open approval: it answers request %x, this device sent %x", a.Request[:8], want[:8])
	}
	kr, err := OpenKeyring(dk, a.Keyring, req.Binding())
	if err != nil {
		return nil, nil, fmt.Errorf("open approval: %w", err)
	}
	return kr, a, nil
}

// Denial tells a device that a member refused its join request. Nothing
// authenticates it to the device, which holds no key of the space yet: it
// is a reason to stop waiting and tell the person, never more.
type Denial struct {
	Request [RequestHashSize]byte
	Denier  [32]byte // the refusing member's feed key
}

// NewDenial refuses req on behalf of the member writing feed denier.
func NewDenial(req *JoinRequest, denier [32]byte) *Denial {
	return &Denial{Request: req.Hash(), Denier: denier}
}

// MarshalBinary encodes the denial as an authpb.Denial.
func (d *Denial) MarshalBinary() ([]byte, error) {
	if d.Denier == [32]byte{} {
		return nil, errorf(ErrMalformed, "denial: zero denier feed key")
	}
	return (&authpb.Denial{Request: d.Request[:], Denier: d.Denier[:]}).Marshal()
}

// UnmarshalDenial decodes a denial and checks that it answers req
// (ErrMismatch otherwise).
func UnmarshalDenial(req *JoinRequest, b []byte) (*Denial, error) {
	if len(b) > MaxDenialSize {
		return nil, errorf(ErrTooLarge, "denial of %d bytes, limit %d", len(b), MaxDenialSize)
	}
	var m authpb.Denial
	if err := m.Unmarshal(b); err != nil {
		return nil, errorf(ErrMalformed, "denial: %v", err)
	}
	switch {
	case len(m.Request) != RequestHashSize:
		return nil, errorf(ErrMalformed, "denial: request hash of %d bytes, want %d", len(m.Request), RequestHashSize)
	case len(m.Denier) != 32 || [32]byte(m.Denier) == [32]byte{}:
		return nil, errorf(ErrMalformed, "denial: denier feed key of %d bytes", len(m.Denier))
	}
	want := req.Hash()
	if subtle.ConstantTimeCompare(m.Request, want[:]) != 1 {
		return nil, errorf(ErrMismatch, "denial of another request")
	}
	return &Denial{Request: want, Denier: [32]byte(m.Denier)}, nil
}
