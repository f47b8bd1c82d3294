package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// approveWaiting waits for the request showing code on member and approves
// it, then waits until o holds the space's keys.
func approveWaiting(t *testing.T, member, o *daemon, id, code string) {
	t.Helper()
	var req api.Request
	waitFor(t, 90*time.Second, func() error {
		var rs []api.Request
		member.request("GET", "/v1/requests", nil, &rs)
		for _, r := range rs {
			if r.Code == code {
				req = r
				return nil
			}
		}
		var ps []api.Peer
		o.request("GET", "/v1/peers", nil, &ps)
		return fmt.Errorf("no request with code %s on the member: %+v; the device's peers: %+v", code, rs, ps)
	})
	if st := member.request("POST", "/v1/requests/"+req.ID+"/approve", api.ApproveParams{Code: code}, nil); st != http.StatusNoContent && st != http.StatusOK {
		t.Fatalf("approve: status %d", st)
	}
	waitFor(t, 60*time.Second, func() error {
		var info api.SpaceInfo
		o.request("GET", "/v1/spaces/"+id, nil, &info)
		if !info.Approved {
			return fmt.Errorf("not approved yet: %+v", info.Join)
		}
		return nil
	})
}

// directAddr is d's TCP address with its peer ID, not a circuit address
// through a relay (which d prints too once it holds a reservation):
// gossipsub, which carries join requests, does not use relayed
// connections.
func directAddr(t *testing.T, d *daemon) string {
	t.Helper()
	for _, a := range d.addrs {
		if strings.Contains(a, "/tcp/") && !strings.Contains(a, "p2p-circuit") {
			return a
		}
	}
	t.Fatalf("no direct TCP address in %v", d.addrs)
	return ""
}

// waitLog waits until d's log says what.
func waitLog(t *testing.T, d *daemon, what string) {
	t.Helper()
	waitFor(t, 60*time.Second, func() error {
		if !strings.Contains(d.stderr.String(), what) {
			return errors.New("the daemon's log does not say " + what)
		}
		return nil
	})
}

// TestE2EJoinByCodeAtRelay: a member makes an invite, its daemon deposits
// the locator at its relay, and the member stops; the relay restarts. A new device whose only
// peer is the relay runs `mycel join <code>`: the relay's locator names
// the space (and where the member will be), the request waits; the member
// comes back, the new device reaches it through the relay by the
// locator's hints, the member approves, and the spent invite's locator
// is removed from the relay.
func TestE2EJoinByCodeAtRelay(t *testing.T) {
	rlisten := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freeTCPPort(t))
	rdir := t.TempDir()
	r := startRelay(t, rdir, "--listen", rlisten)
	raddr := rlisten + "/p2p/" + r.id

	a := newDaemon(t, "--relay", raddr)
	var c *daemon
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("A's log:\n%s", a.stderr)
			if c != nil {
				t.Logf("C's log:\n%s", c.stderr)
			}
		}
	})
	id := createSpace(t, a)
	reservedOn(t, a, r.id)
	var inv api.Invite
	if st := a.request("POST", "/v1/spaces/"+id+"/invites", api.InviteParams{}, &inv); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("invite: status %d", st)
	}
	waitLog(t, a, "deposited the invite's locator")
	a.kill()
	// The relay keeps the locator across a restart.
	r.cmd.Process.Kill()
	r.cmd.Wait()
	startRelay(t, rdir, "--listen", rlisten)

	c = newDaemon(t, "--relay", raddr)
	out, stderr, code := mycel(t, "join", "--data", c.dir, "--no-wait", inv.Code)
	if code != 0 || !strings.Contains(stderr, "Asked to join") {
		t.Fatalf("mycel join <code> with only the relay: exit %d\n%s%s", code, out, stderr)
	}
	var info api.SpaceInfo
	if c.request("GET", "/v1/spaces/"+id, nil, &info) != http.StatusOK || info.Join == nil || info.Join.State != api.JoinWaiting {
		t.Fatalf("C's request: %+v", info)
	}
	t.Logf("C asked with the code while A is down; state %s, code %s", info.Join.State, info.Join.Code)

	a.start()
	approveWaiting(t, a, c, id, info.Join.Code)
	waitLog(t, a, "removed the spent invite's locator")
	// The code names no space any more: a third device is told so.
	d := newDaemon(t, "--relay", raddr)
	if out, stderr, code := mycel(t, "join", "--data", d.dir, "--no-wait", inv.Code); code == 0 || !strings.Contains(stderr, "relay") {
		t.Fatalf("join with a spent code: exit %d\n%s%s", code, out, stderr)
	}
}

// TestE2EJoinByAlias: a member names its space at its relay (mycel space
// alias); a new device joins by password with family@<relay address>; the
// member approves. Another member's space cannot take the name.
func TestE2EJoinByAlias(t *testing.T) {
	r := startRelay(t, t.TempDir())
	raddr := ""
	for _, a := range r.addrs {
		if strings.Contains(a, "/tcp/") {
			raddr = a
		}
	}
	a := newDaemon(t, "--relay", raddr)
	var c *daemon
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("A's log:\n%s", a.stderr)
			if c != nil {
				t.Logf("C's log:\n%s", c.stderr)
			}
		}
	})
	id := createSpace(t, a)
	if st := a.request("PUT", "/v1/spaces/"+id+"/password", api.PasswordParams{Password: "correct horse"}, nil); st != http.StatusNoContent {
		t.Fatalf("password: status %d", st)
	}
	// The relay takes the alias once it mirrors the space (the daemon
	// hands it the token after its reservation).
	waitFor(t, 60*time.Second, func() error {
		out, stderr, code := mycel(t, "space", "alias", "--data", a.dir, id, "Family")
		if code != 0 {
			return fmt.Errorf("mycel space alias: exit %d\n%s%s", code, out, stderr)
		}
		if !strings.Contains(out, "family@"+r.id+" names "+id) {
			return fmt.Errorf("mycel space alias said %q", out)
		}
		return nil
	})

	// A mistyped name to drop: the relay holds none, and the command says
	// so instead of "dropped"; the alias stays (C joins by it below).
	if out, stderr, code := mycel(t, "space", "alias", "--data", a.dir, "--drop", id, "famly"); code != 0 ||
		!strings.HasPrefix(out, "no alias famly at relay "+r.id+":") || strings.Contains(out, "dropped") {
		t.Fatalf("dropping a mistyped name: exit %d %q %q", code, out, stderr)
	}

	// Another space, another member: the name is taken.
	b := newDaemon(t, "--relay", raddr)
	other := createSpace(t, b)
	waitFor(t, 60*time.Second, func() error {
		_, stderr, code := mycel(t, "space", "alias", "--data", b.dir, other, "family")
		if code == 0 || !strings.Contains(stderr, "another space's") {
			return fmt.Errorf("taking the name: exit %d %s", code, stderr)
		}
		return nil
	})

	c = newDaemon(t, "--peer", directAddr(t, a))
	cmd := exec.Command(mycelBin, "join", "--data", c.dir, "--no-wait", "--password", "family@"+raddr)
	cmd.Stdin = strings.NewReader("correct horse\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || !strings.Contains(errOut.String(), "Asked to join") {
		t.Fatalf("mycel join --password family@relay: %v\n%s%s", err, &out, &errOut)
	}
	var info api.SpaceInfo
	if c.request("GET", "/v1/spaces/"+id, nil, &info) != http.StatusOK || info.Join == nil {
		t.Fatalf("C's request is not for the aliased space %s: %+v", id, info)
	}
	if info.Name != "family" {
		t.Errorf("C's local label of the space joined by family@relay: %q", info.Name)
	}
	approveWaiting(t, a, c, id, info.Join.Code)

	// An unknown alias is a clear refusal.
	d := newDaemon(t, "--relay", raddr)
	cmd = exec.Command(mycelBin, "join", "--data", d.dir, "--no-wait", "--password", "nobody@"+r.id)
	cmd.Stdin = strings.NewReader("correct horse\n")
	res, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(res), "not in the directory") {
		t.Fatalf("unknown alias: %v\n%s", err, res)
	}
}
