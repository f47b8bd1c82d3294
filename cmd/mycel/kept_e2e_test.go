package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// TestE2EKeptMessages: real processes. A sends 3 app messages with keep
// while B's daemon is killed; B starts again, reaching only the relay
// (its peers are A's and the relay's addresses, A's from the sign-in),
// and its SSE stream delivers the 3 once, in order, stored, with their
// original time. Killed and started again after A kept one more, B's
// stream starts with that one: none of the 3 comes again.
func TestE2EKeptMessages(t *testing.T) {
	r := startRelay(t, t.TempDir(), "--metrics", "127.0.0.1:0")
	var raddr string
	for _, a := range r.addrs {
		if strings.Contains(a, "/tcp/") {
			raddr = a
		}
	}
	a := newDaemon(t, "--relay", raddr)
	b := newDaemon(t, "--relay", raddr)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay's log:\n%s\nA's log:\n%s\nB's log:\n%s", r.stderr, a.stderr, b.stderr)
		}
	})
	id := createSpace(t, a, b)
	reservedOn(t, a, r.id)
	reservedOn(t, b, r.id)
	waitFor(t, 60*time.Second, func() error {
		if n := relayMetric(t, r, "mycel_relay_mirror_tokens_confirmed_total"); n < 1 {
			return fmt.Errorf("no mirror token confirmed yet")
		}
		return nil
	})
	b.kill()

	send := func(text string) time.Time {
		at := time.Now().Truncate(time.Millisecond)
		if st := a.request("POST", "/v1/spaces/"+id+"/messages", api.SendRequest{Topic: "chat", Data: []byte(text), Keep: true}, nil); st >= 300 {
			t.Fatalf("send %q: status %d", text, st)
		}
		return at
	}
	// The relay keeps A's messages once it follows B as a writer (from
	// B's add in A's feed): until then no device but A would take them.
	waitFor(t, 120*time.Second, func() error {
		before := relayMetric(t, r, "mycel_relay_mailbox_envelopes")
		send("probe")
		for range 50 {
			if relayMetric(t, r, "mycel_relay_mailbox_envelopes") > before {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return fmt.Errorf("a probe was not kept: the relay does not follow B yet")
	})
	kept := relayMetric(t, r, "mycel_relay_mailbox_envelopes")
	var sent []time.Time
	for i := range 3 {
		sent = append(sent, send(fmt.Sprint("kept ", i)))
	}
	sent = append(sent, time.Now())
	waitFor(t, 30*time.Second, func() error {
		if n := relayMetric(t, r, "mycel_relay_mailbox_envelopes"); n < kept+3 {
			return fmt.Errorf("the relay keeps %v envelopes, %v before", n, kept)
		}
		return nil
	})

	listen := func() <-chan api.Message {
		c, err := api.NewClient("http://"+b.api, b.token, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		var ch <-chan api.Message
		waitFor(t, 60*time.Second, func() error {
			ch, _, err = c.Listen(ctx, id, "chat")
			return err
		})
		return ch
	}
	next := func(ch <-chan api.Message, what string) api.Message {
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					t.Fatalf("%s: the stream ended", what)
				}
				if string(m.Data) == "probe" {
					continue
				}
				return m
			case <-time.After(90 * time.Second):
				t.Fatalf("%s: nothing after 90 s", what)
			}
		}
	}

	b.start()
	ch := listen()
	for i := range 3 {
		m := next(ch, fmt.Sprint("kept ", i))
		if want := fmt.Sprint("kept ", i); string(m.Data) != want || !m.Stored || !m.Kept {
			t.Fatalf("message %d: %+v, want %q stored", i, m, want)
		}
		if m.Time.Before(sent[i]) || m.Time.After(sent[i+1]) {
			t.Fatalf("message %d at %v, sent between %v and %v", i, m.Time, sent[i], sent[i+1])
		}
	}
	b.kill()
	send("after")
	b.start()
	ch = listen()
	if m := next(ch, "after a restart"); string(m.Data) != "after" {
		t.Fatalf("after a restart B got %q first, want the new message", m.Data)
	}
}
