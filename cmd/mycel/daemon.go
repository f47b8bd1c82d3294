package main

import (
	"context"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/webui"
)

// defaultMemoryLimit is the daemon's soft limit on the Go runtime's
// memory (debug.SetMemoryLimit), unless GOMEMLIMIT sets another. The heap
// of a daemon catching up on a large space holds badger's memtables (two
// of 32 MiB) and caches (48 MiB) and the view's buffers; with Go's
// default pacing (GOGC=100) it grew to twice that between collections.
const defaultMemoryLimit = 256 << 20

// defaultGCPercent is the daemon's GOGC, unless GOGC sets another.
const defaultGCPercent = 50

// shutdownTimeout bounds the node's graceful shutdown (node.Node.Shutdown)
// on the first signal: a leave in flight waits up to 10 s for a peer.
const shutdownTimeout = 15 * time.Second

func newDaemonCmd() *cobra.Command {
	var o node.Overrides
	var mdns bool
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run this device's mycel node",
		Long: `Run this device's mycel node: a libp2p host listening on TCP, QUIC,
WebSocket, WebTransport and WebRTC-direct, with hole punching, AutoNAT and the
relay client, finding peers on the LAN with mDNS and keeping static peers
connected. The first SIGINT or SIGTERM shuts it down gracefully; a second one
stops it at once.

Settings, each from (highest first) its flag, its environment variable, the
data directory's config.json, or the default:

  data directory  --data        MYCEL_HOME       (default: $XDG_DATA_HOME/mycel
                                                  or ~/.local/share/mycel)
  listen addrs    --listen      MYCEL_LISTEN     config "listen"
                  (default: tcp/4101 on IPv4 and IPv6, udp/4101 QUIC,
                  WebTransport and WebRTC-direct, tcp/4102 WebSocket)
  static peers    --peer        MYCEL_PEERS      config "peers"
  relays          --relay       MYCEL_RELAYS     config "relays"
  mDNS            --mdns        MYCEL_MDNS       config "mdns"      (default true)
  log level       --log-level   MYCEL_LOG_LEVEL  config "log_level" (default info)
  HTTP API        --api         MYCEL_API        config "api" (default 127.0.0.1:4103;
                                                  loopback only; port 0 picks one)
  device name     --name        MYCEL_NAME       config "name" (default "mycel on
                                                  <hostname> (<os>/<arch>)"; shown
                                                  to the members who approve it)

Environment lists are comma-separated. Peer and relay addresses end in
/p2p/<peer ID>. The data directory holds node.key, the node's libp2p
identity, and device.key, the device's key that space keys are sealed to
(both mode 0600; mycel refuses a key others can read); store/, the feeds and
the spaces' views (encrypted at rest); keys/, a copy of the store's records
that hold keys (mycel repair rebuilds a damaged store from peers with them); api.token, the bearer token of the
local HTTP API (0600), and api.addr, where the running daemon's API listens
(the CLI reads both). Prometheus metrics are at /metrics on the API.
The Go runtime's memory has a soft limit of 256 MiB (GOMEMLIMIT sets
another); badger's mapped files are kept to 64 MiB resident on Linux.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("mdns") {
				o.MDNS = &mdns
			}
			cfg, err := node.LoadConfig(o, os.Getenv)
			if err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
				return err
			}
			log := newDaemonLogger(cmd.ErrOrStderr(), level)
			node.Version = version
			if os.Getenv("GOMEMLIMIT") == "" {
				// A soft limit: the garbage collector runs more often as
				// the heap nears it, instead of letting it double.
				debug.SetMemoryLimit(defaultMemoryLimit)
			}
			if os.Getenv("GOGC") == "" {
				// The heap may grow to 1.5× what is live between
				// collections, not 2×: Go keeps that much of the OS's
				// memory, so an idle daemon that had caught up on a
				// million entries stood at 173–215 MiB with 100, 143 MiB
				// with 50, its catch-up no slower (BenchmarkCatchUpRSS).
				debug.SetGCPercent(defaultGCPercent)
			}
			n, err := node.New(cfg, log)
			if err != nil {
				return err
			}
			// Opening the spaces reads their views' log tails and name
			// indexes: garbage that Go's scavenger would hand back to the
			// OS only over minutes. Hand it back now.
			debug.FreeOSMemory()
			stopAPI, apiAddr, err := serveAPI(cfg, n, log)
			if err != nil {
				n.Close()
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "mycel daemon %s\n", version)
			fmt.Fprintf(out, "data directory: %s\n", cfg.DataDir)
			fmt.Fprintf(out, "peer ID: %s\n", n.Host().ID())
			for _, a := range n.Addrs() {
				fmt.Fprintf(out, "listening on %s\n", a)
			}
			fmt.Fprintf(out, "API on http://%s (token in %s)\n", apiAddr, filepath.Join(cfg.DataDir, api.TokenFile))
			if link, err := uiLoginLink(cfg.DataDir, apiAddr); err == nil {
				fmt.Fprintf(out, "web UI: %s (works once, for %s; mycel ui prints another)\n", link, api.LoginLinkTTL)
			}
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "mycel daemon: shutting down (a second signal stops it at once)")
			// The node drains first, while the API still serves: its
			// streams end with their last event (unavailable), calls in
			// flight finish, new ones are refused. What still runs after
			// shutdownTimeout is stopped by Close.
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			if err := n.Shutdown(ctx); err != nil {
				log.Warn("mycel daemon: graceful shutdown cut short; stopping now", "err", err)
			}
			cancel()
			return errors.Join(stopAPI(), n.Close())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", "", "data directory (env MYCEL_HOME)")
	f.StringArrayVar(&o.Listen, "listen", nil, "multiaddr to listen on; repeatable (env MYCEL_LISTEN)")
	f.StringArrayVar(&o.Peers, "peer", nil, "static peer multiaddr with /p2p/ID; repeatable (env MYCEL_PEERS)")
	f.StringArrayVar(&o.Relays, "relay", nil, "circuit relay multiaddr with /p2p/ID; repeatable (env MYCEL_RELAYS)")
	f.BoolVar(&mdns, "mdns", true, "find peers on the local network (env MYCEL_MDNS)")
	f.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn or error (env MYCEL_LOG_LEVEL)")
	f.StringVar(&o.API, "api", "", "loopback host:port of the local HTTP API (env MYCEL_API)")
	f.StringVar(&o.Name, "name", "", "this device's name, shown to members asked to approve it (env MYCEL_NAME)")
	return cmd
}

// newDaemonLogger is the daemon's log: text, one line a record, strings
// quoted with their control characters escaped (slog's text handler does
// that), and keys and IDs in the form the CLI prints them (logAttr).
func newDaemonLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: logAttr}))
}

// logAttr writes a byte array or slice (a feed key, a sender's key) as
// lowercase hex, as the CLI prints keys, where slog would print Go's
// "[1 0 255 …]". Values with a String or MarshalText method (space IDs,
// peer IDs as 12D3Koo…) keep theirs.
func logAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	v := a.Value.Any()
	switch v.(type) {
	case fmt.Stringer, encoding.TextMarshaler, error:
		return a
	}
	rv := reflect.ValueOf(v)
	if k := rv.Kind(); (k == reflect.Array || k == reflect.Slice) && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return slog.String(a.Key, hex.EncodeToString(b))
	}
	return a
}

// uiLoginLink is the login link to the web UI that the start-up line
// prints.
func uiLoginLink(dataDir, apiAddr string) (string, error) {
	token, err := api.ReadToken(dataDir)
	if err != nil {
		return "", err
	}
	return api.LoginLink("http://"+apiAddr, token, time.Now())
}

// serveAPI starts the local HTTP API on cfg.API and records its address in
// the data directory for the CLI. stop removes the record, ends the
// long-lived streams with their last event (unavailable) and waits up to
// 5 s for requests in flight.
func serveAPI(cfg *node.Config, n *node.Node, log *slog.Logger) (stop func() error, addr string, err error) {
	token, err := api.LoadOrCreateToken(cfg.DataDir)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return nil, "", fmt.Errorf("API: %w (is another mycel daemon running? --api chooses another address)", err)
	}
	addr = ln.Addr().String()
	base, cancel := context.WithCancel(context.Background())
	closing := make(chan struct{})
	srv := &http.Server{
		Handler: api.NewServer(api.ServerConfig{Backend: n, Token: token, Metrics: n.Metrics(),
			Logger: log, Version: version, Closing: closing, UI: webui.Dist(),
			MaxStreams: n.Limits().API.MaxStreams, MaxBody: n.Limits().API.MaxBody, KeepAlive: n.Limits().API.KeepAlive}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if err := api.WriteEndpoint(cfg.DataDir, addr); err != nil {
		cancel()
		srv.Close()
		return nil, "", err
	}
	return func() error {
		errs := []error{api.RemoveEndpoint(cfg.DataDir)}
		// The streams end with their last event (unavailable), then
		// Shutdown waits for them and the other requests; whatever still
		// runs after 5 s has its context cancelled.
		close(closing)
		ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		errs = append(errs, srv.Shutdown(ctx))
		cancel()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}, addr, nil
}
