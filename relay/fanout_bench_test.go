package relay

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/feed"
)

// BenchmarkRelayFanout measures the relay's message router in three OS
// processes on loopback TCP:
//
//   - the relay: this test binary re-executed (fanoutRelayChild), a relay
//     made by New with the production host (TCP, Noise/TLS, yamux, the
//     resource manager) and NewRouter on it, routing one space whose
//     writers the parent names (an in-memory RouterSource in place of the
//     mirror, which the router asks the same questions of);
//   - the subscribers: the test binary again (fanoutSubsChild), 100 light
//     libp2p peers, each connected only to the relay, speaking gossipsub's
//     wire protocol just enough to subscribe to the topic and to count and
//     timestamp the messages they are sent (no validation, no seen cache,
//     no forwarding: the cost of a full device is not the relay's);
//   - the publisher: this process, a gossipsub device connected only to the
//     relay, publishing b.N members' envelopes signed beforehand by 16
//     writers, with at most window of them not yet delivered to all 100.
//
// Each window runs twice: cores=shared, the three processes wherever the
// scheduler puts them on the machine's CPUs (on a 2-core machine the relay
// competes with its 100 subscribers, which a real relay does not); and
// cores=split, the relay's process alone on CPU 0 and the subscribers' and
// the publisher's on the others (taskset, which must be installed). CPU 0
// is the relay's alone only among the three: what else runs on the machine
// still runs there.
//
// Reported: msgs/s, messages published and delivered to all 100
// subscribers per second of the run (one message forwarded by the relay to
// 100 peers counts once); deliveries/s, messages received by a subscriber
// per second (each of the 100 copies counts); p50-ms/p99-ms, publish to
// arrival over every delivery (the processes share the machine's clock);
// where a message's time goes, as medians over the messages:
// relay-recv-p50-ms, publish to the relay's gossipsub taking it up (the
// publisher's gossipsub, the connection, the relay's read; a tracer's
// RecvRPC), relay-in-p50-ms, publish to the relay's validator accepting it
// (then the relay's validation queue and checks; Router.OnEnvelope's
// time), first-p50-ms and last-p50-ms, publish
// to its arrival at the first and at the last of the 100 subscribers (their
// difference is the relay writing it 100 times);
// relay-µs/delivery and subs-µs/delivery, the relay's and the subscribers'
// process's user and system CPU time over the run (/proc/<pid>/stat) per
// delivery; lost, deliveries missing 30 s after the last publish.
//
//	go test -run '^$' -bench BenchmarkRelayFanout -benchtime 3000x ./relay/
//
// MYCEL_BENCH_CPUPROFILE=file writes a CPU profile of the relay process over
// the run; MYCEL_BENCH_PERF=events counts perf events in the relay process
// over the run (`perf stat -e events`, to stderr; e.g.
// raw_syscalls:sys_enter,syscalls:sys_enter_write,context-switches);
// MYCEL_BENCH_BODY=n pads each message's body to n bytes (default:
// some 30 bytes, an envelope of about 170). ctl-rpcs counts the RPCs with
// control messages the subscribers got (GRAFTs, IDONTWANTs).
//
// Figures and what they show: README.md, "Benchmarks".
func BenchmarkRelayFanout(b *testing.B) {
	for _, window := range []int{1, 64} {
		for _, cores := range []string{coresShared, coresSplit} {
			b.Run(fmt.Sprintf("window=%d/cores=%s", window, cores), func(b *testing.B) { benchRelayFanout(b, window, cores) })
		}
	}
}

// The benchmark's placements of its processes on the machine's CPUs.
const (
	// coresShared: the scheduler places the three processes on every CPU,
	// as a machine running them all would.
	coresShared = "shared"
	// coresSplit: the relay's process alone on CPU 0, the subscribers'
	// and the publisher's on the others (taskset), as a relay that does
	// not share its core with its 100 subscribers.
	coresSplit = "split"
)

const (
	envFanoutChild   = "MYCEL_RELAY_FANOUT_CHILD" // "relay" or "subs"
	envFanoutSpace   = "MYCEL_RELAY_FANOUT_SPACE"
	envFanoutWriters = "MYCEL_RELAY_FANOUT_WRITERS"
	envFanoutRelay   = "MYCEL_RELAY_FANOUT_RELAY"
	envFanoutProfile = "MYCEL_BENCH_CPUPROFILE"
	envFanoutBody    = "MYCEL_BENCH_BODY"
	envFanoutPerf    = "MYCEL_BENCH_PERF"
	// fanoutDeadline bounds each wait of the benchmark.
	fanoutDeadline = 60 * time.Second
)

// fanoutChild runs the child process named by $MYCEL_RELAY_FANOUT_CHILD.
func fanoutChild(which string) error {
	switch which {
	case "relay":
		return fanoutRelayChild()
	case "subs":
		return fanoutSubsChild()
	}
	return fmt.Errorf("unknown child %q", which)
}

// staticSource is a RouterSource of one space and a fixed set of writers.
type staticSource struct {
	id      auth.SpaceID
	writers map[feed.PublicKey]bool
}

func (s *staticSource) ServedSpaces() []auth.SpaceID { return []auth.SpaceID{s.id} }
func (s *staticSource) IsWriter(id auth.SpaceID, k feed.PublicKey) bool {
	return id == s.id && s.writers[k]
}
func (s *staticSource) OnChange(func()) {}

// fanoutRelayChild is the relay process: it prints "addr <multiaddr>"
// once its router routes the space, then obeys stdin lines: "prof" starts
// the CPU profile, "stop" stops it and prints "accepted <sha256 hex>
// <received> <accepted>" (Unix ns; received is 0 if not recorded) for
// each message its validator accepted since it started (or since the last
// "stop"), then "counts <forwarded> <duplicate> <other
// refusals>"; it exits when stdin closes.
func fanoutRelayChild() error {
	if err := raiseFDLimit(); err != nil {
		return err
	}
	src := &staticSource{writers: map[feed.PublicKey]bool{}}
	if _, err := hex.Decode(src.id[:], []byte(os.Getenv(envFanoutSpace))); err != nil {
		return err
	}
	for _, s := range strings.Split(os.Getenv(envFanoutWriters), ",") {
		var k feed.PublicKey
		if _, err := hex.Decode(k[:], []byte(s)); err != nil {
			return err
		}
		src.writers[k] = true
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return err
	}
	cfg := &Config{LogLevel: "error", Limits: DefaultLimits(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}}
	cfg.Limits.MaxConnsPerIP = 1024 // every device is on 127.0.0.1
	rel, err := New(cfg, key, nil)
	if err != nil {
		return err
	}
	defer rel.Close()
	recv := &recvTracer{at: make(map[[32]byte]int64)}
	router, err := newRouter(rel.Host(), src, RouterLimits{}, nil, func(o *routerOpts) {
		o.psOp = append(o.psOp, pubsub.WithRawTracer(recv))
	})
	if err != nil {
		return err
	}
	defer router.Close()
	// When the validator accepts each message (sha256 of its data, Unix
	// ns), for the parent's relay-in figure; bounded as the parent's n.
	type accepted struct {
		id [32]byte
		at int64
	}
	var accMu sync.Mutex
	acc := make([]accepted, 0, 1<<16)
	router.OnEnvelope(func(a Accepted) {
		now := time.Now().UnixNano()
		accMu.Lock()
		defer accMu.Unlock()
		if len(acc) < 1<<22 {
			acc = append(acc, accepted{sha256.Sum256(a.Data), now})
		}
	})
	for deadline := time.Now().Add(fanoutDeadline); len(router.Routed()) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("the router does not route the space")
		}
	}
	fmt.Printf("addr %s/p2p/%s\n", rel.Addrs()[0], rel.Host().ID())
	in := bufio.NewScanner(os.Stdin)
	var prof *os.File
	for in.Scan() {
		switch in.Text() {
		case "prof":
			if path := os.Getenv(envFanoutProfile); path != "" {
				if prof, err = os.Create(path); err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(prof); err != nil {
					return err
				}
			}
		case "stop":
			if prof != nil {
				pprof.StopCPUProfile()
				if err := prof.Close(); err != nil {
					return err
				}
				prof = nil
			}
			accMu.Lock()
			out := bufio.NewWriter(os.Stdout)
			recv.mu.Lock()
			for _, a := range acc {
				fmt.Fprintf(out, "accepted %x %d %d\n", a.id, recv.at[a.id], a.at)
			}
			acc = acc[:0]
			clear(recv.at)
			recv.mu.Unlock()
			accMu.Unlock()
			if err := out.Flush(); err != nil {
				return err
			}
			c := router.RouterCounts()
			other := uint64(0)
			for k, v := range c {
				if k != RouteForwarded && k != RouteDuplicate {
					other += v
				}
			}
			fmt.Printf("counts %d %d %d\n", c[RouteForwarded], c[RouteDuplicate], other)
		}
	}
	return nil
}

// recvTracer is the relay child's gossipsub tracer: it records when
// gossipsub's event loop takes up each message (RecvRPC: the RPC read from
// the neighbour's stream, before the validation queue), by sha256 of its
// data, at most 1<<22 of them. Its other methods do nothing.
type recvTracer struct {
	mu sync.Mutex
	at map[[32]byte]int64
}

func (t *recvTracer) RecvRPC(rpc *pubsub.RPC) {
	now := time.Now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range rpc.Publish {
		if len(t.at) < 1<<22 {
			t.at[sha256.Sum256(m.Data)] = now
		}
	}
}

func (*recvTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (*recvTracer) OnClosedOutboundStream(peer.ID)           {}
func (*recvTracer) Join(string)                              {}
func (*recvTracer) Leave(string)                             {}
func (*recvTracer) Graft(peer.ID, string)                    {}
func (*recvTracer) Prune(peer.ID, string)                    {}
func (*recvTracer) ValidateMessage(*pubsub.Message)          {}
func (*recvTracer) DeliverMessage(*pubsub.Message)           {}
func (*recvTracer) RejectMessage(*pubsub.Message, string)    {}
func (*recvTracer) DuplicateMessage(*pubsub.Message)         {}
func (*recvTracer) ThrottlePeer(peer.ID)                     {}
func (*recvTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (*recvTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (*recvTracer) UndeliverableMessage(*pubsub.Message)     {}

// fanoutSubsChild is the subscribers' process. Its relay and topic come
// from the environment; on stdin it reads "<n> <subscribers>" and n
// message IDs of 32 bytes (p2p.MessageID of the benchmark's messages, in
// publish order), then subscribes and prints "probed <k>" as subscribers
// get their first message not in the list (a probe: they are in the
// relay's mesh) and "done <k>" as messages reach every subscriber
// (coalesced, at most every 200 µs). Then it reads n send times (int64
// Unix nanoseconds, little endian) and prints "result <deliveries> <p50 ns>
// <p99 ns> <control RPCs> <first p50 ns> <last p50 ns>" (latencies over
// every delivery; the RPCs that carried control messages, to all
// subscribers over the whole process; the medians over the messages
// delivered to all of the first and of the last subscriber's latency),
// and exits.
func fanoutSubsChild() error {
	if err := raiseFDLimit(); err != nil {
		return err
	}
	relay, err := peer.AddrInfoFromString(os.Getenv(envFanoutRelay))
	if err != nil {
		return err
	}
	topic := os.Getenv(envFanoutSpace)
	in := bufio.NewReader(os.Stdin)
	var n, subs int
	if _, err := fmt.Fscanf(in, "%d %d\n", &n, &subs); err != nil {
		return err
	}
	if n <= 0 || n > 1<<22 || subs <= 0 || subs > 1024 {
		return fmt.Errorf("n %d, subscribers %d", n, subs)
	}
	seq := make(map[[32]byte]int32, n)
	var id [32]byte
	for i := range n {
		if _, err := io.ReadFull(in, id[:]); err != nil {
			return err
		}
		seq[id] = int32(i)
	}
	arrived := make([]atomic.Int64, n*subs) // Unix ns; 0 if not (yet)
	got := make([]atomic.Int32, n)
	var done, probed, ctl atomic.Int64 // ctl: RPCs with control messages
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range subs {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			return err
		}
		defer h.Close()
		var sawProbe atomic.Bool
		onMsg := func(data []byte) {
			now := time.Now().UnixNano()
			s, ok := seq[sha256.Sum256(data)]
			if !ok {
				if !sawProbe.Swap(true) {
					probed.Add(1)
				}
				return
			}
			if !arrived[int(s)*subs+i].CompareAndSwap(0, now) {
				return // a copy: count the first
			}
			if got[s].Add(1) == int32(subs) {
				done.Add(1)
			}
		}
		onRPC := func(rpc *pb.RPC) {
			if rpc.Control != nil {
				ctl.Add(1)
			}
			for _, m := range rpc.Publish {
				onMsg(m.Data)
			}
		}
		if err := lightSubscribe(ctx, h, *relay, topic, onRPC); err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
	}
	// The reporter: progress lines until the send times arrive.
	stop := make(chan struct{})
	reported := make(chan struct{})
	out := bufio.NewWriter(os.Stdout)
	go func() {
		defer close(reported)
		var lastDone, lastProbed int64 = -1, -1
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if p := probed.Load(); p != lastProbed {
				lastProbed = p
				fmt.Fprintf(out, "probed %d\n", p)
			}
			if d := done.Load(); d != lastDone {
				lastDone = d
				fmt.Fprintf(out, "done %d\n", d)
			}
			out.Flush()
		}
	}()
	sent := make([]int64, n)
	if err := binary.Read(in, binary.LittleEndian, sent); err != nil {
		return err
	}
	close(stop)
	<-reported
	cancel()
	var lats, firsts, lasts []int64
	for m := range n {
		first, last := int64(math.MaxInt64), int64(0)
		all := true
		for s := range subs {
			t := arrived[m*subs+s].Load()
			if t == 0 {
				all = false
				continue
			}
			lats = append(lats, t-sent[m])
			first, last = min(first, t), max(last, t)
		}
		if all {
			firsts = append(firsts, first-sent[m])
			lasts = append(lasts, last-sent[m])
		}
	}
	fmt.Fprintf(out, "result %d %d %d %d %d %d\n", len(lats), quantile(lats, 0.5), quantile(lats, 0.99), ctl.Load(),
		quantile(firsts, 0.5), quantile(lasts, 0.5))
	return out.Flush()
}

// quantile sorts v and returns its q-quantile (0 if v is empty).
func quantile(v []int64, q float64) int64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[int(float64(len(v)-1)*q+0.5)]
}

// lightSubscribe makes h a minimal gossipsub peer of the relay, speaking
// gossipsub v1.2 as mycel's devices do (which the relay may send IDONTWANT
// to): it connects, opens a stream announcing its subscription to topic,
// and hands every RPC the relay sends it to onRPC (called on the stream's
// goroutine; the RPC is reused after). It never forwards, validates nor
// answers control messages: the relay sees a peer that is subscribed and
// grafts it into its mesh.
func lightSubscribe(ctx context.Context, h host.Host, relay peer.AddrInfo, topic string, onRPC func(*pb.RPC)) error {
	_, err := lightPeer(ctx, h, relay, topic, onRPC)
	return err
}

// lightPeer is lightSubscribe, and returns the stream to the relay, on
// which the caller may write RPCs of its own (one writer at a time).
func lightPeer(ctx context.Context, h host.Host, relay peer.AddrInfo, topic string, onRPC func(*pb.RPC)) (msgio.WriteCloser, error) {
	h.SetStreamHandler(pubsub.GossipSubID_v12, func(s network.Stream) {
		defer s.Reset()
		r := msgio.NewVarintReaderSize(s, 1<<20)
		var rpc pb.RPC
		for {
			b, err := r.ReadMsg()
			if err != nil {
				return
			}
			rpc.Reset()
			err = proto.Unmarshal(b, &rpc)
			r.ReleaseMsg(b)
			if err != nil {
				return
			}
			onRPC(&rpc)
		}
	})
	cctx, cancel := context.WithTimeout(ctx, fanoutDeadline)
	defer cancel()
	if err := h.Connect(cctx, relay); err != nil {
		return nil, err
	}
	s, err := h.NewStream(cctx, relay.ID, pubsub.GossipSubID_v12)
	if err != nil {
		return nil, err
	}
	sub := true
	hello := &pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: &sub, Topicid: &topic}}}
	b, err := proto.Marshal(hello)
	if err != nil {
		return nil, err
	}
	// The stream stays open (the relay would forget a peer whose stream
	// ends) until the host closes.
	w := msgio.NewVarintWriter(s)
	return w, w.WriteMsg(b)
}

// fanoutProc is a running child process of the benchmark.
type fanoutProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startFanoutProc starts the child which, on the CPUs cpus names (a
// taskset list) unless it is empty.
func startFanoutProc(b *testing.B, which, cpus string, env ...string) *fanoutProc {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if cpus != "" {
		cmd = exec.Command("taskset", "-c", cpus, os.Args[0], "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), append(env, envFanoutChild+"="+which)...)
	cmd.Stderr = os.Stderr
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
	p := &fanoutProc{cmd: cmd, stdin: stdin, lines: make(chan string, 1024)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	b.Cleanup(func() {
		stdin.Close()
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return p
}

// expect returns the fields after prefix of the child's next line that
// starts with it, within d.
func (p *fanoutProc) expect(b *testing.B, prefix string, d time.Duration) []string {
	b.Helper()
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				b.Fatalf("child exited before %q", prefix)
			}
			if f := strings.Fields(l); len(f) > 0 && f[0] == prefix {
				return f[1:]
			}
		case <-timeout:
			b.Fatalf("no %q from the child after %v", prefix, d)
		}
	}
}

// startPerf starts, if $MYCEL_BENCH_PERF names perf events
// ("raw_syscalls:sys_enter,context-switches", say), `perf stat` of those
// events on process pid, and returns the function that stops it: perf then
// writes its counts to stderr (at the latest in b's cleanup).
func startPerf(b *testing.B, pid int) (stop func()) {
	b.Helper()
	events := os.Getenv(envFanoutPerf)
	if events == "" {
		return func() {}
	}
	cmd := exec.Command("perf", "stat", "-e", events, "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("perf: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // perf attaches
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		})
	}
	b.Cleanup(stop) // if the run fails before it is stopped
	return stop
}

// procCPU is process pid's user and system CPU time (/proc/<pid>/stat,
// fields 14 and 15, in clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count after its ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// splitCPUs pins this process (every thread: taskset -a) to the CPUs but
// the first, with as many Ps, and returns the taskset lists of the relay's
// CPU and of the others'; the cleanup gives the process every CPU back.
func splitCPUs(b *testing.B) (relayCPU, others string) {
	b.Helper()
	n := runtime.NumCPU()
	if n < 2 {
		b.Fatalf("cores=%s needs 2 CPUs, this machine has %d", coresSplit, n)
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		b.Fatalf("cores=%s: %v", coresSplit, err)
	}
	relayCPU, others = "0", fmt.Sprintf("1-%d", n-1)
	pid := strconv.Itoa(os.Getpid())
	if out, err := exec.Command("taskset", "-a", "-p", "-c", others, pid).CombinedOutput(); err != nil {
		b.Fatalf("taskset: %v: %s", err, out)
	}
	procs := runtime.GOMAXPROCS(n - 1)
	b.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		if out, err := exec.Command("taskset", "-a", "-p", "-c", fmt.Sprintf("0-%d", n-1), pid).CombinedOutput(); err != nil {
			b.Errorf("taskset: %v: %s", err, out)
		}
	})
	return relayCPU, others
}

func benchRelayFanout(b *testing.B, window int, cores string) {
	var relayCPU, othersCPU string
	if cores == coresSplit {
		relayCPU, othersCPU = splitCPUs(b)
	}
	var id auth.SpaceID
	rand.Read(id[:])
	topic := ephemeral.Topic(auth.DiscoveryKey(id))
	name := p2p.TopicName(topic)
	var writers []sender
	var keys []string
	for range 16 {
		w := newSender(b)
		writers = append(writers, w)
		k := w.key()
		keys = append(keys, hex.EncodeToString(k[:]))
	}
	rp := startFanoutProc(b, "relay", relayCPU, envFanoutSpace+"="+hex.EncodeToString(id[:]),
		envFanoutWriters+"="+strings.Join(keys, ","))
	addr := rp.expect(b, "addr", fanoutDeadline)[0]
	if _, err := ma.NewMultiaddr(addr); err != nil {
		b.Fatal(err)
	}
	relayInfo, err := peer.AddrInfoFromString(addr)
	if err != nil {
		b.Fatal(err)
	}

	bodySize := 0
	if v := os.Getenv(envFanoutBody); v != "" {
		var err error
		if bodySize, err = strconv.Atoi(v); err != nil || bodySize > ephemeral.MaxEnvelopeSize-1024 {
			b.Fatalf("%s=%q: a size in bytes under %d", envFanoutBody, v, ephemeral.MaxEnvelopeSize-1024)
		}
	}
	// Signed beforehand: the publisher's signing is not the relay's cost.
	envs := make([][]byte, b.N)
	for i := range envs {
		body := fmt.Sprintf("message %d of the benchmark", i)
		if len(body) < bodySize {
			body += strings.Repeat(".", bodySize-len(body))
		}
		_, envs[i] = writers[i%len(writers)].envelope(b, topic, kindMembers, body)
	}
	sp := startFanoutProc(b, "subs", othersCPU, envFanoutRelay+"="+addr, envFanoutSpace+"="+name)
	w := bufio.NewWriter(sp.stdin)
	fmt.Fprintf(w, "%d %d\n", b.N, benchSubscribers)
	for _, e := range envs {
		h := sha256.Sum256(e)
		w.Write(h[:])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}

	// The publisher.
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	ph := loopbackHost(b)
	// Its queue to the relay holds the whole window (gossipsub's default,
	// 32, would drop the publisher's own messages beyond it).
	ps, err := pubsub.NewGossipSub(ctx, ph, append(p2p.PubSubOptions(), pubsub.WithPeerOutboundQueueSize(4096))...)
	if err != nil {
		b.Fatal(err)
	}
	pt, err := ps.Join(name, pubsub.WithTopicMessageIdFn(p2p.MessageID))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pt.Subscribe(); err != nil { // in the relay's mesh
		b.Fatal(err)
	}
	if err := ph.Connect(ctx, *relayInfo); err != nil {
		b.Fatal(err)
	}

	// Progress from the subscribers' process.
	var done, probed, lastDone atomic.Int64 // lastDone: when done last grew (Unix ns)
	results := make(chan []string, 1)
	lastDone.Store(time.Now().UnixNano())
	go func() {
		for l := range sp.lines {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "done", "probed":
				v, _ := strconv.ParseInt(f[1], 10, 64)
				if f[0] == "done" {
					done.Store(v)
					lastDone.Store(time.Now().UnixNano())
				} else {
					probed.Store(v)
				}
			case "result":
				results <- f[1:]
			}
		}
	}()
	// Probes until every subscriber is in the relay's mesh.
	deadline := time.Now().Add(fanoutDeadline)
	for probed.Load() < benchSubscribers {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d subscribers reached after %v", probed.Load(), benchSubscribers, fanoutDeadline)
		}
		_, p := writers[0].envelope(b, topic, kindMembers, "probe")
		if err := pt.Publish(ctx, p); err != nil {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // probes in flight

	sent := make([]int64, b.N)
	fmt.Fprintln(rp.stdin, "prof")
	relayPID := rp.cmd.Process.Pid
	cpu0 := procCPU(b, relayPID)
	subsPID := sp.cmd.Process.Pid
	subsCPU0 := procCPU(b, subsPID)
	perf := startPerf(b, relayPID)
	b.ResetTimer()
	start := time.Now()
	limit := start.Add(5 * time.Minute)
	for i, e := range envs {
		for int64(i)-done.Load() >= int64(window) && time.Now().Before(limit) {
			time.Sleep(20 * time.Microsecond)
		}
		sent[i] = time.Now().UnixNano()
		if err := pt.Publish(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	for end := time.Now().Add(30 * time.Second); done.Load() < int64(b.N) && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	// Up to the last message delivered to all: not the wait for lost ones.
	elapsed := time.Unix(0, lastDone.Load()).Sub(start)
	if elapsed <= 0 {
		b.Fatal("no message reached every subscriber")
	}
	cpu := procCPU(b, relayPID) - cpu0
	subsCPU := procCPU(b, subsPID) - subsCPU0
	perf()
	fmt.Fprintln(rp.stdin, "stop")
	accepted := make([]int64, 0, b.N) // the relay's validator's acceptance after the publish, ns
	received := make([]int64, 0, b.N) // the relay's gossipsub taking it up after the publish, ns
	bySum := make(map[[32]byte]int, b.N)
	for i, e := range envs {
		bySum[sha256.Sum256(e)] = i
	}
	var counts []string
	for counts == nil {
		select {
		case l, ok := <-rp.lines:
			if !ok {
				b.Fatal("the relay exited before its counts")
			}
			f := strings.Fields(l)
			switch {
			case len(f) == 4 && f[0] == "accepted":
				var sum [32]byte
				rcv, err1 := strconv.ParseInt(f[2], 10, 64)
				at, err2 := strconv.ParseInt(f[3], 10, 64)
				if n, _ := hex.Decode(sum[:], []byte(f[1])); n != len(sum) || err1 != nil || err2 != nil {
					b.Fatalf("relay: %q", l)
				}
				if i, ok := bySum[sum]; ok {
					accepted = append(accepted, at-sent[i])
					if rcv != 0 {
						received = append(received, rcv-sent[i])
					}
				}
			case len(f) > 0 && f[0] == "counts":
				counts = f[1:]
			}
		case <-time.After(fanoutDeadline):
			b.Fatal("no counts from the relay")
		}
	}
	if err := binary.Write(sp.stdin, binary.LittleEndian, sent); err != nil {
		b.Fatal(err)
	}
	var res []string
	select {
	case res = <-results:
	case <-time.After(fanoutDeadline):
		b.Fatal("no result from the subscribers")
	}
	deliveries, _ := strconv.ParseInt(res[0], 10, 64)
	p50, _ := strconv.ParseInt(res[1], 10, 64)
	p99, _ := strconv.ParseInt(res[2], 10, 64)
	ctlRPCs, _ := strconv.ParseInt(res[3], 10, 64)
	first50, _ := strconv.ParseInt(res[4], 10, 64)
	last50, _ := strconv.ParseInt(res[5], 10, 64)
	b.ReportMetric(float64(done.Load())/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(deliveries)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(p50)/1e6, "p50-ms")
	b.ReportMetric(float64(p99)/1e6, "p99-ms")
	b.ReportMetric(float64(quantile(received, 0.5))/1e6, "relay-recv-p50-ms")
	b.ReportMetric(float64(quantile(accepted, 0.5))/1e6, "relay-in-p50-ms")
	b.ReportMetric(float64(first50)/1e6, "first-p50-ms")
	b.ReportMetric(float64(last50)/1e6, "last-p50-ms")
	if deliveries > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(deliveries), "relay-µs/delivery")
		b.ReportMetric(float64(subsCPU.Nanoseconds())/1e3/float64(deliveries), "subs-µs/delivery")
	}
	b.ReportMetric(float64(int64(b.N)*benchSubscribers-deliveries), "lost")
	b.ReportMetric(float64(ctlRPCs), "ctl-rpcs")
	b.Logf("window %d: %d messages in %v, relay CPU %v; the relay counted forwarded/duplicate/other %s",
		window, b.N, elapsed.Round(time.Millisecond), cpu, strings.Join(counts, "/"))
}
