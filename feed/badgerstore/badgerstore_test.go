package badgerstore_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/feed/storetest"
)

func open(t *testing.T, dir string) feed.Storage {
	t.Helper()
	s, err := badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStorage(t *testing.T) {
	storetest.Run(t, func(t *testing.T) feed.Storage { return open(t, t.TempDir()) })
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, open)
}

// TestBatchCapacity checks the reasoning behind MemTableSize: badger must
// accept the largest commit feed.Storage promises. Badger counts each write
// as len(key)+len(value)+12 when the value is stored inline.
func TestBatchCapacity(t *testing.T) {
	s, err := badgerstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := s.DB()
	if got, need := db.MaxBatchCount(), int64(feed.MaxCommitWrites); got <= need {
		t.Errorf("badger MaxBatchCount = %d, need > %d", got, need)
	}
	if got, need := db.MaxBatchSize(), int64(feed.MaxCommitBytes+12*feed.MaxCommitWrites); got <= need {
		t.Errorf("badger MaxBatchSize = %d, need > %d", got, need)
	}
}

func TestInvalidKeys(t *testing.T) {
	s, err := badgerstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Commit([]feed.Write{{Key: []byte("ok"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{nil, []byte("!badger!x"), make([]byte, badgerstore.MaxKeySize+1)} {
		err := s.Commit([]feed.Write{{Key: []byte("ok"), Value: []byte("2")}, {Key: k, Value: []byte("v")}})
		if !errors.Is(err, badgerstore.ErrInvalidKey) {
			t.Errorf("Commit with key %.10q = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(k); !errors.Is(err, feed.ErrNotFound) {
			t.Errorf("Get(%.10q) = %v, want ErrNotFound", k, err)
		}
	}
	if v, err := s.Get([]byte("ok")); err != nil || string(v) != "1" {
		t.Errorf("after refused commits Get(ok) = %q, %v; want 1", v, err)
	}
	// badger's own metadata must not show up through Get or Scan.
	if _, err := s.Get([]byte("!badger!head")); !errors.Is(err, feed.ErrNotFound) {
		t.Errorf("Get(!badger!head) = %v, want ErrNotFound", err)
	}
	err = s.Scan(nil, nil, func(k, _ []byte) error {
		if bytes.HasPrefix(k, []byte("!badger!")) {
			t.Errorf("Scan returned internal key %q", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := badgerstore.Open(t.TempDir(), badgerstore.WithLogger(l))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Badger logs at info level while opening and closing; it must arrive
	// through slog, at debug level.
	out := buf.String()
	if !strings.Contains(out, "component=badger") || !strings.Contains(out, "level=DEBUG") {
		t.Errorf("expected badger debug logs through slog, got:\n%s", out)
	}
	if strings.Contains(out, "level=INFO") {
		t.Errorf("badger info logs should be demoted to debug, got:\n%s", out)
	}
}
