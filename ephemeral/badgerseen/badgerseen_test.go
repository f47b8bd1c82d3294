package badgerseen_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/badgerseen"
	"github.com/mycelsync/mycel/ephemeral/seenstoretest"
)

func openDB(t *testing.T, dir string) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// reopenable opens a store in a fresh directory; reopen closes the
// database and opens it again, as a restart would.
func reopenable(t *testing.T) (ephemeral.SeenStore, func() ephemeral.SeenStore) {
	dir := t.TempDir()
	db := openDB(t, dir)
	t.Cleanup(func() { db.Close() })
	open := func() ephemeral.SeenStore {
		s, err := badgerseen.New(db, badgerseen.DefaultPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return open(), func() ephemeral.SeenStore {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openDB(t, dir)
		return open()
	}
}

func TestContract(t *testing.T) {
	seenstoretest.Run(t, reopenable)
}

func TestRefusesAsyncDB(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithSyncWrites(false).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := badgerseen.New(db, "p/"); err == nil {
		t.Fatal("accepted a database without SyncWrites")
	}
	if _, err := badgerseen.New(openDB(t, t.TempDir()), ""); err == nil {
		t.Fatal("accepted an empty prefix")
	}
}

// TestPrefixesApart: two stores in one database do not see each other's
// keys, and leave the rest of the database alone.
func TestPrefixesApart(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("feed/x"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	a, _ := badgerseen.New(db, "a/")
	b, _ := badgerseen.New(db, "b/")
	now := time.Now()
	if err := a.Add(ephemeral.SeenKey{1}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := b.Load(now, func(ephemeral.SeenKey, time.Time) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("b sees %d of a's keys", n)
	}
	if err := b.Prune(now.Add(48 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(txn *badger.Txn) error { _, err := txn.Get([]byte("feed/x")); return err }); err != nil {
		t.Fatalf("prune touched another key: %v", err)
	}
}

// TestFilterRestart: a Filter over a reopened badger store refuses what
// the Filter before the restart delivered.
func TestFilterRestart(t *testing.T) {
	store, reopen := reopenable(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	now := t0
	clock := func() time.Time { return now }
	f, err := ephemeral.NewFilter(store, ephemeral.Config{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	signer := ed25519.NewKeyFromSeed(make([]byte, 32))
	e, err := ephemeral.Seal([32]byte{}, signer, ephemeral.Header{}, []byte("hi"), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Deliver(e); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(4*time.Minute + 59*time.Second)
	f, err = ephemeral.NewFilter(reopen(), ephemeral.Config{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Deliver(e); !errors.Is(err, ephemeral.ErrDuplicate) {
		t.Fatalf("after restart: %v", err)
	}
	if f.Len() != 1 {
		t.Fatalf("loaded %d IDs", f.Len())
	}
}

// TestAddManyRestart: a batch larger than one badger transaction may hold
// is split, and all of it is there after a restart, also to a Filter.
func TestAddManyRestart(t *testing.T) {
	dir := t.TempDir()
	// A small memtable makes badger's transaction limit small.
	opts := badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).
		WithMemTableSize(1 << 20).WithValueThreshold(1 << 10)
	db, err := badger.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db != nil {
			db.Close()
		}
	})
	const n = 10000
	key := func(i int) ephemeral.SeenKey { return ephemeral.SeenKey{byte(i), byte(i >> 8), 0xaa} }
	// The batch would not fit in one transaction.
	txn := db.NewTransaction(true)
	tooBig := false
	for i := range n {
		if err := txn.Set(append([]byte(badgerseen.DefaultPrefix), key(i).String()...), []byte("12345678")); errors.Is(err, badger.ErrTxnTooBig) {
			tooBig = true
			break
		}
	}
	txn.Discard()
	if !tooBig {
		t.Fatalf("%d keys fit in one transaction: the test does not split", n)
	}

	s, err := badgerseen.New(db, badgerseen.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.UnixMilli(1_700_000_000_000)
	batch := make([]ephemeral.Seen, n)
	for i := range batch {
		batch[i] = ephemeral.Seen{Key: key(i), Expires: t0.Add(time.Duration(1+i%7) * time.Minute)}
	}
	if err := s.AddMany(batch); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = badger.Open(opts); err != nil {
		t.Fatal(err)
	}
	if s, err = badgerseen.New(db, badgerseen.DefaultPrefix); err != nil {
		t.Fatal(err)
	}
	got := make(map[ephemeral.SeenKey]time.Time)
	if err := s.Load(t0, func(k ephemeral.SeenKey, exp time.Time) error { got[k] = exp; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("after restart: %d keys, want %d", len(got), n)
	}
	for _, e := range batch {
		if !got[e.Key].Equal(e.Expires) {
			t.Fatalf("key %s expires %v, want %v", e.Key, got[e.Key], e.Expires)
		}
	}

	// A Filter's batch survives a restart too.
	now := t0
	clock := func() time.Time { return now }
	f, err := ephemeral.NewFilter(s, ephemeral.Config{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	signer := ed25519.NewKeyFromSeed(make([]byte, 32))
	var envs []*ephemeral.Envelope
	for range 50 {
		e, err := ephemeral.Seal([32]byte{}, signer, ephemeral.Header{}, []byte("hi"), t0, nil)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	for i, err := range f.DeliverMany(envs) {
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = badger.Open(opts); err != nil {
		t.Fatal(err)
	}
	if s, err = badgerseen.New(db, badgerseen.DefaultPrefix); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Minute)
	if f, err = ephemeral.NewFilter(s, ephemeral.Config{Now: clock}); err != nil {
		t.Fatal(err)
	}
	for i, err := range f.DeliverMany(envs) {
		if !errors.Is(err, ephemeral.ErrDuplicate) {
			t.Fatalf("after restart, envelope %d: %v", i, err)
		}
	}
}
