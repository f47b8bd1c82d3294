package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node/api"
)

// newRelayAddCmd is `mycel relay add`: the running daemon hands a space's
// mirror token to a relay (POST /v1/spaces/{space}/relays).
func newRelayAddCmd() *cobra.Command {
	o := &clientOpts{}
	cmd := &cobra.Command{
		Use:   "add <space> <relay multiaddr>",
		Short: "Hand a space's mirror token to a relay, so that it mirrors the space (it reads nothing)",
		Long: `Ask the running daemon to connect to the relay at the given multiaddr (with
/p2p/<peer ID>, as 'mycel relay' prints it) and hand it the space's mirror
token: the relay then replicates the space's encrypted feeds and serves them to
the space's devices while the others are offline. This device must be a writer
of the space. A one-off handover: the relays of the daemon's config (--relay)
also get the new token after each rotation, by themselves; one named here gets
it when it is named again.`,
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
				fmt.Fprintf(cmd.OutOrStdout(), "handed the mirror token of %s to %s\n", id, args[1])
				return nil
			})
		},
	}
	o.flags(cmd.Flags())
	return cmd
}
