package auth

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mycelsync/mycel/auth/authpb"
)

var testApprover = [32]byte(seq(0x60, 32))

func TestApprovalRoundTrip(t *testing.T) {
	space := testSpace(t, 1)
	kr := testKeyring(t, space, 3)
	req, dk := testRequest(t, space, "laptop")

	a, err := NewApproval(req, kr, testApprover, 17)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, back, err := OpenApproval(dk, req, enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Space != space || len(got.Epochs) != 3 || got.Epochs[2] != kr.Epochs[2] {
		t.Fatal("the approval carries another keyring")
	}
	if back.Approver != testApprover || back.AddWriterIndex != 17 || back.Request != req.Hash() {
		t.Fatalf("approval fields: %+v", back)
	}

	// The box is bound to the request: it does not open as an add-writer
	// op's box (no request in the binding), and the reverse.
	if _, err := OpenKeyring(dk, a.Keyring, Binding{Space: space, Feed: req.Feed}); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("approval box opened without the request in the binding: %v", err)
	}
	plain, err := SealKeyring(dk.Public(), kr, Binding{Space: space, Feed: req.Feed})
	if err != nil {
		t.Fatal(err)
	}
	a2 := *a
	a2.Keyring = plain
	enc2, _ := a2.MarshalBinary()
	if _, _, err := OpenApproval(dk, req, enc2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("an add-writer box opened as an approval: %v", err)
	}

	if _, err := NewApproval(req, testKeyring(t, testSpace(t, 2), 1), testApprover, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("approval with another space's keyring: %v", err)
	}
}

// TestApprovalSwappedDeviceKey: a request whose HPKE key was swapped in
// transit shows another safety code; an approval of the real request does
// not open with the attacker's key, and an approval of the swapped request
// does not open on the real device.
func TestApprovalSwappedDeviceKey(t *testing.T) {
	space := testSpace(t, 1)
	kr := testKeyring(t, space, 1)
	real, realKey := testRequest(t, space, "laptop")
	mallory := testDeviceKey(t, "mallory")
	swapped := *real
	swapped.Device = mallory.Public()

	if SafetyCode(&swapped) == SafetyCode(real) {
		t.Fatal("swapping the device key keeps the safety code")
	}
	if err := CheckSafetyCode(&swapped, SafetyCode(real)); !errors.Is(err, ErrSafetyCode) {
		t.Fatalf("the real device's code checks for the swapped request: %v", err)
	}

	approveReal, err := NewApproval(real, kr, testApprover, 1)
	if err != nil {
		t.Fatal(err)
	}
	encReal, _ := approveReal.MarshalBinary()
	approveSwapped, err := NewApproval(&swapped, kr, testApprover, 1)
	if err != nil {
		t.Fatal(err)
	}
	encSwapped, _ := approveSwapped.MarshalBinary()

	// Mallory, holding an approval sealed to the real key, fails whichever
	// request it claims to have sent.
	if _, _, err := OpenApproval(mallory, &swapped, encReal); !errors.Is(err, ErrMismatch) {
		t.Fatalf("mallory opened the real approval as its request: %v", err)
	}
	if _, _, err := OpenApproval(mallory, real, encReal); !errors.Is(err, ErrMismatch) {
		t.Fatalf("mallory opened the real approval as the real request: %v", err)
	}
	// Even past the checks, the box does not open with mallory's key.
	if _, err := OpenKeyring(mallory, approveReal.Keyring, real.Binding()); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("mallory's key opened a box sealed to the real key: %v", err)
	}
	// And the real device does not take an approval of the swapped request.
	if _, _, err := OpenApproval(realKey, real, encSwapped); !errors.Is(err, ErrMismatch) {
		t.Fatalf("the real device took an approval of the swapped request: %v", err)
	}
	if _, err := OpenKeyring(realKey, approveSwapped.Keyring, real.Binding()); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("the real key opened a box sealed to mallory: %v", err)
	}
	// Mallory does get in with the swapped request: what the safety code is for.
	if _, _, err := OpenApproval(mallory, &swapped, encSwapped); err != nil {
		t.Fatal(err)
	}
}

// TestApprovalOfAnotherRequest: an approval of one request is refused by
// a device that sent another, even with the same device key and feed.
func TestApprovalOfAnotherRequest(t *testing.T) {
	space := testSpace(t, 1)
	kr := testKeyring(t, space, 1)
	req, dk := testRequest(t, space, "laptop")
	again, err := NewJoinRequest(space, req.Name, req.Feed, req.Device, testNow, newDetRand("another nonce"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewApproval(again, kr, testApprover, 0)
	enc, _ := a.MarshalBinary()
	if _, _, err := OpenApproval(dk, req, enc); !errors.Is(err, ErrMismatch) {
		t.Fatalf("approval of another request: %v", err)
	}
	// Relabelled as the right request, the box still does not open.
	a.Request = req.Hash()
	enc, _ = a.MarshalBinary()
	if _, _, err := OpenApproval(dk, req, enc); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("relabelled approval: %v", err)
	}
}

func TestApprovalTampering(t *testing.T) {
	space := testSpace(t, 1)
	kr := testKeyring(t, space, 1)
	req, dk := testRequest(t, space, "laptop")
	a, _ := NewApproval(req, kr, testApprover, 5)
	good := func() *authpb.Approval {
		return &authpb.Approval{Request: bytes.Clone(a.Request[:]), Approver: bytes.Clone(a.Approver[:]), AddWriterIndex: 5, Keyring: bytes.Clone(a.Keyring)}
	}
	for name, c := range map[string]struct {
		edit func(*authpb.Approval)
		want error
	}{
		"request hash":   {func(m *authpb.Approval) { m.Request[0] ^= 1 }, ErrMismatch},
		"keyring byte":   {func(m *authpb.Approval) { m.Keyring[len(m.Keyring)/2] ^= 1 }, ErrDecrypt},
		"keyring suite":  {func(m *authpb.Approval) { m.Keyring[0] = 2 }, ErrMalformed},
		"keyring short":  {func(m *authpb.Approval) { m.Keyring = m.Keyring[:SealOverhead-1] }, ErrMalformed},
		"no keyring":     {func(m *authpb.Approval) { m.Keyring = nil }, ErrMalformed},
		"short hash":     {func(m *authpb.Approval) { m.Request = m.Request[:31] }, ErrMalformed},
		"short approver": {func(m *authpb.Approval) { m.Approver = m.Approver[:31] }, ErrMalformed},
		"zero approver":  {func(m *authpb.Approval) { m.Approver = make([]byte, 32) }, ErrMalformed},
	} {
		m := good()
		c.edit(m)
		enc, _ := m.Marshal()
		if _, _, err := OpenApproval(dk, req, enc); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, _, err := OpenApproval(dk, req, []byte{0xff}); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: %v", err)
	}
	if _, _, err := OpenApproval(dk, req, make([]byte, MaxApprovalSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge: %v", err)
	}
	if _, _, err := OpenApproval(nil, req, mustMarshal(t, a)); !errors.Is(err, ErrMismatch) {
		t.Errorf("no device key: %v", err)
	}
}

func mustMarshal(t testing.TB, m interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDenial(t *testing.T) {
	space := testSpace(t, 1)
	req, _ := testRequest(t, space, "laptop")
	d := NewDenial(req, testApprover)
	enc, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalDenial(req, enc)
	if err != nil || *got != *d {
		t.Fatalf("denial round trip: %v, %v", got, err)
	}
	other, _ := testRequest(t, space, "phone")
	if _, err := UnmarshalDenial(other, enc); !errors.Is(err, ErrMismatch) {
		t.Fatalf("denial of another request: %v", err)
	}
	for name, in := range map[string][]byte{
		"garbage":   {0xff},
		"empty":     nil,
		"no denier": mustProto(t, &authpb.Denial{Request: d.Request[:]}),
		"zero":      mustProto(t, &authpb.Denial{Request: d.Request[:], Denier: make([]byte, 32)}),
		"short":     mustProto(t, &authpb.Denial{Request: d.Request[:16], Denier: d.Denier[:]}),
		"huge":      make([]byte, MaxDenialSize+1),
	} {
		if _, err := UnmarshalDenial(req, in); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("denial %s: %v", name, err)
		}
	}
	if _, err := (&Denial{Request: d.Request}).MarshalBinary(); !errors.Is(err, ErrMalformed) {
		t.Errorf("denial without denier: %v", err)
	}
}

func mustProto(t testing.TB, m interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
