package ephemeral

import (
	"encoding/hex"
	"sync"
	"time"
)

// SeenKeySize is the size of a SeenKey.
const SeenKeySize = 16

// SeenKey identifies a delivered envelope in the seen-set
// (Envelope.SeenKey).
type SeenKey [SeenKeySize]byte

// String returns the key in lowercase hex.
func (k SeenKey) String() string { return hex.EncodeToString(k[:]) }

// Seen is one entry of the seen-set: a key kept until Expires.
type Seen struct {
	Key     SeenKey
	Expires time.Time
}

// SeenStore keeps the seen-set across restarts. The Filter holds the set
// in memory and writes through to the store, with AddMany (one write, one
// fsync, for a batch of envelopes); it reads the store only when it is
// created. Implementations must be safe for concurrent use: the Filter
// calls AddMany from several goroutines at once (badger coalesces
// concurrent commits into one fsync).
//
// Implementations: MemSeenStore here (tests, the browser node, a node
// without a disk); badgerseen.Store for daemons and relays. The contract
// tests are in package seenstoretest.
type SeenStore interface {
	// Load calls fn for every key that expires after now, in any order. An
	// error from fn stops Load and is returned.
	Load(now time.Time, fn func(k SeenKey, expires time.Time) error) error
	// Add records k until expires. It must be durable when Add returns:
	// the Filter reports an envelope as delivered only afterwards, so that
	// a crash cannot let it be delivered a second time.
	Add(k SeenKey, expires time.Time) error
	// AddMany records each entry as Add does, and must be durable for all
	// of them when it returns nil; a key may appear more than once. It
	// should cost one synchronous write however many there are. On an
	// error some of them may have been recorded: the Filter then delivers
	// none, so at worst a message is lost, never delivered twice.
	AddMany(entries []Seen) error
	// Prune forgets the keys that expired at or before now. Keys not yet
	// expired must survive it.
	Prune(now time.Time) error
}

// MemSeenStore is a SeenStore in memory. It survives a Filter, not the
// process: a new Filter over the same MemSeenStore sees what the old one
// delivered.
type MemSeenStore struct {
	mu   sync.Mutex
	keys map[SeenKey]int64 // expiry, unix milliseconds
}

var _ SeenStore = (*MemSeenStore)(nil)

// NewMemSeenStore returns an empty store.
func NewMemSeenStore() *MemSeenStore {
	return &MemSeenStore{keys: make(map[SeenKey]int64)}
}

// Load implements SeenStore.
func (s *MemSeenStore) Load(now time.Time, fn func(SeenKey, time.Time) error) error {
	s.mu.Lock()
	type kv struct {
		k   SeenKey
		exp int64
	}
	var live []kv
	for k, exp := range s.keys {
		if exp > now.UnixMilli() {
			live = append(live, kv{k, exp})
		}
	}
	s.mu.Unlock()
	for _, e := range live {
		if err := fn(e.k, time.UnixMilli(e.exp)); err != nil {
			return err
		}
	}
	return nil
}

// Add implements SeenStore.
func (s *MemSeenStore) Add(k SeenKey, expires time.Time) error {
	return s.AddMany([]Seen{{k, expires}})
}

// AddMany implements SeenStore.
func (s *MemSeenStore) AddMany(entries []Seen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		if exp := e.Expires.UnixMilli(); exp > s.keys[e.Key] {
			s.keys[e.Key] = exp
		}
	}
	return nil
}

// Prune implements SeenStore.
func (s *MemSeenStore) Prune(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.keys {
		if exp <= now.UnixMilli() {
			delete(s.keys, k)
		}
	}
	return nil
}

// Len returns how many keys the store holds, expired or not.
func (s *MemSeenStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}
