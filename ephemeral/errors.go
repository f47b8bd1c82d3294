package ephemeral

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps one of them (or,
// from a SeenStore, the store's own error), so that callers can tell with
// errors.Is why a message was refused.
var (
	// ErrMalformed: bytes that do not decode as an envelope, or a field of
	// the wrong size.
	ErrMalformed = errors.New("ephemeral: malformed envelope")
	// ErrTooLarge: an envelope or plaintext beyond MaxEnvelopeSize /
	// MaxPlaintextSize, or a key ID beyond MaxKeyIDSize.
	ErrTooLarge = errors.New("ephemeral: too large")
	// ErrSignature: the sender's signature does not verify.
	ErrSignature = errors.New("ephemeral: bad signature")
	// ErrDecrypt: the body does not open with the key given — wrong key, or
	// bytes changed in transit. Deliberately uninformative about which.
	ErrDecrypt = errors.New("ephemeral: decryption failed")
	// ErrStale: a timestamp more than Window away from the receiver's clock,
	// in either direction.
	ErrStale = errors.New("ephemeral: timestamp outside the window")
	// ErrDuplicate: an envelope whose ID (for its topic and sender) was
	// already delivered.
	ErrDuplicate = errors.New("ephemeral: already seen")
	// ErrSeenFull: the seen-set holds Config.MaxSeen unexpired IDs; new
	// envelopes are refused until some expire (see Filter).
	ErrSeenFull = errors.New("ephemeral: seen-set full")
)

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
