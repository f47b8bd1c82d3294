package messages

import (
	"errors"
	"strings"
	"testing"
)

// The wire form is JSON with these exact names: a change breaks every
// node of an older version.
func TestBodyWire(t *testing.T) {
	for _, c := range []struct {
		b    Body
		want string
	}{
		{Body{Kind: KindPresence, Name: "laptop", By: []byte{0: 1, 31: 2}}, `{"kind":"presence","name":"laptop","by":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="}`},
		{Body{Kind: KindApp, Topic: "chat", Data: []byte("hi")}, `{"kind":"app","topic":"chat","data":"aGk="}`},
		{Body{Kind: KindRemoved, Evidence: []byte{1, 2, 3}}, `{"kind":"removed","evidence":"AQID"}`},
	} {
		raw, err := c.b.Encode()
		if err != nil || string(raw) != c.want {
			t.Errorf("%s: %s, want %s", c.b.Kind, raw, c.want)
		}
	}
}

func TestDecodeBounds(t *testing.T) {
	for _, bad := range []string{
		`{"kind":"presence","by":"AAAA"}`,
		`{"kind":"removed","evidence":"` + strings.Repeat("A", 56<<10) + `"}`,
		`{"kind":`,
	} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("accepted %.60s", bad)
		}
	}
	if b, err := Decode([]byte(`{"kind":"later","x":1}`)); err != nil || b.Kind != "later" {
		t.Errorf("a later kind: %+v %v", b, err)
	}
}

func TestCheckApp(t *testing.T) {
	if err := CheckApp("", nil); !errors.Is(err, ErrBadTopic) {
		t.Error(err)
	}
	if err := CheckApp(strings.Repeat("t", MaxTopic+1), nil); !errors.Is(err, ErrBadTopic) {
		t.Error(err)
	}
	if err := CheckApp("t", make([]byte, MaxData+1)); !errors.Is(err, ErrTooLarge) {
		t.Error(err)
	}
	if err := CheckApp(strings.Repeat("t", MaxTopic), make([]byte, MaxData)); err != nil {
		t.Error(err)
	}
	if err := CheckPresence(Body{Name: "\xff"}); err == nil {
		t.Error("a name of bad UTF-8 passed")
	}
}
