package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
)

const labelSafetyCode = "mycel/v1/safety-code"

// safetyDigits is how many decimal digits a safety code shows.
const safetyDigits = 6

// SafetyCode is the code a person compares between the new device and the
// member approving it: six digits in two groups, "482-193". The new device
// computes it from the request it sent, every member from the request it
// received; the two agree only if the request arrived unchanged, so a
// request whose device key (or name, feed, nonce, time, space) was swapped
// in transit shows another code.
//
//	digits = uint64(first 8 bytes of SHA-256("mycel/v1/safety-code" ‖ 0x00 ‖
//	         request hash), big-endian) mod 10⁶
//
// That is log₂ 10⁶ ≈ 19.9 bits; reducing 64 bits mod 10⁶ biases the
// digits by less than 2⁻⁴⁴, which is none a person could use. Twenty bits
// stop a swap made without effort, not one made with it: an attacker who
// holds the invite or password can read the real request and grind the
// nonce of its own until the codes match (about 10⁶ hashes, seconds). What
// the code proves is therefore that the person's two devices agree on a
// request that someone holding the invite or password sent; FORMAT.md
// lists what else guards a stolen invite.
func SafetyCode(req *JoinRequest) string {
	h := req.Hash()
	return safetyCode(h)
}

func safetyCode(reqHash [RequestHashSize]byte) string {
	d := sha256.New()
	d.Write([]byte(labelSafetyCode))
	d.Write([]byte{0})
	d.Write(reqHash[:])
	n := binary.BigEndian.Uint64(d.Sum(nil)) % 1_000_000
	return fmt.Sprintf("%03d-%03d", n/1000, n%1000)
}

// CheckSafetyCode compares, in constant time, the code a person typed with
// the request's. Spaces, dashes and dots anywhere are ignored, so "482193",
// "482 193" and "482-193" all match. A code that differs, or is not six
// digits, is ErrSafetyCode.
func CheckSafetyCode(req *JoinRequest, typed string) error {
	if len(typed) > 64 {
		return errorf(ErrSafetyCode, "typed safety code of %d bytes", len(typed))
	}
	var got []byte
	for _, c := range typed {
		switch {
		case c == ' ' || c == '-' || c == '.' || c == '\t':
		case '0' <= c && c <= '9':
			got = append(got, byte(c))
		default:
			return errorf(ErrSafetyCode, "a safety code is %d digits, got %q", safetyDigits, typed)
		}
	}
	if len(got) != safetyDigits {
		return errorf(ErrSafetyCode, "a safety code is %d digits, got %d", safetyDigits, len(got))
	}
	want := strings.ReplaceAll(SafetyCode(req), "-", "")
	if subtle.ConstantTimeCompare(got, []byte(want)) != 1 {
		return errorf(ErrSafetyCode, "the code typed is not this request's: approve only the device that shows it")
	}
	return nil
}
