package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node/api"
)

func newDevicesCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "devices <space>",
		Short: "List the devices of a space and which are online",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				ds, err := c.Devices(cmd.Context(), id)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), ds)
				}
				now := time.Now()
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "FEED\tNAME\tONLINE\tLAST SEEN\t")
				for _, d := range ds {
					online, seen, self := "no", "never", ""
					if d.Online {
						online = "yes"
					}
					if d.LastSeen != nil {
						seen = lastSeen(now.Sub(*d.LastSeen))
					}
					if d.Self {
						seen, self = "now", "(this device)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", short(d.Feed), safe(d.Name), online, seen, self)
				}
				return tw.Flush()
			})
		},
	}
}

// lastSeen writes how long ago, to the second.
func lastSeen(d time.Duration) string {
	if d < time.Second {
		return "now"
	}
	return d.Round(time.Second).String() + " ago"
}

func newSendCmd(o *clientOpts) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "send <space> <topic> <data | ->",
		Short: "Send a message to the space's devices that are online (data from the argument or stdin with -)",
		Long: `Send an app message to the devices of a space that are online now; with
--keep, the relays' mailboxes also keep it for the devices that are offline,
for up to a week, and each gets it once when it comes back (mycel listen
shows it then, with its original time). The topic is 1 to 64 bytes, chosen
by the app; the data at most 16 KiB. mycel listen prints what other devices
send.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := []byte(args[2])
			if args[2] == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), api.MaxMessageData+1))
				if err != nil {
					return err
				}
				data = b
			}
			if len(data) > api.MaxMessageData {
				return fmt.Errorf("message larger than %d bytes", api.MaxMessageData)
			}
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				if keep {
					return c.SendKept(cmd.Context(), id, args[1], data)
				}
				return c.Send(cmd.Context(), id, args[1], data)
			})
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "the relays' mailboxes keep it for the devices that are offline (up to a week)")
	return cmd
}

func newListenCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "listen <space> [topic]",
		Short: "Print the messages other devices send, until interrupted",
		Long: `Print the app messages other devices of the space send (of one topic, or
of all), one per line, until interrupted: time, sender, topic and data
(base64 when it is not printable text). --json prints one JSON object per
line: sender (feed), name, time, topic and data (base64).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := ""
			if len(args) == 2 {
				topic = args[1]
			}
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				ctx, cancel := context.WithCancel(cmd.Context())
				defer cancel()
				ch, errf, err := c.Listen(ctx, id, topic)
				if err != nil {
					return err
				}
				return printEach(cmd.OutOrStdout(), o.json, ch, errf, func(m api.Message) string {
					return fmt.Sprintf("%s\t%s\t%s\t%s", m.Time.Local().Format(time.TimeOnly), safe(sender(m)), safe(m.Topic), messageText(m.Data))
				})
			})
		},
	}
}

func sender(m api.Message) string {
	if m.Name != "" {
		return m.Name
	}
	return short(m.Sender)
}

// messageText is the data as text when it is printable UTF-8, else base64.
func messageText(b []byte) string {
	if utf8.Valid(b) && printable(b) {
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}
