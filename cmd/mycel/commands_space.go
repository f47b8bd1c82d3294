package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node/api"
)

func newStatusCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(func(c *api.Client) error {
				st, err := c.Status(cmd.Context())
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if o.json {
					return printJSON(out, st)
				}
				tw := newTable(out)
				fmt.Fprintf(tw, "daemon:\tmycel %s, up %s\n", st.Version, time.Since(st.Started).Round(time.Second))
				fmt.Fprintf(tw, "peer ID:\t%s\n", st.PeerID)
				fmt.Fprintf(tw, "device:\t%s\n", st.Device)
				fmt.Fprintf(tw, "data directory:\t%s\n", st.DataDir)
				fmt.Fprintf(tw, "API:\thttp://%s\n", c.Addr())
				fmt.Fprintf(tw, "spaces:\t%d\n", st.Spaces)
				fmt.Fprintf(tw, "peers:\t%d connected\n", st.Peers)
				for i, a := range st.Addrs {
					label := ""
					if i == 0 {
						label = "listening on:"
					}
					fmt.Fprintf(tw, "%s\t%s\n", label, a)
				}
				if len(st.Relays) == 0 {
					fmt.Fprintf(tw, "relays:\tnone (mycel relay add <space> <relay address>, or mycel daemon --relay <relay address>)\n")
				}
				var names map[string]string
				if len(st.Relays) > 0 {
					// The spaces' names, for the spaces that list a relay
					// (by ID alone if they cannot be read).
					if spaces, err := c.Spaces(cmd.Context()); err == nil {
						names = make(map[string]string, len(spaces))
						for _, sp := range spaces {
							names[sp.ID] = sp.Name
						}
					}
				}
				for _, r := range st.Relays {
					fmt.Fprintf(tw, "relay:\t%s\n", relayState(r, time.Now(), names))
				}
				return tw.Flush()
			})
		},
	}
}

// relayState is one line of mycel status about a relay: its ID, whether
// it is connected, the reservation and the relay's limits, what it is used
// for (every space, for a relay of --relay; else the spaces that list it,
// by name from names when known, and short ID) and the last error, on the
// same line.
func relayState(r api.Relay, now time.Time, names map[string]string) string {
	var b strings.Builder
	b.WriteString(r.ID)
	if r.Connected {
		b.WriteString(", connected")
	} else {
		b.WriteString(", not connected")
	}
	if r.ReservedUntil != nil {
		fmt.Fprintf(&b, ", reserved for %s", r.ReservedUntil.Sub(now).Round(time.Second))
		var limits []string
		if r.LimitSeconds > 0 {
			limits = append(limits, (time.Duration(r.LimitSeconds) * time.Second).String())
		}
		if r.LimitBytes > 0 {
			limits = append(limits, humanBytes(float64(r.LimitBytes)))
		}
		if len(limits) > 0 {
			fmt.Fprintf(&b, " (relayed connections limited to %s)", strings.Join(limits, ", "))
		}
	} else {
		b.WriteString(", no reservation")
	}
	switch {
	case r.Config:
		b.WriteString(", for every space (--relay)")
	case len(r.Spaces) > 0:
		spaces := make([]string, len(r.Spaces))
		for i, id := range r.Spaces {
			spaces[i] = short(id)
			if name := names[id]; name != "" {
				spaces[i] = safe(name) + " (" + short(id) + ")"
			}
		}
		if len(spaces) == 1 {
			fmt.Fprintf(&b, ", listed by space %s", spaces[0])
		} else {
			fmt.Fprintf(&b, ", listed by spaces %s", strings.Join(spaces, ", "))
		}
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "; last error: %s", oneLine(r.Error))
	}
	return b.String()
}

// oneLine is an error message of libp2p's (a dial's lists one line per
// address, "\n  * [addr] why") on one line, made safe for a terminal.
func oneLine(msg string) string {
	var parts []string
	for l := range strings.Lines(msg) {
		l = strings.TrimSpace(l)
		l = strings.TrimSpace(strings.TrimPrefix(l, "* "))
		if l != "" {
			parts = append(parts, safe(l))
		}
	}
	return strings.Join(parts, "; ")
}

func newSpaceCmd(o *clientOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "space",
		Short: "Create, list, join and inspect spaces",
		Long: fmt.Sprintf(`A space is one key-value database shared by a set of devices. A <space>
argument is its ID, a unique prefix of %d or more hex digits of it, or its
unique local name.

To bring a device into a space:
  on a member device:  mycel invite <space>          prints an invite (or: mycel space password)
  on the new device:   mycel join <invite>           shows a safety code, waits
  on any member:       mycel requests, then mycel approve <request ID>`, minSpacePrefix),
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "create <name>",
		Short: "Create a space with this device as its first writer; prints its ID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				info, err := c.CreateSpace(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), info)
				}
				fmt.Fprintln(cmd.OutOrStdout(), info.ID)
				fmt.Fprintf(cmd.ErrOrStderr(), "created space %q\n", info.Name)
				return nil
			})
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List the spaces of this device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				spaces, err := c.Spaces(cmd.Context())
				if err != nil {
					return err
				}
				sortedSpaces(spaces)
				if o.json {
					return printJSON(cmd.OutOrStdout(), spaces)
				}
				if len(spaces) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no spaces yet: mycel space create <name>, or mycel join <invite>")
					return nil
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "ID\tNAME\tKEYS\tFEEDS\tSTATE")
				for _, sp := range spaces {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", sp.ID, safe(sp.Name), sp.Keys, sp.Feeds, spaceState(sp))
				}
				return tw.Flush()
			})
		},
	}, &cobra.Command{
		Use:   "info <space>",
		Short: "Show a space",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				sp, err := c.Space(cmd.Context(), id)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), sp)
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintf(tw, "ID:\t%s\n", sp.ID)
				fmt.Fprintf(tw, "name:\t%s\n", safe(sp.Name))
				fmt.Fprintf(tw, "state:\t%s\n", spaceState(sp))
				fmt.Fprintf(tw, "this device's feed:\t%s\n", sp.Feed)
				fmt.Fprintf(tw, "feeds:\t%d\n", sp.Feeds)
				fmt.Fprintf(tw, "entries:\t%d\n", sp.Entries)
				fmt.Fprintf(tw, "keys:\t%d\n", sp.Keys)
				fmt.Fprintf(tw, "digest:\t%s\n", sp.Digest)
				if sp.Invalid > 0 {
					fmt.Fprintf(tw, "invalid entries:\t%d\n", sp.Invalid)
				}
				if sp.Waiting > 0 {
					fmt.Fprintf(tw, "waiting for their past:\t%d\n", sp.Waiting)
				}
				for _, f := range sp.Forked {
					fmt.Fprintf(tw, "FORKED feed:\t%s (its writer signed two histories: a copied device key or a restored backup; nothing more of it is read)\n", f)
				}
				return tw.Flush()
			})
		},
	})

	cmd.AddCommand(newSpaceLeaveCmd(o), newSpacePasswordCmd(o), newSpaceAliasCmd(o),
		replacedCmd("join", "a device joins with mycel join <invite> (a member runs mycel invite <space>), or mycel join --space <space ID> --password; any member approves it with mycel approve"),
		replacedCmd("accept", "a device joins with mycel join, which waits until a member approves it (mycel approve); there is no welcome token to accept"))
	return cmd
}

// replacedCmd is a hidden command of the manual token exchange that
// signing in (mycel join, mycel approve) replaced: it says what to run
// instead rather than leave the user with an unknown command.
func replacedCmd(name, instead string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return replacedError{fmt.Errorf("%s is gone: %s", cmd.CommandPath(), instead)}
		},
	}
}

// replacedError is a usage error (exit status 2) that sends to no --help:
// the command has none to show.
type replacedError struct{ err error }

func (e replacedError) Error() string { return e.err.Error() }
func (e replacedError) ExitCode() int { return exitUsage }

func newSpaceLeaveCmd(o *clientOpts) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "leave <space>",
		Short: "Leave a space: delete this device's copy (or give up a request to join)",
		Long: `Leave a space: this device's copy — its feeds, view and keys — is deleted.

A device that is a writer first removes itself from the writer set and waits
(up to 10 s) until a peer has been sent that removal; if no peer was
reachable, mycel says so: the other devices then go on listing this device
until one of them removes it (mycel members remove). On a space this device
asked to join, leave gives up the request (or clears one that was refused).

On a terminal mycel asks first; --yes leaves without asking. When stdin is
not a terminal, --yes is required. The data written by the other devices
stays with them; this device can join again later.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, tty := stdinTerminal(cmd)
			if !yes && !tty {
				return usageError{errors.New("stdin is not a terminal, so mycel cannot ask: pass --yes to leave")}
			}
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				id, err := resolveSpace(ctx, c, args[0])
				if err != nil {
					return err
				}
				sp, err := c.Space(ctx, id)
				if err != nil {
					return err
				}
				if !yes {
					what := "leave space %q (%s) and delete this device's copy of it? [y/N] "
					if !sp.Approved {
						what = "give up joining space %q (%s)? [y/N] "
					}
					fmt.Fprintf(cmd.ErrOrStderr(), what, sp.Name, short(sp.ID))
					a, err := readLine(ctx, cmd.InOrStdin(), 64)
					if err != nil {
						return err
					}
					if a = strings.ToLower(strings.TrimSpace(a)); a != "y" && a != "yes" {
						return errors.New("not left")
					}
				}
				left, err := c.LeaveSpace(ctx, id)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), left)
				}
				switch {
				case left.Removed && left.Reached > 0:
					fmt.Fprintf(cmd.OutOrStdout(), "left space %q: removed this device (%d peer(s) got the removal) and deleted its copy\n", sp.Name, left.Reached)
				case left.Removed:
					fmt.Fprintf(cmd.OutOrStdout(), "left space %q and deleted its copy\n", sp.Name)
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", left.Warning)
				case !sp.Approved:
					fmt.Fprintf(cmd.OutOrStdout(), "gave up joining space %q\n", sp.Name)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "left space %q and deleted its copy\n", sp.Name)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "leave without asking")
	return cmd
}

func spaceState(sp api.SpaceInfo) string {
	switch {
	case sp.Writer:
		return "writer"
	case sp.Approved:
		return "approved, read-only"
	case sp.Join != nil && sp.Join.State != api.JoinWaiting:
		// Refused, denied: the request is over (mycel space leave clears it).
		return "join " + sp.Join.State
	default:
		return "waiting for approval"
	}
}

func newMembersCmd(o *clientOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "members <space>",
		Short: "List and remove the writers of a space (mycel approve adds one)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				ms, err := c.Members(cmd.Context(), id)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), ms)
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "FEED\tNAME\tENTRIES\t")
				for _, m := range ms {
					self := ""
					if m.Self {
						self = "(this device)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", m.Feed, safe(m.Name), m.Length, self)
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(replacedCmd("add", "a member approves a device that asked with mycel join: mycel requests, then mycel approve <request ID>"), &cobra.Command{
		Use:   "remove <space> <feed>",
		Short: "Remove a writer (its feed: full key, unique prefix, or unique name)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				feed := strings.ToLower(args[1])
				if !isID(feed) {
					if feed, err = resolveMember(cmd, c, id, args[1]); err != nil {
						return err
					}
				}
				if err := c.RemoveMember(cmd.Context(), id, feed); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "removed %s\n", feed)
				return nil
			})
		},
	})
	return cmd
}

// resolveMember finds a member by a unique feed prefix or name.
func resolveMember(cmd *cobra.Command, c *api.Client, space, s string) (string, error) {
	ms, err := c.Members(cmd.Context(), space)
	if err != nil {
		return "", err
	}
	var found []string
	for _, m := range ms {
		if m.Name == s || (len(s) >= minDevicePrefix && strings.HasPrefix(m.Feed, strings.ToLower(s))) {
			found = append(found, m.Feed)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no member %q in the space (mycel members %s)", s, short(space))
	}
	return "", errors.New("several members match " + s + ": give more of the feed key")
}
