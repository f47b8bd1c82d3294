package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// freeTCPPort is a loopback TCP port free a moment ago: the relay is
// restarted on it, so that the daemons' --relay address stays right.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// reservedOn waits until d holds a reservation on the relay with peer ID
// relay and returns its state.
func reservedOn(t *testing.T, d *daemon, relay string) api.Relay {
	t.Helper()
	var got api.Relay
	waitFor(t, 30*time.Second, func() error {
		var st api.Status
		d.request("GET", "/v1/status", nil, &st)
		for _, r := range st.Relays {
			if r.ID == relay && r.ReservedUntil != nil && len(r.Circuit) > 0 {
				got = r
				return nil
			}
		}
		return fmt.Errorf("no reservation on %s: %+v", relay, st.Relays)
	})
	return got
}

// getValue is the winning value of key on d, or nil.
func getValue(d *daemon, id, key string) []byte {
	var e api.Entry
	if d.request("GET", "/v1/spaces/"+id+"/keys/"+key, nil, nil) != http.StatusOK {
		return nil
	}
	d.request("GET", "/v1/spaces/"+id+"/keys/"+key, nil, &e)
	if len(e.Versions) == 0 || e.Versions[0].Deleted {
		return nil
	}
	return e.Versions[0].Value
}

func waitValue(t *testing.T, d *daemon, id, key string, want []byte) {
	t.Helper()
	waitFor(t, 60*time.Second, func() error {
		if got := getValue(d, id, key); !bytes.Equal(got, want) {
			return fmt.Errorf("%s on %s: %q, want %q", key, d.dir, got, want)
		}
		return nil
	})
}

// relayedTo reports whether d has a relayed connection to peer id (and
// whether it has a direct one as well).
func relayedTo(d *daemon, id string) (relayed, direct bool) {
	var peers []api.Peer
	d.request("GET", "/v1/peers", nil, &peers)
	for _, p := range peers {
		if p.ID != id {
			continue
		}
		for _, c := range p.Conns {
			if c.Transport == "relayed" {
				relayed = true
			} else {
				direct = true
			}
		}
	}
	return relayed, direct
}

// TestE2ERelayDaemons: two daemons with --relay reserve a slot on a real
// `mycel relay` and show it in their status; B, given only A's circuit
// address as a static peer, reaches A through the relay and the space
// syncs; the relay killed and restarted on the same port, both reserve
// again and the space keeps syncing (through the relay, or directly when
// B dialled A's loopback addresses meanwhile; B restarted goes through the
// relay again, and then directly too once it dials those addresses).
func TestE2ERelayDaemons(t *testing.T) {
	rdir := t.TempDir()
	rlisten := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freeTCPPort(t))
	r := startRelay(t, rdir, "--listen", rlisten)
	raddr := rlisten + "/p2p/" + r.id

	a := newDaemon(t, "--relay", raddr)
	b := newDaemon(t, "--peer", a.peerAddr())
	t.Cleanup(func() {
		if t.Failed() {
			var pa, pb []api.Peer
			a.request("GET", "/v1/peers", nil, &pa)
			b.request("GET", "/v1/peers", nil, &pb)
			t.Logf("A's peers: %+v\nB's peers: %+v\nA's log:\n%s\nB's log:\n%s", pa, pb, a.stderr, b.stderr)
		}
	})
	last := time.Now()
	phase := func(what string) {
		t.Logf("%s: %v", what, time.Since(last).Round(time.Millisecond))
		last = time.Now()
	}
	id := createSpace(t, a, b) // signed in directly
	phase("B signed in")

	ra := reservedOn(t, a, r.id)
	phase("A reserved")
	var circuit string
	for _, c := range ra.Circuit {
		if strings.HasPrefix(c, raddr+"/p2p-circuit/p2p/") {
			circuit = c
		}
	}
	if circuit == "" || ra.LimitSeconds == 0 || ra.LimitBytes == 0 {
		t.Fatalf("A's relay state: %+v", ra)
	}
	var st api.Status
	a.request("GET", "/v1/status", nil, &st)
	found := false
	for _, addr := range st.Addrs {
		found = found || addr == circuit
	}
	if !found {
		t.Errorf("A's addresses lack its circuit address %s: %v", circuit, st.Addrs)
	}
	out, stderr, code := mycel(t, "status", "--data", a.dir)
	if code != 0 || !strings.Contains(out, "relay:") || !strings.Contains(out, r.id+", connected, reserved for") {
		t.Errorf("mycel status: exit %d\n%s%s", code, out, stderr)
	}
	t.Logf("mycel status on A:\n%s", out)

	// B knows A only by its circuit address now.
	b.kill()
	b.extra = []string{"--relay", raddr, "--peer", circuit}
	b.start()
	reservedOn(t, b, r.id)
	a.put(id, "k1", []byte("through the relay"))
	waitValue(t, b, id, "k1", []byte("through the relay"))
	phase("k1 through the relay")
	relayed, direct := relayedTo(b, st.PeerID)
	if !relayed {
		t.Errorf("B has no relayed connection to A (direct: %v)", direct)
	}
	t.Logf("B to A: relayed %v, direct %v", relayed, direct)
	if out, _, _ := mycel(t, "peers", "--data", b.dir); !strings.Contains(out, "relayed") || !strings.Contains(out, r.id+" (relay)") {
		t.Errorf("mycel peers on B:\n%s", out)
	}

	// The relay goes away: the reservations go with it.
	r.cmd.Process.Kill()
	r.cmd.Wait()
	waitFor(t, 30*time.Second, func() error {
		var st api.Status
		a.request("GET", "/v1/status", nil, &st)
		if len(st.Relays) != 1 || st.Relays[0].Connected || st.Relays[0].ReservedUntil != nil {
			return fmt.Errorf("A still shows the relay reserved: %+v", st.Relays)
		}
		return nil
	})
	if out, _, _ := mycel(t, "status", "--data", a.dir); !strings.Contains(out, r.id+", not connected, no reservation") {
		t.Errorf("mycel status on A with the relay down:\n%s", out)
	}
	r2 := startRelay(t, rdir, "--listen", rlisten)
	phase("relay down seen, restarted")
	if r2.id != r.id {
		t.Fatalf("relay's ID changed: %s, %s", r.id, r2.id)
	}
	reservedOn(t, a, r.id)
	reservedOn(t, b, r.id)
	a.put(id, "k2", []byte("after the restart"))
	b.put(id, "k3", []byte("and back"))
	waitValue(t, b, id, "k2", []byte("after the restart"))
	waitValue(t, a, id, "k3", []byte("and back"))
	phase("k2, k3 after the restart")
	waitFor(t, 30*time.Second, func() error { return converged(id, 0, a, b) })
	// While the relay was down, B may have dialled the loopback addresses
	// A's identify gave it over the relayed connection: a direct upgrade,
	// as it should. B restarted knows A only by its circuit address again.
	relayed, direct = relayedTo(b, st.PeerID)
	t.Logf("after the relay's restart, B to A: relayed %v, direct %v", relayed, direct)
	b.kill()
	b.start()
	reservedOn(t, b, r.id)
	a.put(id, "k4", []byte("relayed again"))
	waitValue(t, b, id, "k4", []byte("relayed again"))
	phase("B restarted, k4")
	// B reached A through the relay; a second after, it dials the direct
	// addresses A's identify gave it (backed off), which on loopback
	// succeeds: a direct connection may show up next to the relayed one.
	if relayed, direct = relayedTo(b, st.PeerID); !relayed {
		t.Errorf("B restarted to A: relayed %v, direct %v", relayed, direct)
	}
}

// TestCLIStatusRelays: mycel status prints each relay's state, and mycel
// peers marks the relay and the relayed connections.
func TestCLIStatusRelays(t *testing.T) {
	e := newCLIEnv(t)
	until := time.Now().Add(time.Hour)
	e.fake.SetRelays([]api.Relay{
		{ID: "12D3KooWrelayA", Connected: true, ReservedUntil: &until, LimitSeconds: 120, LimitBytes: 128 << 10},
		{ID: "12D3KooWrelayB", Error: "dial refused"},
	})
	out := e.ok(t, "status")
	for _, want := range []string{
		"12D3KooWrelayA, connected, reserved for 1h0m0s (relayed connections limited to 2m0s, 128.0 KiB)",
		"12D3KooWrelayB, not connected, no reservation; last error: dial refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	e.fake.SetPeers([]api.Peer{{ID: "12D3KooWrelayA", Relay: true, Conns: []api.Conn{{Addr: "/ip4/127.0.0.1/tcp/1", Transport: "tcp", Direction: "outbound"}}},
		{ID: "12D3KooWpeer", Conns: []api.Conn{{Addr: "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWrelayA/p2p-circuit", Transport: "relayed", Direction: "outbound", Limited: true}}}})
	out = e.ok(t, "peers")
	if !strings.Contains(out, "12D3KooWrelayA (relay)") || !strings.Contains(out, "relayed (limited)") {
		t.Errorf("peers:\n%s", out)
	}
}

// relayMetric reads the relay's /metrics. A series with labels, as
// /metrics prints it (`name{label="v"}`), is read alone, 0 while the relay
// has not exported it; a bare name is the sum of its samples over every
// label, and the test fails if the relay exports no such metric.
func relayMetric(t *testing.T, r *relayProc, series string) float64 {
	t.Helper()
	if r.metrics == "" {
		t.Fatal("the relay serves no metrics")
	}
	resp, err := http.Get(r.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	labelled := strings.Contains(series, "{")
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || (name != series && (labelled || !strings.HasPrefix(name, series+"{"))) {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		sum, found = sum+f, true
	}
	if !found && !labelled {
		t.Fatalf("the relay has no metric %s", series)
	}
	return sum
}

// TestCLIRelayAdd: mycel relay add asks the daemon to hand the space's
// mirror token to the relay named.
func TestCLIRelayAdd(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok(t, "relay", "add", e.space, "/ip4/127.0.0.1/tcp/4111/p2p/12D3KooWrelay")
	if !strings.Contains(out, "handed the mirror token") || e.fake.Calls("HandToRelay") != 1 {
		t.Errorf("relay add: %q, %d calls", out, e.fake.Calls("HandToRelay"))
	}
	if _, _, code := e.run(t, "", "relay", "add", e.space, "/ip4/127.0.0.1/tcp/4111"); code == 0 {
		t.Error("relay add without a peer ID succeeded")
	}
	out = e.ok(t, "relay", "remove", e.space, "/ip4/127.0.0.1/tcp/4111/p2p/12D3KooWrelay")
	if !strings.Contains(out, "took relay 12D3KooWrelay off") || e.fake.Calls("DropRelay") != 1 {
		t.Errorf("relay remove: %q, %d calls", out, e.fake.Calls("DropRelay"))
	}
	if out := e.ok(t, "relay", "list", e.space); !strings.Contains(out, "lists no relay") {
		t.Errorf("relay list: %q", out)
	}
}
