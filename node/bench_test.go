package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// BenchmarkJoinToWritable: a new device joins with an invite, on loopback:
// from its request to its first write visible on the member, the member
// approving as soon as it sees the request (a person's reaction left out).
// Reports the median and p99 of the whole, and the median of each step:
// request shown on the member, device approved (it holds the keys), device
// writable (it replicated its own add), its write visible on the member.
func BenchmarkJoinToWritable(b *testing.B) {
	ctx := context.Background()
	a := startNode(b, named(loopbackConfig(b), "A"))
	peer := a.Addrs()[0].String()
	info, err := a.CreateSpace(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	id := info.ID
	poll := func(cond func() bool) {
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatal("timed out")
			}
			time.Sleep(time.Millisecond)
		}
	}
	var total []time.Duration
	var steps [4][]time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		c := startNode(b, named(loopbackConfig(b, peer), fmt.Sprintf("device %d", i)))
		poll(func() bool { return len(c.host.Network().ConnsToPeer(a.host.ID())) > 0 })
		inv, err := a.CreateInvite(ctx, id, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		st, err := c.Join(ctx, api.JoinWith{Invite: inv.Link})
		if err != nil {
			b.Fatal(err)
		}
		var req api.Request
		poll(func() bool {
			for _, r := range a.Requests() {
				if r.Code == st.Code {
					req = r
					return true
				}
			}
			return false
		})
		shown := time.Since(start)
		if err := a.Approve(ctx, req.ID, st.Code); err != nil {
			b.Fatal(err)
		}
		poll(func() bool { i, _ := c.Space(id); return i.Approved })
		approved := time.Since(start)
		poll(func() bool { i, _ := c.Space(id); return i.Writer })
		writable := time.Since(start)
		key := fmt.Sprintf("first/%d", i)
		if err := c.Put(ctx, id, key, []byte("hello")); err != nil {
			b.Fatal(err)
		}
		poll(func() bool { e, _ := a.Get(id, key); return len(e.Versions) > 0 })
		d := time.Since(start)
		b.StopTimer()
		total = append(total, d)
		for s, v := range []time.Duration{shown, approved - shown, writable - approved, d - writable} {
			steps[s] = append(steps[s], v)
		}
		c.Close()
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(quantile(total, 0.5)), "p50-ms")
	b.ReportMetric(ms(quantile(total, 0.99)), "p99-ms")
	for s, name := range []string{"shown-ms", "approved-ms", "writable-ms", "visible-ms"} {
		b.ReportMetric(ms(quantile(steps[s], 0.5)), name)
	}
	b.ReportMetric(0, "ns/op")
}

// quantile returns the q-quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// BenchmarkEphemeralLine: members' app messages between three nodes in a
// line, A–B–C (A and C are not connected): b.N messages sent on A and
// received on C, with at most 64 in flight. Reports messages/s and the
// p50 and p99 latency; with one in flight (MYCEL_BENCH_INFLIGHT=1) the
// latency is the path's, not the queue's.
func BenchmarkEphemeralLine(b *testing.B) {
	inflight := 64
	if s := os.Getenv("MYCEL_BENCH_INFLIGHT"); s != "" {
		var err error
		if inflight, err = strconv.Atoi(s); err != nil || inflight < 1 {
			b.Fatalf("MYCEL_BENCH_INFLIGHT=%q", s)
		}
	}
	ctx := context.Background()
	a := startNode(b, named(loopbackConfig(b), "A"))
	bn := startNode(b, named(loopbackConfig(b, a.Addrs()[0].String()), "B"))
	c := startNode(b, named(loopbackConfig(b, bn.Addrs()[0].String()), "C"))
	info, err := a.CreateSpace(ctx, "line")
	if err != nil {
		b.Fatal(err)
	}
	id := info.ID
	approveTB(b, a, bn, id)
	approveTB(b, bn, c, id) // C reaches the space through B only
	eventually(b, time.Minute, func() error {
		ds, err := c.Devices(id)
		if err != nil {
			return err
		}
		online := 0
		for _, d := range ds {
			if d.Online {
				online++
			}
		}
		if online != 3 {
			return fmt.Errorf("C sees %d of 3 devices online", online)
		}
		return nil
	})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, _, err := c.Listen(lctx, id, "bench")
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	sem := make(chan struct{}, inflight)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range b.N {
			select {
			case m, ok := <-msgs:
				if !ok {
					return
				}
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(m.Data)))
				lat = append(lat, time.Since(sent))
				<-sem
			case <-time.After(30 * time.Second):
				return
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		sem <- struct{}{}
		data := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
		if err := a.Send(ctx, id, "bench", data); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) != b.N {
		b.Fatalf("C received %d of %d messages", len(lat), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(quantile(lat, 0.5))/float64(time.Microsecond), "p50-µs")
	b.ReportMetric(float64(quantile(lat, 0.99))/float64(time.Microsecond), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

// approveTB signs b in to space id by a's hand and waits until b can
// write.
func approveTB(t testing.TB, a, b *Node, id string) {
	t.Helper()
	approve(t, a, b, id, "joined")
	eventually(t, time.Minute, func() error {
		if i, _ := b.Space(id); !i.Writer {
			return fmt.Errorf("not a writer yet")
		}
		return nil
	})
}
