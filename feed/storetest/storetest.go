// Package storetest is the contract test suite for feed.Storage
// implementations. Every implementation's tests call Run, and durable ones
// also RunReopen.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// Run runs the feed.Storage contract tests. open must return a new, empty
// store each time it is called. Run closes every store it opens (open may
// register its own cleanup too; a second Close is harmless).
func Run(t *testing.T, open func(t *testing.T) feed.Storage) {
	newStore := func(t *testing.T) feed.Storage {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	t.Run("GetMissing", func(t *testing.T) {
		s := newStore(t)
		mustGetMissing(t, s, []byte("nope"))
		mustCommit(t, s, put("a", "1"), put("c", "3"))
		mustGetMissing(t, s, []byte("b"))
		mustGetMissing(t, s, []byte("a\x00"))
		mustGetMissing(t, s, []byte("d"))
	})

	t.Run("PutGet", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("k1", "v1"), put("k2", "v2"))
		mustGet(t, s, []byte("k1"), "v1")
		mustGet(t, s, []byte("k2"), "v2")
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("k", "old"))
		mustCommit(t, s, put("k", "new"))
		mustGet(t, s, []byte("k"), "new")
		if n := len(scanAll(t, s, nil, nil)); n != 1 {
			t.Fatalf("after overwrite: %d keys, want 1", n)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("a", "1"), put("b", "2"), put("c", "3"))
		mustCommit(t, s, del("b"))
		mustGetMissing(t, s, []byte("b"))
		mustGet(t, s, []byte("a"), "1")
		mustGet(t, s, []byte("c"), "3")
		checkScan(t, s, nil, nil, kvs{{"a", "1"}, {"c", "3"}})
		// A deleted key can be written again.
		mustCommit(t, s, put("b", "again"))
		mustGet(t, s, []byte("b"), "again")
	})

	t.Run("DeleteMissing", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, del("ghost"))
		mustCommit(t, s, put("a", "1"), del("ghost"))
		mustGetMissing(t, s, []byte("ghost"))
		mustGet(t, s, []byte("a"), "1")
	})

	t.Run("EmptyValue", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, feed.Write{Key: []byte("nil")}, feed.Write{Key: []byte("empty"), Value: []byte{}})
		for _, k := range []string{"nil", "empty"} {
			v, err := s.Get([]byte(k))
			if err != nil || len(v) != 0 {
				t.Errorf("Get(%q) = %q, %v; want empty value, nil error", k, v, err)
			}
		}
		checkScan(t, s, nil, nil, kvs{{"empty", ""}, {"nil", ""}})
	})

	t.Run("EmptyCommit", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s)
		if err := s.Commit([]feed.Write{}); err != nil {
			t.Fatalf("Commit(empty) = %v", err)
		}
	})

	t.Run("SameKeyInOneCommit", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("gone", "x"))
		mustCommit(t, s,
			put("k", "1"), put("k", "2"), // last put wins
			put("d", "1"), del("d"), // put then delete: absent
			del("gone"), put("gone", "back"), // delete then put: present
		)
		mustGet(t, s, []byte("k"), "2")
		mustGetMissing(t, s, []byte("d"))
		mustGet(t, s, []byte("gone"), "back")
		checkScan(t, s, nil, nil, kvs{{"gone", "back"}, {"k", "2"}})
	})

	t.Run("ScanOrder", func(t *testing.T) {
		s := newStore(t)
		want := orderKeys()
		// Insert in a random order, over several commits.
		shuffled := slices.Clone(want)
		r := rand.New(rand.NewPCG(1, 2))
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for chunk := range slices.Chunk(shuffled, 3) {
			var ws []feed.Write
			for _, k := range chunk {
				ws = append(ws, put(k, "v:"+k))
			}
			mustCommit(t, s, ws...)
		}
		var exp kvs
		for _, k := range want {
			exp = append(exp, kv{k, "v:" + k})
		}
		checkScan(t, s, nil, nil, exp)
		checkScan(t, s, []byte{}, nil, exp)
	})

	t.Run("ScanBounds", func(t *testing.T) {
		s := newStore(t)
		keys := orderKeys()
		var ws []feed.Write
		for _, k := range keys {
			ws = append(ws, put(k, "v:"+k))
		}
		mustCommit(t, s, ws...)

		b := func(s string) []byte { return []byte(s) }
		cases := []struct {
			name       string
			start, end []byte
		}{
			{"all", nil, nil},
			{"from present key", b("a"), nil},
			{"from absent key", b("aa"), nil},
			{"to present key", nil, b("b")},
			{"to absent key", nil, b("a\x01")},
			{"present to present", b("a\x00"), b("ab")},
			{"single key", b("a"), b("a\x00")},
			{"prefix range", b("a"), b("b")},
			{"from 0x00", b("\x00"), b("\x01")},
			{"0xff tail", b("\xff"), nil},
			{"0xff bounded", b("\xff"), b("\xff\xff")},
			{"start == end", b("a"), b("a")},
			{"start > end", b("b"), b("a")},
			{"past the end", b("\xff\xff\xff\xff"), nil},
			{"empty start", b(""), b("a")},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var exp kvs
				for _, k := range keys {
					if bytes.Compare([]byte(k), c.start) >= 0 && (c.end == nil || bytes.Compare([]byte(k), c.end) < 0) {
						exp = append(exp, kv{k, "v:" + k})
					}
				}
				checkScan(t, s, c.start, c.end, exp)
			})
		}
	})

	t.Run("ScanStop", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("a", "1"), put("b", "2"), put("c", "3"), put("d", "4"))
		var seen []string
		err := s.Scan(nil, nil, func(k, _ []byte) error {
			seen = append(seen, string(k))
			if len(seen) == 2 {
				return feed.ErrStopScan
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Scan stopped with ErrStopScan returned %v, want nil", err)
		}
		if !slices.Equal(seen, []string{"a", "b"}) {
			t.Fatalf("Scan visited %q, want [a b]", seen)
		}
	})

	t.Run("ScanError", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("a", "1"), put("b", "2"), put("c", "3"))
		boom := errors.New("boom")
		calls := 0
		err := s.Scan(nil, nil, func(k, _ []byte) error {
			calls++
			if string(k) == "b" {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Scan = %v, want the callback's error", err)
		}
		if calls != 2 {
			t.Fatalf("Scan called fn %d times after an error at the 2nd key, want 2", calls)
		}
	})

	t.Run("ScanEmpty", func(t *testing.T) {
		s := newStore(t)
		checkScan(t, s, nil, nil, nil)
		mustCommit(t, s, put("a", "1"))
		mustCommit(t, s, del("a"))
		checkScan(t, s, nil, nil, nil)
	})

	t.Run("ScanArgsOwnedByCaller", func(t *testing.T) {
		// The interface says values passed to callbacks belong to the
		// caller: scribbling on them must not corrupt the store.
		s := newStore(t)
		mustCommit(t, s, put("a", "1111"), put("b", "2222"))
		err := s.Scan(nil, nil, func(k, v []byte) error {
			for i := range k {
				k[i] = 'X'
			}
			for i := range v {
				v[i] = 'Y'
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		checkScan(t, s, nil, nil, kvs{{"a", "1111"}, {"b", "2222"}})
	})

	t.Run("GetInsideScan", func(t *testing.T) {
		// A callback reading the same store must not deadlock.
		s := newStore(t)
		mustCommit(t, s, put("a", "1"), put("b", "2"))
		err := s.Scan(nil, nil, func(k, v []byte) error {
			got, err := s.Get(k)
			if err != nil || !bytes.Equal(got, v) {
				return fmt.Errorf("Get(%q) inside Scan = %q, %v; want %q", k, got, err, v)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("LargeScan", func(t *testing.T) {
		// Enough keys to cross any internal batching of a Scan.
		s := newStore(t)
		const n = 1000
		var ws []feed.Write
		var exp kvs
		for i := range n {
			k := fmt.Sprintf("k%05d", i)
			ws = append(ws, put(k, k))
			exp = append(exp, kv{k, k})
		}
		mustCommit(t, s, ws...)
		checkScan(t, s, nil, nil, exp)
		checkScan(t, s, []byte("k00100"), []byte("k00900"), exp[100:900])
	})

	t.Run("CommitTooManyBytes", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("keep", "v1"))
		// Exactly one byte over: 4+2 for keep, 1 for x, the rest the value.
		big := make([]byte, feed.MaxCommitBytes+1-len("keep")-len("v2")-len("x"))
		err := s.Commit([]feed.Write{put("keep", "v2"), {Key: []byte("x"), Value: big}})
		if !errors.Is(err, feed.ErrCommitTooLarge) {
			t.Fatalf("Commit(MaxCommitBytes+1) = %v, want ErrCommitTooLarge", err)
		}
		mustGet(t, s, []byte("keep"), "v1")
		mustGetMissing(t, s, []byte("x"))
	})

	t.Run("CommitTooManyWrites", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("keep", "v1"))
		ws := []feed.Write{put("keep", "v2")}
		for i := range feed.MaxCommitWrites {
			ws = append(ws, put(fmt.Sprintf("w%06d", i), "v"))
		}
		err := s.Commit(ws)
		if !errors.Is(err, feed.ErrCommitTooLarge) {
			t.Fatalf("Commit(MaxCommitWrites+1 writes) = %v, want ErrCommitTooLarge", err)
		}
		mustGet(t, s, []byte("keep"), "v1")
		mustGetMissing(t, s, []byte("w000000"))
		if n := len(scanAll(t, s, nil, nil)); n != 1 {
			t.Fatalf("after a refused commit: %d keys, want 1", n)
		}
	})

	t.Run("CommitAtWriteLimit", func(t *testing.T) {
		s := newStore(t)
		ws := make([]feed.Write, feed.MaxCommitWrites)
		for i := range ws {
			ws[i] = put(fmt.Sprintf("w%06d", i), "v")
		}
		mustCommit(t, s, ws...)
		checkCount(t, s, feed.MaxCommitWrites)
		mustGet(t, s, []byte(fmt.Sprintf("w%06d", feed.MaxCommitWrites-1)), "v")
	})

	t.Run("CommitAtBothLimits", func(t *testing.T) {
		// The worst case the interface promises to accept: the maximum
		// number of writes, adding up to exactly the maximum size, with
		// small values (some stores keep small values and large ones
		// differently).
		s := newStore(t)
		per := feed.MaxCommitBytes / feed.MaxCommitWrites
		ws := make([]feed.Write, feed.MaxCommitWrites)
		for i := range ws {
			k := fmt.Appendf(nil, "w%07d", i)
			v := bytes.Repeat([]byte{byte(i)}, per-len(k))
			ws[i] = feed.Write{Key: k, Value: v}
		}
		mustCommit(t, s, ws...)
		checkCount(t, s, feed.MaxCommitWrites)
		last := ws[len(ws)-1]
		mustGet(t, s, last.Key, string(last.Value))
	})

	t.Run("CommitOneLargeValue", func(t *testing.T) {
		s := newStore(t)
		v := make([]byte, feed.MaxCommitBytes-len("big"))
		for i := range v {
			v[i] = byte(i * 7)
		}
		mustCommit(t, s, feed.Write{Key: []byte("big"), Value: v})
		mustGet(t, s, []byte("big"), string(v))
	})

	t.Run("GetResultNotAliased", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("k", "value"))
		v, err := s.Get([]byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		v[0] = 'X'
		mustGet(t, s, []byte("k"), "value")
	})

	t.Run("CommitArgsNotAliased", func(t *testing.T) {
		s := newStore(t)
		k, v := []byte("key"), []byte("value")
		mustCommit(t, s, feed.Write{Key: k, Value: v})
		copy(k, "XXX")
		copy(v, "YYYYY")
		mustGet(t, s, []byte("key"), "value")
		mustGetMissing(t, s, []byte("XXX"))
		checkScan(t, s, nil, nil, kvs{{"key", "value"}})
	})

	t.Run("Concurrent", func(t *testing.T) {
		testConcurrent(t, newStore(t))
	})

	t.Run("Close", func(t *testing.T) {
		s := newStore(t)
		mustCommit(t, s, put("a", "1"))
		if err := s.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if _, err := s.Get([]byte("a")); !errors.Is(err, feed.ErrStorageClosed) {
			t.Errorf("Get after Close = %v, want ErrStorageClosed", err)
		}
		if err := s.Scan(nil, nil, func(_, _ []byte) error { return nil }); !errors.Is(err, feed.ErrStorageClosed) {
			t.Errorf("Scan after Close = %v, want ErrStorageClosed", err)
		}
		if err := s.Commit([]feed.Write{put("b", "2")}); !errors.Is(err, feed.ErrStorageClosed) {
			t.Errorf("Commit after Close = %v, want ErrStorageClosed", err)
		}
		if err := s.Close(); err != nil && !errors.Is(err, feed.ErrStorageClosed) {
			t.Errorf("second Close = %v, want nil or ErrStorageClosed", err)
		}
	})

	t.Run("CloseDuringUse", func(t *testing.T) {
		// Operations racing with Close either work or report
		// ErrStorageClosed; nothing panics or races.
		s := newStore(t)
		mustCommit(t, s, put("a", "1"), put("b", "2"))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 4 {
			wg.Go(func() {
				<-start
				for i := 0; ; i++ {
					var err error
					switch i % 3 {
					case 0:
						_, err = s.Get([]byte("a"))
					case 1:
						err = s.Scan(nil, nil, func(_, _ []byte) error { return nil })
					case 2:
						err = s.Commit([]feed.Write{put(fmt.Sprintf("g%d", g), "x")})
					}
					if errors.Is(err, feed.ErrStorageClosed) {
						return
					}
					if err != nil {
						t.Errorf("operation racing Close: %v", err)
						return
					}
				}
			})
		}
		close(start)
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		wg.Wait()
	})
}

// RunReopen checks that a durable implementation keeps committed data
// across Close and reopening the same directory. open opens the store kept
// in dir; RunReopen closes the stores it opens.
func RunReopen(t *testing.T, open func(t *testing.T, dir string) feed.Storage) {
	t.Run("Reopen", func(t *testing.T) {
		dir := t.TempDir()
		large := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
		want := kvs{}

		s := open(t, dir)
		ws := []feed.Write{del("never")}
		for i := range 100 {
			k := fmt.Sprintf("k%03d", i)
			v := k
			if i%10 == 0 {
				v = k + string(large) // some values big enough for a value log
			}
			ws = append(ws, put(k, v))
		}
		mustCommit(t, s, ws...)
		mustCommit(t, s, del("k001"), put("k002", "rewritten"), put("\x00", "low"), put("\xff\xff", "high"))
		if err := s.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}

		want = append(want, kv{"\x00", "low"})
		for i := range 100 {
			k := fmt.Sprintf("k%03d", i)
			switch {
			case i == 1:
				continue
			case i == 2:
				want = append(want, kv{k, "rewritten"})
			case i%10 == 0:
				want = append(want, kv{k, k + string(large)})
			default:
				want = append(want, kv{k, k})
			}
		}
		want = append(want, kv{"\xff\xff", "high"})

		s = open(t, dir)
		checkScan(t, s, nil, nil, want)
		mustGetMissing(t, s, []byte("k001"))
		mustGetMissing(t, s, []byte("never"))
		mustGet(t, s, []byte("k010"), "k010"+string(large))

		// A second round: data written after a reopen survives too.
		mustCommit(t, s, put("k001", "revived"), del("\x00"))
		if err := s.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		s = open(t, dir)
		defer s.Close()
		mustGet(t, s, []byte("k001"), "revived")
		mustGetMissing(t, s, []byte("\x00"))
		checkCount(t, s, len(want))
	})
}

// testConcurrent runs writers, scanners and readers side by side, then
// checks that every write landed.
func testConcurrent(t *testing.T, s feed.Storage) {
	const (
		writers = 8
		commits = 200
	)
	done := make(chan struct{})
	var readers, wg sync.WaitGroup

	// Scanners: every scan must be strictly ascending, and each writer's
	// keys (committed in order, never deleted) must form a prefix
	// 0..n-1 of its sequence.
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				var prev []byte
				next := make(map[int]int)
				err := s.Scan([]byte("c/"), []byte("c0"), func(k, v []byte) error {
					if prev != nil && bytes.Compare(prev, k) >= 0 {
						return fmt.Errorf("scan order: %q then %q", prev, k)
					}
					prev = append(prev[:0], k...)
					var g, i int
					if _, err := fmt.Sscanf(string(k), "c/%d/%d", &g, &i); err != nil {
						return fmt.Errorf("bad key %q: %v", k, err)
					}
					if i != next[g] {
						return fmt.Errorf("writer %d: scan saw entry %d after %d", g, i, next[g]-1)
					}
					next[g]++
					if string(v) != string(k) {
						return fmt.Errorf("value of %q = %q", k, v)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// A reader polling the counters.
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			for g := range writers {
				_, err := s.Get(fmt.Appendf(nil, "n/%d", g))
				if err != nil && !errors.Is(err, feed.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		}
	})

	for g := range writers {
		wg.Go(func() {
			for i := range commits {
				k := fmt.Sprintf("c/%d/%04d", g, i)
				err := s.Commit([]feed.Write{
					put(k, k),
					put(fmt.Sprintf("n/%d", g), fmt.Sprint(i+1)),
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if t.Failed() {
		return
	}

	if n := len(scanAll(t, s, []byte("c/"), []byte("c0"))); n != writers*commits {
		t.Errorf("found %d entries, want %d", n, writers*commits)
	}
	for g := range writers {
		mustGet(t, s, fmt.Appendf(nil, "n/%d", g), fmt.Sprint(commits))
	}
}

// orderKeys returns keys in bytewise order (Go string order), exercising
// 0x00 and 0xff bytes and keys that are prefixes of each other.
func orderKeys() []string {
	keys := []string{
		"\x00",
		"\x00\x00",
		"\x00\xff",
		"\x01",
		"a",
		"a\x00",
		"a\x00\x00",
		"a\x01",
		"aa",
		"ab",
		"a\xff",
		"b",
		"\x7f",
		"\x80",
		"\xfe\xff",
		"\xff",
		"\xff\x00",
		"\xff\xff",
		"\xff\xff\xff",
	}
	if !slices.IsSorted(keys) {
		panic("storetest: orderKeys out of order")
	}
	return keys
}

type kv struct{ k, v string }

type kvs []kv

func put(k, v string) feed.Write { return feed.Write{Key: []byte(k), Value: []byte(v)} }
func del(k string) feed.Write    { return feed.Write{Key: []byte(k), Delete: true} }

func mustCommit(t *testing.T, s feed.Storage, ws ...feed.Write) {
	t.Helper()
	if err := s.Commit(ws); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func mustGet(t *testing.T, s feed.Storage, key []byte, want string) {
	t.Helper()
	got, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %s, want %s", key, abbrev(got), abbrev([]byte(want)))
	}
}

func mustGetMissing(t *testing.T, s feed.Storage, key []byte) {
	t.Helper()
	v, err := s.Get(key)
	if !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("Get(%q) = %s, %v; want ErrNotFound", key, abbrev(v), err)
	}
}

// scanAll returns the entries in [start, end), copying the callback's
// arguments.
func scanAll(t *testing.T, s feed.Storage, start, end []byte) kvs {
	t.Helper()
	var got kvs
	err := s.Scan(start, end, func(k, v []byte) error {
		got = append(got, kv{string(k), string(v)})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q, %q): %v", start, end, err)
	}
	return got
}

func checkScan(t *testing.T, s feed.Storage, start, end []byte, want kvs) {
	t.Helper()
	got := scanAll(t, s, start, end)
	if !slices.Equal(got, want) {
		t.Fatalf("Scan(%q, %q):\n got %q\nwant %q", start, end, got, want)
	}
}

func checkCount(t *testing.T, s feed.Storage, want int) {
	t.Helper()
	n := 0
	if err := s.Scan(nil, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if n != want {
		t.Fatalf("store holds %d keys, want %d", n, want)
	}
}

// abbrev formats b for failure messages, shortening long values.
func abbrev(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("%q", b)
}
