package feed_test

// Crash test of the durable writer (see TESTING.md, "Crash tests").
//
// TestCrashAppend runs a child process (this test binary, re-executed with
// -test.run=^TestCrashHelperWriter$) that appends to one feed in a badger
// store from 8 goroutines and reports every Append that returned success on
// stdout. The parent SIGKILLs it at a random moment, reopens the store as the
// writer and checks:
//
//   - every acknowledged entry is stored at its acknowledged index with its
//     acknowledged content, in this round and every earlier one;
//   - entries stored in earlier rounds never change, and the tree only grows
//     (the new head is consistent with the previous one);
//   - the head is signed and covers every stored entry: Ranges is [0, Length)
//     and the root recomputed from all entries equals the head's root;
//   - the stored entries are exactly what the children appended: each batch
//     whole and contiguous (commits are atomic), each goroutine's batches in
//     order without gaps, at most one batch per goroutine stored but not
//     acknowledged (the one whose acknowledgement the kill cut off);
//   - inclusion and consistency proofs for random sizes verify against roots
//     computed independently from the entries.
//
// All rounds share one data directory, so state accumulates across crashes as
// on a real device. In about one round in four the parent does not close the
// feed DB after checking (only the store), as if it had crashed right after
// reopening: the next child then has to sign the unsigned tail itself.
//
// The test takes tens of seconds, so it is skipped with -short; make test
// runs it without -short. MYCEL_CRASH_SEED replays a seed (the seed of every
// run is logged), MYCEL_CRASH_ROUNDS changes the number of rounds (default
// 50).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
)

const (
	crashEnvHelper = "MYCEL_CRASH_HELPER" // "1" in the child
	crashEnvDir    = "MYCEL_CRASH_DIR"    // the child's data directory
	crashEnvRound  = "MYCEL_CRASH_ROUND"  // the round number, written into entries
	crashEnvSeed   = "MYCEL_CRASH_SEED"   // the seed (parent: override; child: given)
	crashEnvRounds = "MYCEL_CRASH_ROUNDS" // number of rounds (parent)

	crashWriters       = 8  // appending goroutines in the child
	crashMaxBatch      = 5  // entries per Append: 1..crashMaxBatch
	crashInclusions    = 50 // inclusion proofs checked per round
	crashConsistencies = 20 // consistency proofs checked per round
)

// crashKey is the writer key of the crashed feed, the same in every process.
func crashKey() ed25519.PrivateKey {
	s := sha256.Sum256([]byte("mycel feed crash test writer"))
	return ed25519.NewKeyFromSeed(s[:])
}

// crashEntry is the self-describing header every appended entry starts with:
// "r<round>-g<goroutine>-n<batch>-k<k>/<count>-pid<pid>|" then padding.
type crashEntry struct {
	round, g, n, k, count, pid int
}

func (e crashEntry) header() string {
	return fmt.Sprintf("r%d-g%d-n%d-k%d/%d-pid%d|", e.round, e.g, e.n, e.k, e.count, e.pid)
}

func parseCrashEntry(b []byte) (crashEntry, error) {
	var e crashEntry
	h, _, ok := bytes.Cut(b, []byte("|"))
	if !ok {
		return e, fmt.Errorf("no header in %q", crashTrunc(b))
	}
	if _, err := fmt.Sscanf(string(h), "r%d-g%d-n%d-k%d/%d-pid%d", &e.round, &e.g, &e.n, &e.k, &e.count, &e.pid); err != nil {
		return e, fmt.Errorf("header %q: %v", h, err)
	}
	if string(h)+"|" != e.header() || e.g < 0 || e.g >= crashWriters || e.count < 1 || e.count > crashMaxBatch || e.k < 0 || e.k >= e.count {
		return e, fmt.Errorf("bad header %q", h)
	}
	return e, nil
}

func crashShort(h feed.Hash) string { return hex.EncodeToString(h[:8]) }

func crashTrunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// makeCrashEntry builds an entry: header, then padding whose length is drawn
// so that badger keeps some entries inline in its LSM tree (values under its
// 64-byte value threshold: a bare header) and writes the rest to its value
// log, a quarter of them large (256 bytes to 2 KiB).
func makeCrashEntry(rng *rand.Rand, e crashEntry) []byte {
	var pad int
	switch rng.IntN(4) {
	case 0:
		pad = 256 + rng.IntN(2048-256)
	case 1:
		pad = 0
	default:
		pad = rng.IntN(160)
	}
	b := []byte(e.header())
	for range pad {
		b = append(b, byte('a'+rng.IntN(26)))
	}
	return b
}

// TestCrashHelperWriter is the child process of TestCrashAppend; run on its
// own it does nothing. It opens the store, prints "ready <length>", then
// appends from crashWriters goroutines until it is killed, printing
// "ACK <first> <count> <sha256,...>" after every Append that succeeded.
func TestCrashHelperWriter(t *testing.T) {
	if os.Getenv(crashEnvHelper) != "1" {
		return
	}
	// The parent kills us within a second; if it does not (it died), stop.
	time.AfterFunc(60*time.Second, func() { crashChildFail("not killed within 60s") })

	dir := os.Getenv(crashEnvDir)
	round, err := strconv.Atoi(os.Getenv(crashEnvRound))
	if err != nil {
		crashChildFail("round: %v", err)
	}
	seed, err := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	if err != nil {
		crashChildFail("seed: %v", err)
	}
	st, err := badgerstore.Open(dir)
	if err != nil {
		crashChildFail("open store: %v", err)
	}
	db, err := feed.Open(st)
	if err != nil {
		crashChildFail("open db: %v", err)
	}
	w, err := db.Writer(crashKey())
	if err != nil {
		crashChildFail("writer: %v", err)
	}
	// No db.Close and no st.Close: this process only ever ends by SIGKILL.
	crashPrint(fmt.Sprintf("ready %d\n", w.Length()))

	pid := os.Getpid()
	for g := range crashWriters {
		go func() {
			rng := rand.New(rand.NewPCG(seed, uint64(round)<<8|uint64(g)))
			for n := 0; ; n++ {
				count := 1 + rng.IntN(crashMaxBatch)
				batch := make([][]byte, count)
				for k := range batch {
					batch[k] = makeCrashEntry(rng, crashEntry{round, g, n, k, count, pid})
				}
				first, err := w.Append(context.Background(), batch...)
				if err != nil {
					crashChildFail("append: %v", err)
				}
				var line strings.Builder
				fmt.Fprintf(&line, "ACK %d %d ", first, count)
				for k, e := range batch {
					if k > 0 {
						line.WriteByte(',')
					}
					sum := sha256.Sum256(e)
					line.WriteString(hex.EncodeToString(sum[:]))
				}
				line.WriteByte('\n')
				crashPrint(line.String())
			}
		}()
	}
	select {}
}

var crashStdoutMu sync.Mutex

// crashPrint writes one whole line to stdout with a single Write (lines are
// far below PIPE_BUF, so a line is either in the pipe whole or not at all).
func crashPrint(s string) {
	crashStdoutMu.Lock()
	defer crashStdoutMu.Unlock()
	if _, err := os.Stdout.Write([]byte(s)); err != nil {
		os.Exit(5) // the parent is gone
	}
}

func crashChildFail(format string, args ...any) {
	crashPrint("FAIL " + fmt.Sprintf(format, args...) + "\n")
	os.Exit(3)
}

// crashChild is what one child run produced.
type crashChild struct {
	pid   int
	lines []string // complete lines of stdout, without "\n"; the first is "ready <length>"
	cut   bool     // the kill cut a line in the middle (ignored)
}

// runCrashChild starts a child on dir, waits for it to be ready, kills it
// with SIGKILL delay later and returns its complete output lines.
func runCrashChild(t *testing.T, dir string, round int, seed uint64, delay time.Duration) crashChild {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperWriter$")
	cmd.Env = append(os.Environ(),
		crashEnvHelper+"=1",
		crashEnvDir+"="+dir,
		crashEnvRound+"="+strconv.Itoa(round),
		crashEnvSeed+"="+strconv.FormatUint(seed, 10),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	res := crashChild{pid: cmd.Process.Pid}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				res.cut = line != ""
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if len(res.lines) == 0 && strings.HasPrefix(line, "ready ") {
				close(ready)
			}
			res.lines = append(res.lines, line)
		}
	}()
	describe := func() string {
		var fails []string
		for _, l := range res.lines {
			if !strings.HasPrefix(l, "ACK ") {
				fails = append(fails, l)
			}
		}
		return fmt.Sprintf("child stdout (other than ACKs): %q\nchild stderr:\n%s", fails, stderr.String())
	}

	select {
	case <-ready:
	case <-done:
		err := cmd.Wait()
		t.Fatalf("round %d: child exited before it was ready: %v\n%s", round, err, describe())
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		t.Fatalf("round %d: child not ready after 2 minutes\n%s", round, describe())
	}
	select {
	case <-time.After(delay):
	case <-done: // it died on its own: reported below
	}
	_ = cmd.Process.Kill()
	<-done
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child ended by %v, not by our SIGKILL\n%s", round, err, describe())
	}
	return res
}

// crashState is what the parent knows across rounds.
type crashState struct {
	pub     feed.PublicKey
	acked   map[uint64][32]byte // index → sha256 of every acknowledged entry
	hashes  [][32]byte          // sha256 of every entry seen stored so far
	root    feed.Hash           // root of those entries
	repairs atomic.Int64        // reopens that signed a head for an unsigned tail
}

// crashCountHandler counts the writer's "signed head for entries stored
// before a crash" messages.
type crashCountHandler struct{ n *atomic.Int64 }

func (h crashCountHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h crashCountHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "before a crash") {
		h.n.Add(1)
	}
	return nil
}
func (h crashCountHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h crashCountHandler) WithGroup(string) slog.Handler      { return h }

// recordAcks adds the child's acknowledgements to s.acked and returns how
// many entries they cover.
func (s *crashState) recordAcks(t *testing.T, round int, c crashChild) int {
	var n int
	for _, line := range c.lines {
		if strings.HasPrefix(line, "FAIL ") {
			t.Fatalf("round %d: child reported: %s", round, line)
		}
		if !strings.HasPrefix(line, "ACK ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("round %d: malformed ACK line %q", round, line)
		}
		first, err1 := strconv.ParseUint(f[1], 10, 64)
		count, err2 := strconv.Atoi(f[2])
		sums := strings.Split(f[3], ",")
		if err1 != nil || err2 != nil || count != len(sums) {
			t.Fatalf("round %d: malformed ACK line %q", round, line)
		}
		for k, h := range sums {
			var sum [32]byte
			if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
				t.Fatalf("round %d: malformed hash in ACK line %q", round, line)
			} else {
				copy(sum[:], b)
			}
			i := first + uint64(k)
			if _, dup := s.acked[i]; dup {
				t.Errorf("round %d: index %d acknowledged twice (second time by %q)", round, i, line)
			}
			s.acked[i] = sum
			n++
		}
	}
	return n
}

// check reopens the store as the writer and checks every invariant. It
// closes the DB unless keepOpen, and always the store. It returns the length.
func (s *crashState) check(t *testing.T, round int, dir string, c crashChild, rng *rand.Rand, keepOpen bool) uint64 {
	st, err := badgerstore.Open(dir)
	if err != nil {
		// Keep the store for a look: t.TempDir goes with the test.
		kept, _ := os.MkdirTemp("", "mycel-crash-store-")
		exec.Command("cp", "-a", dir, kept).Run()
		t.Fatalf("round %d: reopen store: %v (the store is kept in %s)", round, err, kept)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("round %d: close store: %v", round, err)
		}
	}()
	db, err := feed.Open(st, feed.WithLogger(slog.New(crashCountHandler{&s.repairs})))
	if err != nil {
		t.Fatalf("round %d: open db: %v", round, err)
	}
	if !keepOpen {
		defer func() {
			if err := db.Close(); err != nil {
				t.Errorf("round %d: close db: %v", round, err)
			}
		}()
	}
	w, err := db.Writer(crashKey())
	if err != nil {
		t.Fatalf("round %d: open writer after crash: %v", round, err)
	}

	// The child saw the state the previous round left.
	prevLen := uint64(len(s.hashes))
	if got, want := c.lines[0], fmt.Sprintf("ready %d", prevLen); got != want {
		t.Errorf("round %d: child started with %q, want %q", round, got, want)
	}

	// The head: signed, covering everything held.
	h, ok := w.Head()
	n := h.Length
	switch {
	case !ok && (len(s.acked) > 0 || prevLen > 0):
		t.Fatalf("round %d: no head after reopen, %d entries acknowledged", round, len(s.acked))
	case ok:
		if err := h.Verify(); err != nil {
			t.Fatalf("round %d: head does not verify: %v", round, err)
		}
		if h.Key != s.pub {
			t.Fatalf("round %d: head of key %x", round, h.Key[:8])
		}
	}
	if n < prevLen {
		t.Fatalf("round %d: feed shrank from %d to %d entries", round, prevLen, n)
	}
	if w.Length() != n {
		t.Errorf("round %d: Length %d, head length %d", round, w.Length(), n)
	}
	var want []feed.Range
	if n > 0 {
		want = []feed.Range{{Start: 0, End: n}}
	}
	if got := w.Ranges(); !slices.Equal(got, want) {
		t.Errorf("round %d: Ranges %v, want %v", round, got, want)
	}
	if m := w.Missing(); len(m) != 0 {
		t.Errorf("round %d: Missing %v", round, m)
	}
	if _, err := w.Get(n); err == nil {
		t.Errorf("round %d: Get(%d) beyond the head succeeded", round, n)
	}

	// Every stored entry is covered by the head: recompute the root.
	entries, err := w.GetRange(0, n)
	if err != nil {
		t.Fatalf("round %d: GetRange(0, %d): %v", round, n, err)
	}
	if r := feed.Root(entries); r != h.Root {
		t.Fatalf("round %d: root of the %d stored entries %x, head root %x", round, n, r[:8], h.Root[:8])
	}
	if r, err := w.RootAt(n); err != nil || r != h.Root {
		t.Errorf("round %d: RootAt(%d) = %x, %v; head root %x", round, n, r[:8], err, h.Root[:8])
	}
	sums := make([][32]byte, n)
	for i, e := range entries {
		sums[i] = sha256.Sum256(e)
	}

	// Nothing stored earlier changed; every acknowledged entry is there.
	for i := range prevLen {
		if sums[i] != s.hashes[i] {
			t.Fatalf("round %d: entry %d changed since the previous round: now %q", round, i, crashTrunc(entries[i]))
		}
	}
	var missing int
	for i, sum := range s.acked {
		switch {
		case i >= n:
			missing++
			if missing <= 5 {
				t.Errorf("round %d: acknowledged entry %d missing (length %d)", round, i, n)
			}
		case sums[i] != sum:
			t.Errorf("round %d: entry %d is %q, not the acknowledged one", round, i, crashTrunc(entries[i]))
		}
	}
	if missing > 0 {
		t.Fatalf("round %d: %d acknowledged entries missing", round, missing)
	}

	// The new entries are exactly what this round's child appended.
	s.checkNewEntries(t, round, c, entries, prevLen)

	// Proofs, against roots computed here from the entries.
	type pair struct{ a, b uint64 }
	var incl, cons []pair
	if n > 0 {
		incl = append(incl, pair{0, n}, pair{n - 1, n}, pair{0, 1})
		for len(incl) < crashInclusions {
			sz := 1 + rng.Uint64N(n)
			incl = append(incl, pair{rng.Uint64N(sz), sz})
		}
		cons = append(cons, pair{prevLen, n}, pair{0, n}, pair{n, n})
		for len(cons) < crashConsistencies {
			s2 := 1 + rng.Uint64N(n)
			cons = append(cons, pair{rng.Uint64N(s2 + 1), s2})
		}
	}
	var sizes []uint64
	for _, p := range incl {
		sizes = append(sizes, p.b)
	}
	for _, p := range cons {
		sizes = append(sizes, p.a, p.b)
	}
	roots := crashPrefixRoots(entries, sizes)
	if n > 0 && roots[n] != h.Root {
		t.Fatalf("round %d: independent root %x, head root %x", round, crashShort(roots[n]), h.Root[:8])
	}
	if roots[prevLen] != s.root {
		t.Fatalf("round %d: the first %d entries have root %x, the previous round's head %x", round, prevLen, crashShort(roots[prevLen]), s.root[:8])
	}
	for _, p := range incl {
		i, sz := p.a, p.b
		if r, err := w.RootAt(sz); err != nil || r != roots[sz] {
			t.Errorf("round %d: RootAt(%d) = %x, %v; want %x", round, sz, r[:8], err, crashShort(roots[sz]))
			continue
		}
		pr, err := w.InclusionProof(i, sz)
		if err != nil {
			t.Errorf("round %d: InclusionProof(%d, %d): %v", round, i, sz, err)
			continue
		}
		if err := feed.VerifyInclusion(i, sz, entries[i], pr, roots[sz]); err != nil {
			t.Errorf("round %d: inclusion of %d in %d: %v", round, i, sz, err)
		}
		if i == 0 && sz == n {
			// The verifier is not vacuous: another entry does not verify.
			if err := feed.VerifyInclusion(i, sz, append([]byte("x"), entries[i]...), pr, roots[sz]); err == nil {
				t.Errorf("round %d: inclusion proof verified a wrong entry", round)
			}
		}
	}
	for _, p := range cons {
		pr, err := w.ConsistencyProof(p.a, p.b)
		if err != nil {
			t.Errorf("round %d: ConsistencyProof(%d, %d): %v", round, p.a, p.b, err)
			continue
		}
		if err := feed.VerifyConsistency(p.a, p.b, pr, roots[p.a], roots[p.b]); err != nil {
			t.Errorf("round %d: consistency %d→%d: %v", round, p.a, p.b, err)
		}
	}
	// A few single reads.
	for range min(n, 5) {
		i := rng.Uint64N(n)
		if e, err := w.Get(i); err != nil || !bytes.Equal(e, entries[i]) {
			t.Errorf("round %d: Get(%d) = %q, %v; GetRange had %q", round, i, crashTrunc(e), err, crashTrunc(entries[i]))
		}
	}

	s.hashes, s.root = sums, h.Root
	if n == 0 {
		s.root = feed.Root(nil)
	}
	return n
}

// checkNewEntries checks the entries [from, len(entries)): all this round's
// child's, each batch whole and contiguous, each goroutine's batches
// numbered 0, 1, 2, … in order, and at most the last batch of each
// goroutine not acknowledged.
func (s *crashState) checkNewEntries(t *testing.T, round int, c crashChild, entries [][]byte, from uint64) {
	type gstate struct {
		next    int  // next batch number expected
		open    bool // inside a batch
		cur     crashEntry
		last    uint64 // index of the previous entry of the open batch
		unacked []int  // batch numbers stored but not acknowledged
	}
	var gs [crashWriters]gstate
	for i := from; i < uint64(len(entries)); i++ {
		e, err := parseCrashEntry(entries[i])
		if err != nil {
			t.Fatalf("round %d: entry %d: %v", round, i, err)
		}
		if e.round != round || e.pid != c.pid {
			t.Fatalf("round %d: entry %d is %q, from another round or process (child pid %d)", round, i, crashTrunc(entries[i]), c.pid)
		}
		g := &gs[e.g]
		if g.open {
			if e.n != g.cur.n || e.count != g.cur.count || e.k != g.cur.k+1 || i != g.last+1 {
				t.Fatalf("round %d: entry %d is %q, inside batch %q that started earlier", round, i, crashTrunc(entries[i]), g.cur.header())
			}
		} else {
			if e.n != g.next || e.k != 0 {
				t.Fatalf("round %d: entry %d is %q, want the start of batch n%d of g%d", round, i, crashTrunc(entries[i]), g.next, e.g)
			}
			if _, ok := s.acked[i]; !ok {
				g.unacked = append(g.unacked, e.n)
			}
		}
		g.cur, g.last = e, i
		g.open = e.k < e.count-1
		if !g.open {
			g.next++
		}
	}
	for gi, g := range gs {
		if g.open {
			t.Errorf("round %d: batch %q stored in part (%d of %d entries)", round, g.cur.header(), g.cur.k+1, g.cur.count)
		}
		if len(g.unacked) > 1 || len(g.unacked) == 1 && g.unacked[0] != g.next-1 {
			t.Errorf("round %d: goroutine %d has unacknowledged batches %v stored of %d; only the last may be", round, gi, g.unacked, g.next)
		}
	}
}

// crashPrefixRoots computes the RFC 6962 roots of the given prefixes of
// entries in one pass, with the merkle library directly (not the feed
// package).
func crashPrefixRoots(entries [][]byte, sizes []uint64) map[uint64]feed.Hash {
	sizes = append(slices.Clone(sizes), 0, uint64(len(entries)))
	slices.Sort(sizes)
	out := make(map[uint64]feed.Hash, len(sizes))
	fact := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := fact.NewEmptyRange(0)
	j := 0
	for ; j < len(sizes) && sizes[j] == 0; j++ {
		out[0] = sha256.Sum256(nil)
	}
	for i, e := range entries {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
			panic(err)
		}
		for ; j < len(sizes) && sizes[j] == uint64(i+1); j++ {
			root, err := r.GetRootHash(nil)
			if err != nil {
				panic(err)
			}
			out[sizes[j]] = feed.Hash(root)
		}
	}
	return out
}

func TestCrashAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test (50 SIGKILLed child processes) skipped with -short; make test runs it")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashEnvSeed); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s: %v", crashEnvSeed, err)
		}
	}
	rounds := 50
	if v := os.Getenv(crashEnvRounds); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("%s=%q: want a positive number", crashEnvRounds, v)
		}
	}
	t.Logf("seed %d (replay with %s=%d), %d rounds", seed, crashEnvSeed, seed, rounds)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d (replay with %s=%d)", seed, crashEnvSeed, seed)
		}
	})

	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	s := &crashState{acked: make(map[uint64][32]byte), root: feed.Root(nil)}
	copy(s.pub[:], crashKey().Public().(ed25519.PublicKey))

	start := time.Now()
	var totalAcked, cut, keptOpen int
	var length uint64
	for round := range rounds {
		delay := time.Duration(20+rng.IntN(381)) * time.Millisecond
		// Now and then leave the DB unclosed, as if the parent died right
		// after reopening; never after the last round.
		keepOpen := round < rounds-1 && rng.IntN(4) == 0
		c := runCrashChild(t, dir, round, seed, delay)
		acked := s.recordAcks(t, round, c)
		totalAcked += acked
		if c.cut {
			cut++
		}
		if keepOpen {
			keptOpen++
		}
		prev := length
		length = s.check(t, round, dir, c, rng, keepOpen)
		note := ""
		if keepOpen {
			note = " (db left unclosed)"
		}
		t.Logf("round %2d: killed %3dms after ready: %4d entries acknowledged, length %6d → %6d%s",
			round, delay.Milliseconds(), acked, prev, length, note)
		if t.Failed() {
			t.FailNow()
		}
	}
	if totalAcked == 0 {
		t.Fatalf("no append was acknowledged in %d rounds", rounds)
	}
	t.Logf("%d rounds (%d kills) in %v: %d entries acknowledged, final length %d, %d stored beyond the acknowledged ones; "+
		"%d kills cut an output line; %d reopens signed an unsigned tail; DB left unclosed %d times",
		rounds, rounds, time.Since(start).Round(time.Millisecond), totalAcked, length, length-uint64(len(s.acked)),
		cut, s.repairs.Load(), keptOpen)
}
