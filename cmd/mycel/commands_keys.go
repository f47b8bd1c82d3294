package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/space"
)

// maxValue bounds a value: the largest a space takes (space.MaxValueSize,
// 512 KiB). A larger one is refused here, before the daemon is asked, with
// the daemon's own words.
const maxValue = space.MaxValueSize

// valueTooLarge is the error of a value over maxValue.
func valueTooLarge(n int) error {
	return fmt.Errorf("value of %d bytes or more: a value is at most %d KiB (%d bytes)", n, maxValue>>10, maxValue)
}

func newPutCmd(o *clientOpts) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "put <space> <key> [<value> | -]",
		Short: "Set a key (value from the argument, stdin with -, or --file)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var value []byte
			switch {
			case len(args) == 3 && file != "":
				return usageError{errors.New("give the value as an argument or --file, not both")}
			case len(args) == 3 && args[2] == "-":
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxValue+1))
				if err != nil {
					return err
				}
				value = b
			case len(args) == 3:
				value = []byte(args[2])
			case file != "":
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				value, err = io.ReadAll(io.LimitReader(f, maxValue+1))
				f.Close()
				if err != nil {
					return err
				}
			default:
				return usageError{errors.New("no value: give it as an argument, - for stdin, or --file")}
			}
			if len(value) > maxValue {
				return valueTooLarge(len(value))
			}
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				return c.Put(cmd.Context(), id, args[1], value)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "read the value from this file")
	return cmd
}

func newGetCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "get <space> <key>",
		Short: "Print a key's value (the winner's, raw; --json shows every version)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				e, err := c.Get(cmd.Context(), id, args[1])
				if errors.Is(err, api.ErrNotFound) {
					return fmt.Errorf("no key %q", args[1])
				}
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), e)
				}
				if n := len(e.Versions) - 1; n > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "mycel: %q has %d concurrent versions; this is the winner's (--json shows all)\n", args[1], n+1)
				}
				if e.Versions[0].Deleted {
					return fmt.Errorf("key %q is deleted", args[1])
				}
				_, err = cmd.OutOrStdout().Write(e.Versions[0].Value)
				return err
			})
		},
	}
}

func newDelCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "del <space> <key>",
		Short: "Delete a key",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				return c.Delete(cmd.Context(), id, args[1])
			})
		},
	}
}

func newLsCmd(o *clientOpts) *cobra.Command {
	var limit int
	var all bool
	var after string
	cmd := &cobra.Command{
		Use:   "ls <space> [prefix]",
		Short: "List keys by prefix",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 2 {
				prefix = args[1]
			}
			if limit < 1 {
				return usageError{fmt.Errorf("--limit %d: want 1 or more", limit)}
			}
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				tw := newTable(out)
				left := limit
				for {
					n := min(left, api.MaxListLimit)
					if all {
						n = api.MaxListLimit
					}
					p, err := c.List(cmd.Context(), id, prefix, after, n)
					if err != nil {
						return err
					}
					for _, e := range p.Entries {
						if o.json {
							if err := printJSONLine(out, e); err != nil {
								return err
							}
							continue
						}
						fmt.Fprintf(tw, "%s\t%s\n", safe(e.Key), describe(e))
					}
					left -= len(p.Entries)
					after = p.Next
					if p.Next == "" || (!all && left <= 0) {
						break
					}
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if after != "" && !all {
					fmt.Fprintf(cmd.ErrOrStderr(), "mycel: more keys: --all lists them all, --after %s the next page\n", strconv.Quote(after))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.IntVarP(&limit, "limit", "n", api.DefaultListLimit, "list at most this many keys")
	f.BoolVarP(&all, "all", "a", false, "list every key (page after page)")
	f.StringVar(&after, "after", "", "start after this key")
	return cmd
}

// describe says in a few words what a key holds: its winner's value when
// short text, else its size; deleted; siblings.
func describe(e api.Entry) string {
	if len(e.Versions) == 0 {
		return "(never written)"
	}
	w := e.Versions[0]
	s := ""
	switch {
	case w.Deleted:
		s = "(deleted)"
	case len(w.Value) <= 40 && utf8.Valid(w.Value) && printable(w.Value):
		s = strconv.Quote(string(w.Value))
	default:
		s = humanBytes(float64(len(w.Value)))
	}
	if len(e.Versions) > 1 {
		s += fmt.Sprintf("  (+%d concurrent)", len(e.Versions)-1)
	}
	return s
}

func printable(b []byte) bool {
	for _, r := range string(b) {
		if unsafeRune(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func newWatchCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "watch <space> [prefix]",
		Short: "Print changes of keys by prefix as they happen, until interrupted",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 2 {
				prefix = args[1]
			}
			return o.call(func(c *api.Client) error {
				id, err := resolveSpace(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				// Returning early (stdout closed) ends the stream too.
				ctx, cancel := context.WithCancel(cmd.Context())
				defer cancel()
				ch, errf, err := c.Watch(ctx, id, prefix)
				if err != nil {
					return err
				}
				return printEach(cmd.OutOrStdout(), o.json, ch, errf, func(e api.Entry) string {
					return fmt.Sprintf("%s\t%s", safe(e.Key), describe(e))
				})
			})
		},
	}
}

// printEach prints what a stream delivers, one line each (line), or one
// JSON object per line, until it ends; then errf says why.
func printEach[T any](out io.Writer, asJSON bool, ch <-chan T, errf func() error, line func(T) string) error {
	for item := range ch {
		var err error
		if asJSON {
			err = printJSONLine(out, item)
		} else {
			_, err = fmt.Fprintln(out, line(item))
		}
		if err != nil {
			return err
		}
	}
	return errf()
}
