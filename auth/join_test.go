package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth/authpb"
)

// testRequest is a deterministic request of device name to space.
func testRequest(t testing.TB, space SpaceID, name string) (*JoinRequest, *DeviceKey) {
	t.Helper()
	dk := testDeviceKey(t, name)
	req, err := NewJoinRequest(space, name, [32]byte(seq(0x40, 32)), dk.Public(), testNow, newDetRand("nonce "+name))
	if err != nil {
		t.Fatal(err)
	}
	return req, dk
}

func sameRequest(a, b *JoinRequest) bool {
	return a.Space == b.Space && a.Name == b.Name && a.Feed == b.Feed && a.Device.Equal(b.Device) &&
		a.Nonce == b.Nonce && a.Time.Equal(b.Time)
}

func TestJoinRequestRoundTrip(t *testing.T) {
	req, _ := testRequest(t, testSpace(t, 1), "Firefox on Ubuntu 64-bit")
	enc, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > MaxJoinRequestSize {
		t.Fatalf("request of %d bytes", len(enc))
	}
	back, err := UnmarshalJoinRequest(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRequest(req, back) || back.Hash() != req.Hash() {
		t.Fatal("request round trip differs")
	}

	// The largest request fits its bound.
	big := *req
	big.Name = strings.Repeat("é", MaxDeviceNameSize/2)
	if enc, err := big.MarshalBinary(); err != nil || len(enc) > MaxJoinRequestSize {
		t.Fatalf("largest request: %d bytes, %v", len(enc), err)
	}
	// Time keeps milliseconds, drops the rest.
	r2, err := NewJoinRequest(req.Space, "x", req.Feed, req.Device, testNow.Add(1234567*time.Nanosecond), nil)
	if err != nil || !r2.Time.Equal(testNow.Add(time.Millisecond)) {
		t.Fatalf("time %v, %v", r2.Time, err)
	}
}

func TestJoinRequestValidation(t *testing.T) {
	req, _ := testRequest(t, testSpace(t, 1), "laptop")
	for name, c := range map[string]struct {
		edit func(*JoinRequest)
		want error
	}{
		"empty name":     {func(r *JoinRequest) { r.Name = "" }, ErrMalformed},
		"long name":      {func(r *JoinRequest) { r.Name = strings.Repeat("x", MaxDeviceNameSize+1) }, ErrTooLarge},
		"invalid UTF-8":  {func(r *JoinRequest) { r.Name = "lap\xfftop" }, ErrMalformed},
		"newline":        {func(r *JoinRequest) { r.Name = "laptop\nApprove? y" }, ErrMalformed},
		"NUL":            {func(r *JoinRequest) { r.Name = "lap\x00top" }, ErrMalformed},
		"bidi override":  {func(r *JoinRequest) { r.Name = "pot\u202Epal" }, ErrMalformed},
		"line separator": {func(r *JoinRequest) { r.Name = "a\u2028b" }, ErrMalformed},
		"zero feed":      {func(r *JoinRequest) { r.Feed = [32]byte{} }, ErrMalformed},
		"no device":      {func(r *JoinRequest) { r.Device = nil }, ErrMalformed},
		"zero time":      {func(r *JoinRequest) { r.Time = time.Time{} }, ErrMalformed},
		"before 1970":    {func(r *JoinRequest) { r.Time = time.UnixMilli(-5) }, ErrMalformed},
		"sub-ms time":    {func(r *JoinRequest) { r.Time = r.Time.Add(time.Microsecond) }, ErrMalformed},
	} {
		r := *req
		c.edit(&r)
		if _, err := r.MarshalBinary(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	for _, ok := range []string{"x", "Firefox on Ubuntu 64-bit", "Ana’s iPhone 📱", "👩‍💻 work", strings.Repeat("x", MaxDeviceNameSize)} {
		if err := ValidateDeviceName(ok); err != nil {
			t.Errorf("name %q: %v", ok, err)
		}
	}
}

func TestUnmarshalJoinRequestRefuses(t *testing.T) {
	req, _ := testRequest(t, testSpace(t, 1), "laptop")
	good := func() *authpb.JoinRequest {
		return &authpb.JoinRequest{Space: req.Space[:], Name: req.Name, Feed: req.Feed[:],
			Device: req.Device.Bytes(), Nonce: req.Nonce[:], Time: req.Time.UnixMilli()}
	}
	badDevice := req.Device.Bytes()
	for i := 1; i < 385; i++ {
		badDevice[i] = 0xff
	}
	for name, edit := range map[string]func(*authpb.JoinRequest){
		"short space":  func(m *authpb.JoinRequest) { m.Space = m.Space[:31] },
		"no space":     func(m *authpb.JoinRequest) { m.Space = nil },
		"long feed":    func(m *authpb.JoinRequest) { m.Feed = append(m.Feed, 0) },
		"short nonce":  func(m *authpb.JoinRequest) { m.Nonce = m.Nonce[:15] },
		"no device":    func(m *authpb.JoinRequest) { m.Device = nil },
		"bad device":   func(m *authpb.JoinRequest) { m.Device = badDevice },
		"suite 2":      func(m *authpb.JoinRequest) { m.Device[0] = 2 },
		"no name":      func(m *authpb.JoinRequest) { m.Name = "" },
		"control name": func(m *authpb.JoinRequest) { m.Name = "a\tb" },
		"zero time":    func(m *authpb.JoinRequest) { m.Time = 0 },
	} {
		m := good()
		edit(m)
		enc, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalJoinRequest(enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	enc, _ := req.MarshalBinary()
	// A name of invalid UTF-8, put there by hand (protobuf refuses to).
	i := bytes.Index(enc, []byte("laptop"))
	bad := bytes.Clone(enc)
	bad[i] = 0xff
	if _, err := UnmarshalJoinRequest(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("invalid UTF-8 name: %v", err)
	}
	if _, err := UnmarshalJoinRequest(make([]byte, MaxJoinRequestSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge: %v", err)
	}
	// Unknown fields are ignored: a later version may add some.
	withMore := append(bytes.Clone(enc), 0x78, 0x01) // field 15, varint 1
	if back, err := UnmarshalJoinRequest(withMore); err != nil || !sameRequest(back, req) {
		t.Errorf("unknown field: %v", err)
	}
}

// TestJoinRequestHash pins the canonical encoding's hash and safety code
// (both checked with Python's hashlib over the layout in FORMAT.md, with the
// device key's bytes taken from Go), and shows that every field changes
// both.
func TestJoinRequestHash(t *testing.T) {
	space := testSpace(t, 0x20)
	req, _ := testRequest(t, space, "Firefox on Ubuntu 64-bit")
	h := req.Hash()
	if got, want := hex.EncodeToString(h[:]), "765caaabb521474c34cf46cfd663b686b19952d99339207fda3abda70c33e73e"; got != want {
		t.Errorf("request hash %s, want %s", got, want)
	}
	if got, want := SafetyCode(req), "066-481"; got != want {
		t.Errorf("safety code %s, want %s", got, want)
	}
	other := testDeviceKey(t, "mallory")
	for name, edit := range map[string]func(*JoinRequest){
		"space":  func(r *JoinRequest) { r.Space[0] ^= 1 },
		"name":   func(r *JoinRequest) { r.Name += "." },
		"feed":   func(r *JoinRequest) { r.Feed[31] ^= 1 },
		"device": func(r *JoinRequest) { r.Device = other.Public() },
		"nonce":  func(r *JoinRequest) { r.Nonce[0] ^= 1 },
		"time":   func(r *JoinRequest) { r.Time = r.Time.Add(time.Millisecond) },
	} {
		r := *req
		edit(&r)
		if r.Hash() == h {
			t.Errorf("changing the %s keeps the hash", name)
		}
		if SafetyCode(&r) == SafetyCode(req) {
			t.Errorf("changing the %s keeps the safety code", name)
		}
	}
	// Name and device key are not confused at their border.
	a, b := *req, *req
	a.Name = "ab"
	b.Name = "a"
	if a.Hash() == b.Hash() {
		t.Fatal("names of different lengths hash the same")
	}
}

func TestSafetyCode(t *testing.T) {
	req, _ := testRequest(t, testSpace(t, 1), "laptop")
	code := SafetyCode(req)
	if len(code) != 7 || code[3] != '-' || strings.Trim(code[:3]+code[4:], "0123456789") != "" {
		t.Fatalf("safety code %q", code)
	}
	bare := code[:3] + code[4:]
	for _, typed := range []string{code, bare, code[:3] + " " + code[4:], " " + bare + " ", bare[:2] + "-" + bare[2:], code[:3] + "." + code[4:]} {
		if err := CheckSafetyCode(req, typed); err != nil {
			t.Errorf("CheckSafetyCode(%q): %v", typed, err)
		}
	}
	wrong := []byte(bare)
	wrong[5] = '0' + (wrong[5]-'0'+1)%10
	for _, typed := range []string{"", string(wrong), bare[:5], bare + "1", "abc-def", bare[:5] + "x", strings.Repeat(bare, 20), "４８２１９３"} {
		if err := CheckSafetyCode(req, typed); !errors.Is(err, ErrSafetyCode) {
			t.Errorf("CheckSafetyCode(%q): %v", typed, err)
		}
	}
	// The digits cover their range: 2,000 requests give many codes, and
	// both halves take many values.
	seen, first := map[string]bool{}, map[string]bool{}
	r := *req
	for i := range 2000 {
		r.Nonce[0], r.Nonce[1] = byte(i), byte(i>>8)
		c := SafetyCode(&r)
		seen[c], first[c[:3]] = true, true
	}
	if len(seen) < 1990 || len(first) < 800 {
		t.Fatalf("2,000 requests give %d codes, %d first halves", len(seen), len(first))
	}
}

func TestSealJoinRequest(t *testing.T) {
	inv := testInvite(t, 1)
	req, _ := testRequest(t, inv.Space, "laptop")
	ik := inv.RequestKey()
	sealed, err := SealJoinRequest(ik, req, newDetRand("seal"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) > MaxSealedJoinRequestSize {
		t.Fatalf("sealed request of %d bytes", len(sealed))
	}
	// A member opens it with the record it kept.
	got, err := OpenJoinRequest(inv.Record().RequestKey(), sealed)
	if err != nil || !sameRequest(got, req) {
		t.Fatalf("open: %v", err)
	}

	pk := PasswordRequestKey([32]byte(seq(9, 32)), inv.Space)
	sameBytesOtherKind := RequestKey{Kind: RequestByPassword, ID: ik.ID, Key: ik.Key}
	otherID := ik
	otherID.ID[0] ^= 1
	for name, k := range map[string]RequestKey{
		"password key":               pk,
		"another invite":             testInvite(t, 2).RequestKey(),
		"same key as a password key": sameBytesOtherKind,
		"same key, another ID":       otherID,
	} {
		if _, err := OpenJoinRequest(k, sealed); !errors.Is(err, ErrDecrypt) {
			t.Errorf("opened with the %s: %v", name, err)
		}
	}
	// Every byte matters.
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x10
		if _, err := OpenJoinRequest(ik, b); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	if _, err := OpenJoinRequest(ik, sealed[:ContentOverhead-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("short: %v", err)
	}
	if _, err := OpenJoinRequest(ik, make([]byte, MaxSealedJoinRequestSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge: %v", err)
	}
	if _, err := SealJoinRequest(RequestKey{Kind: 9}, req, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("key of unknown kind: %v", err)
	}
	if _, err := OpenJoinRequest(RequestKey{}, sealed); !errors.Is(err, ErrMalformed) {
		t.Errorf("zero key: %v", err)
	}

	// Sealed under the password key, it opens only with that key.
	ps, err := SealJoinRequest(pk, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJoinRequest(pk, ps); err != nil {
		t.Fatal(err)
	}
	wrongPassword := PasswordRequestKey([32]byte(seq(10, 32)), inv.Space)
	if _, err := OpenJoinRequest(wrongPassword, ps); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong password key: %v", err)
	}
}

// TestWrongPasswordCannotOpen uses real Argon2id keys: a request sealed
// with one password's key does not open with another's.
func TestWrongPasswordCannotOpen(t *testing.T) {
	space := testSpace(t, 3)
	req, _ := testRequest(t, space, "phone")
	right := PasswordRequestKey(PasswordKey("the right password", space), space)
	wrong := PasswordRequestKey(PasswordKey("the wrong password", space), space)
	if right.ID == wrong.ID {
		t.Fatal("two passwords share a key ID")
	}
	sealed, err := SealJoinRequest(right, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJoinRequest(wrong, sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong password: %v", err)
	}
	if got, err := OpenJoinRequest(right, sealed); err != nil || !sameRequest(got, req) {
		t.Fatalf("right password: %v", err)
	}
}
