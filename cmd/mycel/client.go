package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mycelsync/mycel/node"
	"github.com/mycelsync/mycel/node/api"
)

// exitNotRunning is the exit status of a command that needs a daemon when
// none answers.
const exitNotRunning = 3

// exitCoder is an error that chooses the process's exit status.
type exitCoder interface{ ExitCode() int }

// notRunningError gives api.ErrNotRunning its exit status.
type notRunningError struct{ err error }

func (e notRunningError) Error() string { return e.err.Error() }
func (e notRunningError) Unwrap() error { return e.err }
func (e notRunningError) ExitCode() int { return exitNotRunning }

// clientCommands are the commands that talk to a running daemon through
// its local HTTP API.
func clientCommands() []*cobra.Command {
	o := &clientOpts{}
	cmds := []*cobra.Command{
		newStatusCmd(o), newSpaceCmd(o), newMembersCmd(o),
		newPutCmd(o), newGetCmd(o), newDelCmd(o), newLsCmd(o), newWatchCmd(o),
		newDevicesCmd(o), newSendCmd(o), newListenCmd(o),
		newInviteCmd(o), newJoinCmd(o), newRequestsCmd(o), newApproveCmd(o), newDenyCmd(o), newRemoveCmd(o),
		newPeersCmd(o), newSyncCmd(o), newUICmd(o),
	}
	for _, c := range cmds {
		o.flags(c.PersistentFlags())
	}
	return cmds
}

// clientOpts are the flags every client command takes.
type clientOpts struct {
	dataDir string
	apiAddr string
	json    bool
}

func (o *clientOpts) flags(f *pflag.FlagSet) {
	f.StringVar(&o.dataDir, "data", "", "data directory of the daemon (env MYCEL_HOME)")
	f.StringVar(&o.apiAddr, "api", "", "host:port of the daemon's API (default: the running daemon's, from api.addr in the data directory)")
	f.BoolVar(&o.json, "json", false, "print JSON (watch, listen: one JSON object per line)")
}

// client returns a client of the daemon the flags name.
func (o *clientOpts) client() (*api.Client, error) {
	cfg, err := node.LoadConfig(node.Overrides{DataDir: o.dataDir, API: o.apiAddr}, os.Getenv)
	if err != nil {
		return nil, err
	}
	var c *api.Client
	if o.apiAddr != "" {
		c, err = api.DialAddr(cfg.DataDir, cfg.API)
	} else {
		c, err = api.Dial(cfg.DataDir)
		var nr *api.NotRunningError
		if errors.As(err, &nr) && nr.Addr == "" {
			nr.Addr = cfg.API // where it would listen
		}
	}
	return c, cliError(err)
}

// cliError gives a client's error its exit status.
func cliError(err error) error {
	if err != nil && errors.Is(err, api.ErrNotRunning) {
		return notRunningError{err}
	}
	return err
}

// call runs f with a client, mapping its error.
func (o *clientOpts) call(f func(c *api.Client) error) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	return cliError(f(c))
}

// minSpacePrefix is the fewest hex digits of a space ID that name it.
const minSpacePrefix = 4

// resolveSpace turns what the user typed into a space ID: a full ID, a
// unique prefix of minSpacePrefix or more hex digits of one, or a unique
// local name.
func resolveSpace(ctx context.Context, c *api.Client, s string) (string, error) {
	if isID(s) {
		return strings.ToLower(s), nil
	}
	spaces, err := c.Spaces(ctx)
	if err != nil {
		return "", err
	}
	var byName, byPrefix []api.SpaceInfo
	for _, sp := range spaces {
		if sp.Name == s {
			byName = append(byName, sp)
		}
		if len(s) >= minSpacePrefix && strings.HasPrefix(sp.ID, strings.ToLower(s)) {
			byPrefix = append(byPrefix, sp)
		}
	}
	for _, m := range [][]api.SpaceInfo{byName, byPrefix} {
		switch len(m) {
		case 0:
			continue
		case 1:
			return m[0].ID, nil
		default:
			var ids []string
			for _, sp := range m {
				ids = append(ids, sp.ID[:16]+" ("+sp.Name+")")
			}
			return "", fmt.Errorf("%q names %d spaces: %s; give more of the ID", s, len(m), strings.Join(ids, ", "))
		}
	}
	return "", fmt.Errorf("no space %q here (mycel space list shows them; a space is named by its ID, a prefix of %d or more hex digits, or its name)", s, minSpacePrefix)
}

// isID reports whether s is a full space ID or feed key.
func isID(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

// printJSON prints v as indented JSON, with no character raw that could
// act on a terminal (jsonSafe).
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(jsonSafe(append(b, '\n')))
	return err
}

// printJSONLine prints v as JSON on one line, like printJSON.
func printJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(jsonSafe(append(b, '\n')))
	return err
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// short abbreviates an ID for a table.
func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// humanBytes writes n bytes with a binary unit.
func humanBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

func sortedSpaces(s []api.SpaceInfo) []api.SpaceInfo {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Name != s[j].Name {
			return s[i].Name < s[j].Name
		}
		return s[i].ID < s[j].ID
	})
	return s
}
