package auth

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps one of them, so
// that callers can tell with errors.Is what went wrong.
var (
	// ErrDecrypt: a sealed box or sealed content that does not open — wrong
	// key, wrong binding or additional data, or bytes changed in transit.
	// Deliberately uninformative about which.
	ErrDecrypt = errors.New("auth: decryption failed")
	// ErrMalformed: input that does not decode or has a field of the wrong
	// size or value.
	ErrMalformed = errors.New("auth: malformed input")
	// ErrTooLarge: input or a keyring beyond a documented bound (MaxEpochs,
	// MaxKeyringSize, MaxContentSize, ...).
	ErrTooLarge = errors.New("auth: too large")
	// ErrUnknownEpoch: an epoch the keyring does not hold (yet).
	ErrUnknownEpoch = errors.New("auth: unknown epoch")
	// ErrEpochOrder: adding an epoch secret that does not come next: the
	// keyring holds epochs 0..n-1 and only epoch n can be added.
	ErrEpochOrder = errors.New("auth: epoch out of order")
	// ErrChecksum: an invite link or code whose checksum does not match:
	// most likely a typo or a truncated copy.
	ErrChecksum = errors.New("auth: checksum mismatch")
	// ErrExpired: an invite past its expiry.
	ErrExpired = errors.New("auth: expired")
	// ErrUsed: an invite already spent on another device's request.
	ErrUsed = errors.New("auth: invite already used")
	// ErrSafetyCode: a typed safety code that is not the request's.
	ErrSafetyCode = errors.New("auth: safety code mismatch")
	// ErrMismatch: an approval or denial bound to another join request, or
	// opened with a device key the request did not name.
	ErrMismatch = errors.New("auth: bound to another request")
)

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
