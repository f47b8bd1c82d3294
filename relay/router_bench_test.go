package relay

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/ephemeral/p2p"
)

// benchSubscribers is the number of devices subscribed through the relay.
const benchSubscribers = 100

// fanoutMsg is one benchmark message: when it was published and how many
// subscribers have it.
type fanoutMsg struct {
	sent time.Time
	got  atomic.Int32
}

// BenchmarkRouterFanout: one device publishes members' envelopes (b.N of
// them, signed by 16 writers) on a space's topic; 100 devices, each
// connected only to the relay (real libp2p hosts on loopback, TCP), are
// subscribed. window is how many messages may be published and not yet
// received by every subscriber: 1 measures the latency of one message
// alone, 24 the throughput (gossipsub queues 32 RPCs per peer and drops
// beyond). Reported: msgs/s (messages received by all 100 per second),
// deliveries/s, p50/p99 delivery latency (publish to receipt, over every
// delivery) and lost (deliveries missing after 30 s).
//
//	go test -run '^$' -bench BenchmarkRouterFanout -benchtime 2000x ./relay/
func BenchmarkRouterFanout(b *testing.B) {
	for _, window := range []int{1, 24} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) { benchFanout(b, window) })
	}
}

func benchFanout(b *testing.B, window int) {
	// The relay's host, gossipsub and router are made under a profiler
	// label, which the goroutines they start inherit, so that a CPU
	// profile tells the relay's share apart from the devices':
	//
	//	go test -run '^$' -bench 'BenchmarkRouterFanout/window=24' -benchtime 2000x -cpuprofile cpu.out ./relay/
	//	go tool pprof -tagfocus side=relay -top relay.test cpu.out | head -3
	var f *routerFixture
	pprof.Do(context.Background(), pprof.Labels("side", "relay"), func(context.Context) {
		f = newRouterFixture(b, RouterLimits{})
	})
	var writers []sender
	for range 16 {
		w := newSender(b)
		f.src.writers[w.key()] = true
		writers = append(writers, w)
	}
	pub := newRoutedPeer(b, f.relay, f.name)

	var (
		msgs      sync.Map // message ID → *fanoutMsg
		completed atomic.Int64
		probes    atomic.Int64 // subscribers that got a probe
		latMu     sync.Mutex
		lats      []time.Duration
	)
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait) // after cancel (cleanups run last first)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	for range benchSubscribers {
		h := loopbackHost(b)
		ps, err := pubsub.NewGossipSub(ctx, h, p2p.PubSubOptions()...)
		if err != nil {
			b.Fatal(err)
		}
		pt, err := ps.Join(f.name, pubsub.WithTopicMessageIdFn(p2p.MessageID))
		if err != nil {
			b.Fatal(err)
		}
		sub, err := pt.Subscribe(pubsub.WithBufferSize(1024))
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Connect(ctx, peer.AddrInfo{ID: f.relay.ID(), Addrs: f.relay.Addrs()}); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			var mine []time.Duration
			probed := false
			defer func() {
				latMu.Lock()
				lats = append(lats, mine...)
				latMu.Unlock()
			}()
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				v, ok := msgs.Load(m.ID)
				if !ok {
					if !probed {
						probed = true
						probes.Add(1)
					}
					continue
				}
				fm := v.(*fanoutMsg)
				mine = append(mine, time.Since(fm.sent))
				if fm.got.Add(1) == benchSubscribers {
					completed.Add(1)
				}
			}
		})
	}
	// Probes until every subscriber is in the relay's mesh.
	deadline := time.Now().Add(60 * time.Second)
	for probes.Load() < benchSubscribers {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d subscribers reached after 60 s", probes.Load(), benchSubscribers)
		}
		_, p := writers[0].envelope(b, f.topic, kindMembers, "probe")
		pub.publish(b, p)
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // probes in flight

	envs := make([][]byte, b.N)
	for i := range envs {
		_, envs[i] = writers[i%len(writers)].envelope(b, f.topic, kindMembers, fmt.Sprintf("message %d of the benchmark", i))
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i, e := range envs {
		for int64(i)-completed.Load() >= int64(window) && time.Now().Before(start.Add(5*time.Minute)) {
			time.Sleep(20 * time.Microsecond)
		}
		h := sha256.Sum256(e)
		msgs.Store(string(h[:]), &fanoutMsg{sent: time.Now()})
		if err := pub.pt.Publish(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	end := time.Now().Add(30 * time.Second)
	for completed.Load() < int64(b.N) && time.Now().Before(end) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	cancel()
	wg.Wait()
	slices.Sort(lats)
	lost := int64(b.N)*benchSubscribers - int64(len(lats))
	b.ReportMetric(float64(completed.Load())/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "deliveries/s")
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(float64(lost), "lost")
	// The process's CPU time per message (the relay and the 101 devices
	// together), which the machine's load does not inflate as it does the
	// wall-clock figures.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
