package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// TestCLIMessages: devices prints its table, listen prints what send
// sends (the fake loops it back), usage errors exit 2.
func TestCLIMessages(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok(t, "devices", "notes")
	if !strings.Contains(out, "ONLINE") || !strings.Contains(out, "LAST SEEN") {
		t.Errorf("devices: %q", out)
	}
	var ds []api.Device
	if out := e.ok(t, "devices", "notes", "--json"); json.Unmarshal([]byte(out), &ds) != nil || len(ds) != 1 || !ds[0].Online || ds[0].LastSeen == nil {
		t.Errorf("devices --json: %q", out)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr := newLinePipe()
	defer pr.Close()
	done := make(chan int, 1)
	go func() {
		var errOut bytes.Buffer
		done <- run(ctx, []string{"listen", "notes", "chat", "--data", e.dir}, pr, &errOut)
	}()
	waitUntil(t, func() bool { return e.fake.ActiveListeners() == 1 })
	e.ok(t, "send", "notes", "other", "not this")
	e.ok(t, "send", "notes", "chat", "hello there")
	l, err := pr.ReadLine(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Split(l, "\t"); len(f) != 4 || f[1] != "fake" || f[2] != "chat" || f[3] != "hello there" {
		t.Errorf("listen printed %q", l)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("listen ended by its context: exit %d", code)
	}

	// --keep asks for keep (the fake cannot keep: the API says so, rather
	// than sending it unkept).
	if _, stderr, code := e.run(t, "", "send", "notes", "chat", "kept", "--keep"); code != exitError || !strings.Contains(stderr, "cannot keep") || e.fake.Calls("Send") != 2 {
		t.Errorf("send --keep: exit %d %q, Send called %d times", code, stderr, e.fake.Calls("Send"))
	}
	if _, _, code := e.run(t, "", "send", "notes", "chat"); code != exitUsage {
		t.Errorf("send without data: exit %d", code)
	}
	if _, stderr, code := e.run(t, "", "send", "notes", strings.Repeat("t", 65), "x"); code != exitError || !strings.Contains(stderr, "topic") {
		t.Errorf("send to a topic too long: exit %d %q", code, stderr)
	}
}

// TestE2EMessages: two daemons share a space; mycel devices on B shows A
// online, and what mycel send sends on A, mycel listen prints on B.
func TestE2EMessages(t *testing.T) {
	t.Setenv("MYCEL_HOME", "")
	t.Setenv("MYCEL_API", "")
	a := newDaemon(t)
	b := newDaemon(t, "--peer", a.peerAddr())
	id := createSpace(t, a, b)
	aFeed := a.space(id).Feed
	waitFor(t, 60*time.Second, func() error {
		out, stderr, code := runCLI(t, "", "devices", id, "--json", "--data", b.dir)
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, stderr)
		}
		var ds []api.Device
		if err := json.Unmarshal([]byte(out), &ds); err != nil {
			return err
		}
		for _, d := range ds {
			if d.Feed == aFeed && d.Online {
				return nil
			}
		}
		return fmt.Errorf("A not online on B: %s", out)
	})
	if out, _, _ := runCLI(t, "", "devices", id, "--data", b.dir); !strings.Contains(out, "yes") {
		t.Errorf("devices table: %q", out)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr := newLinePipe()
	defer pr.Close()
	done := make(chan int, 1)
	go func() {
		var errOut bytes.Buffer
		done <- run(ctx, []string{"listen", id, "--json", "--data", b.dir}, pr, &errOut)
	}()
	// The listener is in place once a message sent after it arrives:
	// send until one does.
	var got api.Message
	waitFor(t, 30*time.Second, func() error {
		if _, stderr, code := runCLI(t, "", "send", id, "chat", "hello", "--data", a.dir); code != 0 {
			return fmt.Errorf("send: exit %d %s", code, stderr)
		}
		l, err := pr.ReadLine(time.Second)
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(l), &got)
	})
	if got.Sender != aFeed || got.Topic != "chat" || string(got.Data) != "hello" {
		t.Errorf("B got %+v", got)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("listen ended by its context: exit %d", code)
	}
}
