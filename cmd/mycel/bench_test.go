package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
)

// watch opens an SSE watch of prefix on d and returns the keys of the
// changes as they arrive.
func (d *daemon) watch(id, prefix string) (<-chan string, func()) {
	d.t.Helper()
	req, err := http.NewRequest("GET", "http://"+d.api+"/v1/spaces/"+id+"/watch?prefix="+prefix, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		d.t.Fatalf("watch: %s", resp.Status)
	}
	keys := make(chan string, 1024)
	go func() {
		defer close(keys)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e api.Entry
			if json.Unmarshal([]byte(data), &e) == nil {
				keys <- e.Key
			}
		}
	}()
	return keys, func() { resp.Body.Close() }
}

// BenchmarkPutVisible: a put on A's API, until B's API reports it (an SSE
// watch event), over two daemons on loopback: p50 and p99 of 1,000 puts
// made one after another. Run with -benchtime 1x.
func BenchmarkPutVisible(b *testing.B) {
	const puts = 1000
	a := newDaemon(b)
	bb := newDaemon(b, "--peer", a.peerAddr())
	id := createSpace(b, a, bb)
	waitFor(b, 30*time.Second, func() error { return converged(id, 1+signInEntries, a, bb) })
	keys, stop := bb.watch(id, "lat/")
	defer stop()
	lat := make([]time.Duration, 0, puts)
	b.ResetTimer()
	for range b.N {
		lat = lat[:0]
		for i := range puts {
			key := fmt.Sprintf("lat/%d", i)
			start := time.Now()
			a.put(id, key, []byte("x"))
			deadline := time.After(10 * time.Second)
		wait:
			for {
				select {
				case k, ok := <-keys:
					if !ok {
						b.Fatal("watch ended")
					}
					if k == key {
						break wait
					}
				case <-deadline:
					b.Fatalf("%s not visible on B after 10 s", key)
				}
			}
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleRSS: the resident memory of a daemon holding a space of
// MYCEL_BENCH_ENTRIES (default 1,000,000) entries of 100 bytes, idle for
// 20 s after start. Run with -benchtime 1x.
func BenchmarkIdleRSS(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("MYCEL_BENCH_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	dir, id := fill(b, n, 100, nil)
	b.Logf("filled %d entries in %v", n, time.Since(start))
	b.ResetTimer()
	var rss float64
	for range b.N {
		d := &daemon{t: b, dir: dir}
		d.start()
		if got := d.space(id).Entries; got != uint64(n+1) {
			b.Fatalf("daemon holds %d entries", got)
		}
		time.Sleep(20 * time.Second)
		rss = vmRSS(b, d.cmd.Process.Pid)
		d.kill()
	}
	b.ReportMetric(rss/(1<<20), "RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

// vmRSS reads a process's resident set size in bytes from /proc.
func vmRSS(t testing.TB, pid int) float64 { return procStatus(t, pid, "VmRSS:") }

// procStatus reads a size in kB from /proc/<pid>/status, in bytes.
func procStatus(t testing.TB, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == field {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no %s", field)
	return 0
}

// BenchmarkCatchUpRSS: B, a new writer of a space whose origin A holds
// MYCEL_BENCH_ENTRIES (default 1,000,000) entries of 100 bytes, catches
// up from A. B's resident memory is sampled every 100 ms during the
// catch-up (peak-RSS-MiB); then B is stopped, started again and left idle
// for 20 s (idle-RSS-MiB). Run with -benchtime 1x.
func BenchmarkCatchUpRSS(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("MYCEL_BENCH_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	var peak, idle float64
	var took time.Duration
	for range b.N {
		bb := newDaemon(b)
		start := time.Now()
		dirA, id := fill(b, n, 100, func(nd *node.Node, id string) { approveByNode(b, nd, bb, id) })
		b.Logf("filled %d entries in %v", n, time.Since(start))
		a := &daemon{t: b, dir: dirA}
		a.start()
		bb.stop()
		bb.extra = []string{"--peer", a.peerAddr()}
		b.ResetTimer()
		start = time.Now()
		bb.start()
		peak = 0
		var peakAnon, peakFile, peakHeap, peakSys float64
		total := uint64(n + 1 + signInEntries)
		deadline := time.Now().Add(30 * time.Minute)
		for last := time.Now(); ; {
			if r := vmRSS(b, bb.cmd.Process.Pid); r > peak {
				peak = r
				peakAnon, peakFile = procStatus(b, bb.cmd.Process.Pid, "RssAnon:"), procStatus(b, bb.cmd.Process.Pid, "RssFile:")
				peakHeap, peakSys = bb.metric("go_memstats_heap_inuse_bytes"), bb.metric("go_memstats_sys_bytes")
			}
			if time.Since(last) > time.Second {
				last = time.Now()
				if bb.space(id).Entries >= total {
					break
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("B holds %d of %d entries after 30 min", bb.space(id).Entries, total)
			}
			time.Sleep(100 * time.Millisecond)
		}
		took = time.Since(start)
		b.StopTimer()
		b.Logf("at the peak: %.0f MiB anonymous, %.0f MiB file-backed (mapped badger files); Go heap in use %.0f MiB, from the OS %.0f MiB",
			peakAnon/(1<<20), peakFile/(1<<20), peakHeap/(1<<20), peakSys/(1<<20))
		bb.stop()
		bb.start()
		if got := bb.space(id).Entries; got != total {
			b.Fatalf("B holds %d entries after restart", got)
		}
		time.Sleep(20 * time.Second)
		idle = vmRSS(b, bb.cmd.Process.Pid)
		b.Logf("idle: %.0f MiB anonymous, %.0f MiB file-backed", procStatus(b, bb.cmd.Process.Pid, "RssAnon:")/(1<<20), procStatus(b, bb.cmd.Process.Pid, "RssFile:")/(1<<20))
		bb.stop()
		a.stop()
	}
	b.ReportMetric(peak/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(idle/(1<<20), "idle-RSS-MiB")
	b.ReportMetric(took.Seconds(), "catchup-s")
	b.ReportMetric(0, "ns/op")
}
