package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mycelsync/mycel/node/api"
)

// The sign-in commands: invite, space password, join, requests, approve,
// deny, remove (DESIGN.md, "Joining and approving devices").

func newInviteCmd(o *clientOpts) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "invite <space>",
		Short: "Make a one-time invite to a space: a link, a code and a QR code",
		Long: `Make an invite with which one new device may ask to join the space. It
prints the invite three ways — a mycel://join/ link, a code to type, and
the link as a QR code for a phone's camera — and when it expires. It works
once, until then (--ttl, 1m to 720h; default 24h).

On the new device: mycel join <link>, or mycel join <code>. The link also
says where to reach this device (its addresses, and its relays' once it
has relays), so the new device needs no other peer to ask. The code does
not name the space: the new device asks the peers it is connected to
which space it is for, then its relays — this daemon leaves the invite's
locator at each of its relays (sealed: only the code opens it), so the code
works while this device is off — and when none knows, --space <space ID>
tells it. The request it sends then waits for a member to approve it
(mycel requests, mycel approve): the invite lets a device ask, not read.

--json prints the invite: space, id, link, code, qr and expires.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				id, err := resolveSpace(ctx, c, args[0])
				if err != nil {
					return err
				}
				inv, err := c.CreateInvite(ctx, id, ttl)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if o.json {
					return printJSON(out, inv)
				}
				name := spaceName(ctx, c, id)
				fmt.Fprintf(out, "Invite to %s, for one device, until %s:\n\n", name, inv.Expires.Local().Format("2006-01-02 15:04 MST"))
				fmt.Fprintf(out, "  link: %s\n  code: %s\n\n", inv.Link, inv.Code)
				fmt.Fprint(out, inv.QR)
				if !strings.HasSuffix(inv.QR, "\n") {
					fmt.Fprintln(out)
				}
				fmt.Fprintf(out, "\nOn the new device: mycel join %s\n  or: mycel join %s (it asks its peers and relays which space the code is for)\n  or: mycel join %s --space %s\n", inv.Link, inv.Code, inv.Code, inv.Space)
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the invite works (1m to 720h)")
	return cmd
}

// spaceName is a space's local name for messages, or its short ID.
func spaceName(ctx context.Context, c *api.Client, id string) string {
	if sp, err := c.Space(ctx, id); err == nil && sp.Name != "" {
		return fmt.Sprintf("%q (%s)", sp.Name, short(id))
	}
	return short(id)
}

func newSpacePasswordCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "password <space>",
		Short: "Set the password with which a device may ask to join the space",
		Long: `Set the space's password: a device that knows it may ask to join with
mycel join --space <space ID> --password, and a member still approves the
request (with its safety code). The password lets nobody read anything;
members keep a key derived from it, never the password itself.

The password is read from the terminal without echo, twice; when stdin is
not a terminal, one line of it is the password. It is 8 to 1024 bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				id, err := resolveSpace(ctx, c, args[0])
				if err != nil {
					return err
				}
				name := spaceName(ctx, c, id)
				pw, err := readPassword(cmd, fmt.Sprintf("New password of %s: ", name), true)
				if err != nil {
					return err
				}
				if err := c.SetPassword(ctx, id, pw); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "password of %s set. A new device asks with:\n  mycel join --space %s --password\nand a member approves it (mycel requests, mycel approve).\n", name, id)
				return nil
			})
		},
	}
}

func newJoinCmd(o *clientOpts) *cobra.Command {
	var space, name string
	var password, noWait bool
	var timeout, interval time.Duration
	cmd := &cobra.Command{
		Use:   "join {<invite> | --password <name@relay> | --space <space ID> --password}",
		Short: "Ask to join a space with an invite, or with its password, and wait for approval",
		Long: `Ask to join a space, with an invite a member made (mycel invite: its link,
or its code), or with the space's ID and password (--password reads it from
the terminal without echo, or one line of stdin). A link says where to
reach the inviting device: the daemon dials it first. A code does not name its
space: the daemon asks the peers it is connected to, then its relays
(--relay of the daemon), where members leave the locators of their invites
so that a code works while no member is online; --space <space ID> tells it
when neither knows.

A space may have an alias at a relay (mycel space alias): with --password,
give name@relay instead of the space's ID — the relay a multiaddr ending in
/p2p/<peer ID>, or the peer ID of one of the daemon's relays, or nothing
(name@) for all of them:

  mycel join --password family@/dns4/relay.example.org/tcp/4001/p2p/12D3KooW…

The request goes to the members of the space; this device can neither read
nor write it until one of them approves. The command prints the request's
safety code: the approving device shows a code too, and the person must
check that both are the same. It then waits, polling the daemon, until a
member answers: exit 0 once approved, 1 if the request is denied or
refused (the invite was used or expired, or the password is wrong), or if
--timeout passes first. --no-wait returns at once; mycel space info
<space> shows the answer later.

--name sets this device's local label of the space (by default the alias's
name when joining by name@relay, else "joined"). --json prints the
request's state (space, code, state, reason, since) when the command ends.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			with := api.JoinWith{Name: name}
			if password && space == "" && len(args) == 1 && isAlias(args[0]) {
				space, args = args[0], nil // mycel join --password name@relay
			}
			switch {
			case space == "":
			case isAlias(space):
				with.Space = strings.TrimSpace(space)
				if with.Name == "" {
					// The alias names the space at its relay: a better
					// local label than "joined" (mycel get family …).
					n, _, _ := strings.Cut(with.Space, "@")
					with.Name = strings.ToLower(n)
				}
			case !isID(space):
				return usageError{fmt.Errorf("--space %q: want the space's ID, 64 hex digits, or an alias name@relay", space)}
			default:
				with.Space = strings.ToLower(space)
			}
			switch {
			case password && len(args) > 0:
				return usageError{errors.New("join with an invite or with --password, not both")}
			case password && space == "":
				return usageError{errors.New("--password needs the space: name@relay, or --space <space ID>")}
			case !password && len(args) == 0:
				return usageError{errors.New("give an invite (its link or code), or --space <space ID> --password")}
			case timeout < 0 || interval <= 0:
				return usageError{errors.New("--timeout must not be negative, --interval must be positive")}
			}
			if len(args) > 0 {
				with.Invite = strings.TrimSpace(args[0])
			}
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				if password {
					pw, err := readPassword(cmd, fmt.Sprintf("Password of space %s: ", short(with.Space)), false)
					if err != nil {
						return err
					}
					with.Password = pw
				}
				st, err := c.Join(ctx, with)
				if err != nil {
					return err
				}
				label := short(st.Space)
				if name != "" {
					label = fmt.Sprintf("%q (%s)", name, short(st.Space))
				}
				stderr := cmd.ErrOrStderr()
				if st.State == api.JoinWaiting {
					fmt.Fprintf(stderr, "Asked to join %s. Safety code: %s — the approving device must show the same code.\n", label, st.Code)
				}
				if !noWait && st.State == api.JoinWaiting {
					if timeout > 0 {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, timeout)
						defer cancel()
					}
					fmt.Fprintln(stderr, "Waiting for a member to approve (Ctrl-C stops waiting; the request stands)…")
					st, err = waitJoined(ctx, c, st, interval)
					if err != nil {
						if ctx.Err() != nil {
							return joinWaitErr(ctx, st.Space, timeout)
						}
						return err
					}
				}
				if o.json {
					if err := printJSON(cmd.OutOrStdout(), st); err != nil {
						return err
					}
				}
				return joinOutcome(cmd, c, st, label, noWait, o.json)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&space, "space", "", "the space's ID or alias (name@relay): with --password, or with an invite code that no peer or relay knows")
	f.StringVar(&name, "name", "", "this device's local label of the space (default: the alias's name when joining by name@relay, else \"joined\")")
	f.BoolVar(&password, "password", false, "ask with the space's password (read without echo) instead of an invite")
	f.BoolVar(&noWait, "no-wait", false, "return once the request is sent, without waiting for an answer")
	f.DurationVar(&timeout, "timeout", 0, "stop waiting after this long, exit 1 (0: wait until answered)")
	f.DurationVar(&interval, "interval", 500*time.Millisecond, "how often to poll the daemon for the answer")
	f.MarkHidden("interval")
	return cmd
}

// writerGrace is how long join waits, once approved, for the daemon to
// count this device as a writer (its add-writer op arriving).
const writerGrace = 10 * time.Second

// waitJoined polls the space's info until the request is answered and, if
// approved, until this device is a writer (at most writerGrace more).
func waitJoined(ctx context.Context, c *api.Client, st api.JoinState, interval time.Duration) (api.JoinState, error) {
	var approvedAt time.Time
	for {
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, ctx.Err()
		case <-t.C:
		}
		sp, err := c.Space(ctx, st.Space)
		if err != nil {
			return st, err
		}
		switch {
		case sp.Join != nil:
			st = *sp.Join
		case sp.Approved:
			st.State = api.JoinApproved // the daemon no longer tracks an answered request
		}
		if st.State == api.JoinWaiting {
			continue
		}
		if st.State != api.JoinApproved || sp.Writer {
			return st, nil
		}
		if approvedAt.IsZero() {
			approvedAt = time.Now()
		}
		if time.Since(approvedAt) >= writerGrace {
			return st, nil
		}
	}
}

func joinWaitErr(ctx context.Context, space string, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s; the request stands (mycel space info %s shows its answer)", timeout, short(space))
	}
	return fmt.Errorf("stopped waiting; the request stands (mycel space info %s shows its answer)", short(space))
}

// joinOutcome says how the request ended and returns the error of the
// exit status: nil once approved (or with --no-wait while waiting).
func joinOutcome(cmd *cobra.Command, c *api.Client, st api.JoinState, label string, noWait, jsonOut bool) error {
	why := func(def string) string {
		if st.Reason != "" {
			return st.Reason
		}
		return def
	}
	switch st.State {
	case api.JoinWaiting:
		if noWait {
			fmt.Fprintf(cmd.ErrOrStderr(), "Not waiting: mycel space info %s shows when a member answers.\n", short(st.Space))
			return nil
		}
		return fmt.Errorf("the request to join %s is still waiting", label)
	case api.JoinApproved:
		w := cmd.OutOrStdout()
		if jsonOut {
			w = cmd.ErrOrStderr() // stdout holds the JSON
		}
		if sp, err := c.Space(cmd.Context(), st.Space); err == nil && sp.Writer {
			fmt.Fprintf(w, "approved: this device can now read and write %s\n", label)
		} else {
			fmt.Fprintf(w, "approved: this device holds the keys of %s; its writes count once the approval has synced here\n", label)
		}
		return nil
	case api.JoinDenied:
		return fmt.Errorf("denied: %s", why("a member denied the request to join "+label))
	case api.JoinRefused:
		return fmt.Errorf("refused: %s", why("the invite was used or expired, or the password is wrong"))
	}
	return fmt.Errorf("the request to join %s is %q (%s)", label, st.State, st.Reason)
}

func newRequestsCmd(o *clientOpts) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "List the requests to join this device's spaces that wait for an answer",
		Long: `List the join requests waiting for an answer in the spaces this device is a
member of, oldest first: the request's ID, the space, the device's name,
the safety code it shows, how it asked (an invite or the password), and
when. Check the code with the person holding the new device, then
mycel approve <ID> --code <code>, or mycel deny <ID>.

--watch prints the requests waiting, then each new one as it arrives, one
line each, until interrupted. --json prints JSON (with --watch, one object
per line).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				out := cmd.OutOrStdout()
				if watch {
					ctx, cancel := context.WithCancel(ctx)
					defer cancel()
					ch, errf, err := c.WatchRequests(ctx)
					if err != nil {
						return err
					}
					return printEach(out, o.json, ch, errf, func(r api.Request) string {
						return fmt.Sprintf("%s\t%s\t%q\t%s\t%s\t%s", safe(r.ID), requestSpace(r), r.Name, safe(r.Code), safe(r.Via), r.Time.Local().Format(time.TimeOnly))
					})
				}
				reqs, err := c.Requests(ctx)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(out, reqs)
				}
				if len(reqs) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no requests waiting")
					return nil
				}
				now := time.Now()
				tw := newTable(out)
				fmt.Fprintln(tw, "ID\tSPACE\tDEVICE\tCODE\tVIA\tASKED")
				for _, r := range reqs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", safe(r.ID), requestSpace(r), safe(r.Name), safe(r.Code), safe(r.Via), lastSeen(now.Sub(r.Time)))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "Check the code on the new device, then: mycel approve <ID> --code <CODE>, or mycel deny <ID>")
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print new requests as they arrive, until interrupted")
	return cmd
}

// requestSpace names a request's space: its local name, else its short ID.
func requestSpace(r api.Request) string {
	if r.SpaceName != "" {
		return safe(r.SpaceName)
	}
	return short(r.Space)
}

// resolveRequest finds a waiting request by its ID or a unique prefix of
// api.MinRequestPrefix or more hex digits.
func resolveRequest(ctx context.Context, c *api.Client, s string) (api.Request, error) {
	s = strings.ToLower(s)
	if !isHex(s) || len(s) < api.MinRequestPrefix || len(s) > 16 {
		return api.Request{}, usageError{fmt.Errorf("request %q: want its ID, 16 hex digits (or %d or more of them), as mycel requests lists it", s, api.MinRequestPrefix)}
	}
	reqs, err := c.Requests(ctx)
	if err != nil {
		return api.Request{}, err
	}
	var found []api.Request
	for _, r := range reqs {
		if strings.HasPrefix(r.ID, s) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return api.Request{}, fmt.Errorf("no request %s waiting (mycel requests lists them)", s)
	case 1:
		return found[0], nil
	}
	return api.Request{}, fmt.Errorf("%d requests start with %s: give more of the ID", len(found), s)
}

func newApproveCmd(o *clientOpts) *cobra.Command {
	var code string
	var yes bool
	cmd := &cobra.Command{
		Use:   "approve <request ID>",
		Short: "Approve a device's request to join: it becomes a writer and gets the space's keys",
		Long: fmt.Sprintf(`Approve a join request (its ID from mycel requests, or %d or more hex digits
of it). The device becomes a writer of the space and gets the space's keys:
it can read everything written so far.

First check the safety code: the new device shows one, and the request must
show the same, or someone else's device is asking. With --code, the daemon
checks it (exit 1 if it differs, and nothing changes). Without --code, on a
terminal, mycel shows the request's code and asks; --yes approves without
checking. When stdin is not a terminal, --code or --yes is required.`, api.MinRequestPrefix),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, tty := stdinTerminal(cmd)
			if code == "" && !yes && !tty {
				return usageError{errors.New("stdin is not a terminal, so mycel cannot ask: pass --code <the code the new device shows> (or --yes to approve without checking it)")}
			}
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				r, err := resolveRequest(ctx, c, args[0])
				if err != nil {
					return err
				}
				if code == "" && !yes {
					ok, err := confirmApprove(ctx, cmd.InOrStdin(), cmd.ErrOrStderr(), r)
					if err != nil {
						return err
					}
					if !ok {
						return fmt.Errorf("not approved (mycel deny %s refuses the request)", r.ID)
					}
					code = r.Code
				}
				if err := c.Approve(ctx, r.ID, code); err != nil {
					if errors.Is(err, api.ErrSafetyCode) {
						return fmt.Errorf("safety code %s is not the request's: do not approve it unless the new device shows the request's code (mycel deny %s refuses it)", code, r.ID)
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "approved %q: it can now read and write %s\n", r.Name, requestSpace(r))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&code, "code", "", "the safety code the new device shows; the daemon checks it")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "approve without asking or checking the safety code")
	return cmd
}

// confirmApprove asks the person on w whether to approve r, showing its
// safety code, and reads the answer from in: y or yes approves.
func confirmApprove(ctx context.Context, in io.Reader, w io.Writer, r api.Request) (bool, error) {
	fmt.Fprintf(w, "Authorise node %q to join %s? Safety code %s — does the new device show the same code? [y/N] ", r.Name, requestSpace(r), safe(r.Code))
	a, err := readLine(ctx, in, 64)
	if err != nil {
		return false, err
	}
	a = strings.ToLower(strings.TrimSpace(a))
	return a == "y" || a == "yes", nil
}

func newDenyCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "deny <request ID>",
		Short: "Deny a device's request to join; an invite it used is spent",
		Long: fmt.Sprintf(`Deny a join request (its ID from mycel requests, or %d or more hex digits of
it): the device is told, and an invite it used is spent.`, api.MinRequestPrefix),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				r, err := resolveRequest(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := c.Deny(ctx, r.ID); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "denied %q's request to join %s\n", r.Name, requestSpace(r))
				return nil
			})
		},
	}
}

// minDevicePrefix is the fewest hex digits of a feed key that name a
// device for mycel remove.
const minDevicePrefix = 8

func newRemoveCmd(o *clientOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "remove <space> <device>",
		Short: "Remove a device from a space and rotate the space's keys",
		Long: `Remove a device from a space: it is no longer a writer, and the space moves
to a new epoch whose keys are sealed to the remaining members only, so the
removed device can read nothing written from now on and can no longer
replicate the space.

<device> is its name, exactly as mycel devices <space> shows it, or ` + strconv.Itoa(minDevicePrefix) + ` or
more hex digits of its feed key. A name or prefix that matches more than
one device is refused, listing them.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				id, err := resolveSpace(ctx, c, args[0])
				if err != nil {
					return err
				}
				d, err := resolveDevice(ctx, c, id, args[1])
				if err != nil {
					return err
				}
				if err := c.RemoveMember(ctx, id, d.Feed); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %q (%s) from %s; the space's keys were rotated: it can read nothing written from now on\n",
					d.Name, short(d.Feed), spaceName(ctx, c, id))
				return nil
			})
		},
	}
}

// resolveDevice finds a device of a space by its exact name or a prefix of
// at least minDevicePrefix hex digits of its feed key.
func resolveDevice(ctx context.Context, c *api.Client, space, s string) (api.Device, error) {
	ds, err := c.Devices(ctx, space)
	if err != nil {
		return api.Device{}, err
	}
	prefix := ""
	if len(s) >= minDevicePrefix && isHex(s) {
		prefix = strings.ToLower(s)
	}
	var found []api.Device
	for _, d := range ds {
		if d.Name == s || (prefix != "" && strings.HasPrefix(d.Feed, prefix)) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		hint := ""
		if isHex(s) && len(s) < minDevicePrefix {
			hint = fmt.Sprintf("; a feed prefix needs %d or more hex digits", minDevicePrefix)
		}
		return api.Device{}, fmt.Errorf("no device %q in the space (mycel devices %s lists them%s)", s, short(space), hint)
	}
	var l []string
	for _, d := range found {
		l = append(l, fmt.Sprintf("%s %q", short(d.Feed), d.Name))
	}
	return api.Device{}, fmt.Errorf("%q matches %d devices: %s; give more of the feed key", s, len(found), strings.Join(l, ", "))
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return s != ""
}

// stdinTerminal returns stdin's descriptor and whether it is a terminal.
func stdinTerminal(cmd *cobra.Command) (int, bool) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// readPassword reads a password: on a terminal without echo after prompt
// (twice when confirm), else one line of stdin.
func readPassword(cmd *cobra.Command, prompt string, confirm bool) (string, error) {
	ctx := cmd.Context()
	var pw string
	if fd, tty := stdinTerminal(cmd); tty {
		p, err := readHidden(ctx, cmd.ErrOrStderr(), fd, prompt)
		if err != nil {
			return "", err
		}
		if confirm && len(p) > 0 {
			again, err := readHidden(ctx, cmd.ErrOrStderr(), fd, "Again: ")
			if err != nil {
				return "", err
			}
			if again != p {
				return "", errors.New("the two passwords differ; nothing changed")
			}
		}
		pw = p
	} else {
		l, err := readLine(ctx, cmd.InOrStdin(), api.MaxPassword+2)
		if err != nil {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		pw = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
	}
	if len(pw) < api.MinPassword || len(pw) > api.MaxPassword {
		return "", fmt.Errorf("a password is %d to %d bytes; this one has %d", api.MinPassword, api.MaxPassword, len(pw))
	}
	return pw, nil
}

// readHidden reads a line from the terminal fd without echo. When ctx
// ends first (Ctrl-C), it restores the terminal and returns; the read is
// left to the process's exit.
func readHidden(ctx context.Context, w io.Writer, fd int, prompt string) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	fmt.Fprint(w, prompt)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(w)
		return string(r.b), r.err
	case <-ctx.Done():
		term.Restore(fd, state)
		fmt.Fprintln(w)
		return "", ctx.Err()
	}
}

// readLine reads one line of at most max bytes from r, with its newline
// (none at the end of the input), a byte at a time so that nothing after
// the line is taken from r. It returns when ctx ends too, leaving the read
// to the process's exit.
func readLine(ctx context.Context, r io.Reader, max int) (string, error) {
	done := make(chan error, 1)
	var line []byte
	go func() {
		var b [1]byte
		for {
			n, err := r.Read(b[:])
			if n == 1 {
				line = append(line, b[0])
				switch {
				case b[0] == '\n':
					done <- nil
					return
				case len(line) > max:
					done <- fmt.Errorf("line longer than %d bytes", max)
					return
				}
			}
			switch {
			case err == io.EOF && len(line) > 0:
				done <- nil
				return
			case err == io.EOF:
				done <- errors.New("no input")
				return
			case err != nil:
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return string(line), err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// isAlias reports whether s names a space by an alias at a relay:
// name@relay (the daemon checks the name and the relay).
func isAlias(s string) bool {
	name, _, ok := strings.Cut(strings.TrimSpace(s), "@")
	return ok && name != ""
}

func newSpaceAliasCmd(o *clientOpts) *cobra.Command {
	var relay string
	var drop bool
	cmd := &cobra.Command{
		Use:   "alias <space> <name>",
		Short: "Name the space at the daemon's relays, so that a device joins with name@relay",
		Long: `Register an alias of the space at the daemon's relays (or the one given with
--relay): a device that knows the space's password then asks to join with

  mycel join --password <name>@<relay address>

instead of the space's 64-digit ID. The relay takes the name from a writer
of a space it mirrors (the daemon hands its relays the mirror token by
itself); the first space to take a name at a relay holds it there, and a
writer of that space may move it or drop it (--drop). A name is 1 to 32
letters a-z, digits and single hyphens inside; upper case is folded.

The alias reveals the space's ID to whoever knows the name — nothing more:
the password and an approval by a member are still needed.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *api.Client) error {
				ctx := cmd.Context()
				id, err := resolveSpace(ctx, c, args[0])
				if err != nil {
					return err
				}
				var st api.AliasState
				if drop {
					st, err = c.DropAlias(ctx, id, args[1], relay)
				} else {
					st, err = c.SetAlias(ctx, id, args[1], relay)
				}
				if o.json && err == nil {
					return printJSON(cmd.OutOrStdout(), st)
				}
				for _, r := range st.Relays {
					if r.Error != "" {
						fmt.Fprintf(cmd.ErrOrStderr(), "relay %s: %s\n", r.ID, r.Error)
					} else if drop && r.Absent {
						fmt.Fprintf(cmd.OutOrStdout(), "no alias %s at relay %s: it holds no such name, so nothing changed there\n", st.Name, r.ID)
					} else if drop {
						fmt.Fprintf(cmd.OutOrStdout(), "dropped %s at relay %s\n", st.Name, r.ID)
					} else {
						fmt.Fprintf(cmd.OutOrStdout(), "%s@%s names %s\n", st.Name, r.ID, st.Space)
					}
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&relay, "relay", "", "one relay (a multiaddr ending in /p2p/<peer ID>, or a relay's peer ID); default: every relay of the daemon")
	cmd.Flags().BoolVar(&drop, "drop", false, "drop the alias instead")
	return cmd
}
