package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node/api"
)

func newUICmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "ui",
		Short: "Print a one-time login link to the daemon's web UI",
		Long: `ui prints a link that opens the running daemon's web UI in a browser on this
machine. The link works once, for ` + api.LoginLinkTTL.String() + `: the daemon exchanges it for a
session cookie, so the page never holds the API token. Run ui again for
another browser, or once the session ends (after ` + api.SessionTTL.String() + `, or when the
daemon restarts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(func(c *api.Client) error {
				// The daemon must answer: a link to nobody helps no one.
				if _, err := c.Status(cmd.Context()); err != nil {
					return err
				}
				link, err := c.LoginLink()
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), map[string]string{"link": link})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Open this link in a browser on this machine (it works once, for %s):\n%s\n", api.LoginLinkTTL, link)
				return nil
			})
		},
	}
}
