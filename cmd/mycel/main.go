// Command mycel is the one mycel binary. Today it only reports its version;
// the daemon, the relay and the CLI commands that talk to a daemon are
// added as subcommands as they are built.
//
// Exit status: 0 on success, 1 when a command fails, 2 on a usage error
// (unknown command, flag or argument), 3 when no daemon answers.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	// The first SIGINT or SIGTERM cancels ctx so that a command can shut
	// down gracefully; stop then restores the default handling, so a
	// second signal kills the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process's exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	// An error may quote what another device wrote (a name, a key).
	fmt.Fprintf(stderr, "mycel: %s\n", safeText(err.Error()))
	var coded exitCoder
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	var usage usageError
	if errors.As(err, &usage) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitError
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "mycel",
		Short: "Sync one database across your devices without a server that can read it",
		Long: `mycel keeps one small key-value database in sync across all of a person's
devices without a server that can read it. Each device runs a node that
writes its own signed, append-only feed; the feeds of a space together form
the database. An always-on relay keeps devices in touch and mirrors their
feeds while holding no key that lets it read them, and a browser tab can be
a node too. mycel daemon runs this device's node; the other commands talk
to it through its local HTTP API (address in api.addr and token in
api.token, in the data directory; --data or MYCEL_HOME chooses it, --api
overrides the address, --json prints JSON); mycel ui prints a login link
to the daemon's web UI. mycel relay runs an always-on relay: circuits, the
blind mirror, a mailbox for the devices that are offline, message routing,
invite locators and aliases.

Exit status: 0 on success, 1 when a command fails, 2 on a usage error
(unknown command, flag or argument), 3 when the command needs a running
daemon and none answers.`,
		// mycel prints errors itself (run), once, with its own prefix.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{err}
	})
	root.AddCommand(append([]*cobra.Command{newVersionCmd(), newDaemonCmd(), newRelayCmd(), newCheckCmd(), newRepairCmd()}, clientCommands()...)...)
	applyConventions(root)
	return root
}

// usageError marks a mistake in how mycel was invoked (exit status 2), as
// opposed to a command that was invoked correctly and failed (status 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// applyConventions walks the finished command tree so that commands added
// later follow the same rules without repeating them:
//   - a command that only groups others shows its help when called alone
//     and rejects an unknown subcommand (cobra would print help and exit 0);
//   - every positional-argument check fails with a usage error.
func applyConventions(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = unknownCommand
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		applyConventions(sub)
	}
}

// unknownCommand is the argument check of a command that only groups
// others: any argument left over is a subcommand that does not exist.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		for i, name := range s {
			s[i] = strconv.Quote(name)
		}
		msg += " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return errors.New(msg)
}
