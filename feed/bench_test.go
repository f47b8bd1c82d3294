package feed_test

// Benchmarks of durable feeds: every write is fsynced (badgerstore on disk,
// SyncWrites on), entries are 1 KiB. Each append and ingest benchmark has two
// sub-benchmarks measured in the same run: "feed", the feed operation, and
// "badger", badger's own synced write of the same entry bytes in the same
// shape (a raw badger opened with badgerstore.Options, same key length, same
// number of entries per transaction). Compare the two with the ratio of their
// entries/s; absolute figures drift between runs on a shared machine.
//
//	go test -run '^$' -bench . -benchtime 2s ./feed/ | go run ./internal/benchtable
//
// fsync latency on a shared disk drifts by several times within seconds, and
// the two sub-benchmarks run one after the other, so one run's ratio can be
// far off. Concatenate a few short runs (each alternates feed and badger) and
// let benchtable take medians:
//
//	for i in 1 2 3 4; do go test -run '^$' -bench . -benchtime 1s ./feed/; done | go run ./internal/benchtable
//
// Setup (stores, the 10k-entry and 65,536-entry source feeds) is outside the
// timers and bounded, so a whole run at -benchtime 3s takes about a minute on
// two cores.

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/feed/memstore"
)

const (
	benchEntrySize = 1 << 10 // bytes per entry
	benchKeySize   = 42      // a feed entry key: "fe", 32-byte feed key, 8-byte index
	benchPoolSize  = 4096    // distinct entry contents, reused round-robin

	concurrentWriters = 64
	ingestEntries     = 10_000
	proofTreeSize     = 65_536
)

// benchPool holds benchPoolSize random (incompressible) 1 KiB entries; entry
// i of every benchmark feed is benchPool[i%benchPoolSize].
var benchPool = sync.OnceValue(func() [][]byte {
	rng := rand.NewChaCha8([32]byte{'m', 'y', 'c', 'e', 'l'})
	buf := make([]byte, benchPoolSize*benchEntrySize)
	_, _ = rng.Read(buf)
	pool := make([][]byte, benchPoolSize)
	for i := range pool {
		pool[i] = buf[i*benchEntrySize : (i+1)*benchEntrySize : (i+1)*benchEntrySize]
	}
	return pool
})

func benchEntry(i int) []byte { return benchPool()[i%benchPoolSize] }

// benchEntries returns entries [start, start+n).
func benchEntries(start, n int) [][]byte {
	out := make([][]byte, n)
	for j := range out {
		out[j] = benchEntry(start + j)
	}
	return out
}

// reportRate reports entries/s and MB/s (of entry bytes, 10^6 bytes) over
// the benchmark's timed duration.
func reportRate(b *testing.B, entries int) {
	s := b.Elapsed().Seconds()
	if s <= 0 {
		return
	}
	b.ReportMetric(float64(entries)/s, "entries/s")
	b.ReportMetric(float64(entries)*benchEntrySize/1e6/s, "MB/s")
}

// openStore opens a badgerstore in a fresh directory under dir (b.TempDir()
// when dir is empty) and returns it with a function that closes it and
// removes its files.
func openStore(b *testing.B, dir string) (*badgerstore.Store, func()) {
	b.Helper()
	dir = freshDir(b, dir)
	st, err := badgerstore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	done := func() {
		once.Do(func() {
			if err := st.Close(); err != nil {
				b.Error(err)
			}
			_ = os.RemoveAll(dir)
		})
	}
	b.Cleanup(done)
	return st, done
}

// openBadger opens a raw badger, tuned as badgerstore tunes it, in a fresh
// directory; see openStore.
func openBadger(b *testing.B, dir string) (*badger.DB, func()) {
	b.Helper()
	dir = freshDir(b, dir)
	db, err := badger.Open(badgerstore.Options(dir))
	if err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	done := func() {
		once.Do(func() {
			if err := db.Close(); err != nil {
				b.Error(err)
			}
			_ = os.RemoveAll(dir)
		})
	}
	b.Cleanup(done)
	return db, done
}

var dirSeq atomic.Int64

func freshDir(b *testing.B, dir string) string {
	if dir == "" {
		dir = b.TempDir()
	}
	dir = filepath.Join(dir, strconv.FormatInt(dirSeq.Add(1), 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

// openWriter opens a DB on a fresh badgerstore and returns its writer.
func openWriter(b *testing.B, seed byte) *feed.Writer {
	b.Helper()
	st, closeStore := openStore(b, "")
	db, err := feed.Open(st)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = db.Close()
		closeStore()
	})
	w, err := db.Writer(testKey(seed))
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// badgerKey returns the raw-badger counterpart of entry key i: same length
// and layout as a feed entry key, so keys sort (and append) the same way.
func badgerKey(i uint64) []byte {
	k := make([]byte, 2, benchKeySize)
	k[0], k[1] = 'f', 'e'
	k = append(k, bytes.Repeat([]byte{0xb5}, feed.KeySize)...)
	return binary.BigEndian.AppendUint64(k, i)
}

// badgerWrite commits entries [start, start+n) to db in one synced
// transaction.
func badgerWrite(b *testing.B, db *badger.DB, start, n int) {
	txn := db.NewTransaction(true)
	defer txn.Discard()
	for i := start; i < start+n; i++ {
		if err := txn.Set(badgerKey(uint64(i)), benchEntry(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		b.Fatal(err)
	}
}

// benchAppend runs appends of perOp entries, one per op, sequentially.
func benchAppend(b *testing.B, perOp int) {
	b.Run("feed", func(b *testing.B) {
		w := openWriter(b, 1)
		ctx := context.Background()
		batch := make([][]byte, perOp)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for j := range batch {
				batch[j] = benchEntry(i*perOp + j)
			}
			if _, err := w.Append(ctx, batch...); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportRate(b, b.N*perOp)
	})
	b.Run("badger", func(b *testing.B) {
		db, _ := openBadger(b, "")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			badgerWrite(b, db, i*perOp, perOp)
		}
		b.StopTimer()
		reportRate(b, b.N*perOp)
	})
}

// BenchmarkAppendSingle: one Append of one entry per op.
func BenchmarkAppendSingle(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppendBatch100: one Append of 100 entries per op.
func BenchmarkAppendBatch100(b *testing.B) { benchAppend(b, 100) }

// runConcurrent calls op(i) for i in [0, n) from concurrentWriters
// goroutines.
func runConcurrent(b *testing.B, n int, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrentWriters)
	for g := 0; g < concurrentWriters; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkAppendConcurrent64: 64 goroutines each appending one entry at a
// time; the feed commits what is waiting together (group commit), badger
// batches concurrent transactions in its write loop. b.N appends in total.
func BenchmarkAppendConcurrent64(b *testing.B) {
	b.Run("feed", func(b *testing.B) {
		w := openWriter(b, 2)
		ctx := context.Background()
		b.ResetTimer()
		runConcurrent(b, b.N, func(i int) error {
			_, err := w.Append(ctx, benchEntry(i))
			return err
		})
		b.StopTimer()
		reportRate(b, b.N)
	})
	b.Run("badger", func(b *testing.B) {
		db, _ := openBadger(b, "")
		b.ResetTimer()
		runConcurrent(b, b.N, func(i int) error {
			return db.Update(func(txn *badger.Txn) error {
				return txn.Set(badgerKey(uint64(i)), benchEntry(i))
			})
		})
		b.StopTimer()
		reportRate(b, b.N)
	})
}

// commitRecorder is a Storage that records, per commit, how many entry
// writes it carried: the chunking Feed.Ingest uses, which the badger
// baseline of BenchmarkIngest10k mirrors.
type commitRecorder struct {
	feed.Storage
	entryWrites []int
}

func (r *commitRecorder) Commit(writes []feed.Write) error {
	n := 0
	for _, w := range writes {
		if len(w.Key) == benchKeySize && w.Key[0] == 'f' && w.Key[1] == 'e' && !w.Delete {
			n++
		}
	}
	r.entryWrites = append(r.entryWrites, n)
	return r.Storage.Commit(writes)
}

// ingestBatches returns the batches that carry a 10k-entry feed to a new
// replica, and the number of entries each storage commit of their ingest
// writes.
func ingestBatches(b *testing.B) (key feed.PublicKey, batches []*feed.Batch, chunks []int) {
	w := openWriter(b, 3)
	ctx := context.Background()
	for i := 0; i < ingestEntries; i += 1000 {
		if _, err := w.Append(ctx, benchEntries(i, 1000)...); err != nil {
			b.Fatal(err)
		}
	}
	var base uint64
	for next := uint64(0); next < ingestEntries; {
		bt, err := w.Batch(feed.BatchRequest{
			Want:     []feed.Range{{Start: next, End: ingestEntries}},
			Base:     base,
			MaxBytes: 16 << 20, // Batch caps it at MaxBatchBytes/2
		})
		if err != nil {
			b.Fatal(err)
		}
		if len(bt.Runs) == 0 {
			b.Fatalf("batch from %d has no runs", next)
		}
		batches = append(batches, bt)
		next = bt.Runs[len(bt.Runs)-1].End()
		base = bt.Head.Length
	}

	// Ingest once into memory, checking the batches and recording the
	// commits.
	rec := &commitRecorder{Storage: memstore.New()}
	db, err := feed.Open(rec)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r, err := db.Feed(w.Key())
	if err != nil {
		b.Fatal(err)
	}
	for _, bt := range batches {
		if err := r.Ingest(bt); err != nil {
			b.Fatal(err)
		}
	}
	if r.Length() != ingestEntries || len(r.Missing()) != 0 {
		b.Fatalf("replica has length %d, missing %v", r.Length(), r.Missing())
	}
	total := 0
	for _, n := range rec.entryWrites {
		if n > 0 {
			chunks = append(chunks, n)
			total += n
		}
	}
	if total != ingestEntries {
		b.Fatalf("ingest wrote %d entries, want %d", total, ingestEntries)
	}
	return w.Key(), batches, chunks
}

// BenchmarkIngest10k: each op ingests a 10,000-entry feed (the batches that
// carry it, built once) into a fresh replica store. The badger baseline
// writes the same entries into a fresh badger in the same transactions.
func BenchmarkIngest10k(b *testing.B) {
	key, batches, chunks := ingestBatches(b)
	b.Logf("%d batches, %d storage commits of %v entries", len(batches), len(chunks), chunks)

	b.Run("feed", func(b *testing.B) {
		dir := b.TempDir()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			st, closeStore := openStore(b, dir)
			db, err := feed.Open(st)
			if err != nil {
				b.Fatal(err)
			}
			r, err := db.Feed(key)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for _, bt := range batches {
				if err := r.Ingest(bt); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
			closeStore()
			b.StartTimer()
		}
		b.StopTimer()
		reportRate(b, b.N*ingestEntries)
	})
	b.Run("badger", func(b *testing.B) {
		dir := b.TempDir()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			db, closeDB := openBadger(b, dir)
			b.StartTimer()
			start := 0
			for _, n := range chunks {
				badgerWrite(b, db, start, n)
				start += n
			}
			b.StopTimer()
			closeDB()
			b.StartTimer()
		}
		b.StopTimer()
		reportRate(b, b.N*ingestEntries)
	})
}

// BenchmarkInclusionProof makes ("make") and checks ("verify") inclusion
// proofs of random entries of a 65,536-entry feed.
func BenchmarkInclusionProof(b *testing.B) {
	w := openWriter(b, 4)
	ctx := context.Background()
	per := min(feed.MaxAppendEntries, feed.MaxAppendBytes/benchEntrySize)
	for i := 0; i < proofTreeSize; i += per {
		if _, err := w.Append(ctx, benchEntries(i, min(per, proofTreeSize-i))...); err != nil {
			b.Fatal(err)
		}
	}
	head, _ := w.Head()
	if head.Length != proofTreeSize {
		b.Fatalf("feed length %d", head.Length)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const nIdx = 1024
	idx := make([]uint64, nIdx)
	for i := range idx {
		idx[i] = rng.Uint64N(proofTreeSize)
	}

	b.Run("make", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := w.InclusionProof(idx[i%nIdx], proofTreeSize); err != nil {
				b.Fatal(err)
			}
		}
	})
	proofs := make([][][]byte, nIdx)
	for i, x := range idx {
		p, err := w.InclusionProof(x, proofTreeSize)
		if err != nil {
			b.Fatal(err)
		}
		proofs[i] = p
	}
	b.Run("verify", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			j := i % nIdx
			if err := feed.VerifyInclusion(idx[j], proofTreeSize, benchEntry(int(idx[j])), proofs[j], head.Root); err != nil {
				b.Fatal(err)
			}
		}
	})
}
