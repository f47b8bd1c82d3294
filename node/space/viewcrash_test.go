package space

// Crash test of the persisted view's checkpoints (see TESTING.md, "Crash
// tests"). TestViewKilledDuringCheckpoint runs a child process (this test
// binary, re-executed with -test.run=^TestViewCrashHelper$) that applies
// the ops of benchWorkload to a view kept in badger, from where its stored
// view is: after every chunk of ops it flushes and prints "ACK <ops
// applied>", then prints "CKPT" and flushes again with nothing new, which
// makes a checkpoint (in many small commits, each synced, so that it
// lasts). The parent SIGKILLs it a random few milliseconds after a
// "CKPT", opens a copy of the store and checks that the view opens, holds
// at least the acknowledged ops, equals the recomputation of the ops it
// holds (digest, and its registers against its incremental digest), and,
// given the rest, equals the recomputation of all. All rounds share one
// data directory, as on a real device.

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed/badgerstore"
)

const (
	viewCrashEnvDir = "MYCEL_VIEW_CRASH_DIR"
	viewCrashOps    = 40_000
	viewCrashChunk  = 3_000
)

var viewCrashKey = [auth.KeySize]byte{5}

func appliedOps(v *View) (n uint64) {
	for k := range v.feeds {
		n += v.Applied(k)
	}
	return n
}

// TestViewCrashHelper is the child process of TestViewKilledDuringCheckpoint;
// run on its own it does nothing.
func TestViewCrashHelper(t *testing.T) {
	dir := os.Getenv(viewCrashEnvDir)
	if dir == "" {
		return
	}
	fail := func(format string, args ...any) {
		fmt.Printf("FAIL "+format+"\n", args...)
		os.Exit(3)
	}
	time.AfterFunc(60*time.Second, func() { fail("not killed within 60 s") })
	origin, ops := benchWorkload(viewCrashOps)
	st, err := badgerstore.Open(dir)
	if err != nil {
		fail("open store: %v", err)
	}
	v, err := OpenView(origin, st, viewCrashKey, nil)
	if err != nil {
		fail("open view: %v", err)
	}
	kv := v.st.(*kvStore)
	kv.lim.checkpointOps, kv.lim.commitWrites = 1<<40, 100
	fmt.Printf("ready %d\n", appliedOps(v))
	n := 0
	for _, g := range ops {
		if g.index < v.Applied(g.feed) {
			continue
		}
		v.Apply(g.feed, g.index, g.op)
		if n++; n%viewCrashChunk != 0 {
			continue
		}
		if err := v.Flush(); err != nil {
			fail("flush: %v", err)
		}
		fmt.Printf("ACK %d\n", appliedOps(v))
		fmt.Printf("CKPT\n")
		if err := v.Flush(); err != nil {
			fail("checkpoint: %v", err)
		}
	}
	if err := v.Flush(); err != nil {
		fail("flush: %v", err)
	}
	fmt.Printf("ACK %d\nCKPT\n", appliedOps(v))
	if err := v.Flush(); err != nil {
		fail("checkpoint: %v", err)
	}
	fmt.Printf("all\n")
	select {}
}

func TestViewKilledDuringCheckpoint(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	seed := rand.Uint64()
	if s := os.Getenv("MYCEL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("replay with MYCEL_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	origin, ops := benchWorkload(viewCrashOps)
	want := oracle(origin, ops)
	dir := t.TempDir()
	acked := uint64(0)
	for round := range rounds {
		// Killed after the k-th checkpoint began, a few ms into it.
		k, delay := 1+rng.IntN(3), time.Duration(rng.IntN(15_000))*time.Microsecond
		lines := runViewCrashChild(t, dir, k, delay)
		for _, l := range lines {
			if strings.HasPrefix(l, "ACK ") {
				n, err := strconv.ParseUint(l[4:], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				acked = max(acked, n)
			}
		}

		// Check a copy; the next child goes on with the store as it is.
		cp := filepath.Join(t.TempDir(), "copy")
		if out, err := exec.Command("cp", "-a", dir, cp).CombinedOutput(); err != nil {
			t.Fatalf("copy: %v %s", err, out)
		}
		st, err := badgerstore.Open(cp)
		if err != nil {
			t.Fatal(err)
		}
		v, err := OpenView(origin, st, viewCrashKey, nil)
		if err != nil {
			t.Fatalf("round %d: reopen after the kill: %v", round, err)
		}
		kv := v.st.(*kvStore)
		t.Logf("round %d: killed %v into checkpoint %d; %d ops acknowledged, %d held, checkpoint at %d of %d", round, delay, k, acked, appliedOps(v), kv.ckpt, kv.flushed)
		if got := appliedOps(v); got < acked {
			t.Fatalf("round %d: %d ops held, %d acknowledged", round, got, acked)
		}
		var held []genOp
		for _, g := range ops {
			if g.index < v.Applied(g.feed) {
				held = append(held, g)
			}
		}
		if v.Digest() != oracle(origin, held) {
			t.Fatalf("round %d: the reopened view differs from the recomputation of the %d ops it holds", round, len(held))
		}
		checkAccount(t, v)
		for _, g := range ops {
			if g.index >= v.Applied(g.feed) {
				v.Apply(g.feed, g.index, g.op)
			}
		}
		if v.Digest() != want {
			t.Fatalf("round %d: given the rest, the view differs from the recomputation", round)
		}
		st.Close()
	}
}

// runViewCrashChild runs a child on dir and SIGKILLs it delay after its
// k-th "CKPT" line (or once it applied everything); it returns the
// child's complete lines.
func runViewCrashChild(t *testing.T, dir string, k int, delay time.Duration) []string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestViewCrashHelper$")
	cmd.Env = append(os.Environ(), viewCrashEnvDir+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	kill := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(out)
		ckpts := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			lines = append(lines, line)
			if line == "CKPT" {
				if ckpts++; ckpts == k {
					close(kill)
				}
			}
			if line == "all" && ckpts < k {
				close(kill)
			}
		}
	}()
	select {
	case <-kill:
		time.Sleep(delay)
	case <-done:
	case <-time.After(2 * time.Minute):
	}
	_ = cmd.Process.Kill()
	<-done
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by %v, not by our SIGKILL; stdout %q\nstderr:\n%s", err, lines, stderr.String())
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "FAIL") {
			t.Fatalf("child: %s", l)
		}
	}
	return lines
}
