package feed

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these so that
// callers can tell with errors.Is what went wrong and whether to retry.
var (
	// ErrBadSignature: a signed head whose signature does not verify.
	ErrBadSignature = errors.New("feed: bad signature")
	// ErrInvalidProof: hashes that do not reproduce the signed root, or of
	// the wrong number or size. The peer that sent them is at fault.
	ErrInvalidProof = errors.New("feed: invalid proof")
	// ErrMalformed: input that does not decode or violates a documented bound.
	ErrMalformed = errors.New("feed: malformed input")
	// ErrNeedConsistency: a head that cannot be checked against the heads
	// already seen without a consistency proof the batch did not carry. The
	// caller should ask the peer for one (Feed.Length says from where).
	ErrNeedConsistency = errors.New("feed: consistency proof needed")
	// ErrFork: two signed heads of one feed that cannot both be true. The
	// error is a *ForkError carrying the evidence; the feed is now frozen.
	ErrFork = errors.New("feed: fork")
	// ErrFrozen: the feed was frozen by an earlier fork; nothing more is
	// appended or ingested. The error is a *ForkError.
	ErrFrozen = errors.New("feed: frozen after fork")
	// ErrNotHeld: the entry or tree node asked for is not held by this
	// replica.
	ErrNotHeld = errors.New("feed: not held")
	// ErrOutOfRange: an index or length beyond the feed's head.
	ErrOutOfRange = errors.New("feed: out of range")
	// ErrTooLarge: an entry or batch beyond MaxEntrySize or MaxBatchBytes.
	ErrTooLarge = errors.New("feed: too large")
	// ErrWrongFeed: a head or batch for another feed than the one addressed.
	ErrWrongFeed = errors.New("feed: wrong feed")
	// ErrClosed: the DB was closed.
	ErrClosed = errors.New("feed: closed")
	// ErrAppendsHeld: the DB was opened WithoutAppends, while its store
	// is being restored from peers; a writer may append only once it
	// holds back everything it had signed.
	ErrAppendsHeld = errors.New("feed: appends held while the store is restored")
)

// ForkError is returned when a fork is detected (errors.Is(err, ErrFork)) and
// by every later Append or Ingest on the frozen feed (errors.Is(err,
// ErrFrozen)). Evidence verifies with VerifyEvidence on any node.
type ForkError struct {
	Evidence *ForkEvidence
	frozen   bool // true when reported for a feed frozen earlier
}

func (e *ForkError) Error() string {
	what := "fork detected"
	if e.frozen {
		what = "feed frozen after fork"
	}
	a, b := e.Evidence.A, e.Evidence.B
	return fmt.Sprintf("feed %x: %s: head (len %d, root %x) conflicts with head (len %d, root %x)",
		a.Key[:8], what, a.Length, a.Root[:8], b.Length, b.Root[:8])
}

// Is makes errors.Is(err, ErrFork) or errors.Is(err, ErrFrozen) true.
func (e *ForkError) Is(target error) bool {
	if e.frozen {
		return target == ErrFrozen
	}
	return target == ErrFork
}

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
