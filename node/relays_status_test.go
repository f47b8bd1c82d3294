package node

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

// TestRelayStatusShowsMemberLimits: a daemon reserves a slot at a relay
// before it is a member there (the first reply carries the default
// circuit limits); once the relay's mirror accepted its replication proof,
// its status through the API shows the members' limits within seconds —
// not at the renewal an hour later — and a daemon of no served space
// keeps the defaults.
func TestRelayStatusShowsMemberLimits(t *testing.T) {
	ctx := context.Background()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	lim := relay.DefaultLimits()
	r, err := relay.New(&relay.Config{DataDir: t.TempDir(), LogLevel: "info", Limits: lim,
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	raddr := r.Addrs()[0].String() + "/p2p/" + r.Host().ID().String()
	ca := named(loopbackConfig(t), "A")
	ca.Relays = []string{raddr}
	a := startNode(t, ca)
	co := named(loopbackConfig(t), "O")
	co.Relays = []string{raddr}
	o := startNode(t, co)

	srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: a, Token: "t"}))
	defer srv.Close()
	c, err := api.NewClient(srv.URL, "t", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	limits := func(n *Node) (int64, uint64, error) {
		rs := n.Status().Relays
		if len(rs) != 1 || rs[0].ReservedUntil == nil {
			return 0, 0, fmt.Errorf("not reserved: %+v", rs)
		}
		return rs[0].LimitSeconds, rs[0].LimitBytes, nil
	}
	eventually(t, 20*time.Second, func() error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if len(st.Relays) != 1 || st.Relays[0].ReservedUntil == nil {
			return fmt.Errorf("not reserved: %+v", st.Relays)
		}
		if s, b := st.Relays[0].LimitSeconds, st.Relays[0].LimitBytes; s != int64(lim.CircuitDuration/time.Second) || b != uint64(lim.CircuitBytes) {
			return fmt.Errorf("first limits %d s, %d B: want the defaults", s, b)
		}
		return nil
	})
	// A's space: A hands the relay its mirror token and syncs with it.
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, info.ID, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 20*time.Second, func() error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if s, b := st.Relays[0].LimitSeconds, st.Relays[0].LimitBytes; s != int64(lim.MemberCircuitDuration/time.Second) || b != uint64(lim.MemberCircuitBytes) {
			return fmt.Errorf("limits %d s, %d B: want the members'", s, b)
		}
		return nil
	})
	t.Logf("the members' limits shown %v after the space was made", time.Since(start).Round(time.Millisecond))
	if !r.ACL().Member(a.host.ID()) {
		t.Fatal("A shows the members' limits but is no member at the relay")
	}
	if s, b, err := limits(o); err != nil || s != int64(lim.CircuitDuration/time.Second) || b != uint64(lim.CircuitBytes) {
		t.Fatalf("O, of no space the relay serves: %d s, %d B, %v", s, b, err)
	}
}
