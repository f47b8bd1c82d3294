package badgerstore_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
)

const damageKeys = 20000

// filled returns a closed store with damageKeys keys whose values go to
// the value log, and a table holding the keys.
func filled(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < damageKeys; i += 1000 {
		var ws []feed.Write
		for j := i; j < i+1000; j++ {
			ws = append(ws, feed.Write{Key: fmt.Appendf(nil, "k%06d", j), Value: bytes.Repeat([]byte{byte(j)}, 200)})
		}
		if err := s.Commit(ws); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newest returns the path of the largest-numbered file of dir with ext
// that holds more than a header.
func newest(t *testing.T, dir, ext string) string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		if fi, _ := e.Info(); strings.HasSuffix(e.Name(), ext) && fi.Size() > 1024 {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no %s file in %s", ext, dir)
	}
	slices.Sort(names)
	return filepath.Join(dir, names[len(names)-1])
}

// fingerprint hashes every file of dir: a refused open must change
// nothing.
func fingerprint(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := make(map[string][32]byte)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() == "LOCK" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(data)
	}
	return out
}

func overwrite(t *testing.T, path string, at float64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	b := bytes.Repeat([]byte{0xA5}, n)
	if _, err := f.WriteAt(b, int64(float64(fi.Size())*at)); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, at float64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[int(float64(len(data))*at)] ^= 0x10
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncateHalf(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// TestOpenDamaged: each damage found by hand on a stopped daemon's store
// makes Open refuse with a DamageError — no panic, no subset of the keys —
// and leaves every file as it was; with and without the record of a clean
// close (a store that crashed before the damage has none).
func TestOpenDamaged(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"sst overwritten", func(t *testing.T, dir string) { overwrite(t, newest(t, dir, ".sst"), 0.5, 64) }},
		{"sst truncated", func(t *testing.T, dir string) { truncateHalf(t, newest(t, dir, ".sst")) }},
		{"vlog truncated", func(t *testing.T, dir string) { truncateHalf(t, newest(t, dir, ".vlog")) }},
		{"vlog overwritten", func(t *testing.T, dir string) { overwrite(t, newest(t, dir, ".vlog"), 0.3, 64) }},
		{"vlog bit flip", func(t *testing.T, dir string) { flip(t, newest(t, dir, ".vlog"), 0.3) }},
		{"MANIFEST deleted", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "MANIFEST")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, clean := range []bool{true, false} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/clean=%v", c.name, clean), func(t *testing.T) {
				dir := filled(t)
				if !clean {
					os.Remove(filepath.Join(dir, badgerstore.CleanCloseFile))
				}
				c.damage(t, dir)
				before := fingerprint(t, dir)
				s, err := badgerstore.Open(dir)
				if err == nil {
					n := 0
					serr := s.Scan([]byte("k"), []byte("l"), func(_, _ []byte) error { n++; return nil })
					s.Close()
					t.Fatalf("Open accepted the damaged store (scan: %d of %d keys, err %v)", n, damageKeys, serr)
				}
				var de *badgerstore.DamageError
				if !errors.As(err, &de) || !errors.Is(err, badgerstore.ErrDamaged) || de.Dir != dir {
					t.Fatalf("Open: %v, want a DamageError for %s", err, dir)
				}
				t.Logf("refused: %v", err)
				if after := fingerprint(t, dir); !mapsEqual(before, after) {
					t.Errorf("the refused Open changed the files:\nbefore %v\nafter  %v", names(before), names(after))
				}
			})
		}
	}
}

// TestOpenClean: a store closed cleanly, reopened and closed again,
// opens with every key; a store whose process stopped without closing
// (the files as they were while open) opens too.
func TestOpenClean(t *testing.T) {
	dir := filled(t)
	for range 2 {
		s, err := badgerstore.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := s.Scan([]byte("k"), []byte("l"), func(_, _ []byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != damageKeys {
			t.Fatalf("%d keys, want %d", n, damageKeys)
		}
		if err := s.Commit([]feed.Write{{Key: []byte("x"), Value: bytes.Repeat([]byte("y"), 100)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of an open store's files is what a crash leaves: the logs
	// preallocated, ending in zeros.
	s, err := badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit([]feed.Write{{Key: []byte("z"), Value: bytes.Repeat([]byte("y"), 100)}}); err != nil {
		t.Fatal(err)
	}
	crashed := t.TempDir()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() == "LOCK" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	c, err := badgerstore.Open(crashed)
	if err != nil {
		t.Fatalf("open after a crash: %v", err)
	}
	defer c.Close()
	if v, err := c.Get([]byte("z")); err != nil || len(v) != 100 {
		t.Fatalf("the write before the crash: %q, %v", v, err)
	}
}

func mapsEqual(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func names(m map[string][32]byte) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s:%x", k, v[:4]))
	}
	slices.Sort(out)
	return out
}
