package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// TestE2ESignIn: on two real daemons, A invites, B joins with the link and
// shows a safety code, A sees the request with the same code and approves
// it with that code, B then writes and A reads it; A removes B by name.
// Then A sets a password, C asks with it, and A denies C.
func TestE2ESignIn(t *testing.T) {
	t.Setenv("MYCEL_HOME", "")
	t.Setenv("MYCEL_API", "")
	a := newDaemon(t, "--name", "device A")
	b := newDaemon(t, "--name", "device B", "--peer", a.peerAddr())
	id := createSpace(t, a)

	out, stderr, code := runCLI(t, "", "invite", id, "--json", "--data", a.dir)
	var inv api.Invite
	if code != 0 || json.Unmarshal([]byte(out), &inv) != nil || inv.Link == "" {
		t.Fatalf("invite: exit %d %q %q", code, out, stderr)
	}

	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"join", inv.Link, "--name", "shared", "--timeout", "60s", "--data", b.dir}, &out, &errOut)
		done <- result{out.String(), errOut.String(), code}
	}()

	var req api.Request
	waitFor(t, 60*time.Second, func() error {
		out, stderr, code := runCLI(t, "", "requests", "--json", "--data", a.dir)
		if code != 0 {
			return fmt.Errorf("requests: exit %d %s", code, stderr)
		}
		var reqs []api.Request
		if err := json.Unmarshal([]byte(out), &reqs); err != nil {
			return err
		}
		if len(reqs) != 1 {
			return fmt.Errorf("%d requests on A", len(reqs))
		}
		req = reqs[0]
		return nil
	})
	if req.Space != id || req.Name != "device B" || !strings.HasPrefix(req.Via, "invite") {
		t.Errorf("request on A: %+v", req)
	}
	if out, stderr, code := runCLI(t, "", "approve", req.ID, "--code", "000-000", "--data", a.dir); code != exitError || !strings.Contains(stderr, "not the request's") {
		t.Errorf("approve with a wrong code: exit %d %q %q", code, out, stderr)
	}
	if out, stderr, code := runCLI(t, "", "approve", req.ID[:8], "--code", req.Code, "--data", a.dir); code != 0 {
		t.Fatalf("approve: exit %d %q %q", code, out, stderr)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("join did not end")
	}
	m := safetyLine.FindStringSubmatch(r.errOut)
	if r.code != 0 || m == nil || m[2] != req.Code || !strings.Contains(r.out, "approved: this device can now read and write") {
		t.Fatalf("join on B: exit %d, code %v (A saw %s)\nstdout %q\nstderr %q", r.code, m, req.Code, r.out, r.errOut)
	}

	// B writes; A reads.
	if _, stderr, code := runCLI(t, "", "put", id, "from/b", "hello", "--data", b.dir); code != 0 {
		t.Fatalf("put on B: exit %d %s", code, stderr)
	}
	waitFor(t, 60*time.Second, func() error {
		out, stderr, code := runCLI(t, "", "get", id, "from/b", "--data", a.dir)
		if code != 0 || out != "hello" {
			return fmt.Errorf("get on A: exit %d %q %s", code, out, stderr)
		}
		return nil
	})

	// A removes B by its name.
	out, stderr, code = runCLI(t, "", "remove", id, "device B", "--data", a.dir)
	if code != 0 || !strings.Contains(out, "keys were rotated") {
		t.Fatalf("remove: exit %d %q %q", code, out, stderr)
	}
	var ds []api.Device
	json.Unmarshal([]byte(func() string { o, _, _ := runCLI(t, "", "devices", id, "--json", "--data", a.dir); return o }()), &ds)
	for _, d := range ds {
		if d.Name == "device B" {
			t.Errorf("B is still a device of the space: %+v", ds)
		}
	}

	// The password: C asks with it; A denies.
	if _, stderr, code := runCLI(t, "correct horse battery\n", "space", "password", id, "--data", a.dir); code != 0 {
		t.Fatalf("space password: exit %d %s", code, stderr)
	}
	c := newDaemon(t, "--name", "device C", "--peer", a.peerAddr())
	// The real binary, whose stdin holds the password.
	go func() {
		var out, errOut bytes.Buffer
		cmd := exec.Command(mycelBin, "join", "--space", id, "--password", "--timeout", "60s", "--data", c.dir)
		cmd.Stdin = strings.NewReader("correct horse battery\n")
		cmd.Stdout, cmd.Stderr = &out, &errOut
		cmd.Run()
		done <- result{out.String(), errOut.String(), cmd.ProcessState.ExitCode()}
	}()
	waitFor(t, 60*time.Second, func() error {
		out, _, _ := runCLI(t, "", "requests", "--json", "--data", a.dir)
		var reqs []api.Request
		json.Unmarshal([]byte(out), &reqs)
		if len(reqs) != 1 || reqs[0].Via != "password" {
			return fmt.Errorf("requests on A: %s", out)
		}
		req = reqs[0]
		return nil
	})
	if out, stderr, code := runCLI(t, "", "deny", req.ID, "--data", a.dir); code != 0 || !strings.Contains(out, "denied") {
		t.Fatalf("deny: exit %d %q %q", code, out, stderr)
	}
	select {
	case r = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("join --password did not end")
	}
	if r.code != exitError || !strings.Contains(r.errOut, "denied") {
		t.Errorf("join --password, denied: exit %d %q %q", r.code, r.out, r.errOut)
	}
}
