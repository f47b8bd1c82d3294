package syncnet

// BenchmarkReplication (issue 4): replication of N × 1 KiB entries from A to
// B, two OS processes, libp2p over TCP on loopback, until B holds every
// entry verified and fsynced. In the same run, on the same two processes and
// the same connection, it measures the two baselines replication cannot beat:
// a raw libp2p stream carrying the same N × 1 KiB (A writes, B reads and
// discards), and badger's own synced write of the same bytes in B's process.
// It reports
//
//	entries/s, MB/s  replication (connect to last entry durable on B)
//	raw-MB/s         the raw stream
//	badger-MB/s      badger's synced write
//	ratio-%          replication MB/s / min(raw, badger)
//	ingest-busy-%    share of the replication time B spent in Space.Ingest
//	                 (storing, and verifying what was not verified before)
//	repl-cpu-s/GB    CPU time (user and system) of A and B while replicating
//	raw-cpu-s/GB     CPU time of A and B carrying the raw stream
//	badger-cpu-s/GB  CPU time of badger's synced write
//
// On a machine whose cores are all busy, replication's share of them
// follows its CPU cost: compare the two CPU figures with the ratio.
//
// Run it with
//
//	go test -run '^$' -bench Replication -benchtime 1x ./node/syncnet/
//
// MYCEL_BENCH_ENTRIES sets N (default 1,000,000; 20,000 makes a smoke test of
// a few seconds). Writing A's feed takes longer than replicating it;
// MYCEL_BENCH_CACHE=dir keeps A's store in dir between runs (keyed by N).
// MYCEL_BENCH_CPUPROFILE=prefix writes CPU profiles of the replication only:
// prefix.b (this process) and prefix.a (the child serving A).
//
// The child is this test binary re-executed with MYCEL_REPLBENCH_CHILD set
// (see TestMain); it exits when its stdin closes and is killed when the
// benchmark ends in any way. MB are 10^6 bytes of entry data.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
)

const (
	replEntrySize = 1 << 10
	replPoolSize  = 4096 // distinct entry contents, reused round-robin
	// rawProtocol carries the raw-stream baseline: B sends N (8 bytes,
	// big-endian), A answers with N × 1 KiB and closes.
	rawProtocol = "/mycel/bench/raw/1"

	envChild   = "MYCEL_REPLBENCH_CHILD"
	envEntries = "MYCEL_BENCH_ENTRIES"
	envCache   = "MYCEL_BENCH_CACHE"
	envProfile = "MYCEL_BENCH_CPUPROFILE"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		if err := replChild(); err != nil {
			fmt.Fprintln(os.Stderr, "replbench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// replPool holds replPoolSize random (incompressible) 1 KiB entries.
var replPool = sync.OnceValue(func() [][]byte {
	rng := rand.NewChaCha8([32]byte{'r', 'e', 'p', 'l'})
	buf := make([]byte, replPoolSize*replEntrySize)
	_, _ = rng.Read(buf)
	pool := make([][]byte, replPoolSize)
	for i := range pool {
		pool[i] = buf[i*replEntrySize : (i+1)*replEntrySize : (i+1)*replEntrySize]
	}
	return pool
})

// replSetup is what both processes agree on: the feed (its writer key is
// derived from N, so a cached store matches) and the space.
type replSetup struct {
	n     int
	priv  ed25519.PrivateKey
	key   feed.PublicKey
	space auth.SpaceID
	cap   auth.ReplicationCapability
}

func newReplSetup(n int) replSetup {
	var seed [ed25519.SeedSize]byte
	copy(seed[:], "mycel replication benchmark")
	binary.BigEndian.PutUint64(seed[24:], uint64(n))
	priv := ed25519.NewKeyFromSeed(seed[:])
	s := replSetup{n: n, priv: priv, key: pub(priv)}
	s.space = auth.SpaceID(s.key)
	s.cap = auth.ReplicationCapability{Space: s.space, Epoch: 1}
	copy(s.cap.Key[:], "replication benchmark capability")
	return s
}

// benchHost starts a libp2p host on loopback TCP only, with the default
// security and muxer (as the daemon negotiates them).
func benchHost() (host.Host, error) {
	return libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
	)
}

// replChild is process A: it serves the feed from the store in
// $MYCEL_REPLBENCH_CHILD and the raw protocol, prints "addr <multiaddr>"
// and runs until stdin closes. Stdin lines "profile <path>" and "stop"
// start and stop a CPU profile; "cpu" asks for the CPU time used so far.
func replChild() error {
	n, err := strconv.Atoi(os.Getenv(envEntries))
	if err != nil {
		return err
	}
	setup := newReplSetup(n)
	st, err := badgerstore.Open(os.Getenv(envChild))
	if err != nil {
		return err
	}
	defer st.Close()
	db, err := feed.Open(st)
	if err != nil {
		return err
	}
	defer db.Close()
	h, err := benchHost()
	if err != nil {
		return err
	}
	defer h.Close()
	h.SetStreamHandler(rawProtocol, serveRaw)
	r := New(h, nil)
	defer r.Close()
	if err := r.Serve(NewFeedSpace(setup.space, db, []feed.PublicKey{setup.key}, setup.cap)); err != nil {
		return err
	}
	fmt.Printf("addr %s/p2p/%s\n", h.Addrs()[0], h.ID())

	// The parent closes stdin when done; the watchdog bounds a lost one.
	watchdog := time.AfterFunc(time.Hour, func() { os.Exit(2) })
	defer watchdog.Stop()
	var prof *os.File
	defer func() {
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch {
		case cmd == "profile" && prof == nil:
			if prof, err = os.Create(arg); err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(prof); err != nil {
				return err
			}
		case cmd == "stop" && prof != nil:
			pprof.StopCPUProfile()
			prof.Close()
			prof = nil
		case cmd == "cpu":
			fmt.Println("ok", int64(cpuTime()))
			continue
		}
		fmt.Println("ok")
	}
	return nil
}

// serveRaw answers the raw protocol: N × 1 KiB of pool entries, written 64
// KiB at a time.
func serveRaw(s network.Stream) {
	defer s.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		s.Reset()
		return
	}
	n := binary.BigEndian.Uint64(hdr[:])
	pool := replPool()
	chunk := make([]byte, 0, 64*replEntrySize)
	for i := uint64(0); i < n; i++ {
		chunk = append(chunk, pool[i%replPoolSize]...)
		if len(chunk) == cap(chunk) || i == n-1 {
			if _, err := s.Write(chunk); err != nil {
				s.Reset()
				return
			}
			chunk = chunk[:0]
		}
	}
}

// replChildProc is the running child.
type replChildProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	addr  peer.AddrInfo
}

// startChild starts process A on the store in dir and waits for its address.
func startChild(b *testing.B, dir string, n int) *replChildProc {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+dir, envEntries+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &replChildProc{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	b.Cleanup(func() {
		stdin.Close() // asks it to exit
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel() // kills it
			<-done
		}
		cancel()
	})
	line, err := c.readLine(30 * time.Second)
	if err != nil {
		b.Fatalf("child: %v", err)
	}
	s, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		b.Fatalf("child said %q", line)
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		b.Fatal(err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		b.Fatal(err)
	}
	c.addr = *ai
	return c
}

// readLine reads the child's next stdout line within d; on timeout the
// benchmark's cleanup kills the child.
func (c *replChildProc) readLine(d time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		if c.out.Scan() {
			ch <- res{c.out.Text(), nil}
			return
		}
		err := c.out.Err()
		if err == nil {
			err = io.EOF
		}
		ch <- res{"", err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(d):
		return "", fmt.Errorf("no answer within %v", d)
	}
}

// command sends the child a stdin command, waits for its "ok" and returns
// what follows it.
func (c *replChildProc) command(b *testing.B, line string) string {
	b.Helper()
	if _, err := fmt.Fprintln(c.stdin, line); err != nil {
		b.Fatal(err)
	}
	s, err := c.readLine(10 * time.Second)
	if err != nil || !strings.HasPrefix(s, "ok") {
		b.Fatalf("child: %q %v", s, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(s, "ok"))
}

// cpu returns the CPU time the child has used.
func (c *replChildProc) cpu(b *testing.B) time.Duration {
	ns, err := strconv.ParseInt(c.command(b, "cpu"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeSource writes N entries into a badgerstore in dir, unless a complete
// one is there already, and returns A's head.
func writeSource(b *testing.B, dir string, setup replSetup) feed.SignedHead {
	b.Helper()
	st, err := badgerstore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	db, err := feed.Open(st)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	w, err := db.Writer(setup.priv)
	if err != nil {
		b.Fatal(err)
	}
	pool := replPool()
	deadline := time.Now().Add(time.Duration(setup.n) * time.Millisecond)
	for l := int(w.Length()); l < setup.n; l = int(w.Length()) {
		if time.Now().After(deadline) {
			b.Fatalf("writing A's feed: %d of %d entries after %v", l, setup.n, time.Duration(setup.n)*time.Millisecond)
		}
		batch := make([][]byte, min(setup.n-l, feed.MaxAppendBytes/replEntrySize))
		for i := range batch {
			batch[i] = pool[(l+i)%replPoolSize]
		}
		if _, err := w.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	h, ok := w.Head()
	if !ok || h.Length != uint64(setup.n) {
		b.Fatalf("A's head: %d entries, want %d", h.Length, setup.n)
	}
	return h
}

func benchEntriesN(b *testing.B) int {
	s := os.Getenv(envEntries)
	if s == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 10_000_000 {
		b.Fatalf("%s=%q: want 1 to 10,000,000", envEntries, s)
	}
	return n
}

func BenchmarkReplication(b *testing.B) {
	n := benchEntriesN(b)
	setup := newReplSetup(n)
	srcDir := filepath.Join(b.TempDir(), "a")
	if c := os.Getenv(envCache); c != "" {
		srcDir = filepath.Join(c, fmt.Sprintf("replbench-a-%d", n))
	}
	head := writeSource(b, srcDir, setup)
	child := startChild(b, srcDir, n)
	bytes := float64(n) * replEntrySize

	var repl, ingest, replCPU, raw, rawCPU, bdg, bdgCPU time.Duration
	for i := 0; i < b.N; i++ {
		d, cpu := rawStream(b, child, n)
		raw += d
		rawCPU += cpu
		d, cpu = badgerWrite(b, n)
		bdg += d
		bdgCPU += cpu
		d, in, cpu := replicate(b, child, setup, head)
		repl += d
		ingest += in
		replCPU += cpu
	}
	rawRate := bytes * float64(b.N) / raw.Seconds() / 1e6
	bdgRate := bytes * float64(b.N) / bdg.Seconds() / 1e6
	rate := bytes * float64(b.N) / repl.Seconds() / 1e6
	b.ReportMetric(float64(n*b.N)/repl.Seconds(), "entries/s")
	b.ReportMetric(rate, "MB/s")
	b.ReportMetric(rawRate, "raw-MB/s")
	b.ReportMetric(bdgRate, "badger-MB/s")
	b.ReportMetric(100*rate/min(rawRate, bdgRate), "ratio-%")
	b.ReportMetric(100*ingest.Seconds()/repl.Seconds(), "ingest-busy-%")
	gb := bytes * float64(b.N) / 1e9
	b.ReportMetric(replCPU.Seconds()/gb, "repl-cpu-s/GB")
	b.ReportMetric(rawCPU.Seconds()/gb, "raw-cpu-s/GB")
	b.ReportMetric(bdgCPU.Seconds()/gb, "badger-cpu-s/GB")
}

// rawStream times N × 1 KiB over a fresh libp2p stream from the child to a
// host of this process, connection set-up included as in replication.
func rawStream(b *testing.B, child *replChildProc, n int) (d, cpu time.Duration) {
	addr := child.addr
	b.Helper()
	h, err := benchHost()
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), replTimeout(n))
	defer cancel()
	cpuA := child.cpu(b)
	start, cpuB := time.Now(), cpuTime()
	if err := h.Connect(ctx, addr); err != nil {
		b.Fatal(err)
	}
	s, err := h.NewStream(ctx, addr.ID, rawProtocol)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Reset()
	s.SetDeadline(time.Now().Add(replTimeout(n)))
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(n))
	if _, err := s.Write(hdr[:]); err != nil {
		b.Fatal(err)
	}
	got, err := io.CopyBuffer(io.Discard, s, make([]byte, 64<<10))
	if err != nil {
		b.Fatal(err)
	}
	d = time.Since(start)
	cpu = cpuTime() - cpuB + child.cpu(b) - cpuA
	if got != int64(n)*replEntrySize {
		b.Fatalf("raw stream: %d bytes, want %d", got, n*replEntrySize)
	}
	return d, cpu
}

// badgerWrite times badger's synced write of N × 1 KiB into a fresh store
// opened as badgerstore opens it: keys laid out as feed entry keys, one
// transaction per feed.MaxCommitBytes of entries (the largest commit a
// feed.Storage takes).
func badgerWrite(b *testing.B, n int) (d, cpu time.Duration) {
	b.Helper()
	dir := b.TempDir()
	db, err := badger.Open(badgerstore.Options(dir))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		db.Close()
		os.RemoveAll(dir)
	}()
	pool := replPool()
	perTxn := feed.MaxCommitBytes / (replEntrySize + 42)
	key := func(i int) []byte {
		k := make([]byte, 2, 42)
		k[0], k[1] = 'f', 'e'
		k = append(k, make([]byte, feed.KeySize)...)
		return binary.BigEndian.AppendUint64(k, uint64(i))
	}
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < n; i += perTxn {
		txn := db.NewTransaction(true)
		for j := i; j < min(n, i+perTxn); j++ {
			if err := txn.Set(key(j), pool[j%replPoolSize]); err != nil {
				b.Fatal(err)
			}
		}
		if err := txn.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start), cpuTime() - cpu0
}

// replTimeout bounds one phase: 30 s plus 200 µs per entry (≥ 5 MB/s).
func replTimeout(n int) time.Duration {
	return 30*time.Second + time.Duration(n)*200*time.Microsecond
}

// replicate times B (this process: a fresh host and badgerstore, the
// daemon's defaults) replicating the child's feed, from connecting until
// every entry is durable on B, and checks B's head is A's.
func replicate(b *testing.B, child *replChildProc, setup replSetup, want feed.SignedHead) (d, ingest, cpu time.Duration) {
	b.Helper()
	dir := b.TempDir()
	st, err := badgerstore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	db, err := feed.Open(st)
	if err != nil {
		b.Fatal(err)
	}
	h, err := benchHost()
	if err != nil {
		b.Fatal(err)
	}
	r := New(h, nil)
	defer func() {
		r.Close()
		h.Close()
		db.Close()
		st.Close()
		os.RemoveAll(dir)
	}()
	sp := &timedSpace{Space: NewFeedSpace(setup.space, db, []feed.PublicKey{setup.key}, setup.cap)}
	if err := r.Serve(sp); err != nil {
		b.Fatal(err)
	}
	f, err := db.Feed(setup.key)
	if err != nil {
		b.Fatal(err)
	}
	prof := os.Getenv(envProfile)
	if prof != "" {
		child.command(b, "profile "+prof+".a")
		pf, err := os.Create(prof + ".b")
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
			child.command(b, "stop")
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), replTimeout(setup.n))
	defer cancel()
	cpuA := child.cpu(b)
	start, cpuB := time.Now(), cpuTime()
	if err := h.Connect(ctx, child.addr); err != nil {
		b.Fatal(err)
	}
	// Ingest returns once a batch is fsynced, and only then does the feed
	// count it as held: Length and Missing report durable entries.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for f.Length() < uint64(setup.n) || len(f.Missing()) > 0 {
		select {
		case <-ctx.Done():
			b.Fatalf("replication: %d of %d entries after %v", f.Length(), setup.n, replTimeout(setup.n))
		case <-tick.C:
		}
	}
	d = time.Since(start)
	cpu = cpuTime() - cpuB + child.cpu(b) - cpuA
	if got, _ := f.Head(); got.Root != want.Root || got.Length != want.Length {
		b.Fatalf("B's head %d %s, A's %d %s", got.Length, hex.EncodeToString(got.Root[:8]), want.Length, hex.EncodeToString(want.Root[:8]))
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return d, sp.busy, cpu
}

// timedSpace measures the time spent in Ingest (storing, and verifying
// what was not verified before).
type timedSpace struct {
	Space
	mu   sync.Mutex
	busy time.Duration
}

func (s *timedSpace) Ingest(k feed.PublicKey, b *feed.Batch) error {
	start := time.Now()
	err := s.Space.Ingest(k, b)
	s.mu.Lock()
	s.busy += time.Since(start)
	s.mu.Unlock()
	return err
}
