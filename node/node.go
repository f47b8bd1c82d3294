package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/internal/clock"
	"github.com/mycelsync/mycel/node/syncnet"
)

// Node is a running daemon: its libp2p host and the goroutines that keep it
// connected. Every goroutine it starts has an owner (lifecycle.go) that
// refuses new ones once the node closes; Shutdown drains and then closes,
// Close stops at once. Both wait for every goroutine.
type Node struct {
	cfg     *Config
	log     *slog.Logger
	host    host.Host
	metrics prometheus.Gatherer
	mdns    interface{ Close() error }
	started time.Time
	// dialHook, when set (by tests, withDialHook), is called before each
	// dial of a static peer, direct when to direct addresses only.
	dialHook func(p peer.ID, direct bool)

	// Limits (cfg.Limits with defaults), the clock, and the tracers of the
	// replicator and the ephemeral Service (metrics.go).
	limits      Limits
	clock       clock.Clock
	syncMetrics *syncMetrics
	ephMetrics  *ephemeralMetrics

	store *badgerstore.Store
	kept  *keptStore // store, copying the key records to KeysDir
	// feedOpts open each space's feed.DB (in its namespace of kept).
	feedOpts []feed.Option
	device   *auth.DeviceKey
	repl     *syncnet.Replicator
	stats    stats

	// Ephemeral messages: the host's gossipsub router (its context's
	// cancel stops it) and the Service over it.
	ps       *pubsub.PubSub
	psCancel context.CancelFunc
	eph      *p2p.Service

	relays *relaySet // reservations on cfg.Relays (relays.go)

	mu      sync.Mutex
	closing bool // the API is refused (api.ErrClosed); set with life refusing
	spaces  map[auth.SpaceID]*openSpace
	signins *signins

	// life owns every goroutine of the node (lifecycle.go); streams (the
	// API's Watch and Listen) and calls (API calls in flight) are its
	// children, and so is each open space's owner. ctx is life's context.
	life    *owner
	streams *owner
	calls   *owner
	ctx     context.Context

	stopOnce  sync.Once // stopAccepting
	closeOnce sync.Once
	closeErr  error
}

// StoreDir is the badger store in the data directory: the feeds, the
// spaces' views and records.
const StoreDir = "store"

// New starts a node: it loads (or creates) the identity and the device key
// in cfg.DataDir, opens the store and every space recorded there, and
// listens on cfg.Listen with every transport (TCP, QUIC, WebSocket,
// WebTransport, WebRTC-direct), with hole punching, AutoNAT and the relay
// client on; it replicates the spaces with the peers that share them,
// starts mDNS if asked, keeps the static peers connected and holds a
// reservation on each relay (relays.go).
func New(cfg *Config, log *slog.Logger, opts ...Option) (n *Node, err error) {
	return newNode(cfg, log, false, opts...)
}

// Option sets an optional collaborator of New.
type Option func(*options)

type options struct {
	clock    clock.Clock
	reg      prometheus.Registerer
	gather   prometheus.Gatherer
	dialHook func(p peer.ID, direct bool)
}

// withDialHook has keepConnected call f before each dial of a static
// peer (tests count the dials).
func withDialHook(f func(p peer.ID, direct bool)) Option {
	return func(o *options) { o.dialHook = f }
}

// WithClock sets the clock of the replicator's standing, the ephemeral
// messages' time window, seen-set and presence. Default the system clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithMetrics registers the node's metrics (its own and libp2p's) on reg,
// and has Metrics return g (reg itself when g is nil and reg is a
// Gatherer), instead of a registry of the node's own (which also holds the
// Go runtime's and the process's collectors). Nodes given one registry add
// up their counters; their gauges (seen IDs, standing peers) then show
// whichever node set them last — give each node its own registry, or wrap
// reg with prometheus.WrapRegistererWith and a label, to tell them apart.
func WithMetrics(reg prometheus.Registerer, g prometheus.Gatherer) Option {
	return func(o *options) { o.reg, o.gather = reg, g }
}

// newNode starts a node; repairing is set by Repair, which rebuilds the
// store from peers: the feeds refuse appends meanwhile.
func newNode(cfg *Config, log *slog.Logger, repairing bool, opts ...Option) (n *Node, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.clock = clock.OrReal(o.clock)
	limits := cfg.Limits.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		c := *cfg
		c.Name = DefaultName()
		cfg = &c
	}
	if err := checkDeviceName(cfg.Name); err != nil {
		return nil, err
	}
	key, err := LoadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	device, err := LoadDeviceKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	peers, err := addrInfos(cfg.Peers)
	if err != nil {
		return nil, fmt.Errorf("node: peers: %w", err)
	}
	relays, err := addrInfos(cfg.Relays)
	if err != nil {
		return nil, fmt.Errorf("node: relays: %w", err)
	}
	if err := checkPortsFree(cfg.Listen); err != nil {
		return nil, err
	}
	reg, gather := o.reg, o.gather
	if reg == nil {
		own := prometheus.NewRegistry()
		// The Go runtime's own metrics (go_memstats_*, go_gc_*) and the
		// process's (process_resident_memory_bytes): memory is a limit a
		// daemon on a small machine is held to.
		own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, gather = own, own
	}
	if gather == nil {
		gather, _ = reg.(prometheus.Gatherer)
	}
	syncM, err := newSyncMetrics(reg)
	if err != nil {
		return nil, err
	}
	ephM, err := newEphemeralMetrics(reg)
	if err != nil {
		return nil, err
	}
	stats, err := newStats(reg)
	if err != nil {
		return nil, err
	}
	p2pOpts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.UserAgent("mycel"),
		libp2p.EnableHolePunching(),
		libp2p.EnableAutoNATv2(),
		libp2p.PrometheusRegisterer(reg),
	}
	// The relay client transport is on by libp2p's default (EnableRelay):
	// peers are dialled at /p2p-circuit addresses. The reservations on
	// cfg.Relays and the circuit addresses they give are the node's own
	// (relays.go), not autorelay's, which advertises public ones only.
	rset := newRelaySet(relays)
	p2pOpts = append(p2pOpts, libp2p.AddrsFactory(rset.addrsFactory))
	if !repairing {
		if err := checkNoRepairPending(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	store, err := openStore(cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	kept := &keptStore{Storage: store, dir: filepath.Join(cfg.DataDir, KeysDir)}
	if _, err := syncKeys(store, kept.dir); err != nil {
		store.Close()
		return nil, err
	}
	fopts := []feed.Option{feed.WithLogger(log)}
	if repairing {
		fopts = append(fopts, feed.WithoutAppends())
	}
	h, err := libp2p.New(p2pOpts...)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("node: start host: %w", err)
	}
	life := newOwner(nil)
	repl := syncnet.New(h, log, syncnet.WithConfig(limits.Sync), syncnet.WithClock(o.clock), syncnet.WithTracer(syncM))
	n = &Node{cfg: cfg, limits: limits, clock: o.clock, log: log, host: h, metrics: gather,
		syncMetrics: syncM, ephMetrics: ephM, started: time.Now(), dialHook: o.dialHook,
		store: store, kept: kept, feedOpts: fopts, device: device, repl: repl, stats: stats, relays: rset,
		spaces: make(map[auth.SpaceID]*openSpace), signins: newSigninsWith(limits.SignIn),
		life: life, streams: newOwner(life), calls: newOwner(life), ctx: life.ctx}
	if err := n.startEphemeralService(); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.loadSpaces(); err != nil {
		n.Close()
		return nil, err
	}
	h.SetStreamHandler(LocateProtocol, n.serveLocate)
	n.life.start(n.resync)
	if cfg.MDNS != nil && *cfg.MDNS {
		svc := mdns.NewMdnsService(h, MDNSService, n)
		if err := svc.Start(); err != nil {
			n.Close()
			return nil, fmt.Errorf("node: start mDNS: %w", err)
		}
		n.mdns = svc
	}
	for _, p := range peers {
		n.life.start(func(ctx context.Context) { n.keepConnected(ctx, p) })
	}
	for i := range rset.relays {
		n.life.start(func(ctx context.Context) { n.keepRelay(ctx, i) })
	}
	n.life.start(n.keepSpaceRelays) // the relays the spaces list (relays_space.go)
	return n, nil
}

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Metrics returns the gatherer of the node's metrics: its own registry,
// or WithMetrics's.
func (n *Node) Metrics() prometheus.Gatherer { return n.metrics }

// Addrs returns the node's listen addresses with its peer ID, as others
// dial it.
func (n *Node) Addrs() []ma.Multiaddr {
	info := peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
	addrs, _ := peer.AddrInfoToP2pAddrs(&info)
	return addrs
}

// stopAccepting is the first stage of both Shutdown and Close: the API
// refuses new calls (api.ErrClosed), no owner starts a goroutine any more,
// and neither mDNS nor LocateProtocol brings new work.
func (n *Node) stopAccepting() {
	n.stopOnce.Do(func() {
		n.mu.Lock()
		n.closing = true
		n.mu.Unlock()
		n.calls.refuse()
		n.streams.refuse()
		n.life.refuse()
		n.host.RemoveStreamHandler(LocateProtocol)
		if n.mdns != nil {
			if err := n.mdns.Close(); err != nil {
				n.log.Debug("mdns: close", "err", err)
			}
		}
	})
}

// Shutdown stops the node gracefully, as far as ctx lets it: it refuses
// new API calls and new work (mDNS, LocateProtocol), ends the API's
// streams (Watch, Listen) with api.ErrClosed, which the API server sends
// as their last event (unavailable), and waits for them, and for the API
// calls in flight; then it stops replication, ends the node's and the
// spaces' goroutines and waits for them, and closes the node as Close
// does, flushing the spaces' views and the feeds' heads. When ctx ends
// first, Shutdown returns its error with the node still open: call Close,
// which stops what still runs at once.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopAccepting()
	n.streams.close()
	if err := n.streams.wait(ctx); err != nil {
		return fmt.Errorf("node: shutdown: API streams still open: %w", err)
	}
	if err := n.calls.wait(ctx); err != nil {
		return fmt.Errorf("node: shutdown: API calls still running: %w", err)
	}
	if err := n.repl.Close(); err != nil {
		n.log.Warn("node: shutdown: replication", "err", err)
	}
	n.life.close()
	if err := n.life.wait(ctx); err != nil {
		return fmt.Errorf("node: shutdown: goroutines still running: %w", err)
	}
	return n.Close()
}

// Close stops the node at once: it stops replication, cancels every
// goroutine and API call of the node and waits for them, then closes the
// ephemeral Service and gossipsub, the spaces (storing their views), the
// feeds (storing their heads), the store and the host. After Shutdown it
// returns what Shutdown's close returned; a second Close does nothing.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.stopAccepting()
	var errs []error
	errs = append(errs, n.repl.Close())
	n.life.close()
	n.life.wait(context.Background()) // every goroutine ends with life's context
	errs = append(errs, n.closeEphemeral())
	// The feeds store their writers' latest heads as they close; without
	// that every restart would sign those heads again, as after a crash.
	errs = append(errs, n.closeSpaces(), n.store.Close(), n.host.Close())
	return errors.Join(errs...)
}
