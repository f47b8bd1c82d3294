package feed

import "errors"

// ErrNotFound is returned by Storage.Get when a key is absent.
var ErrNotFound = errors.New("feed: not found")

// Storage is the ordered key-value store feeds are kept in. It is deliberately
// small so that it can be backed by badger on a daemon, by memory in tests,
// and by IndexedDB (through a wasm bridge) in a browser.
//
// Implementations must be safe for concurrent use. Keys are compared
// bytewise; they are non-empty, at most MaxKeySize bytes, and never start
// with "!badger!" (badger reserves that prefix). A Scan callback may call
// Get; whether a Scan sees commits made while it runs is unspecified. Values passed to callbacks and returned by Get belong to the
// caller (implementations copy when needed).
type Storage interface {
	// Get returns the value stored under key, or ErrNotFound.
	Get(key []byte) ([]byte, error)

	// Scan calls fn for every key k with start <= k < end, in ascending
	// order. A nil end means no upper bound. Scan stops early and returns
	// fn's error if fn returns a non-nil error; returning ErrStopScan stops
	// the scan and makes Scan return nil. The key and value passed to fn are
	// only valid until fn returns.
	Scan(start, end []byte, fn func(key, value []byte) error) error

	// Commit applies all writes atomically: after a crash either all or none
	// of them are visible. It returns only once they are durable (fsynced).
	// Implementations may refuse a commit larger than MaxCommitBytes with an
	// error wrapping ErrCommitTooLarge, leaving the store unchanged.
	Commit(writes []Write) error

	// Close releases the store. Calls after Close return ErrStorageClosed.
	Close() error
}

// Write is one change in a Storage.Commit: a put, or a delete when Delete
// is set.
type Write struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// MaxCommitBytes is the largest commit (sum of key and value lengths; a
// delete counts its key) every Storage implementation must accept in one
// atomic Commit. Callers that write more split their work into several
// commits that are each consistent on their own.
const MaxCommitBytes = 4 << 20

// MaxKeySize is the longest key every implementation accepts.
const MaxKeySize = 1024

// MaxCommitWrites is the largest number of writes every Storage
// implementation must accept in one Commit.
const MaxCommitWrites = 32 << 10

var (
	// ErrStopScan, returned by a Scan callback, ends the scan without error.
	ErrStopScan = errors.New("feed: stop scan")
	// ErrCommitTooLarge is returned (wrapped) for a commit beyond the limits.
	ErrCommitTooLarge = errors.New("feed: commit too large")
	// ErrStorageClosed is returned by a Storage after Close.
	ErrStorageClosed = errors.New("feed: storage closed")
)
