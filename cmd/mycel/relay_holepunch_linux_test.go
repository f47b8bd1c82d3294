package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// The hole punching test's networks, all inside namespaces of the test's
// own (the test's namespace gets no address and no route):
//
//	relay ns "public": the relay on hpRelayIP (on lo); forwards between
//	  7.0.1.0/24 (to NAT A) and 7.0.2.0/24 (to NAT B)
//	NAT A: wan 7.0.1.2 (default route via 7.0.1.1), lan 10.1.0.1/24,
//	  masquerading what leaves by wan, dropping what comes in by wan
//	  unasked (nftables)
//	A: 10.1.0.2/24, default route via 10.1.0.1 (NAT B and B likewise with
//	  7.0.2.x and 10.2.0.x)
//
// The public side uses globally routable addresses (they never leave the
// namespaces): libp2p's hole punching takes only public addresses
// (manet.IsPublicAddr), so on 10/8 or documentation ranges it would never
// start.
const hpRelayIP = "7.0.0.1"

// hpNet is that network: the namespaces the relay and the daemons run in.
type hpNet struct {
	pub, natA, natB, a, b string
}

// hpNS makes network namespace ns with lo up; cleanup deletes it (and the
// veth ends in it).
func hpNS(t *testing.T, ns string) {
	t.Helper()
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
}

// hpLink links namespaces ns1 and ns2 by a veth pair made inside them (no
// name in the test's namespace): if1 with addr1 in ns1, if2 with addr2 in
// ns2 (CIDR notation).
func hpLink(t *testing.T, ns1, if1, addr1, ns2, if2, addr2 string) {
	t.Helper()
	ipCmd(t, "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2)
	ipCmd(t, "-n", ns1, "addr", "add", addr1, "dev", if1)
	ipCmd(t, "-n", ns1, "link", "set", if1, "up")
	ipCmd(t, "-n", ns2, "addr", "add", addr2, "dev", if2)
	ipCmd(t, "-n", ns2, "link", "set", if2, "up")
}

// inNS runs a command in namespace ns and fails the test on an error.
func inNS(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}

// newHPNet builds the network; masq is the nftables masquerade statement
// of both NATs ("masquerade": port-preserving where it can, one mapping
// per inside address and port whatever the destination;
// "masquerade random": a random port per connection, a symmetric NAT).
func newHPNet(t *testing.T, tag, masq string) *hpNet {
	t.Helper()
	n := &hpNet{pub: "hpP" + tag, natA: "hpNA" + tag, natB: "hpNB" + tag, a: "hpA" + tag, b: "hpB" + tag}
	for _, ns := range []string{n.pub, n.natA, n.natB, n.a, n.b} {
		hpNS(t, ns)
	}
	ipCmd(t, "-n", n.pub, "addr", "add", hpRelayIP+"/32", "dev", "lo")
	inNS(t, n.pub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for i, site := range []struct{ nat, dev string }{{n.natA, n.a}, {n.natB, n.b}} {
		pubNet, lanNet := fmt.Sprintf("7.0.%d.", i+1), fmt.Sprintf("10.%d.0.", i+1)
		hpLink(t, n.pub, fmt.Sprintf("site%d", i+1), pubNet+"1/24", site.nat, "wan", pubNet+"2/24")
		ipCmd(t, "-n", site.nat, "route", "add", "default", "via", pubNet+"1")
		hpLink(t, site.nat, "lan", lanNet+"1/24", site.dev, "eth0", lanNet+"2/24")
		ipCmd(t, "-n", site.dev, "route", "add", "default", "via", lanNet+"1")
		inNS(t, site.nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		inNS(t, site.nat, "nft", "add", "table", "ip", "nat")
		inNS(t, site.nat, "nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }")
		inNS(t, site.nat, "nft", "add rule ip nat post oifname wan "+masq)
		// A NAT drops what comes in unasked, as home routers do: a Linux
		// router without this answers a hole punch's first SYN (sent
		// before the other side's went out) with a RST, which ends the
		// attempt at once.
		inNS(t, site.nat, "nft", "add table ip filter")
		inNS(t, site.nat, "nft", "add chain ip filter in { type filter hook input priority 0 ; policy accept ; }")
		inNS(t, site.nat, "nft", "add rule ip filter in iifname wan ct state != { established, related } drop")
	}
	return n
}

// hpPeers is B's `mycel peers` (the CLI, run in B's namespace): the
// transports of its connections to peer id, in the order listed.
func hpPeers(t *testing.T, ns, dir, id string) (transports []string, out string) {
	t.Helper()
	out = mycelIn(t, ns, "peers", "--data", dir)
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == id {
			transports = append(transports, f[1])
		}
	}
	return transports, out
}

// TestE2ERelayHolePunch: daemons A and B, members of a space, each behind
// a NAT of its own (network namespaces, nftables masquerade) that lets
// them reach only the relay's public network: both reserve a slot on the
// relay, B is given A's circuit address only, reaches A through the relay,
// and DCUtR hole punching upgrades them to a direct connection — over TCP
// when the daemons listen and reach the relay on TCP only, over QUIC when
// on QUIC only — as `mycel peers` shows; the relay then stopped, data
// syncs both ways over the direct connection. The
// negative control: behind symmetric NATs (masquerade random) they stay
// relayed, and data still syncs through the circuit.
func TestE2ERelayHolePunch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root for ip netns (TESTING.md)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("needs iproute2 (TESTING.md)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("needs nft for the NAT routers: `make nftables` installs it (apt-get install nftables)")
	}

	// A makes the space and signs B in on loopback, in the test's
	// namespace (sign-in goes over gossipsub, which needs a direct
	// connection: see TestE2ERelayNetns).
	a := newDaemon(t)
	b := newDaemon(t, "--peer", a.peerAddr())
	id := createSpace(t, a, b)
	var st api.Status
	a.request("GET", "/v1/status", nil, &st)
	aID := st.PeerID
	a.kill()
	b.kill()

	for _, tc := range []struct {
		name, masq string
		listen     string // the daemons' listen address, the relay's too
		want       string // the direct transport expected; "" none
	}{
		{"tcp", "masquerade", "/ip4/%s/tcp/%d", "tcp"},
		{"quic", "masquerade", "/ip4/%s/udp/%d/quic-v1", "quic"},
		{"symmetric", "masquerade random", "/ip4/%s/tcp/%d", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := fmt.Sprintf("%d%s%d", os.Getpid()%100000, tc.name[:1], rand.IntN(100))
			n := newHPNet(t, tag, tc.masq)
			rlisten := fmt.Sprintf(tc.listen, hpRelayIP, 4111)
			r := startRelayIn(t, n.pub, t.TempDir(), "--listen", rlisten)
			raddr := rlisten + "/p2p/" + r.id
			listen := fmt.Sprintf(tc.listen, "0.0.0.0", 0)

			// a.t and b.t are the parent's: they outlive the subtests.
			a.netns, a.client, a.extra = n.a, netnsClient(n.a), []string{"--listen", listen, "--relay", raddr}
			a.start()
			defer a.kill()
			ra := reservedOn(t, a, r.id)
			b.netns, b.client, b.extra = n.b, netnsClient(n.b), append([]string{"--listen", listen, "--relay", raddr}, peerFlags(ra.Circuit)...)
			b.start()
			defer b.kill()
			reservedOn(t, b, r.id)
			defer func() {
				if t.Failed() {
					_, pa := hpPeers(t, n.a, a.dir, r.id)
					_, pb := hpPeers(t, n.b, b.dir, aID)
					t.Logf("A's peers:\n%s\nB's peers:\n%s\nA's log:\n%s\nB's log:\n%s", pa, pb, a.stderr, b.stderr)
				}
			}()

			// The circuit first (B knows no other way to A), then the
			// hole punch: both seen on B's API, polled every 20 ms.
			var relayedAt, directAt time.Time
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) && (relayedAt.IsZero() || (tc.want != "" && directAt.IsZero())) {
				relayed, direct := relayedTo(b, aID)
				now := time.Now()
				if relayed && relayedAt.IsZero() {
					relayedAt = now
				}
				if direct && directAt.IsZero() {
					directAt = now
				}
				time.Sleep(20 * time.Millisecond)
			}
			if relayedAt.IsZero() {
				t.Fatalf("B never connected to A through the relay")
			}
			if tc.want != "" {
				if directAt.IsZero() {
					t.Fatalf("no direct connection from B to A within 30 s of the circuit")
				}
				t.Logf("circuit to direct connection (%s): %v (B's API polled every 20 ms)", tc.want, directAt.Sub(relayedAt).Round(time.Millisecond))
				trs, out := hpPeers(t, n.b, b.dir, aID)
				if !strings.Contains(strings.Join(trs, " "), tc.want) {
					t.Fatalf("mycel peers on B: no %s connection to A:\n%s", tc.want, out)
				}
				t.Logf("mycel peers on B:\n%s", out)
				// The relay stopped (SIGINT: it closes its QUIC connections
				// rather than leave them to time out), only the direct
				// connection is left: what syncs below goes over it.
				r.stop(t)
				waitFor(t, 30*time.Second, func() error {
					if relayed, direct := relayedTo(b, aID); relayed || !direct {
						return fmt.Errorf("B to A after the relay stopped: relayed %v, direct %v", relayed, direct)
					}
					return nil
				})
			} else {
				// Symmetric NATs: what the relay saw of each is not where
				// the other's packets land. A (the side the relayed
				// connection came in to) runs the hole punch, three
				// attempts; it ends failed.
				waitFor(t, 60*time.Second, func() error {
					if f := hpMetric(t, a, "libp2p_holepunch_outcomes_total", `outcome="failed"`); f < 1 {
						return fmt.Errorf("A: no failed hole punch yet")
					}
					return nil
				})
			}
			if got, want := hpMetric(t, a, "libp2p_holepunch_outcomes_total", `outcome="success"`) >= 1, tc.want != ""; got != want {
				t.Errorf("A's successful hole punches: %v, want %v", got, want)
			}

			key := "from-a-" + tc.name
			start := time.Now()
			a.put(id, key, []byte("hello B"))
			waitValue(t, b, id, key, []byte("hello B"))
			t.Logf("put on A visible on B: %v", time.Since(start).Round(time.Millisecond))
			key = "from-b-" + tc.name
			start = time.Now()
			b.put(id, key, []byte("hello A"))
			waitValue(t, a, id, key, []byte("hello A"))
			t.Logf("put on B visible on A: %v", time.Since(start).Round(time.Millisecond))
			waitFor(t, 30*time.Second, func() error { return converged(id, 0, a, b) })
			if tc.want == "" {
				trs, out := hpPeers(t, n.b, b.dir, aID)
				if len(trs) == 0 || slices.ContainsFunc(trs, func(tr string) bool { return tr != "relayed" }) {
					t.Errorf("symmetric NATs: B's connections to A %q, want relayed only:\n%s", trs, out)
				}
				t.Logf("mycel peers on B:\n%s", out)
				// Relayed only is connected: B said so once, and did not
				// take the circuit for no connection (node/conns.go).
				log := b.stderr.String()
				relayed := strings.Count(log, `msg="peer: connected (relayed)" peer=`+aID)
				direct := strings.Count(log, `msg="peer: connected" peer=`+aID)
				if relayed != 1 || direct != 0 {
					t.Errorf("symmetric NATs: B logged %d \"connected (relayed)\" and %d \"connected\" lines for A, want 1 and 0", relayed, direct)
				}
			}
		})
	}
}

// hpMetric is the sum of the samples of metric name on d's /metrics (read
// in its namespace) whose labels contain labels.
func hpMetric(t *testing.T, d *daemon, name, labels string) float64 {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+d.api+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := d.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || !strings.HasPrefix(f[0], name+"{") || !strings.Contains(f[0], labels) {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	return sum
}
