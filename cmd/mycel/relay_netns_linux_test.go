package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mycelsync/mycel/node/api"
)

// ipCmd runs ip with args and fails the test on an error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// netnsLink makes network namespace ns with a veth pair to the test's
// namespace: self/32 on its end in ns, relay/32 on the end in the test's,
// and a route to the other only, so that from ns nothing but relay is
// reachable. Cleanup removes both (deleting the namespace deletes the
// pair).
func netnsLink(t *testing.T, ns, hostIf, nsIf, self, relay string) {
	t.Helper()
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ipCmd(t, "link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostIf).Run() })
	ipCmd(t, "link", "set", nsIf, "netns", ns)
	ipCmd(t, "addr", "add", relay+"/32", "dev", hostIf)
	ipCmd(t, "link", "set", hostIf, "up")
	ipCmd(t, "route", "add", self+"/32", "dev", hostIf)
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	ipCmd(t, "-n", ns, "addr", "add", self+"/32", "dev", nsIf)
	ipCmd(t, "-n", ns, "link", "set", nsIf, "up")
	ipCmd(t, "-n", ns, "route", "add", relay+"/32", "dev", nsIf)
}

// netnsClient is an HTTP client whose connections are made in network
// namespace ns: each dial runs on an OS thread moved into ns, which ends
// with its goroutine (left locked), so no other goroutine runs there.
func netnsClient(ns string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			f, err := os.Open("/var/run/netns/" + ns)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// mycelIn runs the mycel CLI in network namespace ns.
func mycelIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, mycelBin}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mycel %v in %s: %v\n%s", args, ns, err, out)
	}
	return string(out)
}

// TestE2ERelayNetns: daemons A and B, members of a space, restarted in
// network namespaces of their own, each reaching only the relay (in the
// test's namespace): B, given A's circuit address as its static peer,
// syncs with A through the relay both ways; A and B see each other online
// and exchange app messages both ways through the relay's gossipsub (their
// only connection to each other is the relayed one, on which gossipsub
// opens no stream); a third device C, in a namespace of its own reaching
// only the relay, joins by invite (request, approval) through the relay
// and gets the space; and A and B sync again after the relay was killed
// and restarted.
func TestE2ERelayNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root for ip netns (TESTING.md)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("needs iproute2 (TESTING.md)")
	}
	// A subnet and names of our own: other tests may run at once.
	var net10 int
	for {
		net10 = 100 + rand.IntN(150)
		out, _ := exec.Command("ip", "-br", "addr").Output()
		if !strings.Contains(string(out), fmt.Sprintf(" 10.%d.", net10)) {
			break
		}
	}
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	relayIP := fmt.Sprintf("10.%d.0.1", net10)
	nsA, nsB := "mycA"+tag, "mycB"+tag
	netnsLink(t, nsA, "mra"+tag, "mxa"+tag, fmt.Sprintf("10.%d.1.2", net10), relayIP)
	netnsLink(t, nsB, "mrb"+tag, "mxb"+tag, fmt.Sprintf("10.%d.2.2", net10), relayIP)

	rlisten := fmt.Sprintf("/ip4/%s/tcp/%d", relayIP, freeTCPPort(t))
	rdir := t.TempDir()
	r := startRelay(t, rdir, "--listen", rlisten, "--metrics", "127.0.0.1:0")
	raddr := rlisten + "/p2p/" + r.id

	// A makes the space and signs B in on loopback, in the test's
	// namespace (C below signs in through the relay).
	a := newDaemon(t)
	b := newDaemon(t, "--peer", a.peerAddr())
	id := createSpace(t, a, b)
	a.put(id, "before", []byte("signed in directly"))
	waitValue(t, b, id, "before", []byte("signed in directly"))
	var st api.Status
	a.request("GET", "/v1/status", nil, &st)
	a.kill()
	b.kill()

	// Now each in a namespace that reaches only the relay.
	a.netns, a.client, a.extra = nsA, netnsClient(nsA), []string{"--relay", raddr}
	a.start()
	t.Cleanup(func() {
		if t.Failed() {
			var pa, pb []api.Peer
			a.request("GET", "/v1/peers", nil, &pa)
			b.request("GET", "/v1/peers", nil, &pb)
			t.Logf("A's peers: %+v\nB's peers: %+v", pa, pb)
		}
	})
	ra := reservedOn(t, a, r.id)
	t.Logf("A's circuit addresses: %v", ra.Circuit)
	b.netns, b.client, b.extra = nsB, netnsClient(nsB), append([]string{"--relay", raddr}, peerFlags(ra.Circuit)...)
	b.start()
	reservedOn(t, b, r.id)
	waitFor(t, 30*time.Second, func() error {
		if relayed, direct := relayedTo(b, st.PeerID); !relayed || direct {
			return fmt.Errorf("B to A: relayed %v, direct %v", relayed, direct)
		}
		return nil
	})
	// The session starts as the relayed connection does, not at the next
	// resync (every 10 s): a peer reached only through a relay counts as
	// connected.
	start := time.Now()
	a.put(id, "from-a", []byte("hello B"))
	waitValue(t, b, id, "from-a", []byte("hello B"))
	took := time.Since(start)
	t.Logf("put on A visible on B through the relay: %v", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("put on A took %v to reach B through the relay", took)
	}
	start = time.Now()
	b.put(id, "from-b", []byte("hello A"))
	waitValue(t, a, id, "from-b", []byte("hello A"))
	t.Logf("put on B visible on A through the relay: %v", time.Since(start).Round(time.Millisecond))
	waitFor(t, 30*time.Second, func() error { return converged(id, 0, a, b) })

	out := mycelIn(t, nsB, "peers", "--data", b.dir)
	if !strings.Contains(out, "relayed") || !strings.Contains(out, r.id+" (relay)") {
		t.Errorf("mycel peers on B:\n%s", out)
	}
	t.Logf("mycel peers on B:\n%s", out)
	if out := mycelIn(t, nsA, "status", "--data", a.dir); !strings.Contains(out, r.id+", connected, reserved for") {
		t.Errorf("mycel status on A:\n%s", out)
	}

	// Messages through the relay's gossipsub: presence both ways, then
	// app messages both ways. The relay routes the space's topic once it
	// holds a confirmed mirror token of it (the daemons hand it theirs).
	onlineOn(t, a, id, b.space(id).Feed)
	onlineOn(t, b, id, a.space(id).Feed)
	t.Cleanup(func() {
		if t.Failed() {
			resp, err := http.Get(r.metrics)
			if err == nil {
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "router") || strings.Contains(sc.Text(), "mirror") {
						t.Log(sc.Text())
					}
				}
			}
		}
	})
	fromA := listenIn(t, nsB, b.dir, id)
	fromB := listenIn(t, nsA, a.dir, id)
	sendUntilGot(t, a, fromA, id, "hello B, through the relay")
	sendUntilGot(t, b, fromB, id, "hello A, through the relay")
	if relayed, direct := relayedTo(b, st.PeerID); !relayed || direct {
		t.Errorf("B to A after the messages: relayed %v, direct %v", relayed, direct)
	}
	fwd := relayMetric(t, r, `mycel_relay_router_envelopes_total{result="forwarded"}`)
	if fwd < 4 {
		t.Errorf("the relay forwarded %v envelopes", fwd)
	}
	t.Logf("the relay forwarded %v envelopes", fwd)

	// A third device, reaching only the relay, joins by invite: its
	// request reaches A, and A's approval reaches it, through the relay's
	// gossipsub; then it syncs the space through the relay.
	nsC := "mycC" + tag
	netnsLink(t, nsC, "mrc"+tag, "mxc"+tag, fmt.Sprintf("10.%d.3.2", net10), relayIP)
	c := &daemon{t: t, dir: t.TempDir(), netns: nsC, client: netnsClient(nsC), extra: []string{"--relay", raddr}}
	c.start()
	reservedOn(t, c, r.id)
	approveOn(t, a, c, id)
	waitValue(t, c, id, "from-b", []byte("hello A"))
	if _, direct := relayedTo(c, st.PeerID); direct {
		t.Error("C has a direct connection to A")
	}
	onlineOn(t, b, id, c.space(id).Feed)
	if got := relayMetric(t, r, `mycel_relay_router_envelopes_total{result="forwarded"}`); got <= fwd {
		t.Errorf("the relay forwarded nothing of the sign-in: %v, then %v", fwd, got)
	}

	// The relay killed and restarted: both reserve again, B reaches A
	// through it again (there is no other way) and the space syncs.
	r.cmd.Process.Kill()
	r.cmd.Wait()
	waitFor(t, 30*time.Second, func() error {
		if relayed, _ := relayedTo(b, st.PeerID); relayed {
			return fmt.Errorf("B still has a relayed connection to A")
		}
		return nil
	})
	a.put(id, "while-down", []byte("waits for the relay"))
	r2 := startRelay(t, rdir, "--listen", rlisten)
	if r2.id != r.id {
		t.Fatalf("relay's ID changed: %s, %s", r.id, r2.id)
	}
	reservedOn(t, a, r.id)
	reservedOn(t, b, r.id)
	waitValue(t, b, id, "while-down", []byte("waits for the relay"))
	b.put(id, "after", []byte("the restart"))
	waitValue(t, a, id, "after", []byte("the restart"))
	// The values may also have come through the relay's mirror, before
	// B's dial of A's circuit address (its static peer, retried) is back.
	waitFor(t, 30*time.Second, func() error {
		if relayed, direct := relayedTo(b, st.PeerID); !relayed || direct {
			return fmt.Errorf("B to A after the relay's restart: relayed %v, direct %v", relayed, direct)
		}
		return nil
	})
}

func peerFlags(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, "--peer", a)
	}
	return out
}

// onlineOn waits until d sees the device whose feed is feed online in
// space id.
func onlineOn(t *testing.T, d *daemon, id, feed string) {
	t.Helper()
	waitFor(t, 60*time.Second, func() error {
		var ds []api.Device
		d.request("GET", "/v1/spaces/"+id+"/devices", nil, &ds)
		for _, dev := range ds {
			if dev.Feed == feed && dev.Online {
				return nil
			}
		}
		return fmt.Errorf("%s not online: %+v", feed, ds)
	})
}

// listenIn runs `mycel listen` on the daemon of dir in network namespace
// ns and passes on the app messages it prints.
func listenIn(t *testing.T, ns, dir, id string) <-chan api.Message {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, mycelBin, "listen", id, "--json", "--data", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mycel listen in %s: stderr:\n%s", ns, stderr)
		}
	})
	ch := make(chan api.Message, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m api.Message
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				ch <- m
			}
		}
		close(ch)
	}()
	return ch
}

// sendUntilGot sends text on topic "chat" from d until ch gets it: the
// listener and the relay's mesh may not be in place for the first ones.
func sendUntilGot(t *testing.T, d *daemon, ch <-chan api.Message, id, text string) {
	t.Helper()
	start := time.Now()
	waitFor(t, 60*time.Second, func() error {
		if st := d.request("POST", "/v1/spaces/"+id+"/messages", api.SendRequest{Topic: "chat", Data: []byte(text)}, nil); st >= 300 {
			return fmt.Errorf("send: status %d", st)
		}
		timeout := time.After(time.Second)
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					t.Fatal("mycel listen ended")
				}
				if m.Topic == "chat" && string(m.Data) == text {
					return nil
				}
			case <-timeout:
				return fmt.Errorf("%q not received yet", text)
			}
		}
	})
	t.Logf("%q received after %v", text, time.Since(start).Round(time.Millisecond))
}
