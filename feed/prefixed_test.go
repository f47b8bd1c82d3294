package feed_test

import (
	"errors"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
)

// Two namespaces of one store see only their own keys, under their own
// names; a commit or a scan in one never reaches the other.
func TestPrefixedApart(t *testing.T) {
	st := memstore.New()
	a := feed.Prefixed(st, []byte("Sa"))
	b := feed.Prefixed(st, []byte("Sb"))
	if err := st.Commit([]feed.Write{{Key: []byte("Sa"), Value: []byte("top")}, {Key: []byte("T"), Value: []byte("top")}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit([]feed.Write{{Key: []byte("k"), Value: []byte("a")}, {Key: []byte("m"), Value: []byte("a2")}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit([]feed.Write{{Key: []byte("k"), Value: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get([]byte("k")); err != nil || string(v) != "a" {
		t.Fatalf("a.Get(k) = %q, %v", v, err)
	}
	if v, err := b.Get([]byte("k")); err != nil || string(v) != "b" {
		t.Fatalf("b.Get(k) = %q, %v", v, err)
	}
	if _, err := b.Get([]byte("m")); !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("b sees a's key m: %v", err)
	}
	var keys []string
	if err := a.Scan(nil, nil, func(k, v []byte) error {
		keys = append(keys, string(k)+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "k=a" || keys[1] != "m=a2" {
		t.Fatalf("a's keys: %q", keys)
	}
	keys = nil
	a.Scan([]byte("l"), []byte("z"), func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	if len(keys) != 1 || keys[0] != "m" {
		t.Fatalf("a's keys in [l, z): %q", keys)
	}
	if err := a.Commit([]feed.Write{{Key: []byte("k"), Delete: true}}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get([]byte("k")); err != nil || string(v) != "b" {
		t.Fatalf("after a deletes k, b.Get(k) = %q, %v", v, err)
	}
	if err := a.Commit([]feed.Write{{Key: nil, Value: []byte("x")}}); !errors.Is(err, feed.ErrInvalidKey) {
		t.Fatalf("empty key: %v", err)
	}
	a.Close()
	if _, err := a.Get([]byte("m")); !errors.Is(err, feed.ErrStorageClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if v, err := b.Get([]byte("k")); err != nil || string(v) != "b" {
		t.Fatalf("closing a closed b: %q, %v", v, err)
	}
}

// A feed ingested into a namespace in the largest batches the sync
// protocol sends, of small entries, fits the store's commit limits with
// the prefix (the feed package leaves room for MaxPrefixSize per write).
func TestPrefixedIngestLimits(t *testing.T) {
	src, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	w, err := src.Writer(testKey(7))
	if err != nil {
		t.Fatal(err)
	}
	entry := make([]byte, 60)
	var batch [][]byte
	for range 30000 {
		batch = append(batch, entry)
		if len(batch) == feed.MaxAppendEntries {
			if _, err := w.Append(t.Context(), batch...); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	if _, err := w.Append(t.Context(), batch...); err != nil {
		t.Fatal(err)
	}
	dst, err := feed.Open(feed.Prefixed(memstore.New(), make([]byte, feed.MaxPrefixSize)))
	if err != nil {
		t.Fatal(err)
	}
	df, err := dst.Feed(w.Key())
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.Batch(feed.BatchRequest{Want: []feed.Range{{Start: 0, End: w.Length()}}, MaxBytes: feed.MaxBatchBytes})
	if err != nil {
		t.Fatal(err)
	}
	if err := df.Ingest(b); err != nil {
		t.Fatalf("ingest into a namespace: %v", err)
	}
	if df.Length() == 0 {
		t.Fatal("nothing ingested")
	}
}
