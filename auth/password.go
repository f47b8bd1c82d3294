package auth

import (
	"encoding/binary"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of PasswordKey: RFC 9106's second recommended
// option (t = 3, m = 64 MiB, p = 4). They are part of the format: a space
// whose members hold a password key keeps working only while every device
// derives the same key. See FORMAT.md for the times measured.
const (
	PasswordTime    = 3
	PasswordMemory  = 64 << 10 // KiB
	PasswordThreads = 4

	// MinPasswordLen and MaxPasswordLen bound a password in bytes (of
	// UTF-8): ValidatePassword checks them when a member sets one.
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

const (
	labelPasswordSalt  = "mycel/v1/password-salt"
	labelPasswordKeyID = "mycel/v1/password-key-id"
)

// PasswordKey derives a space's password key: Argon2id(password,
// salt = "mycel/v1/password-salt" ‖ 0x00 ‖ space ID, t = 3, m = 64 MiB,
// p = 4, 32 bytes). A device joining with the space's ID and password
// seals its join request under it (PasswordRequestKey); members keep the
// key in the feeds, never the password, to open such requests (the member
// that set it keeps the password locally, for PasswordKeyAt). It lets a device ask to
// join and nothing more: no space secret is derived from it.
//
// The password is used byte for byte, without Unicode normalisation (which
// would bring golang.org/x/text into the browser node): the same password
// typed as different code points (composed é against e + ◌́) gives another
// key. It takes about 0.1 to 0.2 s and 64 MiB on a desktop (FORMAT.md).
func PasswordKey(password string, space SpaceID) [KeySize]byte {
	salt := make([]byte, 0, len(labelPasswordSalt)+1+SpaceIDSize)
	salt = append(salt, labelPasswordSalt...)
	salt = append(salt, 0)
	salt = append(salt, space[:]...)
	return [KeySize]byte(argon2.IDKey([]byte(password), salt, PasswordTime, PasswordMemory, PasswordThreads, KeySize))
}

// PasswordKeyAt derives the password key of a generation: generation 0 is
// PasswordKey; generation g > 0 salts with
// "mycel/v1/password-salt" ‖ 0x00 ‖ space ID ‖ g (uint32 BE). A space's
// password key moves to a new generation when a device is removed, so that
// the removed device, which read the old key from the feeds, cannot open
// requests made after (FORMAT.md, "Password key").
func PasswordKeyAt(password string, space SpaceID, generation uint32) [KeySize]byte {
	if generation == 0 {
		return PasswordKey(password, space)
	}
	salt := make([]byte, 0, len(labelPasswordSalt)+1+SpaceIDSize+4)
	salt = append(salt, labelPasswordSalt...)
	salt = append(salt, 0)
	salt = append(salt, space[:]...)
	salt = binary.BigEndian.AppendUint32(salt, generation)
	return [KeySize]byte(argon2.IDKey([]byte(password), salt, PasswordTime, PasswordMemory, PasswordThreads, KeySize))
}

// PasswordRequestKey returns the request key of a password key: the key
// itself, named by the first 16 bytes of HKDF(key, "mycel/v1/password-key-id"
// ‖ 0x00 ‖ space ID). Members recognise requests made with the password by
// that ID.
//
// The ID is public (it names the key in envelopes), and like any value
// derived from a password it lets whoever sees it test guesses offline, at
// one Argon2id per guess: a space's password must be a strong one, and
// guessing it still yields only the right to ask.
func PasswordRequestKey(key [KeySize]byte, space SpaceID) RequestKey {
	id := derive(key[:], labelPasswordKeyID+"\x00"+string(space[:]))
	return RequestKey{Kind: RequestByPassword, ID: [KeyIDSize]byte(id[:KeyIDSize]), Key: key}
}

// ValidatePassword checks a password a member sets for a space: valid
// UTF-8 of MinPasswordLen to MaxPasswordLen bytes. (A device that signs in
// derives the key of whatever it is given: a wrong password gives a key
// nobody recognises.)
func ValidatePassword(password string) error {
	switch {
	case !utf8.ValidString(password):
		return errorf(ErrMalformed, "password is not valid UTF-8")
	case len(password) < MinPasswordLen:
		return errorf(ErrMalformed, "password of %d bytes, at least %d", len(password), MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return errorf(ErrTooLarge, "password of %d bytes, limit %d", len(password), MaxPasswordLen)
	}
	return nil
}
