// Package badgerstore is a durable feed.Storage on top of badger v4, for
// daemons.
//
// # Options
//
// The options (see Options) are sized for a small machine (a few hundred MiB
// of RAM to spare) rather than badger's server defaults:
//
//   - SyncWrites = true. Commit must not return before its writes are
//     fsynced; this is part of the feed.Storage contract and is not
//     configurable.
//   - MemTableSize = 32 MiB, NumMemtables = 2. Badger caps one transaction
//     at 15% of the memtable size (4.8 MiB here), and at that size / 96
//     writes (~52k). feed.Storage promises that a commit of
//     feed.MaxCommitBytes (4 MiB) in up to feed.MaxCommitWrites (32 Ki)
//     writes is accepted; in the worst case (all values below
//     ValueThreshold, so inline in the LSM tree) badger counts such a commit
//     as 4 MiB + 12 bytes per write ≈ 4.6 MiB, under the cap
//     (TestBatchCapacity checks this). 64 MiB memtables would allow larger
//     commits but used ~137 MiB of Go heap after 200 MB of writes, against
//     27 MiB with 16 MiB memtables. Two memtables (one being filled, one
//     being flushed) instead of badger's five keep that bounded.
//   - ValueThreshold = 64 bytes. Larger values (feed entries, the sealed
//     records of a space's view, typically 150–300 bytes) go to the value
//     log, an append-only file; only a pointer sits in the LSM tree. This
//     keeps the tree and the memtables small, so compactions and write
//     stalls stay rare, and keeps a commit of 10k 1 KiB entries far below
//     the transaction cap. Measured on the view benchmark (1M ops): apply
//     +10%, List(prefix, 100) p99 25 ms → 2.3 ms against 256 bytes. Tree
//     node hashes (32 bytes) stay inline.
//   - ValueLogFileSize = 128 MiB instead of 1 GiB: value log files are
//     mmapped and garbage-collected one file at a time, so smaller files
//     are reclaimed sooner.
//   - BlockCacheSize = 16 MiB, IndexCacheSize = 16 MiB: bounded caches
//     (badger defaults to 256 MiB of block cache and unbounded indexes).
//     The block cache was 32 MiB: it filled at every start (reading a
//     space's key index) and stayed in the idle daemon's heap, which the
//     garbage collector lets grow to twice what is live. At 16 MiB the
//     view benchmark (node/space BenchmarkView1M) measured the same apply
//     rate and Get and List latencies within the machine's noise.
//   - NumLevelZeroTables = 4, NumLevelZeroTablesStall = 10,
//     NumCompactors = 2: fewer L0 tables and compaction goroutines than the
//     defaults (5, 15, 4), so less memory and CPU go to compaction.
//   - Compression = Snappy (badger's default): cheap, and the block cache
//     is needed by compression anyway.
//   - DetectConflicts = false: Commit only writes, it never reads in a
//     read-write transaction, so there is nothing to conflict with and the
//     bookkeeping would be wasted.
//   - ChecksumVerificationMode = OnBlockRead, VerifyValueChecksum = true:
//     every table block and every value read is checked against its CRC; a
//     value that fails is an error wrapping ErrDamaged, never other bytes.
//     (Badger's OnTableRead is not used: it verifies tables on goroutines of
//     its own, where a damaged block panics the process. Open verifies the
//     tables itself first; see Damage.)
//   - Logger: badger's logger is routed to a *slog.Logger (WithLogger),
//     which discards by default. Badger's debug and (chatty) info messages
//     become slog Debug, warnings Warn, errors Error.
//
// # Damage
//
// Badger, left alone, answers damage badly: a table with a bad block
// panics the process (in a goroutine of its own, so it cannot be
// recovered), a table cut short too; a value log entry that fails its
// checksum makes badger cut the newest log there as if a crash had torn
// it, dropping everything after; a missing MANIFEST opens an empty
// database. So Open first checks the files (integrity.go), changing
// nothing:
//
//   - Close writes CleanCloseFile, the name and size of every file, after
//     badger closed; Open compares (a file missing or of another size is
//     damage) and removes the record before badger starts.
//   - Tables and logs without a MANIFEST are damage; every table the
//     MANIFEST lists must be there and is read whole with badger's table
//     reader, its checksums checked, a panic recovered.
//   - Every value log and memtable log is read entry by entry (header,
//     key, value, CRC-32C) as badger does at open. What badger would cut
//     must be zeros — or, after a crash (no record), the entries of the
//     unfinished last commit and one torn entry (Go's memmove may store an
//     entry's end before its start), then zeros. Anything else is damage.
//
// Damage is a *DamageError wrapping ErrDamaged, naming the directory and
// what is damaged. Errors reading a value at run time wrap it too.
// Limits: badger's iterators end silently on a table block that fails
// its checksum at run time, so a block damaged after Open is not reported
// by Scan (the node's mycel check finds it); and after a crash, a damaged
// last entry of the newest log cannot be told from a torn write.
//
// Badger never reclaims value log space on its own: a long-running daemon
// should call DB().RunValueLogGC periodically.
//
// # Keys
//
// Badger rejects empty keys, keys longer than 65000 bytes and keys starting
// with "!badger!" (reserved for its own metadata); Commit refuses such keys
// with an error wrapping ErrInvalidKey before writing anything, and Get
// reports them as feed.ErrNotFound.
package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/mycelsync/mycel/feed"
)

// MaxKeySize is the longest key badger itself accepts; feed.CheckKey
// allows only feed.MaxKeySize.
const MaxKeySize = 65000

// ErrInvalidKey is feed.ErrInvalidKey: a key outside the rules every
// Storage enforces (feed.CheckKey).
var ErrInvalidKey = feed.ErrInvalidKey

// Options returns the badger options Open uses for dir, with logging
// discarded. Benchmarks use it to open a raw badger configured identically.
func Options(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithMemTableSize(32 << 20).
		WithNumMemtables(2).
		WithValueThreshold(64).
		WithValueLogFileSize(128 << 20).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(16 << 20).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(10).
		WithNumCompactors(2).
		WithCompression(options.Snappy).
		WithDetectConflicts(false).
		WithChecksumVerificationMode(options.OnBlockRead).
		WithVerifyValueChecksum(true).
		WithLogger(slogLogger{slog.New(slog.DiscardHandler)})
}

// Option configures Open.
type Option func(*config)

type config struct {
	logger   *slog.Logger
	readOnly bool
	budget   int64
}

// DefaultMappedBudget is the resident memory of mapped files above which
// a Store asks the kernel to reclaim the pages of its files (see
// WithMappedBudget).
const DefaultMappedBudget = 64 << 20

// trimInterval is how often a Store compares the process's resident
// mapped memory with its budget.
const trimInterval = 2 * time.Second

// WithMappedBudget bounds, on Linux, the resident memory of the files
// badger maps. Badger reads and writes its tables and logs through
// shared memory maps and keeps them mapped, so every page it touched —
// a catch-up writes the whole value log — counts in the process's RSS
// until the kernel runs short of memory. Every two seconds, when the
// process's resident file-backed memory (RssFile, which also holds the
// binary's code) exceeds n bytes, the Store asks the kernel to reclaim
// the pages of its files (MADV_PAGEOUT; dirty pages are written back
// first). Pages read again later fault back in. n <= 0 turns it off.
// Default DefaultMappedBudget.
func WithMappedBudget(n int64) Option {
	return func(c *config) { c.budget = n }
}

// ReadOnly opens the store without changing any file: for checking a
// store (a daemon must not be running on it). Commit fails.
func ReadOnly() Option {
	return func(c *config) { c.readOnly = true }
}

// WithLogger sends badger's log messages to l. A nil l discards them, which
// is the default.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// Store is a feed.Storage backed by a badger database.
type Store struct {
	db       *badger.DB
	dir      string
	readOnly bool
	stop     chan struct{} // closed by Close: ends trim
	trimmed  chan struct{} // closed when trim returned

	// mu guards closed. Operations hold it only long enough to check closed
	// and register in ops; Close sets closed under the write lock and then
	// waits for ops to drain before closing the database. Holding the read
	// lock for a whole operation would deadlock a Scan whose callback calls
	// Get while Close is waiting (a pending writer blocks new readers).
	mu     sync.RWMutex
	closed bool
	ops    sync.WaitGroup
}

var _ feed.Storage = (*Store)(nil)

// Open opens (creating if needed) the badger database in dir.
//
// Before badger touches the files, Open checks them (see preflight in
// integrity.go): against the record of the last clean close, for a
// MANIFEST, and every value log and memtable log read to its end, so
// that badger's recovery never cuts data that damage made unreadable.
// Badger then verifies every table's checksums as it opens it. Damage
// found either way is a *DamageError wrapping ErrDamaged, and the files
// are left as they were; a panic inside badger is reported the same way.
func Open(dir string, opts ...Option) (*Store, error) {
	c := config{budget: DefaultMappedBudget}
	for _, o := range opts {
		o(&c)
	}
	bo := Options(dir).WithReadOnly(c.readOnly)
	if c.logger != nil {
		bo = bo.WithLogger(slogLogger{c.logger})
	}
	if err := preflight(dir, bo); err != nil {
		return nil, err
	}
	db, err := openBadger(bo)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, dir: dir, readOnly: c.readOnly, stop: make(chan struct{}), trimmed: make(chan struct{})}
	if c.budget > 0 && !c.readOnly {
		go s.trim(c.budget)
	} else {
		close(s.trimmed)
	}
	return s, nil
}

// trim keeps the pages of the store's mapped files within budget until
// Close.
func (s *Store) trim(budget int64) {
	defer close(s.trimmed)
	t := time.NewTicker(trimInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if mappedFileBytes() > budget {
			pageOut(s.dir)
		}
	}
}

func openBadger(bo badger.Options) (db *badger.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, &DamageError{Dir: bo.Dir, Problem: "badger failed reading its files", Err: fmt.Errorf("panic: %v", p)}
		}
	}()
	db, err = badger.Open(bo)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, fs.ErrPermission), strings.Contains(err.Error(), "Cannot acquire directory lock"):
		return nil, fmt.Errorf("badgerstore: open %s: %w", bo.Dir, err)
	}
	return nil, &DamageError{Dir: bo.Dir, Problem: "badger cannot open it", Err: err}
}

// DB returns the underlying database, for maintenance (RunValueLogGC) and
// benchmarks. The caller must not close it; use Store.Close.
func (s *Store) DB() *badger.DB { return s.db }

// begin registers an operation, failing once the store is closed. Every
// successful begin must be paired with s.ops.Done.
func (s *Store) begin() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return feed.ErrStorageClosed
	}
	s.ops.Add(1)
	return nil
}

// Get returns a copy of the value stored under key, or feed.ErrNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.ops.Done()
	if feed.CheckKey(key) != nil {
		// Such a key can never have been stored (and "!badger!" keys
		// must not leak badger's metadata).
		return nil, feed.ErrNotFound
	}
	var val []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, feed.ErrNotFound
	}
	if err != nil {
		return nil, s.readError("get", err)
	}
	return val, nil
}

// Scan calls fn for each key in [start, end) in ascending order, from one
// consistent snapshot; a nil end means no upper bound. The key and value
// passed to fn are copies that are reused for the next call, so fn may
// modify them but must not keep them. fn may call back into the store.
func (s *Store) Scan(start, end []byte, fn func(key, value []byte) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.ops.Done()

	txn := s.db.NewTransaction(false)
	defer txn.Discard()

	iopts := badger.DefaultIteratorOptions
	// No prefetching, although fn needs every value: badger prefetches with
	// a goroutine and an extra copy per item, and the value log is mmapped,
	// so reading values on demand is faster whenever it is in the page
	// cache. Measured on 10k 1 KiB values (2 cores): a full scan took
	// 4.8 ms without prefetch and 14 ms with PrefetchSize 16; a 5-entry scan
	// 12 µs against 42 µs. Prefetch could only pay off on a cold cache.
	iopts.PrefetchValues = false
	if end != nil {
		// Every key in [start, end) shares start and end's common prefix;
		// telling badger lets it skip tables outside that prefix.
		iopts.Prefix = commonPrefix(start, end)
	}
	it := txn.NewIterator(iopts)
	defer it.Close()

	var k, v []byte
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		if end != nil && bytes.Compare(item.Key(), end) >= 0 {
			break
		}
		k = item.KeyCopy(k[:0])
		var err error
		if v, err = item.ValueCopy(v[:0]); err != nil {
			return s.readError("scan", err)
		}
		if err := fn(k, v); err != nil {
			if errors.Is(err, feed.ErrStopScan) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Commit applies writes in one badger transaction and returns once it is
// fsynced. Later writes to the same key win. A commit beyond
// feed.MaxCommitWrites or feed.MaxCommitBytes, or one badger finds too big,
// fails with an error wrapping feed.ErrCommitTooLarge; an invalid key fails
// with ErrInvalidKey. Either way nothing is written.
func (s *Store) Commit(writes []feed.Write) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.ops.Done()
	if err := feed.CheckCommit(writes); err != nil {
		return fmt.Errorf("badgerstore: %w", err)
	}
	if len(writes) == 0 {
		return nil
	}

	// The transaction references keys and values without copying them until
	// Commit returns; badger copies them into its memtable and value log.
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for _, w := range writes {
		var err error
		if w.Delete {
			err = txn.Delete(w.Key)
		} else {
			err = txn.Set(w.Key, w.Value)
		}
		if err != nil {
			return commitError(err)
		}
	}
	if err := txn.Commit(); err != nil {
		return commitError(err)
	}
	return nil
}

// readError reports a failed read. The store is local and open, so a
// read fails only when a file does not read back as written: a value
// that fails its checksum, a block of a table that does.
func (s *Store) readError(op string, err error) error {
	return fmt.Errorf("badgerstore: %s: %w", op, &DamageError{Dir: s.dir, Problem: "a read failed", Err: err})
}

func commitError(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("badgerstore: commit: %w: %w", feed.ErrCommitTooLarge, err)
	}
	return fmt.Errorf("badgerstore: commit: %w", err)
}

// Close waits for running operations to finish and closes the database.
// Later calls, including Close, return feed.ErrStorageClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return feed.ErrStorageClosed
	}
	s.closed = true
	s.mu.Unlock()

	s.ops.Wait()
	close(s.stop)
	<-s.trimmed
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("badgerstore: close: %w", err)
	}
	if !s.readOnly {
		if err := writeCleanClose(s.dir); err != nil {
			return fmt.Errorf("badgerstore: close: %w", err)
		}
	}
	return nil
}

// commonPrefix returns the longest common prefix of a and b.
func commonPrefix(a, b []byte) []byte {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return a[:i:i]
}

// slogLogger adapts a *slog.Logger to badger.Logger.
type slogLogger struct {
	l *slog.Logger
}

func (s slogLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return // skip formatting; badger logs a lot at debug level
	}
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	s.l.Log(ctx, level, msg, "component", "badger")
}

func (s slogLogger) Errorf(format string, args ...any)   { s.log(slog.LevelError, format, args) }
func (s slogLogger) Warningf(format string, args ...any) { s.log(slog.LevelWarn, format, args) }
func (s slogLogger) Infof(format string, args ...any)    { s.log(slog.LevelDebug, format, args) }
func (s slogLogger) Debugf(format string, args ...any)   { s.log(slog.LevelDebug, format, args) }
