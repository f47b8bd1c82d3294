package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node"
)

// errDamaged makes mycel check exit with status 1 after its report.
var errDamaged = errors.New("the store is damaged: run mycel repair (with the daemon stopped)")

func newCheckCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify this device's store (the daemon must be stopped)",
		Long: `Verify this device's store without changing it: every file of the badger
store (tables' checksums, the value log's and memtable logs' entries, the
files of the last clean close), then every feed: its signed head's
signature and, for the entries held from the start, their Merkle root
against the signed root; then every space's view is rebuilt from the feeds
in memory and compared, key by key, with the stored one. It prints what it found; the exit status is 1 if
anything is damaged (mycel repair heals it from the other devices).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := node.LoadConfig(node.Overrides{DataDir: dataDir}, os.Getenv)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			start := time.Now()
			last := time.Now()
			rep, err := node.CheckStore(cfg.DataDir, func(done, total int, rep node.CheckReport) {
				if time.Since(last) > time.Second {
					last = time.Now()
					fmt.Fprintf(cmd.ErrOrStderr(), "check: %d of %d feeds, %d entries read\n", done, total, rep.Entries)
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "store %s/%s: %d feeds, %d entries held, %d verified against their signed roots (%v)\n",
				cfg.DataDir, node.StoreDir, rep.Feeds, rep.Entries, rep.Verified, time.Since(start).Round(time.Millisecond))
			for _, v := range rep.Views {
				same := "the same as"
				if v.Stored != v.Built || len(v.Differ) > 0 {
					same = "NOT the same as"
				}
				fmt.Fprintf(out, "space %s: %d keys; the stored view is %s the view rebuilt from the feeds\n", v.Space, v.Keys, same)
			}
			for _, d := range rep.Damaged {
				fmt.Fprintf(out, "DAMAGED: %s\n", d)
			}
			if len(rep.Damaged) > 0 {
				return errDamaged
			}
			fmt.Fprintln(out, "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "data directory (env MYCEL_HOME)")
	return cmd
}

func newRepairCmd() *cobra.Command {
	var o node.Overrides
	var mdns bool
	var settle, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Rebuild this device's store from its peers (the daemon must be stopped)",
		Long: `Rebuild this device's store from its other devices. The damaged store is
not deleted: it is renamed to store.damaged-<time> in the data directory.
A fresh store gets this device's keys (kept in keys/), and a node without
an API fetches every feed of every space from the peers given (--peer, or
the config's peers), with appends to this device's own feeds held until it
holds back what its peers hold of them: writing before that would fork
them. It prints its progress and ends once nothing is left to fetch; then
mycel daemon starts again. Until it has finished, the daemon refuses to
start; an interrupted repair goes on where it stopped when run again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("mdns") {
				o.MDNS = &mdns
			}
			if len(o.Listen) == 0 {
				// Not the daemon's ports: the repair is a client of its peers.
				o.Listen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
			}
			cfg, err := node.LoadConfig(o, os.Getenv)
			if err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: max(level, slog.LevelWarn)}))
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel func()
				ctx, cancel = contextWithTimeout(ctx, timeout)
				defer cancel()
			}
			var prev node.RepairProgress
			aside, err := node.Repair(ctx, cfg, log, settle, func(p node.RepairProgress) {
				if p != prev {
					prev = p
					fmt.Fprintf(errOut, "repair: %d space(s), %d peer(s): %d of %d entries\n", p.Spaces, p.Peers, p.Entries, p.Want)
				}
			})
			out := cmd.OutOrStdout()
			if aside != "" {
				fmt.Fprintf(out, "damaged store kept as %s\n", aside)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "repaired: %d entries in %d space(s) fetched back from %d peer(s); mycel daemon may start\n", prev.Entries, prev.Spaces, prev.Peers)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", "", "data directory (env MYCEL_HOME)")
	f.StringArrayVar(&o.Listen, "listen", nil, "multiaddr to listen on; repeatable (default: any free port)")
	f.StringArrayVar(&o.Peers, "peer", nil, "peer multiaddr with /p2p/ID to fetch from; repeatable (env MYCEL_PEERS)")
	f.StringArrayVar(&o.Relays, "relay", nil, "circuit relay multiaddr with /p2p/ID; repeatable (env MYCEL_RELAYS)")
	f.BoolVar(&mdns, "mdns", true, "find peers on the local network (env MYCEL_MDNS)")
	f.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn or error (env MYCEL_LOG_LEVEL)")
	f.DurationVar(&settle, "settle", 3*time.Second, "how long nothing must be left to fetch before the repair ends")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (0: never; an interrupted repair goes on when run again)")
	return cmd
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
