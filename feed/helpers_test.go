package feed_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
)

// testKey returns a deterministic writer key.
func testKey(seed byte) ed25519.PrivateKey {
	var s [32]byte
	s[0] = seed
	return ed25519.NewKeyFromSeed(s[:])
}

func entry(i int) []byte { return []byte(fmt.Sprintf("entry %d", i)) }

// replica is a DB over an inspectable in-memory store.
type replica struct {
	st *memstore.Store
	db *feed.DB
}

func newReplica(t testing.TB) *replica {
	t.Helper()
	st := memstore.New()
	db, err := feed.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &replica{st: st, db: db}
}

func (r *replica) feed(t testing.TB, key feed.PublicKey) *feed.Feed {
	t.Helper()
	f, err := r.db.Feed(key)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (r *replica) writer(t testing.TB, priv ed25519.PrivateKey) *feed.Writer {
	t.Helper()
	w, err := r.db.Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// snapshot returns every key and value in the store.
func (r *replica) snapshot(t testing.TB) map[string]string {
	t.Helper()
	m := make(map[string]string)
	if err := r.st.Scan(nil, nil, func(k, v []byte) error {
		m[string(k)] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func sameSnapshot(a, b map[string]string) bool { return maps.Equal(a, b) }

func newDB(t testing.TB) *feed.DB { return newReplica(t).db }

// newWriter returns a writer with n entries (entry(0)…entry(n-1)).
func newWriter(t testing.TB, seed byte, n int) *feed.Writer {
	t.Helper()
	w := newReplica(t).writer(t, testKey(seed))
	appendN(t, w, n)
	return w
}

func appendN(t testing.TB, w *feed.Writer, n int) {
	t.Helper()
	for n > 0 {
		k := min(n, 100)
		batch := make([][]byte, k)
		base := int(w.Length())
		for j := range batch {
			batch[j] = entry(base + j)
		}
		if _, err := w.Append(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

func mustBatch(t testing.TB, f *feed.Feed, req feed.BatchRequest) *feed.Batch {
	t.Helper()
	b, err := f.Batch(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncAll copies everything src holds to dst, in order.
func syncAll(t testing.TB, src, dst *feed.Feed) {
	t.Helper()
	for {
		want := src.Ranges()
		b := mustBatch(t, src, feed.BatchRequest{Want: want, Base: dst.Length()})
		before := dst.Ranges()
		if err := dst.Ingest(b); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(before) == fmt.Sprint(dst.Ranges()) && dst.Length() == src.Length() {
			return
		}
	}
}
