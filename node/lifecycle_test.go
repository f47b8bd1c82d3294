package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/node/api"
)

// TestOwnerRefusesAfterClose: an owner starts and counts goroutines until
// it closes, then refuses; a child refuses when its parent closed; wait
// returns once nothing runs. Starts race with close under -race: every
// goroutine granted has finished when wait returns, and none starts later.
func TestOwnerRefusesAfterClose(t *testing.T) {
	root := newOwner(nil)
	child := newOwner(root)
	release := make(chan struct{})
	if !child.start(func(ctx context.Context) { <-release }) {
		t.Fatal("start refused before close")
	}
	if st := root.stats(); st.Running != 1 || st.Started != 1 {
		t.Fatalf("root counts %+v, want the child's goroutine", st)
	}
	root.refuse()
	if child.start(func(context.Context) { t.Error("ran after close") }) {
		t.Fatal("child started a goroutine after its parent refused")
	}
	if _, _, ok := child.hold(context.Background()); ok {
		t.Fatal("child granted a hold after its parent refused")
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := root.wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with a goroutine running: %v", err)
	}
	cancel()
	close(release)
	if err := root.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := root.stats(); st.Running != 0 || st.Refused != 2 || !st.Finished {
		t.Fatalf("root after wait: %+v", st)
	}

	// Starts racing close: what close's waiter sees finished is all that
	// ever ran.
	for round := 0; round < 50; round++ {
		o := newOwner(newOwner(nil))
		var ran, finished atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 20; j++ {
					o.start(func(ctx context.Context) {
						ran.Add(1)
						<-ctx.Done()
						finished.Add(1)
					})
				}
			}()
		}
		o.parent.close()
		o.refuse()
		if err := o.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		atDone := finished.Load()
		wg.Wait()
		st := o.stats()
		if st.Running != 0 || ran.Load() != atDone || finished.Load() != atDone || uint64(atDone) != st.Started {
			t.Fatalf("round %d: %d ran, %d finished when wait returned, %d after; stats %+v", round, ran.Load(), atDone, finished.Load(), st)
		}
		if st.Started+st.Refused != 8*20 {
			t.Fatalf("round %d: %+v does not account for 160 starts", round, st)
		}
	}
}

// nodeGoroutines counts the goroutines running code of package node (not
// its tests), with their stacks for a failure message.
func nodeGoroutines() (int, string) {
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Dir(self) + "/"
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	count := 0
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, dir) {
				continue
			}
			file := line[len(dir):]
			if i := strings.IndexByte(file, ':'); i > 0 {
				file = file[:i]
			}
			if strings.Contains(file, "/") || strings.HasSuffix(file, "_test.go") {
				continue
			}
			count++
			found = append(found, g)
			break
		}
	}
	return count, strings.Join(found, "\n\n")
}

// checkNoNodeGoroutines fails unless, soon after a node closed, no
// goroutine runs the node's code: Close waits for them, so this holds at
// once; the short poll only lets goroutines the test itself started (and
// that just returned from the node) unwind.
func checkNoNodeGoroutines(t *testing.T) {
	t.Helper()
	var stacks string
	for i := 0; i < 50; i++ {
		var c int
		if c, stacks = nodeGoroutines(); c == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("goroutines of the node still run after Close returned:\n%s", stacks)
}

// silentPeer listens on loopback and accepts connections without ever
// answering: a dial to it hangs until its context ends.
func silentPeer(t *testing.T) peer.AddrInfo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	return peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a}}
}

// TestHandlePeerFoundAfterClose: mDNS calls HandlePeerFound from its own
// goroutines, also while and after the node closes. Calls racing Close
// start dials that Close waits for; calls after Close start nothing.
func TestHandlePeerFoundAfterClose(t *testing.T) {
	p := silentPeer(t)
	for round := 0; round < 5; round++ {
		n, err := New(loopbackConfig(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					n.HandlePeerFound(p)
					runtime.Gosched()
				}
			}()
		}
		time.Sleep(20 * time.Millisecond) // let dials be in flight when Close starts
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if st := n.life.stats(); st.Running != 0 || !st.Finished {
			t.Fatalf("round %d: the node's owner after Close: %+v", round, st)
		}
		checkNoNodeGoroutines(t)
		// After Close: refused, counted, nothing runs.
		before := n.life.stats()
		for i := 0; i < 10; i++ {
			n.HandlePeerFound(p)
		}
		after := n.life.stats()
		if after.Running != 0 || after.Started != before.Started || after.Refused < before.Refused+10 {
			t.Fatalf("round %d: HandlePeerFound after Close: %+v, before %+v", round, after, before)
		}
		close(stop)
		wg.Wait()
		if st := n.life.stats(); st.Running != 0 {
			t.Fatalf("round %d: %d goroutines started after Close", round, st.Running)
		}
		checkNoNodeGoroutines(t)
	}
}

// TestStartRefusedAfterClose: once the node is closed its owners, the
// spaces' included, start nothing, and the API refuses with ErrClosed.
func TestStartRefusedAfterClose(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, loopbackConfig(t))
	info, err := n.CreateSpace(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := m.life.stats(); st.Running < 2 {
		t.Fatalf("space's owner before Close: %+v, want its refresher and asker", st)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]*owner{"node": n.life, "streams": n.streams, "calls": n.calls, "space": m.life} {
		if o.start(func(context.Context) { t.Errorf("%s: ran after Close", name) }) {
			t.Errorf("%s: start granted after Close", name)
		}
		if st := o.stats(); st.Running != 0 {
			t.Errorf("%s: %d running after Close", name, st.Running)
		}
	}
	if _, err := n.CreateSpace(ctx, "late"); !errors.Is(err, api.ErrClosed) {
		t.Errorf("CreateSpace after Close: %v", err)
	}
	if err := n.Put(ctx, info.ID, "k", []byte("v")); !errors.Is(err, api.ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if _, _, err := n.Watch(ctx, info.ID, ""); !errors.Is(err, api.ErrClosed) {
		t.Errorf("Watch after Close: %v", err)
	}
	checkNoNodeGoroutines(t)
}

// TestCloseWaitsForLeave: a leave in flight waits up to leaveWait for a
// peer to be served the removal. Close cuts that wait short and returns
// only once the leave returned, instead of closing the store under it;
// the space is gone at the next start.
func TestCloseWaitsForLeave(t *testing.T) {
	ctx := context.Background()
	cfg := loopbackConfig(t)
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := n.CreateSpace(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		left api.Left
		err  error
	}
	done := make(chan result, 1)
	go func() {
		l, err := n.LeaveSpace(ctx, info.ID)
		done <- result{l, err}
	}()
	// The leave waits for a peer (there is none) once it wrote its removal.
	eventually(t, 10*time.Second, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.leaveAt == 0 {
			return errors.New("the leave did not write its removal yet")
		}
		return nil
	})
	start := time.Now()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.left.Reached != 0 {
			t.Fatalf("leave cut short by Close: %+v %v", r.left, r.err)
		}
	default:
		t.Fatal("Close returned while LeaveSpace still ran")
	}
	if d := time.Since(start); d >= n.limits.Net.LeaveWait {
		t.Fatalf("Close took %v: it waited out the leave instead of cutting it short", d)
	}
	checkNoNodeGoroutines(t)
	n2 := startNode(t, cfg)
	if sp := n2.Spaces(); len(sp) != 0 {
		t.Fatalf("the space left is back after a restart: %+v", sp)
	}
	if keys, rec := spaceKeys(t, n2, info.ID); keys != 0 || rec {
		t.Fatalf("the store keeps %d keys of the space left, record %v", keys, rec)
	}
}

// TestCloseRacesLeaveAndStreams: Close racing leaves, new spaces, writes
// and API streams (under -race): every call returns, with ErrClosed once
// the node closes, and nothing of the node runs after Close.
func TestCloseRacesLeaveAndStreams(t *testing.T) {
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		n, err := New(loopbackConfig(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := 0; i < 4; i++ {
			info, err := n.CreateSpace(ctx, fmt.Sprintf("s%d", i))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, info.ID)
		}
		var wg sync.WaitGroup
		errc := make(chan error, 64)
		okOrClosed := func(what string, err error) {
			if err != nil && !errors.Is(err, api.ErrClosed) {
				errc <- fmt.Errorf("%s: %w", what, err)
			}
		}
		for i, id := range ids {
			wg.Add(3)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					_, err := n.LeaveSpace(ctx, id)
					okOrClosed("leave", err)
				}
			}()
			go func() {
				defer wg.Done()
				ch, errf, err := n.Watch(ctx, id, "")
				if err != nil {
					okOrClosed("watch", err)
					return
				}
				for range ch {
				}
				if err := errf(); err != nil && !errors.Is(err, api.ErrClosed) && !errors.Is(err, api.ErrBehind) {
					errc <- fmt.Errorf("watch ended: %w", err)
				}
			}()
			go func() {
				defer wg.Done()
				for j := 0; j < 20; j++ {
					if err := n.Put(ctx, id, fmt.Sprintf("k%d", j), []byte("v")); err != nil {
						return // closed, or the space was left
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := n.CreateSpace(ctx, "late"); err != nil {
					okOrClosed("create", err)
					return
				}
			}
		}()
		time.Sleep(time.Duration(round) * 30 * time.Millisecond)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		if st := n.life.stats(); st.Running != 0 || !st.Finished {
			t.Fatalf("round %d: owner after Close: %+v", round, st)
		}
		checkNoNodeGoroutines(t)
	}
}

// TestCloseEndsUnreadWatch: a watch whose client stopped reading (its
// buffer full) ends when the node closes, instead of keeping Close
// waiting until the client goes.
func TestCloseEndsUnreadWatch(t *testing.T) {
	ctx := context.Background()
	n, err := New(loopbackConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := n.CreateSpace(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	ch, errf, err := n.Watch(ctx, info.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 80; i++ { // more than the watch's buffer of 64
		if err := n.Put(ctx, info.ID, fmt.Sprintf("k%02d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() error {
		if len(ch) < cap(ch) {
			return fmt.Errorf("%d of %d buffered", len(ch), cap(ch))
		}
		return nil
	})
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return while a watch nobody reads is open")
	}
	got := 0
	for range ch {
		got++
	}
	if err := errf(); !errors.Is(err, api.ErrClosed) {
		t.Fatalf("the watch ended with %v after %d changes, want ErrClosed", err, got)
	}
	checkNoNodeGoroutines(t)
}

// TestShutdownDrains: Shutdown ends the API's streams with their last
// event (unavailable, over a real API server), waits for them and for a
// call in flight, refuses new calls, and flushes the spaces: a restart
// finds every write. A Shutdown whose context ends first returns its
// error and leaves the rest to Close.
func TestShutdownDrains(t *testing.T) {
	ctx := context.Background()
	cfg := loopbackConfig(t)
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := n.CreateSpace(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: n, Token: "t"}))
	defer srv.Close()
	c, err := api.NewClient(srv.URL, "t", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	watch, werr, err := c.Watch(ctx, info.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	msgs, merr, err := c.Listen(ctx, info.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := n.Put(ctx, info.ID, fmt.Sprintf("k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		select {
		case <-watch:
		case <-time.After(10 * time.Second):
			t.Fatalf("watch: %d of 10 changes", i)
		}
	}
	if st := n.streams.stats(); st.Running != 2 {
		t.Fatalf("streams: %+v, want the watch and the listener", st)
	}

	// A call in flight (a held call, as an API call is) keeps Shutdown
	// waiting; a context that ends first makes it give up, the node still
	// open to the call.
	_, release, err := n.call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = n.Shutdown(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a call in flight: %v", err)
	}
	// The streams ended with their last event, unavailable.
	for range watch {
	}
	var apiErr *api.APIError
	if err := werr(); !errors.As(err, &apiErr) || apiErr.Code != "unavailable" {
		t.Fatalf("watch ended with %v, want unavailable", err)
	}
	for range msgs {
	}
	if err := merr(); !errors.As(err, &apiErr) || apiErr.Code != "unavailable" {
		t.Fatalf("listen ended with %v, want unavailable", err)
	}
	if st := n.streams.stats(); st.Running != 0 {
		t.Fatalf("streams after Shutdown: %+v", st)
	}
	if err := n.Put(ctx, info.ID, "late", []byte("v")); !errors.Is(err, api.ErrClosed) {
		t.Fatalf("Put during Shutdown: %v", err)
	}
	// The call still runs, the spaces with it.
	if st := n.calls.stats(); st.Running != 1 {
		t.Fatalf("calls: %+v", st)
	}
	if st := n.life.stats(); st.Finished {
		t.Fatalf("node's goroutines ended while a call runs: %+v", st)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		release()
	}()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := n.life.stats(); !st.Finished || st.Running != 0 {
		t.Fatalf("node after Shutdown: %+v", st)
	}
	checkNoNodeGoroutines(t)
	if err := n.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}

	n2 := startNode(t, cfg)
	for i := 0; i < 10; i++ {
		if e, err := n2.Get(info.ID, fmt.Sprintf("k%d", i)); err != nil || len(e.Versions) != 1 {
			t.Fatalf("after a restart, k%d: %+v %v", i, e, err)
		}
	}
	if _, err := n2.Get(info.ID, "late"); err != nil {
		t.Fatal(err)
	}
}
