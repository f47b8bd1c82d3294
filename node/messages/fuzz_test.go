package messages

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mycelsync/mycel/node/space"
)

// FuzzBody: a member's body, as Decode reads it. It never accepts
// evidence over the bound, nor an approver that is no feed key, and what
// it accepts encodes back to what decodes the same.
func FuzzBody(f *testing.F) {
	for _, b := range []Body{
		{Kind: KindPresence, Name: "laptop"},
		{Kind: KindPresence, Name: "phone", By: make([]byte, 32)},
		{Kind: KindApp, Topic: "chat", Data: []byte("hi")},
		{Kind: KindRemoved, Evidence: make([]byte, 3000)},
	} {
		raw, _ := json.Marshal(b)
		f.Add(raw)
	}
	f.Add([]byte(`{"kind":"removed","evidence":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			return
		}
		// The wire format is encoding/json's: what is accepted, it
		// accepts with the same fields, and Encode writes its bytes.
		var want Body
		if err := json.Unmarshal(data, &want); err != nil || !reflect.DeepEqual(b, want) {
			t.Fatalf("%q: decoded %+v; encoding/json: %+v, %v", data, b, want, err)
		}
		if raw, _ := b.Encode(); !bytes.Equal(raw, mustMarshal(t, b)) {
			t.Fatalf("Encode wrote %s, encoding/json %s", raw, mustMarshal(t, b))
		}
		if len(b.Evidence) > space.MaxRemovalEvidence {
			t.Fatalf("accepted evidence of %d bytes", len(b.Evidence))
		}
		if len(b.By) != 0 && len(b.By) != 32 {
			t.Fatalf("accepted an approver of %d bytes", len(b.By))
		}
		_ = CheckPresence(b)
		_ = CheckApp(b.Topic, b.Data)
		raw, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(raw)
		if err != nil {
			t.Fatalf("re-encoded body refused: %v", err)
		}
		if back.Kind != b.Kind || back.Name != b.Name || back.Topic != b.Topic || !bytes.Equal(back.Data, b.Data) ||
			!bytes.Equal(back.Evidence, b.Evidence) || !bytes.Equal(back.By, b.By) {
			t.Fatalf("round trip: %+v != %+v", back, b)
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
