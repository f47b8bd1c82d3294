package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node"
)

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

Environment lists are comma-separated. Peer and relay addresses end in
/p2p/<peer ID>. The data directory holds node.key, the node's identity
(mode 0600; mycel refuses a key others can read).`,
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
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			n, err := node.New(cfg, log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "mycel daemon %s\n", version)
			fmt.Fprintf(out, "data directory: %s\n", cfg.DataDir)
			fmt.Fprintf(out, "peer ID: %s\n", n.Host().ID())
			for _, a := range n.Addrs() {
				fmt.Fprintf(out, "listening on %s\n", a)
			}
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "mycel daemon: shutting down (a second signal stops it at once)")
			return n.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", "", "data directory (env MYCEL_HOME)")
	f.StringArrayVar(&o.Listen, "listen", nil, "multiaddr to listen on; repeatable (env MYCEL_LISTEN)")
	f.StringArrayVar(&o.Peers, "peer", nil, "static peer multiaddr with /p2p/ID; repeatable (env MYCEL_PEERS)")
	f.StringArrayVar(&o.Relays, "relay", nil, "circuit relay multiaddr with /p2p/ID; repeatable (env MYCEL_RELAYS)")
	f.BoolVar(&mdns, "mdns", true, "find peers on the local network (env MYCEL_MDNS)")
	f.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn or error (env MYCEL_LOG_LEVEL)")
	return cmd
}
