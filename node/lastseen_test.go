package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/internal/clock"
	"github.com/mycelsync/mycel/node/api"
)

// TestDevicesLastSeenKept: the devices' list says when a device was last
// seen after the member's daemon restarts (it said never: presence was in
// memory only), and two hours later still (the tracker forgot a device an
// hour after it was last heard from).
func TestDevicesLastSeenKept(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, named(loopbackConfig(t), "A"))
	cfgB := named(loopbackConfig(t, a.Addrs()[0].String()), "B")
	b := startNode(t, cfgB)
	info, err := a.CreateSpace(ctx, "chat")
	if err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, info.ID, "B")
	ai, err := a.Space(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	deviceA := func(n *Node) (api.Device, error) {
		ds, err := n.Devices(info.ID)
		if err != nil {
			return api.Device{}, err
		}
		for _, d := range ds {
			if d.Feed == ai.Feed {
				return d, nil
			}
		}
		return api.Device{}, fmt.Errorf("no device A in %+v", ds)
	}
	var seen time.Time
	eventually(t, 60*time.Second, func() error {
		d, err := deviceA(b)
		if err != nil {
			return err
		}
		if !d.Online || d.LastSeen == nil {
			return fmt.Errorf("B does not see A online: %+v", d)
		}
		seen = *d.LastSeen
		return nil
	})
	a.Close()
	b.Close()

	clk := clock.NewFake(time.Now())
	b2, err := New(cfgB, nil, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	check := func(when string) {
		t.Helper()
		d, err := deviceA(b2)
		if err != nil {
			t.Fatal(err)
		}
		if d.LastSeen == nil || d.Online || d.LastSeen.After(seen) || seen.Sub(*d.LastSeen) > lastSeenEvery+time.Second {
			t.Fatalf("%s: A as B lists it: %+v; last seen %v before", when, d, seen)
		}
	}
	check("after B's restart")

	// Two hours on: B's announcer ticks (it forgot devices an hour old
	// there) and publishes again after it.
	eventually(t, 10*time.Second, func() error {
		if b2.eph.Stats().Published == 0 {
			return errors.New("B has not announced itself yet")
		}
		return nil
	})
	before := b2.eph.Stats().Published
	clk.Advance(2 * time.Hour)
	eventually(t, 10*time.Second, func() error {
		if b2.eph.Stats().Published == before {
			return errors.New("B's announcer has not ticked yet")
		}
		return nil
	})
	check("two hours later")
}
