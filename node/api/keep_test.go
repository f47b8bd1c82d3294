package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

// keeper is the fake with SendKept: it records kept sends apart.
type keeper struct {
	*apitest.Fake
	kept []string
}

func (k *keeper) SendKept(ctx context.Context, id, topic string, data []byte) error {
	k.kept = append(k.kept, string(data))
	return nil
}

// TestSendKeep: keep: true reaches a KeepSender's SendKept, not Send; a
// Backend that cannot keep answers bad_request rather than sending the
// message unkept.
func TestSendKeep(t *testing.T) {
	k := &keeper{Fake: apitest.New()}
	e := newEnv(t, func(c *api.ServerConfig) { c.Backend = k })
	space := k.AddSpace("kept")
	if err := e.client.SendKept(context.Background(), space, "chat", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if len(k.kept) != 1 || k.kept[0] != "hi" || k.Calls("Send") != 0 {
		t.Fatalf("kept %v, Send called %d times", k.kept, k.Calls("Send"))
	}
	plain := newEnv(t)
	status, apiErr, _ := plain.raw(t, "POST", "/v1/spaces/"+plain.space+"/messages", `{"topic":"chat","data":"aGk=","keep":true}`, nil)
	if status != http.StatusBadRequest || apiErr.Code != "bad_request" || plain.fake.Calls("Send") != 0 {
		t.Fatalf("keep on a backend that cannot: %d %+v, Send called %d times", status, apiErr, plain.fake.Calls("Send"))
	}
}
