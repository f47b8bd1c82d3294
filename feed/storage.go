package feed

import (
	"bytes"
	"errors"
	"fmt"
)

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
	// ErrInvalidKey is returned (wrapped) for a key outside the rules.
	ErrInvalidKey = errors.New("feed: invalid storage key")
)

// reservedPrefix starts badger's own keys; no Storage accepts it, so that
// code tested on one implementation works on all.
var reservedPrefix = []byte("!badger!")

// CheckKey checks a key against the rules every Storage enforces:
// non-empty, at most MaxKeySize bytes, not starting with "!badger!".
func CheckKey(key []byte) error {
	switch {
	case len(key) == 0:
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeySize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(key), MaxKeySize)
	case bytes.HasPrefix(key, reservedPrefix):
		return fmt.Errorf("%w: %q prefix is reserved", ErrInvalidKey, reservedPrefix)
	}
	return nil
}

// CheckCommit checks a commit against the limits every Storage enforces:
// its keys (CheckKey), MaxCommitWrites, and MaxCommitBytes (keys, plus
// values of puts). Implementations call it first, so that they all refuse
// the same commits, before changing anything.
func CheckCommit(writes []Write) error {
	if n := len(writes); n > MaxCommitWrites {
		return fmt.Errorf("%d writes, limit %d: %w", n, MaxCommitWrites, ErrCommitTooLarge)
	}
	size := 0
	for _, w := range writes {
		if err := CheckKey(w.Key); err != nil {
			return err
		}
		size += len(w.Key)
		if !w.Delete {
			size += len(w.Value)
		}
	}
	if size > MaxCommitBytes {
		return fmt.Errorf("%d bytes, limit %d: %w", size, MaxCommitBytes, ErrCommitTooLarge)
	}
	return nil
}
