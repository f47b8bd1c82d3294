package node

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/node/syncnet"
)

// The node's metrics, beside replication's counters (stats, below)
// and libp2p's own, all under the namespace mycel:
//
//	mycel_sync_strikes_total{kind="fault"|"proof"}  sessions ended through a peer's fault; failed opening proofs
//	mycel_sync_bans_total                           peers banned
//	mycel_sync_drops_total{reason}                  streams reset: banned, duplicate, stalled (syncnet.Drop*)
//	mycel_sync_standing_peers                       peers whose strikes or ban are remembered (≤ Limits.Sync.MaxTracked)
//	mycel_ephemeral_drops_total{reason}             envelopes and direct streams not delivered (p2p.Drop*)
//	mycel_ephemeral_seen_ids                        IDs in the seen-set (≤ Limits.Ephemeral.Seen.MaxSeen)
//
// Label values are few and fixed: never a peer ID or a space.

// syncMetrics reports the replicator's standing (syncnet.Tracer).
type syncMetrics struct {
	strikes  *prometheus.CounterVec
	bans     prometheus.Counter
	drops    *prometheus.CounterVec
	standing prometheus.Gauge
}

var _ syncnet.Tracer = (*syncMetrics)(nil)

func newSyncMetrics(reg prometheus.Registerer) (*syncMetrics, error) {
	m := &syncMetrics{
		strikes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mycel", Name: "sync_strikes_total",
			Help: "Replication sessions ended through the peer's fault (kind=fault) or whose opening proof failed (kind=proof)."}, []string{"kind"}),
		bans: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mycel", Name: "sync_bans_total",
			Help: "Peers banned from replication."}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mycel", Name: "sync_drops_total",
			Help: "Replication streams reset: from a banned peer, a duplicate of a running session, or a peer that stalled."}, []string{"reason"}),
		standing: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mycel", Name: "sync_standing_peers",
			Help: "Peers whose strikes, failed proofs or ban the replicator remembers."}),
	}
	var err error
	if m.strikes, err = register(reg, m.strikes); err != nil {
		return nil, err
	}
	if m.bans, err = register(reg, m.bans); err != nil {
		return nil, err
	}
	if m.drops, err = register(reg, m.drops); err != nil {
		return nil, err
	}
	if m.standing, err = register(reg, m.standing); err != nil {
		return nil, err
	}
	// Every label value from the start, at 0.
	m.strikes.WithLabelValues("fault")
	m.strikes.WithLabelValues("proof")
	for _, r := range []string{syncnet.DropBanned, syncnet.DropDuplicate, syncnet.DropStalled} {
		m.drops.WithLabelValues(r)
	}
	return m, nil
}

func (m *syncMetrics) Strike(proof bool) {
	kind := "fault"
	if proof {
		kind = "proof"
	}
	m.strikes.WithLabelValues(kind).Inc()
}

func (m *syncMetrics) Ban()               { m.bans.Inc() }
func (m *syncMetrics) Drop(reason string) { m.drops.WithLabelValues(reason).Inc() }
func (m *syncMetrics) Tracked(n int)      { m.standing.Set(float64(n)) }

// ephemeralMetrics reports the ephemeral Service's drops and seen-set
// (p2p.Tracer).
type ephemeralMetrics struct {
	drops *prometheus.CounterVec
	seen  prometheus.Gauge
}

var _ p2p.Tracer = (*ephemeralMetrics)(nil)

func newEphemeralMetrics(reg prometheus.Registerer) (*ephemeralMetrics, error) {
	m := &ephemeralMetrics{
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mycel", Name: "ephemeral_drops_total",
			Help: "Ephemeral envelopes and direct streams not delivered, by reason."}, []string{"reason"}),
		seen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mycel", Name: "ephemeral_seen_ids",
			Help: "Message IDs held in the ephemeral seen-set."}),
	}
	var err error
	if m.drops, err = register(reg, m.drops); err != nil {
		return nil, err
	}
	if m.seen, err = register(reg, m.seen); err != nil {
		return nil, err
	}
	for _, r := range []string{p2p.DropRejected, p2p.DropStale, p2p.DropDuplicate, p2p.DropSeenFull, p2p.DropBusy, p2p.DropStreams} {
		m.drops.WithLabelValues(r)
	}
	return m, nil
}

func (m *ephemeralMetrics) Drop(reason string) { m.drops.WithLabelValues(reason).Inc() }
func (m *ephemeralMetrics) SeenSize(n int)     { m.seen.Set(float64(n)) }

// register registers c on reg; if an equal collector is registered
// already (two nodes given one registry), it returns that one, so that
// they add up.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if old, ok := dup.ExistingCollector.(C); ok {
			return old, nil
		}
	}
	return c, fmt.Errorf("node: register metrics: %w", err)
}

// stats are the node's replication metrics.
type stats struct {
	received, receivedBytes, duplicates prometheus.Counter
	written                             prometheus.Counter
	mailboxDelivered                    prometheus.Counter // relays_mailbox.go
}

func newStats(reg prometheus.Registerer) (stats, error) {
	var errs []error
	c := func(name, help string) prometheus.Counter {
		x, err := register(reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mycel", Name: name, Help: help}))
		errs = append(errs, err)
		return x
	}
	return stats{
		received:      c("sync_entries_received_total", "Feed entries received from peers and stored."),
		receivedBytes: c("sync_entry_bytes_received_total", "Bytes of the feed entries received from peers and stored."),
		duplicates:    c("sync_entries_duplicate_total", "Entries received from peers that this node already held."),
		written:       c("space_ops_written_total", "Ops this node wrote to its own feeds (puts, deletes, membership)."),
		mailboxDelivered: c("ephemeral_mailbox_delivered_total",
			"Envelopes fetched from relays' mailboxes that the Filter let through (not brought by gossipsub before)."),
	}, errors.Join(errs...)
}
