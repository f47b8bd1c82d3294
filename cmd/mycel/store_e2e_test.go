package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node"
)

// stop ends the daemon as a person does (SIGTERM: a clean shutdown).
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			d.t.Fatalf("daemon %s: %v; stderr:\n%s", d.dir, err, d.stderr)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		d.t.Fatalf("daemon %s did not stop; stderr:\n%s", d.dir, d.stderr)
	}
}

// runMycel runs the binary to its end (bounded by timeout) and returns its
// output and exit status.
func runMycel(t *testing.T, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mycelBin, args...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case ctx.Err() != nil:
		t.Fatalf("mycel %s: still running after %v:\n%s", strings.Join(args, " "), timeout, out)
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return "", 0
}

// storeFile returns the largest file of dir's store with ext.
func storeFile(t *testing.T, dir, ext string) string {
	t.Helper()
	store := filepath.Join(dir, node.StoreDir)
	ents, err := os.ReadDir(store)
	if err != nil {
		t.Fatal(err)
	}
	best, size := "", int64(-1)
	for _, e := range ents {
		fi, _ := e.Info()
		if strings.HasSuffix(e.Name(), ext) && fi.Size() > size {
			best, size = filepath.Join(store, e.Name()), fi.Size()
		}
	}
	if best == "" {
		t.Fatalf("no %s in %s", ext, store)
	}
	return best
}

// newestTable returns the store's table with the highest number.
func newestTable(t *testing.T, dir string) string {
	t.Helper()
	store := filepath.Join(dir, node.StoreDir)
	m, _ := filepath.Glob(filepath.Join(store, "*.sst"))
	if len(m) == 0 {
		t.Fatalf("no table in %s", store)
	}
	slices.Sort(m)
	return m[len(m)-1]
}

func damageAt(t *testing.T, path string, frac float64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if _, err := f.WriteAt(b, int64(float64(fi.Size())*frac)); err != nil {
		t.Fatal(err)
	}
}

func flipBit(t *testing.T, path string, frac float64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[int(float64(len(data))*frac)] ^= 0x04
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestE2EDamagedStoreRepair: B, one of three writers, is stopped and its
// store damaged in each of the ways found by hand (64 bytes overwritten in
// the newest table, the table cut in half, the value log cut in half or
// with a flipped bit, the MANIFEST deleted). The daemon refuses to start
// with a message naming the data directory, the damage and mycel repair;
// mycel repair sets the store aside and fetches everything back from A
// and C; B then holds every key, shows the same view digest as A and C,
// and its own feed goes on without a fork (A and C accept its next
// writes).
func TestE2EDamagedStoreRepair(t *testing.T) {
	a := newDaemon(t)
	b := newDaemon(t, "--peer", a.peerAddr())
	c := newDaemon(t, "--peer", a.peerAddr(), "--peer", b.peerAddr())
	id := createSpace(t, a, b, c)
	for _, d := range []*daemon{b, c} {
		waitFor(t, 30*time.Second, func() error {
			if !d.space(id).Writer {
				return fmt.Errorf("%s not a writer yet", d.dir)
			}
			return nil
		})
	}
	value := bytes.Repeat([]byte("v"), 300)
	total := uint64(1 + 2*signInEntries) // A's create, two sign-ins
	put := func(d *daemon, prefix string, n int) {
		for i := range n {
			d.put(id, fmt.Sprintf("%s/%03d", prefix, i), value)
		}
		total += uint64(n)
	}
	put(a, "a", 100)
	put(b, "b", 100)
	put(c, "c", 50)
	waitFor(t, 60*time.Second, func() error { return converged(id, total, a, b, c) })
	feedB := b.space(id).Feed

	damages := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"sst overwritten", func(t *testing.T, dir string) {
			damageAt(t, newestTable(t, dir), 0.5, bytes.Repeat([]byte{0x5A}, 64))
		}},
		{"sst truncated", func(t *testing.T, dir string) {
			p := newestTable(t, dir)
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()/2)
		}},
		{"vlog truncated", func(t *testing.T, dir string) {
			p := storeFile(t, dir, ".vlog")
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()/2)
		}},
		{"vlog bit flip", func(t *testing.T, dir string) { flipBit(t, storeFile(t, dir, ".vlog"), 0.6) }},
		{"vlog overwritten", func(t *testing.T, dir string) {
			damageAt(t, storeFile(t, dir, ".vlog"), 0.5, bytes.Repeat([]byte{0x5A}, 64))
		}},
		{"MANIFEST deleted", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, node.StoreDir, "MANIFEST")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for round, dm := range damages {
		t.Logf("%s", dm.name)
		b.stop()
		dm.damage(t, b.dir)

		out, code := runMycel(t, 30*time.Second, "daemon", "--data", b.dir, "--mdns=false",
			"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
		if code == 0 || !strings.Contains(out, "store is damaged") || !strings.Contains(out, "mycel repair") ||
			!strings.Contains(out, b.dir) || strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
			t.Fatalf("%s: the daemon did not refuse clearly (exit %d):\n%s", dm.name, code, out)
		}
		t.Logf("refused: %s", firstLine(out))

		out, code = runMycel(t, 30*time.Second, "check", "--data", b.dir)
		if code != 1 || !strings.Contains(out, "DAMAGED") {
			t.Fatalf("%s: check (exit %d):\n%s", dm.name, code, out)
		}

		out, code = runMycel(t, 120*time.Second, "repair", "--data", b.dir, "--mdns=false", "--settle", "2s",
			"--peer", a.peerAddr(), "--peer", c.peerAddr(), "--listen", "/ip4/127.0.0.1/tcp/0")
		if code != 0 || !strings.Contains(out, "damaged store kept as") {
			t.Fatalf("%s: repair (exit %d):\n%s", dm.name, code, out)
		}
		asides, _ := filepath.Glob(filepath.Join(b.dir, node.StoreDir+".damaged-*"))
		if len(asides) != round+1 {
			t.Fatalf("%s: %d stores set aside, want %d", dm.name, len(asides), round+1)
		}

		out, code = runMycel(t, 60*time.Second, "check", "--data", b.dir)
		if code != 0 || !strings.Contains(out, "ok") {
			t.Fatalf("%s: check after repair (exit %d):\n%s", dm.name, code, out)
		}

		b.start()
		if got := b.space(id); got.Feed != feedB || !got.Writer {
			t.Fatalf("%s: after repair B is %+v; its feed was %s", dm.name, got, feedB)
		}
		waitFor(t, 60*time.Second, func() error { return converged(id, total, a, b, c) })
		// B's feed goes on where its peers saw it end: they accept it.
		put(b, fmt.Sprintf("after%d", round), 5)
		waitFor(t, 60*time.Second, func() error { return converged(id, total, a, b, c) })
	}
	for _, d := range []*daemon{a, b, c} {
		if s := d.stderr.String(); strings.Contains(s, "fork") || strings.Contains(s, "before a crash") {
			t.Errorf("daemon %s logged:\n%s", d.dir, s)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
