package badgerstore_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
)

// mappedRSS sums the resident memory of this process's mappings of files
// in dir (/proc/self/smaps).
func mappedRSS(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var sum int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && strings.HasPrefix(fields[5], prefix)
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			sum += kb << 10
		}
	}
	return sum
}

// TestMappedBudget: after a large write and a full read, the pages of the
// store's mapped files that stay resident are brought under the budget —
// with the budget off, the value log stays in the RSS — and the data
// reads back intact.
func TestMappedBudget(t *testing.T) {
	const keys, size = 40000, 1000 // 40 MB of values in the value log
	fill := func(budget int64) (*badgerstore.Store, string, func()) {
		dir := t.TempDir()
		s, err := badgerstore.Open(dir, badgerstore.WithMappedBudget(budget))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < keys; i += 2000 {
			var ws []feed.Write
			for j := i; j < i+2000; j++ {
				ws = append(ws, feed.Write{Key: fmt.Appendf(nil, "k%06d", j), Value: bytes.Repeat([]byte{byte(j)}, size)})
			}
			if err := s.Commit(ws); err != nil {
				t.Fatal(err)
			}
		}
		read := func() {
			n := 0
			err := s.Scan([]byte("k"), []byte("l"), func(k, v []byte) error {
				if len(v) != size || v[0] != byte(n) {
					return fmt.Errorf("key %s: value of %d bytes starting %d", k, len(v), v[0])
				}
				n++
				return nil
			})
			if err != nil || n != keys {
				t.Fatalf("read back %d of %d: %v", n, keys, err)
			}
		}
		read()
		return s, dir, read
	}
	off, offDir, _ := fill(0)
	defer off.Close()
	untrimmed := mappedRSS(t, offDir)
	if untrimmed < 30<<20 {
		t.Fatalf("without a budget, only %d MiB of the mapped files are resident: the test shows nothing", untrimmed>>20)
	}
	on, onDir, read := fill(1)
	defer on.Close()
	deadline := time.Now().Add(20 * time.Second)
	for mappedRSS(t, onDir) > 8<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("mapped files still %d MiB resident", mappedRSS(t, onDir)>>20)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("mapped files resident after writing and reading 40 MB: %d MiB without a budget, %d MiB with one", untrimmed>>20, mappedRSS(t, onDir)>>20)
	read()
}
