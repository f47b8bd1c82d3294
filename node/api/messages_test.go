package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

// TestMessages: what Send publishes reaches a listener of its topic (the
// fake loops it back as another device's), not one of another topic; bad
// messages are refused before the backend sees them.
func TestMessages(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	chat, errf, err := e.client.Listen(ctx, e.space, "chat")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := e.client.Listen(ctx, e.space, "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Send(ctx, e.space, "chat", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-chat:
		if m.Topic != "chat" || string(m.Data) != "hi" || m.Sender != apitest.FakeSender || m.Time.IsZero() {
			t.Errorf("message %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	select {
	case m := <-other:
		t.Errorf("listener of another topic got %+v", m)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	for range chat {
	}
	if err := errf(); err != nil {
		t.Errorf("listen ended by its context: %v", err)
	}
	waitFor(t, func() bool { return e.fake.ActiveListeners() == 0 })

	before := len(e.fake.Writes())
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"topic":"","data":"aGk="}`, http.StatusBadRequest},
		{`{"topic":"` + strings.Repeat("t", api.MaxMessageTopic+1) + `","data":"aGk="}`, http.StatusBadRequest},
		{`{"topic":"t","data":"` + strings.Repeat("A", 4*((api.MaxMessageData+3)/3)) + `"}`, http.StatusRequestEntityTooLarge},
		{`{"topic":"t","data":"!"}`, http.StatusBadRequest},
	} {
		code, _, _ := e.raw(t, "POST", "/v1/spaces/"+e.space+"/messages", c.body, nil)
		if code != c.code {
			t.Errorf("%.40s…: %d, want %d", c.body, code, c.code)
		}
	}
	if n := len(e.fake.Writes()); n != before {
		t.Errorf("refused messages reached the backend: %v", e.fake.Writes()[before:])
	}
	if _, _, err := e.client.Listen(t.Context(), e.space, strings.Repeat("t", 65)); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("listen to a topic too long: %v", err)
	}
	ds, err := e.client.Devices(t.Context(), e.space)
	if err != nil || ds == nil {
		t.Errorf("devices: %+v %v", ds, err)
	}
}
