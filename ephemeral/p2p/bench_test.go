package p2p

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/mycelsync/mycel/ephemeral"
)

// benchMax bounds the messages of one benchmark run, whatever b.N.
const benchMax = 20000

// BenchmarkLine sends ephemeral messages from A to C through B (a relay:
// it validates and forwards without the key) over loopback TCP, with at
// most window in flight (64 for throughput, 1 for unloaded latency), and
// reports messages/s delivered at C and the
// latency from Seal at A to Next at C. Each message is sealed (Ed25519
// signature), verified at B and at C, and recorded in C's seen-set.
//
//	nosign:        PubSubOptions (no gossipsub signature), seen-set in memory
//	gossipsign:    gossipsub's default signing on top (StrictSign), for comparison
//	nosign-badger: as nosign, C's seen-set in badger with synced writes
//
//	go test -run '^$' -bench BenchmarkLine -benchtime 5000x ./ephemeral/p2p/
func BenchmarkLine(b *testing.B) {
	queues := []pubsub.Option{pubsub.WithPeerOutboundQueueSize(256), pubsub.WithValidateQueueSize(256)}
	nosign := func(tb testing.TB, h host.Host) *pubsub.PubSub {
		return newPubSub(tb, h, queues...)
	}
	sign := func(tb testing.TB, h host.Host) *pubsub.PubSub {
		ctx, cancel := context.WithCancel(context.Background())
		tb.Cleanup(cancel)
		ps, err := pubsub.NewGossipSub(ctx, h, queues...) // StrictSign: gossipsub's default
		if err != nil {
			tb.Fatal(err)
		}
		return ps
	}
	mem := func(*testing.B) ephemeral.SeenStore { return ephemeral.NewMemSeenStore() }
	bdg := func(b *testing.B) ephemeral.SeenStore {
		db := openBadger(b, b.TempDir())
		b.Cleanup(func() { db.Close() })
		return badgerStore(b, db)
	}
	for _, w := range []int{64, 1} {
		b.Run(fmt.Sprintf("nosign/window=%d", w), func(b *testing.B) { benchLine(b, nosign, mem, w) })
		b.Run(fmt.Sprintf("gossipsign/window=%d", w), func(b *testing.B) { benchLine(b, sign, mem, w) })
		b.Run(fmt.Sprintf("nosign-badger/window=%d", w), func(b *testing.B) { benchLine(b, nosign, bdg, w) })
	}
}

func benchLine(b *testing.B, newPS func(testing.TB, host.Host) *pubsub.PubSub, store func(*testing.B) ephemeral.SeenStore, window int) {
	mk := func(s ephemeral.SeenStore) *node {
		h := newHost(b)
		f, err := ephemeral.NewFilter(s, ephemeral.Config{MaxSeen: 4 * benchMax})
		if err != nil {
			b.Fatal(err)
		}
		svc, err := New(h, f, Config{Buffer: 1024}, WithPubSub(newPS(b, h)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { svc.Close() })
		return &node{h: h, svc: svc, filter: f}
	}
	a, r, c := mk(ephemeral.NewMemSeenStore()), mk(ephemeral.NewMemSeenStore()), mk(store(b))
	connect(b, a.h, r.h)
	connect(b, c.h, r.h)
	if _, err := r.svc.Relay(testTopic); err != nil {
		b.Fatal(err)
	}
	subA, subC := subscribe(b, a), subscribe(b, c)
	publish := func(e *ephemeral.Envelope) {
		if err := subA.Publish(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
	var p probes
	waitRoute(b, &p, time.Now, publish, subC)

	n := min(b.N, benchMax)
	var (
		mu      sync.Mutex
		sent    = make(map[ephemeral.ID]time.Time, n)
		lat     = make([]time.Duration, 0, n)
		credits = make(chan struct{}, window)
		done    = make(chan struct{})
	)
	for range window {
		credits <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() {
		defer close(done)
		for {
			mu.Lock()
			got := len(lat)
			mu.Unlock()
			if got >= n {
				return
			}
			m, err := subC.Next(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			at, ok := sent[m.Envelope.ID]
			if ok {
				lat = append(lat, time.Since(at))
			}
			mu.Unlock()
			if ok {
				credits <- struct{}{}
			}
		}
	}()
	body := make([]byte, 100)
	signer := testSigner()
	b.ResetTimer()
	start := time.Now()
	for range n {
		select {
		case <-credits:
		case <-time.After(10 * time.Second):
			mu.Lock()
			got := len(lat)
			mu.Unlock()
			b.Fatalf("no delivery at C for 10 s: %d of %d delivered", got, n)
		}
		now := time.Now()
		e, err := ephemeral.Seal(testKey, signer, ephemeral.Header{Topic: testTopic, KeyKind: 1}, body, now, nil)
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		sent[e.ID] = now
		mu.Unlock()
		publish(e)
	}
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) < n {
		b.Fatalf("%d of %d delivered", len(lat), n)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
