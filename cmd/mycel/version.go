package main

import (
	"io"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// reportedDeps are the modules whose versions a bug report needs.
var reportedDeps = []struct{ name, path string }{
	{"go-libp2p", "github.com/libp2p/go-libp2p"},
	{"badger", "github.com/dgraph-io/badger/v4"},
	{"merkle", "github.com/transparency-dev/merkle"},
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mycel's version and the versions it was built with",
		Long: `Print mycel's version, the Go version it was built with and the versions
of its main dependencies. A dependency not linked into this binary is shown
as "unknown".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, _ := debug.ReadBuildInfo()
			return writeVersion(cmd.OutOrStdout(), version, info)
		},
	}
}

func writeVersion(w io.Writer, version string, info *debug.BuildInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, value string) { _, _ = io.WriteString(tw, name+"\t"+value+"\n") }
	row("mycel", version)
	row("go", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	for _, d := range reportedDeps {
		row(d.name, depVersion(info, d.path))
	}
	return tw.Flush()
}

// depVersion returns the version of module path linked into the binary
// described by info, following a replace directive, or "unknown".
func depVersion(info *debug.BuildInfo, path string) string {
	if info == nil {
		return "unknown"
	}
	for _, m := range info.Deps {
		if m.Path != path {
			continue
		}
		if r := m.Replace; r != nil {
			if r.Version != "" {
				return r.Version
			}
			return r.Path // replaced by a local directory
		}
		if m.Version != "" {
			return m.Version
		}
	}
	return "unknown"
}
