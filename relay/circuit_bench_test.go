package relay

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// envConnChild makes the test binary a relay for BenchmarkRelayIdleConns
// (connChild) instead of running tests.
const envConnChild = "MYCEL_RELAY_CONNBENCH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envConnChild) != "" {
		if err := connChild(); err != nil {
			fmt.Fprintln(os.Stderr, "relay bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if which := os.Getenv(envFanoutChild); which != "" {
		if err := fanoutChild(which); err != nil {
			fmt.Fprintln(os.Stderr, "relay fanout child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// raiseFDLimit raises the soft limit on open files to the hard one.
func raiseFDLimit() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	l.Cur = l.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

// connChild runs a relay (no data directory: no mirror) on loopback TCP
// with room for the benchmark's connections, prints "addr <multiaddr>",
// then answers each stdin line "mem" with "mem <RSS bytes> <heap and
// stacks in use> <goroutines>" measured after a collection, until stdin
// closes.
func connChild() error {
	if err := raiseFDLimit(); err != nil {
		return err
	}
	n, err := strconv.Atoi(os.Getenv(envConnChild))
	if err != nil {
		return err
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return err
	}
	cfg := &Config{LogLevel: "error", Limits: DefaultLimits(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}}
	cfg.Limits.MaxConns = n + 64
	cfg.Limits.MaxStreams = 16 * (n + 64)
	cfg.Limits.MaxMemory = 4 << 30
	r, err := New(cfg, key, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Printf("addr %s\n", r.Addrs()[0])
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "mem" {
			continue
		}
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("mem %d %d %d\n", rss(), ms.HeapInuse+ms.StackInuse, runtime.NumGoroutine())
	}
	return nil
}

// rss is this process's resident set size in bytes (Linux), 0 if unknown.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// connRelay is the relay child process as the benchmark drives it.
type connRelay struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	addr  peer.AddrInfo
}

func startConnRelay(b *testing.B, n int) *connRelay {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envConnChild+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 10 * time.Second
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
	c := &connRelay{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line := c.line(b)
	s, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		b.Fatalf("relay child said %q", line)
	}
	info, err := peer.AddrInfoFromString(s)
	if err != nil {
		b.Fatal(err)
	}
	c.addr = *info
	return c
}

// line reads the child's next line, within 60 s.
func (c *connRelay) line(b *testing.B) string {
	b.Helper()
	ch := make(chan string, 1)
	go func() {
		if c.out.Scan() {
			ch <- c.out.Text()
		}
		close(ch)
	}()
	select {
	case s, ok := <-ch:
		if !ok {
			b.Fatalf("relay child: %v", c.out.Err())
		}
		return s
	case <-time.After(60 * time.Second):
		b.Fatal("relay child silent for 60 s")
	}
	return ""
}

// mem returns the child's RSS, Go heap and stacks in use, and goroutines.
func (c *connRelay) mem(b *testing.B) (rss, heap, goroutines int64) {
	b.Helper()
	if _, err := io.WriteString(c.stdin, "mem\n"); err != nil {
		b.Fatal(err)
	}
	if _, err := fmt.Sscanf(c.line(b), "mem %d %d %d", &rss, &heap, &goroutines); err != nil {
		b.Fatal(err)
	}
	return rss, heap, goroutines
}

// benchEnvInt is the integer in environment variable name, def if unset.
func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// BenchmarkRelayIdleConns: the relay's memory per idle connection. A
// relay runs in a child process (the test binary); the benchmark opens
// MYCEL_BENCH_CONNS (2,000) connections to it over loopback TCP (Noise,
// yamux, identify: what a daemon's connection costs), one per client
// host, from hosts made in this process, waits for them to settle and
// asks the relay for its RSS and Go heap after a collection, before and
// after. Reported: KiB of RSS and of heap+stacks per connection, and
// goroutines per connection. Target ≤ 64 KiB.
//
//	go test -run '^$' -bench BenchmarkRelayIdleConns -benchtime 1x ./relay/
func BenchmarkRelayIdleConns(b *testing.B) {
	n := benchEnvInt(b, "MYCEL_BENCH_CONNS", 2000)
	if err := raiseFDLimit(); err != nil {
		b.Fatal(err)
	}
	relay := startConnRelay(b, n)
	for range b.N {
		baseRSS, baseHeap, baseG := relay.mem(b)
		clients := make([]host.Host, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		sem := make(chan struct{}, 16)
		for i := range clients {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport),
					libp2p.DisableRelay(), libp2p.DisableMetrics(),
					libp2p.ResourceManager(&network.NullResourceManager{}))
				if err != nil {
					errs <- err
					return
				}
				clients[i] = h
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if err := h.Connect(ctx, relay.addr); err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		// Identify runs both ways after the handshake: wait until every
		// client has the relay's protocols, so the connections are idle.
		deadline := time.Now().Add(60 * time.Second)
		for _, h := range clients {
			for {
				if ps, _ := h.Peerstore().GetProtocols(relay.addr.ID); len(ps) > 0 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("identify did not finish in 60 s")
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		time.Sleep(time.Second) // the relay's side of identify, after the clients'
		rssAfter, heapAfter, gAfter := relay.mem(b)
		b.ReportMetric(float64(rssAfter-baseRSS)/float64(n)/1024, "rss-KiB/conn")
		b.ReportMetric(float64(heapAfter-baseHeap)/float64(n)/1024, "heap-KiB/conn")
		b.ReportMetric(float64(gAfter-baseG)/float64(n), "goroutines/conn")
		b.ReportMetric(float64(n), "conns")
		for _, h := range clients {
			h.Close()
		}
	}
}

// BenchmarkCircuitSync: one writer's feed (MYCEL_BENCH_ENTRIES 1 KiB
// entries, default 8,192: 8 MiB) replicated with syncnet, the daemons'
// protocol, between two members directly and, in the same iteration,
// through the relay's circuit (the destination holds a slot; the source
// dials its /p2p-circuit address). Reported: MB/s of each, and the
// circuit's as a fraction of the direct one (target ≥ 0.5), each
// iteration running the two in turn, the first one alternating. Relay and
// both ends run in this process, on loopback TCP.
//
//	go test -run '^$' -bench BenchmarkCircuitSync -benchtime 4x -count 5 ./relay/
func BenchmarkCircuitSync(b *testing.B) {
	entries := benchEnvInt(b, "MYCEL_BENCH_ENTRIES", 8192)
	r := benchRelay(b)
	src := newFeedSource(b, entries, 1024)
	a1, b1, a2, b2 := benchPeer(b), benchPeer(b), benchPeer(b), benchPeer(b)
	r.ACL().SetMembers(a2.ID(), b2.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := a2.Connect(ctx, relayInfo(r)); err != nil {
		b.Fatal(err)
	}
	if _, err := client.Reserve(ctx, a2, relayInfo(r)); err != nil {
		b.Fatal(err)
	}
	timeout := time.Duration(entries/64+30) * time.Second
	var direct, circuit time.Duration
	b.ResetTimer()
	syncDirect := func() {
		d, err := src.replicate(b, a1, b1, timeout, func() error {
			return b1.Connect(ctx, peer.AddrInfo{ID: a1.ID(), Addrs: a1.Addrs()})
		})
		if err != nil {
			b.Fatalf("direct: %v", err)
		}
		direct += d
		b1.Network().ClosePeer(a1.ID())
	}
	syncCircuit := func() {
		c, err := src.replicate(b, a2, b2, timeout, viaCircuit(ctx, b, r, b2, a2))
		if err != nil {
			b.Fatalf("circuit: %v", err)
		}
		onlyRelayed(b, b2, a2)
		circuit += c
		b2.Network().ClosePeer(a2.ID())
	}
	for i := range b.N {
		// Alternately first: the machine's load drifts.
		if i%2 == 0 {
			syncDirect()
			syncCircuit()
		} else {
			syncCircuit()
			syncDirect()
		}
	}
	mb := float64(entries) * 1024 / 1e6 * float64(b.N)
	b.ReportMetric(mb/direct.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/circuit.Seconds(), "circuit-MB/s")
	b.ReportMetric(direct.Seconds()/circuit.Seconds(), "circuit/direct")
}

// benchRelay starts a relay on loopback TCP, without a data directory.
func benchRelay(b *testing.B) *Relay {
	b.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &Config{LogLevel: "error", Limits: DefaultLimits(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}}
	r, err := New(cfg, key, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// benchPeer is a host on loopback TCP, as a daemon's.
func benchPeer(b *testing.B) host.Host {
	b.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableMetrics())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}
