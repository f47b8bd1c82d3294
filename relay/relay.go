package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	libp2pwebrtc "github.com/libp2p/go-libp2p/p2p/transport/webrtc"
	ws "github.com/libp2p/go-libp2p/p2p/transport/websocket"
	webtransport "github.com/libp2p/go-libp2p/p2p/transport/webtransport"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mycelsync/mycel/webui"
)

// Relay is a running relay: its libp2p host with the circuit relay
// service, and the metrics endpoint if one is configured. Close stops
// them and waits for them.
type Relay struct {
	cfg     *Config
	log     *slog.Logger
	host    host.Host
	svc     *hop
	acl     *ACL
	metrics *prometheus.Registry
	mirror  *Mirror        // nil without a data directory
	mailbox *mailboxServer // nil without a data directory
	router  *Router        // nil without a mirror
	dir     *Directory     // locators and aliases, in the mirror's store; nil without one
	peers   *peering       // the relays' DHT and rounds; nil until started

	metricsSrv  *http.Server
	metricsAddr string
	metricsDone chan error

	closeOnce sync.Once
	closeErr  error
}

// New starts a relay with identity key: a libp2p host listening on
// cfg.Listen with every transport (TCP, QUIC, WebSocket or secure
// WebSocket, WebTransport, WebRTC-direct), with identify, the AutoNAT
// services (v1 and v2), hole punching and the circuit relay v2 service,
// under a resource manager holding peers to cfg.Limits; and the Prometheus
// endpoint on cfg.Metrics if it is set. Its WebSocket ports also serve the
// web app (webui.Dist) to browsers over HTTP(S) (webapp.go). A listen port
// another process holds fails with ErrAddrInUse.
func New(cfg *Config, key crypto.PrivKey, log *slog.Logger) (*Relay, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkPortsFree(cfg.Listen); err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("relay: identity key: %w", err)
	}
	wsOpts := webAppOptions(webui.Dist(), id) // webapp.go
	if cfg.WSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.WSCert, cfg.WSKey)
		if err != nil {
			return nil, fmt.Errorf("relay: secure WebSocket certificate: %w", err)
		}
		wsOpts = append(wsOpts, ws.WithTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mgr, err := newResourceManager(&cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("relay: resource manager: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.UserAgent("mycel-relay"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Transport(ws.New, wsOpts...),
		libp2p.Transport(webtransport.New),
		libp2p.Transport(libp2pwebrtc.New),
		libp2p.ResourceManager(mgr),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableHolePunching(),
		libp2p.PrometheusRegisterer(reg),
	)
	if err != nil {
		mgr.Close()
		return nil, fmt.Errorf("relay: start host: %w", err)
	}
	r := &Relay{cfg: cfg, log: log, host: h, acl: NewACL(reg), metrics: reg}
	// The circuit relay service is the relay's own (hop.go), so that
	// members' circuits get lifted limits; it starts here, at once (a
	// relay is meant to be reachable, and on a LAN or loopback AutoNAT
	// never calls the host public, which libp2p's EnableRelayService
	// waits for).
	r.acl.bound(cfg.Limits.MaxMembers, cfg.Limits.MemberTTL, func(p peer.ID) bool {
		return h.Network().Connectedness(p) == network.Connected
	})
	r.svc, err = newHop(h, cfg.Limits, r.acl, relayv2.NewMetricsTracer(relayv2.WithRegisterer(reg)))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("relay: start circuit relay service: %w", err)
	}
	if cfg.DataDir != "" {
		if r.mirror, err = openMirror(cfg, h, log, reg, WithMembers(r.acl)); err != nil {
			r.svc.Close()
			h.Close()
			return nil, err
		}
		if err := r.startServices(cfg, log, reg); err != nil {
			r.close()
			return nil, err
		}
	}
	if r.peers, err = startPeering(cfg, h, r.mirror, reg); err != nil {
		r.close()
		return nil, err
	}
	if cfg.Metrics != "" {
		if err := r.serveMetrics(); err != nil {
			r.close()
			return nil, err
		}
	}
	log.Info("relay started", "peer", h.ID(), "addrs", len(h.Addrs()))
	return r, nil
}

// newResourceManager returns libp2p's resource manager with its default
// limits scaled to the machine, then the relay's overall and per-peer
// limits over them.
func newResourceManager(l *Limits) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	overall := rcmgr.ResourceLimits{
		Conns: rcmgr.LimitVal(l.MaxConns), ConnsInbound: rcmgr.LimitVal(l.MaxConns), ConnsOutbound: rcmgr.LimitVal(l.MaxConns),
		Streams: rcmgr.LimitVal(l.MaxStreams), StreamsInbound: rcmgr.LimitVal(l.MaxStreams), StreamsOutbound: rcmgr.LimitVal(l.MaxStreams),
		Memory: rcmgr.LimitVal64(l.MaxMemory),
	}
	perPeer := rcmgr.ResourceLimits{
		Conns: rcmgr.LimitVal(l.MaxConnsPerPeer), ConnsInbound: rcmgr.LimitVal(l.MaxConnsPerPeer), ConnsOutbound: rcmgr.LimitVal(l.MaxConnsPerPeer),
		Streams: rcmgr.LimitVal(l.MaxStreamsPerPeer), StreamsInbound: rcmgr.LimitVal(l.MaxStreamsPerPeer), StreamsOutbound: rcmgr.LimitVal(l.MaxStreamsPerPeer),
		Memory: rcmgr.LimitVal64(l.MaxMemoryPerPeer),
	}
	partial := rcmgr.PartialLimitConfig{System: overall, PeerDefault: perPeer}
	limits := partial.Build(scaling.AutoScale())
	perIP := []rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: l.MaxConnsPerIP}}
	perIP6 := []rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: l.MaxConnsPerIP}}
	// Loopback is exempt from the per-IP limit, as in libp2p's defaults: it
	// is the machine itself (a reverse proxy in front of the WebSocket
	// port, say). The overall limits still hold it.
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits),
		rcmgr.WithLimitPerSubnet(perIP, perIP6),
		rcmgr.WithNetworkPrefixLimit(
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("127.0.0.0/8"), ConnCount: math.MaxInt}},
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("::1/128"), ConnCount: math.MaxInt}}))
}

// serveMetrics serves the registry on cfg.Metrics, at /metrics only.
func (r *Relay) serveMetrics() error {
	ln, err := net.Listen("tcp", r.cfg.Metrics)
	if err != nil {
		return fmt.Errorf("relay: metrics on %s: %w (--metrics chooses another address)", r.cfg.Metrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics, promhttp.HandlerOpts{}))
	r.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	r.metricsAddr = ln.Addr().String()
	r.metricsDone = make(chan error, 1)
	go func() { r.metricsDone <- r.metricsSrv.Serve(ln) }()
	return nil
}

// Host returns the libp2p host.
func (r *Relay) Host() host.Host { return r.host }

// Mirror returns the blind mirror, nil when the relay has no data
// directory.
func (r *Relay) Mirror() *Mirror { return r.mirror }

// Mailbox returns the mailbox, nil when the relay has no data directory.
func (r *Relay) Mailbox() *Mailbox {
	if r.mailbox == nil {
		return nil
	}
	return r.mailbox.mb
}

// Router returns the message router, nil when the relay has no mirror.
func (r *Relay) Router() *Router { return r.router }

// Directory returns the directory of invite locators and aliases, nil
// when the relay has no data directory.
func (r *Relay) Directory() *Directory { return r.dir }

// ACL returns the circuit relay service's ACL.
func (r *Relay) ACL() *ACL { return r.acl }

// Metrics returns the relay's Prometheus registry: aggregate counters and
// gauges only, none labelled by peer or address.
func (r *Relay) Metrics() *prometheus.Registry { return r.metrics }

// MetricsAddr returns the host:port the metrics endpoint listens on, or
// "" if it is off.
func (r *Relay) MetricsAddr() string { return r.metricsAddr }

// Addrs returns the relay's listen addresses with its peer ID, as daemons
// name it (--relay).
func (r *Relay) Addrs() []ma.Multiaddr {
	info := peer.AddrInfo{ID: r.host.ID(), Addrs: r.host.Addrs()}
	addrs, _ := peer.AddrInfoToP2pAddrs(&info)
	return addrs
}

// Close stops the metrics endpoint (waiting up to 5 s for requests in
// flight), the circuit relay service, which resets the circuits it
// carries, and the host. Later calls return the first one's result.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.close() })
	return r.closeErr
}

// startServices starts what shares the mirror's store and writer sets:
// the mailbox (keys "x" ‖ …), the directory of invite locators and
// aliases (keys "L", "A"), and the message router, which feeds the
// mailbox. On an error the caller closes what started (close skips what
// is nil).
func (r *Relay) startServices(cfg *Config, log *slog.Logger, reg prometheus.Registerer) error {
	mb, err := NewMailbox(r.mirror.st, r.mirror, MailboxLimits{BytesPerSpace: cfg.Limits.MailboxBytesPerSpace, Expiry: cfg.Limits.MailboxExpiry}, log, reg)
	if err != nil {
		return err
	}
	r.mailbox = serveMailbox(mb, r.host)
	if r.dir, err = NewDirectory(r.host, r.mirror.st, r.mirror, cfg.Limits.directory(cfg.DirectoryLimits), reg); err != nil {
		return err
	}
	if r.router, err = NewRouter(r.host, r.mirror, cfg.Limits.router(cfg.RouterLimits), reg); err != nil {
		return fmt.Errorf("relay: message router: %w", err)
	}
	r.router.OnEnvelope(r.mailbox.offer)
	return nil
}

func (r *Relay) close() error {
	var errs []error
	if r.metricsSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, r.metricsSrv.Shutdown(ctx))
		cancel()
		if err := <-r.metricsDone; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	// The peering first: its rounds sync through the mirror.
	if r.peers != nil {
		errs = append(errs, r.peers.close())
	}
	if r.router != nil {
		errs = append(errs, r.router.Close())
	}
	if r.mailbox != nil {
		errs = append(errs, r.mailbox.Close())
	}
	if r.dir != nil {
		errs = append(errs, r.dir.Close())
	}
	if r.mirror != nil {
		errs = append(errs, r.mirror.Close())
	}
	errs = append(errs, r.svc.Close(), r.host.Close())
	return errors.Join(errs...)
}
