package auth

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// TestPasswordKeyKnownAnswer pins PasswordKey. The expected key was
// computed with the reference implementation (libargon2's
// argon2id_hash_raw, called from Python) with the same parameters and
// salt, and the key ID with Python's hmac.
func TestPasswordKeyKnownAnswer(t *testing.T) {
	space := testSpace(t, 0x20)
	key := PasswordKey("correct horse battery staple", space)
	if got, want := hex.EncodeToString(key[:]), "07818022fe711884a951d688c7af459c3c36beaceef042b32ec83cfe105666af"; got != want {
		t.Fatalf("password key %s, want %s", got, want)
	}
	rk := PasswordRequestKey(key, space)
	if rk.Kind != RequestByPassword || rk.Key != key {
		t.Fatalf("request key %v", rk)
	}
	if got, want := hex.EncodeToString(rk.ID[:]), "5ef8ccfd6331e1961a8c536fefc54943"; got != want {
		t.Fatalf("password key ID %s, want %s", got, want)
	}
	if other := PasswordRequestKey(key, testSpace(t, 0x21)); other.ID == rk.ID {
		t.Fatal("the key ID does not depend on the space")
	}
	if strings.Contains(fmtV(rk), hex.EncodeToString(key[:4])) {
		t.Fatal("formatting a request key leaks it")
	}
}

// TestPasswordKeySeparates: another password or another space gives
// another key. (Argon2id is slow on purpose: two more derivations.)
func TestPasswordKeySeparates(t *testing.T) {
	space := testSpace(t, 0x20)
	a := PasswordKey("correct horse battery staple", space)
	if b := PasswordKey("correct horse battery stapler", space); a == b {
		t.Fatal("two passwords give the same key")
	}
	if c := PasswordKey("correct horse battery staple", testSpace(t, 0x21)); a == c {
		t.Fatal("two spaces give the same key")
	}
}

func TestValidatePassword(t *testing.T) {
	for pw, want := range map[string]error{
		"correct horse":                       nil,
		"12345678":                            nil,
		"mötley crüe":                         nil,
		"1234567":                             ErrMalformed,
		"":                                    ErrMalformed,
		"abc\xffdefgh":                        ErrMalformed,
		strings.Repeat("x", MaxPasswordLen):   nil,
		strings.Repeat("x", MaxPasswordLen+1): ErrTooLarge,
	} {
		if err := ValidatePassword(pw); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("ValidatePassword(%.20q): %v, want %v", pw, err, want)
		}
	}
}

// TestPasswordKeyGenerations: generation 0 is PasswordKey; a later one is
// another key (pinned: x/crypto's Argon2id over the documented salt).
func TestPasswordKeyGenerations(t *testing.T) {
	space := testSpace(t, 0x20)
	const pw = "correct horse battery staple"
	if PasswordKeyAt(pw, space, 0) != PasswordKey(pw, space) {
		t.Fatal("generation 0 is not PasswordKey")
	}
	k1 := PasswordKeyAt(pw, space, 1)
	if k1 == PasswordKey(pw, space) {
		t.Fatal("generation 1 is generation 0's key")
	}
	if got, want := hex.EncodeToString(k1[:]), "ad9bcaea4f9d6059eb4c5e93972f896290c53d89abe4cd7d5b389803ec37c326"; got != want {
		t.Fatalf("generation 1: %s, want %s", got, want)
	}
}
