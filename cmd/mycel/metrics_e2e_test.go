package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/node/syncnet"
)

// TestE2EMetrics: the daemon's /metrics carries the replicator's and the
// ephemeral Service's counters, every label value from the start; an
// outsider's garbage on a space's replication protocol shows as a strike
// and in the standing table, its garbage envelope as a rejected one.
func TestE2EMetrics(t *testing.T) {
	a := newDaemon(t)
	for _, name := range []string{
		`mycel_sync_strikes_total{kind="fault"}`, `mycel_sync_strikes_total{kind="proof"}`, "mycel_sync_bans_total",
		`mycel_sync_drops_total{reason="banned"}`, `mycel_sync_drops_total{reason="duplicate"}`, `mycel_sync_drops_total{reason="stalled"}`,
		`mycel_ephemeral_drops_total{reason="rejected"}`, `mycel_ephemeral_drops_total{reason="streams_full"}`,
		`mycel_ephemeral_drops_total{reason="seen_full"}`, "mycel_ephemeral_seen_ids", "mycel_sync_standing_peers",
	} {
		if v := a.metric(name); v != 0 {
			t.Errorf("%s = %v on a new daemon", name, v)
		}
	}
	id := createSpace(t, a)
	sid, err := auth.SpaceIDFromBytes(mustHex(t, id))
	if err != nil {
		t.Fatal(err)
	}
	target, err := peer.AddrInfoFromString(a.peerAddr())
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Connect(ctx, *target); err != nil {
		t.Fatal(err)
	}
	send := func(proto string, data []byte) {
		st, err := h.NewStream(ctx, target.ID, protocol.ID(proto))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		st.SetDeadline(time.Now().Add(20 * time.Second))
		st.Write(data)
		st.CloseWrite()
		if _, err := io.ReadAll(st); err != nil && !errors.Is(err, network.ErrReset) {
			t.Fatal(err)
		}
	}
	send(string(p2p.ProtocolID), []byte{3, 'b', 'a', 'd'})
	// The daemon may be opening a session to h (h serves nothing): a
	// stream of h's that meets it is reset as a duplicate, without a
	// strike. Send again until one counts.
	for i := 0; ; i++ {
		send(string(syncnet.ProtocolFor(sid)), []byte(strings.Repeat("not a frame ", 20)))
		err := func() error {
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if a.metric(`mycel_sync_strikes_total{kind="fault"}`) == 1 {
					return nil
				}
			}
			return fmt.Errorf("no strike counted")
		}()
		if err == nil {
			break
		}
		if i == 3 {
			t.Fatal(err)
		}
	}
	if v := a.metric("mycel_sync_standing_peers"); v != 1 {
		t.Errorf("mycel_sync_standing_peers = %v, want 1", v)
	}
	if v := a.metric(`mycel_ephemeral_drops_total{reason="rejected"}`); v != 1 {
		t.Errorf(`mycel_ephemeral_drops_total{reason="rejected"} = %v, want 1`, v)
	}
}
