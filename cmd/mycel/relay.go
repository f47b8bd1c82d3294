package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/relay"
)

const relayLong = `Run an always-on relay: a libp2p host on TCP, QUIC, WebSocket (secure
WebSocket with a certificate), WebTransport and WebRTC-direct, with identify,
the AutoNAT services, hole punching and the circuit relay v2 service, so that
devices that cannot reach each other directly stay in touch through it. It
holds no space secret. It keeps no log of connections, reservations or
circuits; its only record of traffic is the aggregate Prometheus metrics,
served on loopback if --metrics is given. Its WebSocket port also serves the
web app to browsers over HTTP (HTTPS with --ws-cert and --ws-key). The first
SIGINT or SIGTERM shuts it down gracefully; a second one stops it at once.

With a data directory it is a blind mirror too: a member hands it a space's
mirror token (the daemon does so for its --relay relays, and 'mycel relay add'
for another), and it keeps the space's encrypted feeds for the devices that are
offline. It routes the space's messages (gossipsub), keeps sign-in envelopes in
a mailbox for members that are offline, and keeps invite locators and aliases
for its spaces. Relays given each other with --peer find, in a DHT of their
own, the other relays mirroring the same space and keep their mirrors in step.

Settings, each from (highest first) its flag, its environment variable, the
data directory's config.json, or the default:

  data directory  --data       MYCEL_RELAY_HOME       (default: "relay" in the
                                                       daemon's data directory,
                                                       $MYCEL_HOME or
                                                       ~/.local/share/mycel)
  listen addrs    --listen     MYCEL_RELAY_LISTEN     config "listen"
                  (default: tcp/4111 on IPv4 and IPv6, udp/4111 QUIC,
                  WebTransport and WebRTC-direct, tcp/4112 WebSocket, or
                  tcp/4112/tls/ws with a certificate)
  WebSocket TLS   --ws-cert    MYCEL_RELAY_WS_CERT    config "ws_cert"
                  --ws-key     MYCEL_RELAY_WS_KEY     config "ws_key"
                  (PEM files; both or neither; a /tls/ws address needs them)
  metrics         --metrics    MYCEL_RELAY_METRICS    config "metrics"
                  (loopback host:port of /metrics; default off)
  log level       --log-level  MYCEL_RELAY_LOG_LEVEL  config "log_level"
                                                      (default info)
  peer relays     --peer       MYCEL_RELAY_PEERS      config "peers"
                  (other relays, multiaddrs with /p2p/ID, joined in the
                  relays' own DHT (/mycel/relay/kad/1.0.0): relays that
                  mirror the same space find each other there and keep
                  their mirrors in step; default none)
  limits          --max-*, --reservation-ttl, --circuit-*, --member-*,
                  --mirror-* and --mailbox-* below, with their defaults;
                  MYCEL_RELAY_<FLAG NAME> (MYCEL_RELAY_MAX_CONNS,
                  MYCEL_RELAY_MIRROR_MAX_SPACES);
                  config "limits": {"max_conns": 4096, "circuit_bytes": "1MiB"}
                  (sizes take KiB, MiB or GiB; durations 90s, 2m, 1h)

Environment lists are comma-separated; a MYCEL_RELAY_ variable not named
here is refused (a mistyped one would leave its setting at the default).
The data directory holds node.key, the relay's libp2p identity (mode 0600,
created on first run), and config.json.`

func newRelayCmd() *cobra.Command {
	var o relay.Overrides
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run an always-on relay that keeps devices in touch (it cannot read anything)",
		Long:  relayLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := relay.CheckEnv(os.Environ()); err != nil {
				return err
			}
			cfg, err := relay.LoadConfig(o, os.Getenv, daemonDataDir)
			if err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
				return err
			}
			log := newDaemonLogger(cmd.ErrOrStderr(), level)
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(defaultMemoryLimit)
			}
			key, err := node.LoadIdentity(cfg.DataDir)
			if err != nil {
				return relayIdentityError(cfg.DataDir, err)
			}
			r, err := relay.New(cfg, key, log)
			if err != nil {
				return relayStartError(cfg.DataDir, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "mycel relay %s\n", version)
			fmt.Fprintf(out, "data directory: %s\n", cfg.DataDir)
			fmt.Fprintf(out, "peer ID: %s\n", r.Host().ID())
			for _, a := range r.Addrs() {
				fmt.Fprintf(out, "listening on %s\n", a)
			}
			for _, u := range webAppURLs(r.Addrs()) {
				fmt.Fprintf(out, "web app on %s\n", u)
			}
			if a := r.MetricsAddr(); a != "" {
				fmt.Fprintf(out, "metrics on http://%s/metrics\n", a)
			} else {
				fmt.Fprintln(out, "metrics off (--metrics 127.0.0.1:4113 serves them)")
			}
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "mycel relay: shutting down (a second signal stops it at once)")
			return r.Close()
		},
	}
	cmd.AddCommand(newRelayAddCmd(), newRelayRemoveCmd(), newRelayListCmd())
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", "", "data directory (env MYCEL_RELAY_HOME)")
	f.StringArrayVar(&o.Listen, "listen", nil, "multiaddr to listen on; repeatable (env MYCEL_RELAY_LISTEN)")
	f.StringVar(&o.WSCert, "ws-cert", "", "PEM certificate of the secure WebSocket listener (env MYCEL_RELAY_WS_CERT)")
	f.StringVar(&o.WSKey, "ws-key", "", "PEM key of the secure WebSocket listener (env MYCEL_RELAY_WS_KEY)")
	f.StringVar(&o.Metrics, "metrics", "", "loopback host:port of the Prometheus endpoint; off if empty (env MYCEL_RELAY_METRICS)")
	f.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn or error (env MYCEL_RELAY_LOG_LEVEL)")
	f.StringArrayVar(&o.Peers, "peer", nil, "another relay (multiaddr with /p2p/ID) to join in the relays' DHT, where relays mirroring the same space find each other; repeatable (env MYCEL_RELAY_PEERS)")
	o.Limits = map[string]string{}
	for _, name := range relay.LimitNames() {
		usage, def, typ := relay.LimitUsage(name)
		fl := f.VarPF(&limitFlag{name: name, def: def, typ: typ, set: o.Limits}, name, "", usage)
		fl.DefValue = def
	}
	return cmd
}

// relayIdentityError says what to do when the relay's identity does not
// load: a file system error (a directory it cannot write), or a node.key
// that does not parse.
func relayIdentityError(dir string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("relay: identity in %s: %w (is the data directory writable? --data or MYCEL_RELAY_HOME chooses another)", dir, err)
	}
	path := filepath.Join(dir, node.IdentityFile)
	if fi, serr := os.Stat(path); serr == nil && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("relay: identity in %s: %w", dir, err) // it says to chmod
	}
	return fmt.Errorf("relay: identity in %s: %w (%s is damaged: restore it from a backup to keep the relay's peer ID; "+
		"or move it aside, and the relay makes a new identity: a new peer ID, which daemons' --relay addresses "+
		"and spaces' relay lists must then be given)", dir, err, path)
}

// relayStartError adds what to do to a damaged mirror store's error.
func relayStartError(dir string, err error) error {
	if !errors.Is(err, badgerstore.ErrDamaged) {
		return err
	}
	m := filepath.Join(dir, relay.MirrorDir)
	return fmt.Errorf("%w\nThe mirror holds copies of what the members hold: move %s aside (mv %s %s.damaged) and start "+
		"the relay again; the devices hand it their mirror tokens when they reserve again, and it fetches their feeds anew. "+
		"The kept messages, sign-in envelopes, invite locators and aliases it held are lost: aliases must be "+
		"registered again (mycel space alias)", err, m, m, m)
}

// webAppURLs are the addresses at which the relay serves the web app:
// its WebSocket listeners, as http:// (https:// with TLS) URLs.
func webAppURLs(addrs []ma.Multiaddr) []string {
	var out []string
	for _, a := range addrs {
		var host, port, scheme string
		ma.ForEach(a, func(c ma.Component) bool {
			switch c.Protocol().Code {
			case ma.P_IP4, ma.P_IP6, ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
				host = c.Value()
			case ma.P_TCP:
				port = c.Value()
			case ma.P_TLS, ma.P_WSS:
				scheme = "https"
			case ma.P_WS:
				if scheme == "" {
					scheme = "http"
				}
			}
			return true
		})
		if host != "" && port != "" && scheme != "" {
			out = append(out, scheme+"://"+net.JoinHostPort(host, port)+"/")
		}
	}
	return out
}

// daemonDataDir is the daemon's data directory, in which the relay's is
// by default: MYCEL_HOME, else the platform's default.
func daemonDataDir() (string, error) {
	if d := os.Getenv("MYCEL_HOME"); d != "" {
		return d, nil
	}
	return node.DefaultDataDir()
}

// limitFlag is a limit's flag: it checks the value as it is parsed, so a
// bad one is a usage error, and records it for relay.LoadConfig.
type limitFlag struct {
	name, def, typ string
	set            map[string]string
}

func (l *limitFlag) String() string {
	if v, ok := l.set[l.name]; ok {
		return v
	}
	return l.def
}

func (l *limitFlag) Set(v string) error {
	if err := relay.CheckLimit(l.name, v); err != nil {
		return err
	}
	l.set[l.name] = v
	return nil
}

func (l *limitFlag) Type() string { return l.typ }
