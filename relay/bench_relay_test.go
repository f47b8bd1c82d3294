package relay_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/relay"
)

// putVisible puts n keys on a one after another, each once the previous
// is visible on b (a watch event), and returns the latencies, sorted.
func putVisible(tb testing.TB, a, b *node.Node, id, prefix string, n int) []time.Duration {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, _, err := b.Watch(ctx, id, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		key := fmt.Sprintf("%s%d", prefix, i)
		start := time.Now()
		if err := a.Put(ctx, id, key, []byte("x")); err != nil {
			tb.Fatal(err)
		}
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case e, ok := <-events:
				if !ok {
					tb.Fatal("the watch ended")
				}
				if e.Key == key {
					break wait
				}
			case <-deadline:
				tb.Fatalf("%s not visible on B after 10 s", key)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkPutVisibleThroughRelay: a put on A's node until B's watch
// reports it, 300 puts one after another, with B connected to A (a)
// directly, the baseline, then (b) only through the relay's circuit (A
// reserves a slot, B knows only A's circuit address; the circuit's limits
// raised by the relay's settings so that the run fits in one circuit).
// Reports p50/p99 of each and the ratio of the p50s. All on loopback, in
// one process. Run with -benchtime 1x.
func BenchmarkPutVisibleThroughRelay(b *testing.B) {
	const puts = 300
	rkey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &relay.Config{DataDir: b.TempDir(), LogLevel: "error", Limits: relay.DefaultLimits(),
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}}
	cfg.Limits.CircuitBytes, cfg.Limits.CircuitDuration = 1<<30, time.Hour
	r, err := relay.New(cfg, rkey, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })

	dirB := b.TempDir()
	cfgA := daemonConfig(b.TempDir(), "A")
	cfgA.Relays = []string{r.Addrs()[0].String()}
	nA := startDaemon(b, cfgA)
	nB := startDaemon(b, daemonConfig(dirB, "B", nA.Addrs()[0].String()))
	info, err := nA.CreateSpace(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	approve(b, nA, nB, info.ID)
	var circuit ma.Multiaddr
	eventually(b, 30*time.Second, func() error {
		for _, addr := range nA.Addrs() {
			if strings.Contains(addr.String(), "/p2p-circuit") {
				circuit = addr
				return nil
			}
		}
		return errors.New("A holds no reservation on the relay yet")
	})

	b.ResetTimer()
	var direct, relayed []time.Duration
	for range b.N {
		direct = putVisible(b, nA, nB, info.ID, "direct/", puts)
	}
	b.StopTimer()
	if err := nB.Close(); err != nil {
		b.Fatal(err)
	}
	nB = startDaemon(b, daemonConfig(dirB, "B", circuit.String()))
	want, _ := nA.Space(info.ID)
	eventually(b, 60*time.Second, func() error {
		if got, _ := nB.Space(info.ID); got.Digest != want.Digest {
			return errors.New("B has not caught up through the relay")
		}
		return nil
	})
	b.StartTimer()
	for range b.N {
		relayed = putVisible(b, nA, nB, info.ID, "relayed/", puts)
	}
	b.StopTimer()
	for _, c := range nB.Host().Network().ConnsToPeer(nA.Host().ID()) {
		if !strings.Contains(c.RemoteMultiaddr().String(), "/p2p-circuit") {
			b.Fatalf("B has a direct connection to A (%s): not a figure through the relay", c.RemoteMultiaddr())
		}
	}
	b.ReportMetric(ms(relayed[len(relayed)/2]), "relay-p50-ms")
	b.ReportMetric(ms(relayed[len(relayed)*99/100]), "relay-p99-ms")
	b.ReportMetric(ms(direct[len(direct)/2]), "direct-p50-ms")
	b.ReportMetric(ms(direct[len(direct)*99/100]), "direct-p99-ms")
	b.ReportMetric(float64(relayed[len(relayed)/2])/float64(direct[len(direct)/2]), "relay/direct-p50")
	b.ReportMetric(0, "ns/op")
}
