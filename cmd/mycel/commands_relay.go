package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node/api"
)

// newRelayAddCmd is `mycel relay add`: the running daemon hands a space's
// mirror token to a relay and lists it in the space (POST
// /v1/spaces/{space}/relays).
func newRelayAddCmd() *cobra.Command {
	o := &clientOpts{}
	cmd := &cobra.Command{
		Use:   "add <space> <relay multiaddr>",
		Short: "List a relay in a space: every device of the space uses it, and it mirrors the space (it reads nothing)",
		Long: `Ask the running daemon to connect to the relay at the given multiaddr (with
/p2p/<peer ID>, as 'mycel relay' prints it), hand it the space's mirror token,
and list it in the space. The list is part of the space (encrypted, written by
members only): every device of the space, also one that joins later with no
--relay of its own, keeps a reservation on each relay listed, reaches the others
through it, and hands it the new token after each rotation, so that the relay
mirrors the space's encrypted feeds while devices are offline. A space lists at
most 16 relays. This device must be a writer of the space. Naming a relay
already listed adds the address given to those listed.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				if err := c.HandToRelay(cmd.Context(), id, args[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "handed the mirror token of %s to %s and listed it in the space\n", id, args[1])
				return nil
			})
		},
	}
	o.flags(cmd.Flags())
	return cmd
}

// newRelayRemoveCmd is `mycel relay remove`: the relay is taken off the
// space's list (DELETE /v1/spaces/{space}/relays/{peer}).
func newRelayRemoveCmd() *cobra.Command {
	o := &clientOpts{}
	cmd := &cobra.Command{
		Use:   "remove <space> <relay peer ID>",
		Short: "Take a relay off a space's list: the space's devices stop using it",
		Long: `Take the relay off the space's list. Every device of the space releases it
once the change reaches it: no new reservation, and no mirror token of a later
epoch (remove a device, or rotate, to make the token it holds useless). The
relay keeps what it mirrored until its own expiry. This device must be a writer
of the space.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				p := args[1]
				if i := strings.LastIndex(p, "/p2p/"); i >= 0 {
					p = p[i+len("/p2p/"):] // a multiaddr names the peer at its end
				}
				if err := c.DropRelay(cmd.Context(), id, p); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "took relay %s off the list of %s\n", p, id)
				return nil
			})
		},
	}
	o.flags(cmd.Flags())
	return cmd
}

// newRelayListCmd is `mycel relay list`: the relays a space lists and the
// daemon's use of each (GET /v1/spaces/{space}/relays).
func newRelayListCmd() *cobra.Command {
	o := &clientOpts{}
	cmd := &cobra.Command{
		Use:   "list <space>",
		Short: "Show the relays a space lists, and this device's reservation and mirror token at each",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				rs, err := c.SpaceRelays(cmd.Context(), id)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if len(rs) == 0 {
					fmt.Fprintf(out, "space %s lists no relay ('mycel relay add %s <multiaddr>' lists one)\n", id, id)
					return nil
				}
				// The list is written by the space's writers, any of whom
				// may be hostile: what it holds (an address may be a
				// /dns name of any bytes) is escaped for the terminal.
				for _, r := range rs {
					fmt.Fprintf(out, "%s %s\n", safe(r.ID), safe(strings.Join(r.Addrs, " ")))
					switch {
					case r.Problem != "":
						fmt.Fprintf(out, "  not used: %s\n", oneLine(r.Problem))
						continue
					case !r.InUse:
						fmt.Fprintln(out, "  not used yet")
						continue
					case r.ReservedUntil != nil:
						fmt.Fprintf(out, "  reserved until %s\n", r.ReservedUntil.Local().Format(time.DateTime))
					default:
						fmt.Fprintln(out, "  not reserved")
					}
					if r.MirrorHanded {
						fmt.Fprintf(out, "  mirror token of epoch %d handed\n", r.MirrorEpoch)
					} else {
						fmt.Fprintln(out, "  mirror token not handed")
					}
					if r.MirrorError != "" {
						fmt.Fprintf(out, "  mirror handover failed: %s\n", oneLine(r.MirrorError))
					}
					if r.Error != "" {
						fmt.Fprintf(out, "  last error: %s\n", oneLine(r.Error))
					}
				}
				return nil
			})
		},
	}
	o.flags(cmd.Flags())
	return cmd
}
