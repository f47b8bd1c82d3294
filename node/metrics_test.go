package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/internal/clock"
	"github.com/mycelsync/mycel/node/syncnet"
)

// metricValue returns the value of the counter or gauge name (without its
// mycel_ prefix) whose labels include labels (name=value pairs), as g
// serves it.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "mycel_"+name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric mycel_%s%v", name, labels)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// outsider returns a loopback host connected to n whose peer ID is below
// n's, so that n never opens a session to it (the lower ID opens) and its
// streams never meet one of n's.
func outsider(t *testing.T, n *Node) host.Host {
	t.Helper()
	for range 64 {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		if h.ID() > n.host.ID() {
			h.Close()
			continue
		}
		t.Cleanup(func() { h.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Connect(ctx, peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}); err != nil {
			t.Fatal(err)
		}
		return h
	}
	t.Fatal("no peer ID below the node's in 64 tries")
	return nil
}

// TestMetricsSyncStrikeBan: a node given a registry (WithMetrics), a fake
// clock and Limits.Sync.MaxStrikes 1. An outsider's garbage on a space's
// replication protocol is a strike, which with that limit bans it at once
// (the default takes 3); both show on the registry, as does the standing
// table's size. The banned outsider's next stream is reset unread and
// counted as a drop. BanDuration later on the fake clock, without
// sleeping, the ban is over.
func TestMetricsSyncStrikeBan(t *testing.T) {
	cfg := loopbackConfig(t)
	cfg.Limits.Sync.MaxStrikes = 1
	reg := prometheus.NewRegistry()
	clk := clock.NewFake(time.Now())
	n, err := New(cfg, nil, WithMetrics(reg, reg), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if n.Metrics() != prometheus.Gatherer(reg) {
		t.Fatal("Metrics is not the registry given")
	}
	ctx := context.Background()
	info, err := n.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	proto := syncnet.ProtocolFor(m.sp.ID())
	o := outsider(t, n)
	send := func() error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := o.NewStream(ctx, n.host.ID(), proto)
		if err != nil {
			return err
		}
		st.SetDeadline(time.Now().Add(10 * time.Second))
		st.Write([]byte(strings.Repeat("not a frame ", 20)))
		_, err = io.Copy(io.Discard, st)
		st.Reset()
		return err
	}
	if err := send(); !errors.Is(err, network.ErrReset) {
		t.Fatalf("garbage: stream ended with %v, want a reset", err)
	}
	eventually(t, 10*time.Second, func() error {
		if v := metricValue(t, reg, "sync_strikes_total", "kind", "fault"); v != 1 {
			return fmt.Errorf("mycel_sync_strikes_total{kind=fault} = %v, want 1", v)
		}
		return nil
	})
	if v := metricValue(t, reg, "sync_bans_total"); v != 1 {
		t.Fatalf("mycel_sync_bans_total = %v after one strike with MaxStrikes 1, want 1", v)
	}
	if v := metricValue(t, reg, "sync_standing_peers"); v != 1 {
		t.Fatalf("mycel_sync_standing_peers = %v, want 1", v)
	}
	if err := send(); err != nil && !errors.Is(err, network.ErrReset) {
		t.Fatalf("banned: stream ended with %v, want a reset", err)
	}
	eventually(t, 10*time.Second, func() error {
		if v := metricValue(t, reg, "sync_drops_total", "reason", syncnet.DropBanned); v != 1 {
			return fmt.Errorf("mycel_sync_drops_total{reason=banned} = %v, want 1", v)
		}
		return nil
	})
	if !n.repl.Banned(o.ID()) {
		t.Fatal("not banned")
	}
	clk.Advance(time.Hour) // Limits.Sync.BanDuration's default
	if n.repl.Banned(o.ID()) {
		t.Fatal("still banned BanDuration later on the node's clock")
	}
}

// TestLimitEphemeralStreamsMetrics: Limits.Ephemeral.Service
// .MaxInboundStreams 1 takes effect: while an outsider's direct stream
// that sent half a length holds the only slot, its next streams are reset
// unread, and each is counted on mycel_ephemeral_drops_total
// {reason=streams_full}. A complete frame of garbage, handled, is counted
// as rejected.
func TestLimitEphemeralStreamsMetrics(t *testing.T) {
	cfg := loopbackConfig(t)
	cfg.Limits.Ephemeral.Service.MaxInboundStreams = 1
	reg := prometheus.NewRegistry()
	n, err := New(cfg, nil, WithMetrics(reg, reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	o := outsider(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// garbage sends a whole frame of garbage, and reports whether the
	// stream was reset unread (else it was answered).
	garbage := func() bool {
		st, err := o.NewStream(ctx, n.host.ID(), p2p.ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		st.SetDeadline(time.Now().Add(10 * time.Second))
		st.Write([]byte{3, 'b', 'a', 'd'})
		st.CloseWrite()
		_, err = io.ReadAll(st)
		if err != nil && !errors.Is(err, network.ErrReset) {
			t.Fatal(err)
		}
		return err != nil
	}
	if garbage() {
		t.Fatal("the first stream was reset")
	}
	eventually(t, 10*time.Second, func() error {
		if v := metricValue(t, reg, "ephemeral_drops_total", "reason", p2p.DropRejected); v != 1 {
			return fmt.Errorf("rejected = %v, want 1", v)
		}
		return nil
	})

	// A stream that sent half a length holds the slot (the handler waits
	// for the rest); the next is refused. The hold may itself meet a
	// stream still being handled and be refused: then try again.
	resets := 0
	for i := 0; resets == 0; i++ {
		if i == 50 {
			t.Fatal("no stream refused in 50 tries while one holds the only slot")
		}
		hold, err := o.NewStream(ctx, n.host.ID(), p2p.ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		hold.Write([]byte{0x80})
		if garbage() {
			resets++
		}
		hold.Reset()
	}
	eventually(t, 10*time.Second, func() error {
		if v := metricValue(t, reg, "ephemeral_drops_total", "reason", p2p.DropStreams); v < float64(resets) {
			return fmt.Errorf("streams_full = %v, want at least %d", v, resets)
		}
		return nil
	})
}

// TestMetricsSharedRegistry: two nodes in one process given one registry
// both start (nothing registered twice panics or fails), and its counters
// add up both nodes' writes.
func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	var after [2]float64
	for i := range 2 {
		n, err := New(loopbackConfig(t), nil, WithMetrics(reg, nil))
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() { n.Close() })
		if n.Metrics() != prometheus.Gatherer(reg) {
			t.Fatalf("node %d: Metrics is not the registry given", i)
		}
		info, err := n.CreateSpace(ctx, "notes")
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Put(ctx, info.ID, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		after[i] = metricValue(t, reg, "space_ops_written_total")
	}
	if after[0] == 0 || after[1] != 2*after[0] {
		t.Fatalf("mycel_space_ops_written_total = %v after the first node's writes, %v after both", after[0], after[1])
	}
}
