// Package badgerseen keeps an ephemeral.Filter's seen-set in badger v4, so
// that it survives a restart of the daemon or relay. It takes an existing
// *badger.DB and a key prefix, so that the node can keep it in its one
// store beside the feeds.
//
// Each seen key is one badger key, prefix ‖ seen key (16 bytes), whose
// value is its expiry in unix milliseconds (uint64, big-endian; see
// ../FORMAT.md). Badger's own TTL is not used: it runs on the wall clock,
// the Filter on its own (injectable) one. Prune deletes what expired.
//
// Add and AddMany are durable when they return only if the database
// writes synchronously: New refuses a database opened without SyncWrites
// (unless it is in memory, for tests). AddMany writes a batch in one
// transaction, so one fsync, unless it exceeds badger's transaction limits
// (tens of thousands of keys with the default options); it is then split.
// Concurrent commits are coalesced by badger into one write and one fsync.
package badgerseen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mycelsync/mycel/ephemeral"
)

// DefaultPrefix is the prefix the daemon uses unless it chooses another.
const DefaultPrefix = "eph/seen/"

// pruneBatch bounds the deletes of one transaction in Prune.
const pruneBatch = 1000

// Store is an ephemeral.SeenStore in a badger database.
type Store struct {
	db     *badger.DB
	prefix []byte
}

var _ ephemeral.SeenStore = (*Store)(nil)

// New returns a store of the keys under prefix in db, which must be
// non-empty and must not be a prefix of anything else the database holds.
// The caller keeps db and closes it after the store's last use.
func New(db *badger.DB, prefix string) (*Store, error) {
	if prefix == "" {
		return nil, errors.New("badgerseen: empty prefix")
	}
	if o := db.Opts(); !o.SyncWrites && !o.InMemory {
		return nil, errors.New("badgerseen: the database must be opened with SyncWrites")
	}
	return &Store{db: db, prefix: []byte(prefix)}, nil
}

func (s *Store) key(k ephemeral.SeenKey) []byte {
	return append(bytes.Clone(s.prefix), k[:]...)
}

// Load implements ephemeral.SeenStore.
func (s *Store) Load(now time.Time, fn func(ephemeral.SeenKey, time.Time) error) error {
	nowMs := now.UnixMilli()
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: s.prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k, exp, err := s.decode(item)
			if err != nil {
				return err
			}
			if exp > nowMs {
				if err := fn(k, time.UnixMilli(exp)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (s *Store) decode(item *badger.Item) (ephemeral.SeenKey, int64, error) {
	var k ephemeral.SeenKey
	key := item.Key()
	if len(key) != len(s.prefix)+ephemeral.SeenKeySize {
		return k, 0, fmt.Errorf("badgerseen: key %x of %d bytes", key, len(key))
	}
	copy(k[:], key[len(s.prefix):])
	var exp int64
	err := item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("badgerseen: value of %d bytes for %s", len(v), k)
		}
		exp = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return k, exp, err
}

// Add implements ephemeral.SeenStore.
func (s *Store) Add(k ephemeral.SeenKey, expires time.Time) error {
	return s.AddMany([]ephemeral.Seen{{Key: k, Expires: expires}})
}

// AddMany implements ephemeral.SeenStore: one transaction for the batch,
// committed and a new one begun whenever badger says it is too big. A key
// already stored keeps the later of its two expiries.
func (s *Store) AddMany(entries []ephemeral.Seen) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for _, e := range entries {
		err := s.set(txn, e)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("badgerseen: add %d keys: %w", len(entries), err)
			}
			txn = s.db.NewTransaction(true)
			err = s.set(txn, e)
		}
		if err != nil {
			return fmt.Errorf("badgerseen: add %s: %w", e.Key, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("badgerseen: add %d keys: %w", len(entries), err)
	}
	return nil
}

// set writes e in txn unless the stored expiry is already as late.
func (s *Store) set(txn *badger.Txn, e ephemeral.Seen) error {
	exp := e.Expires.UnixMilli()
	key := s.key(e.Key)
	item, err := txn.Get(key)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return err
	default:
		_, old, err := s.decode(item)
		if err != nil {
			return err
		}
		if old >= exp {
			return nil
		}
	}
	return txn.Set(key, binary.BigEndian.AppendUint64(nil, uint64(exp)))
}

// Prune implements ephemeral.SeenStore: it deletes the keys that expired
// at or before now, pruneBatch per transaction.
func (s *Store) Prune(now time.Time) error {
	nowMs := now.UnixMilli()
	var expired [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: s.prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			_, exp, err := s.decode(it.Item())
			if err != nil {
				return err
			}
			if exp <= nowMs {
				expired = append(expired, it.Item().KeyCopy(nil))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("badgerseen: prune: %w", err)
	}
	for len(expired) > 0 {
		n := min(len(expired), pruneBatch)
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, k := range expired[:n] {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("badgerseen: prune: %w", err)
		}
		expired = expired[n:]
	}
	return nil
}
