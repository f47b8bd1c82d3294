package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node/api"
)

func newPeersCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List the connected peers and their connections",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(func(c *api.Client) error {
				peers, err := c.Peers(cmd.Context())
				if err != nil {
					return err
				}
				sort.Slice(peers, func(i, j int) bool { return peers[i].ID < peers[j].ID })
				if o.json {
					return printJSON(cmd.OutOrStdout(), peers)
				}
				if len(peers) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no peers connected")
					return nil
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "PEER\tTRANSPORT\tDIRECTION\tADDRESS")
				for _, p := range peers {
					if len(p.Conns) == 0 {
						fmt.Fprintf(tw, "%s\t-\t-\t-\n", p.ID)
					}
					for _, cn := range p.Conns {
						tr := cn.Transport
						if cn.Limited {
							tr += " (limited)"
						}
						id := p.ID
						if p.Relay {
							id += " (relay)"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, tr, cn.Direction, cn.Addr)
					}
				}
				return tw.Flush()
			})
		},
	}
}

func newSyncCmd(o *clientOpts) *cobra.Command {
	var wait bool
	var timeout, interval, grace time.Duration
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Show replication progress; --wait waits until every session is caught up",
		Long: `Show the replication progress of every feed of every space with every
connected peer: entries held (have) and known to exist (want), bytes
received, rate and ETA.

With --wait, draw a progress bar on stderr until every feed of every session
has caught up (have = want; an entry counts once however many peers carry
it), each static peer (--peer) is connected, and a session runs with each
connected peer in each space shared with it; exit 1 if --timeout passes
first. A session that does not start, or a static peer that does not
connect, within 20 s (refused, or unreachable) is not waited for any more:
the summary counts it as "not starting".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return usageError{errors.New("--interval must be positive")}
			}
			return o.call(func(c *api.Client) error {
				if !wait {
					prog, err := c.Progress(cmd.Context())
					if err != nil {
						return err
					}
					sortProgress(prog)
					if o.json {
						return printJSON(cmd.OutOrStdout(), prog)
					}
					return printProgress(cmd.OutOrStdout(), cmd.ErrOrStderr(), prog)
				}
				ctx := cmd.Context()
				if timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, timeout)
					defer cancel()
				}
				return waitSynced(ctx, c, cmd.ErrOrStderr(), interval, grace, func(prog []api.Progress) error {
					if o.json {
						return printJSON(cmd.OutOrStdout(), prog)
					}
					return nil
				})
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&wait, "wait", "w", false, "wait until caught up, drawing a progress bar on stderr")
	f.DurationVar(&timeout, "timeout", 0, "with --wait, give up after this long (0: never)")
	f.DurationVar(&interval, "interval", 500*time.Millisecond, "with --wait, how often to poll the daemon")
	f.MarkHidden("interval")
	f.DurationVar(&grace, "start-grace", startGrace, "with --wait, how long to wait for a session to start or a static peer to connect")
	f.MarkHidden("start-grace")
	return cmd
}

func sortProgress(prog []api.Progress) {
	sort.Slice(prog, func(i, j int) bool {
		a, b := prog[i], prog[j]
		if a.Space != b.Space {
			return a.Space < b.Space
		}
		if a.Peer != b.Peer {
			return a.Peer < b.Peer
		}
		return a.Feed < b.Feed
	})
}

func printProgress(out, errOut io.Writer, prog []api.Progress) error {
	if len(prog) == 0 {
		fmt.Fprintln(errOut, "no replication sessions (mycel peers shows who is connected)")
		return nil
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "SPACE\tPEER\tFEED\tHAVE\tWANT\tRECEIVED\tRATE\tETA")
	for _, p := range prog {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s/s\t%s\n", short(p.Space), shortPeer(p.Peer), short(p.Feed),
			p.Have, p.Want, humanBytes(float64(p.BytesIn)), humanBytes(p.Rate), etaString(p))
	}
	return tw.Flush()
}

func shortPeer(id string) string {
	if len(id) > 16 {
		return "…" + id[len(id)-12:]
	}
	return id
}

func etaString(p api.Progress) string {
	switch {
	case p.Have >= p.Want:
		return "done"
	case p.ETA <= 0:
		return "?"
	}
	return (time.Duration(p.ETA * float64(time.Second))).Round(time.Second).String()
}

// syncState sums the progress and says whether it is caught up.
type syncState struct {
	have, want, bytes uint64
	rate, eta         float64
	sessions, peers   int
	missing           int // (peer, space) pairs shared without a session, or static peers not connected, still awaited
	given             int // of those, the ones waited for longer than the grace: not awaited any more
	done              bool
}

// startGrace is how long sync --wait waits for a session that does not
// start, or a static peer that does not connect (the daemon dials for up
// to 15 s). A session the peer refuses never starts: past the grace it
// no longer holds up the wait, and the summary says so.
const startGrace = 20 * time.Second

// pending remembers since when each awaited session or static peer has
// been missing.
type pending map[string]time.Time

// summarize sums the progress. An entry counts once however many sessions
// carry its feed: per space and feed, the most any session holds of it
// (have, the same local count in each) against the most any peer has
// (want). Sessions missing and static peers not connected are awaited
// until they have been missing for grace.
func summarize(prog []api.Progress, peers []api.Peer, static []string, since pending, now time.Time, grace time.Duration) syncState {
	var s syncState
	sessions := map[[2]string]bool{}
	type feedKey struct{ space, feed string }
	feeds := map[feedKey][2]uint64{}
	for _, p := range prog {
		sessions[[2]string{p.Peer, p.Space}] = true
		k := feedKey{p.Space, p.Feed}
		f := feeds[k]
		feeds[k] = [2]uint64{max(f[0], p.Have), max(f[1], p.Want)}
		s.bytes += p.BytesIn
		s.rate += p.Rate
		s.eta = max(s.eta, p.ETA)
	}
	caught := true
	for _, f := range feeds {
		s.have += min(f[0], f[1])
		s.want += f[1]
		if f[0] < f[1] {
			caught = false
		}
	}
	s.sessions = len(sessions)
	s.peers = len(peers)
	missing := map[string]bool{}
	connected := map[string]bool{}
	for _, p := range peers {
		connected[p.ID] = true
		for _, sp := range p.Spaces {
			if !sessions[[2]string{p.ID, sp}] {
				missing["session "+p.ID+" "+sp] = true
			}
		}
	}
	for _, id := range static {
		if !connected[id] {
			missing["peer "+id] = true
		}
	}
	for k := range since {
		if !missing[k] {
			delete(since, k) // started or connected: a later loss waits anew
		}
	}
	for k := range missing {
		first, ok := since[k]
		if !ok {
			since[k], first = now, now
		}
		if now.Sub(first) >= grace {
			s.given++
		} else {
			s.missing++
		}
	}
	s.done = caught && s.missing == 0
	return s
}

func (s syncState) line(width int) string {
	frac := 1.0
	if s.want > 0 {
		frac = float64(s.have) / float64(s.want)
	}
	fill := int(frac * float64(width))
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	eta := "ETA ?"
	switch {
	case s.done:
		eta = "done"
	case s.eta > 0:
		eta = "ETA " + time.Duration(s.eta*float64(time.Second)).Round(time.Second).String()
	}
	l := fmt.Sprintf("[%s] %3.0f%%  %d/%d entries  %s  %s/s  %s  (%d peers, %d sessions",
		bar, 100*frac, s.have, s.want, humanBytes(float64(s.bytes)), humanBytes(s.rate), eta, s.peers, s.sessions)
	if s.missing > 0 {
		l += fmt.Sprintf(", %d starting", s.missing)
	}
	if s.given > 0 {
		l += fmt.Sprintf(", %d not starting", s.given)
	}
	return l + ")"
}

// waitSynced polls until summarize says done, drawing the bar on w: in
// place on a terminal, else a line whenever it changes.
func waitSynced(ctx context.Context, c *api.Client, w io.Writer, interval, grace time.Duration, done func([]api.Progress) error) error {
	tty := isTerminal(w)
	last := ""
	since := pending{}
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return waitErr(ctx, err)
		}
		prog, err := c.Progress(ctx)
		if err != nil {
			return waitErr(ctx, err)
		}
		peers, err := c.Peers(ctx)
		if err != nil {
			return waitErr(ctx, err)
		}
		s := summarize(prog, peers, st.StaticPeers, since, time.Now(), grace)
		l := s.line(30)
		switch {
		case tty:
			fmt.Fprintf(w, "\r%s\x1b[K", l)
		case l != last:
			fmt.Fprintln(w, l)
		}
		last = l
		if s.done {
			if tty {
				fmt.Fprintln(w)
			}
			if s.given > 0 {
				fmt.Fprintf(w, "%d sessions or static peers did not start within %s (refused, or unreachable): not waited for (mycel peers, the daemon's log)\n", s.given, grace)
			}
			if s.peers == 0 {
				fmt.Fprintln(w, "no peers connected: nothing to sync with")
			}
			sortProgress(prog)
			return done(prog)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if tty {
				fmt.Fprintln(w)
			}
			return waitErr(ctx, ctx.Err())
		case <-t.C:
		}
	}
}

func waitErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.New("timed out before every session caught up")
	}
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
