package replication

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error of this package wraps one of them. All of
// them end the session: the driver resets the stream; ErrUnauthorized and
// ErrProtocol also say the peer is at fault (lower its standing).
var (
	// ErrFrameTooLarge: a frame whose length prefix exceeds the limit. It
	// is reported before anything is allocated.
	ErrFrameTooLarge = errors.New("sync: frame too large")
	// ErrMalformed: a frame or message that does not decode, or a field
	// outside its documented bounds.
	ErrMalformed = errors.New("sync: malformed message")
	// ErrProtocol: a well-formed message that breaks the protocol: out of
	// order, answering a want never made, more than the limits allow,
	// or data that fails verification on ingest.
	ErrProtocol = errors.New("sync: protocol violation")
	// ErrVersion: the peer speaks another protocol version.
	ErrVersion = errors.New("sync: unsupported version")
	// ErrUnauthorized: the peer's capability proof does not verify. It has
	// been told nothing about the space.
	ErrUnauthorized = errors.New("sync: capability proof rejected")
	// ErrMisuse: the driver broke the Step/Ready/Advance contract (Step
	// before Start, Ingested without a pending ingest).
	ErrMisuse = errors.New("sync: misuse")
	// ErrNotStored is not a session error: the driver passes an error
	// wrapping it to Ingested when it refused to store a verified batch
	// for its own reasons (a relay's mirror quota), which are not the
	// peer's fault. The session goes on; it asks the peer for those ranges
	// again only once the peer's head grows.
	ErrNotStored = errors.New("sync: not stored")
)

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
