package node

import (
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// TestRelayBackAfterOutage: a relay that was down while the keeper failed
// to reach it is reserved again within the keeper's own backoff once it is
// back. libp2p's swarm backs off from an address after a failed dial by
// 5 s + tries² s, up to 5 minutes, and answers "dial backoff" meanwhile:
// without clearing it the keeper stayed unreached (and mycel status said
// "dial backoff") for that long after the relay came back (seen with the
// real binaries: 116 s after a 7-minute outage).
func TestRelayBackAfterOutage(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	l.Close()
	start := func() *relay.Relay {
		t.Helper()
		cfg := &relay.Config{LogLevel: "info", Limits: relay.DefaultLimits(), Listen: []string{listen}}
		r, err := relay.New(cfg, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	r := start()
	cfg := loopbackConfig(t)
	cfg.Relays = []string{listen + "/p2p/" + r.Host().ID().String()}
	cfg.Limits.Net.MinBackoff, cfg.Limits.Net.MaxBackoff = 100*time.Millisecond, 200*time.Millisecond
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitRelay(t, n, "reserved", func(r api.Relay) bool { return r.ReservedUntil != nil })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The keeper fails to reach it: a refused dial, then the swarm's
	// backoff.
	waitRelay(t, n, "failing", func(r api.Relay) bool { return r.ReservedUntil == nil && r.Error != "" })
	relayAt, err := ma.NewMultiaddr(listen)
	if err != nil {
		t.Fatal(err)
	}
	sw := n.host.Network().(*swarm.Swarm)
	waitFor := time.Now().Add(20 * time.Second)
	for !sw.Backoff().Backoff(r.Host().ID(), relayAt) {
		if time.Now().After(waitFor) {
			t.Fatal("the swarm never backed off from the relay's address")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r = start()
	back := time.Now()
	deadline := back.Add(3 * time.Second) // the swarm's first backoff alone is 6 s
	for {
		rs := n.Status().Relays
		if len(rs) == 1 && rs[0].ReservedUntil != nil {
			t.Logf("reserved again %v after the relay came back", time.Since(back).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			msg := ""
			if len(rs) == 1 {
				msg = rs[0].Error
			}
			t.Fatalf("the relay is back, not reserved after %v: %s (dial backoff: %v)", time.Since(back).Round(time.Millisecond), msg, strings.Contains(msg, "backoff"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
