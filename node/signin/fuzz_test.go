package signin

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mycelsync/mycel/auth"
)

// FuzzBody: the decoder of sign-in bodies from the ephemeral channel
// never panics, bounds what it accepts, and what it accepts encodes back
// to the same body.
func FuzzBody(f *testing.F) {
	for _, b := range []Body{
		{Kind: KindJoinRequest, Request: make([]byte, 1300)},
		{Kind: KindApproval, Answer: make([]byte, 3000)},
		{Kind: KindPending, Hash: make([]byte, 32)},
		{Kind: KindRefusal, Password: true, Reason: "wrong password", Generation: 3},
	} {
		raw, _ := json.Marshal(b)
		f.Add(raw)
	}
	f.Add([]byte(`{"kind":"approval","answer":"AAAA","hash":"AA=="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBody(data)
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
		if len(b.Request) > auth.MaxJoinRequestSize || len(b.Answer) > MaxAnswer ||
			(len(b.Hash) != 0 && len(b.Hash) != auth.RequestHashSize) || len(b.Reason) > MaxReason {
			t.Fatalf("accepted out of bounds: %d/%d/%d/%d", len(b.Request), len(b.Answer), len(b.Hash), len(b.Reason))
		}
		if b.Request != nil {
			auth.UnmarshalJoinRequest(b.Request) // must not panic either
		}
		raw, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeBody(raw)
		if err != nil {
			t.Fatalf("re-encoded body refused: %v", err)
		}
		if back.Kind != b.Kind || !bytes.Equal(back.Request, b.Request) || !bytes.Equal(back.Answer, b.Answer) ||
			!bytes.Equal(back.Hash, b.Hash) || back.Reason != b.Reason || back.Password != b.Password || back.Generation != b.Generation {
			t.Fatalf("round trip: %+v != %+v", back, b)
		}
	})
}

// FuzzRecord: a stored request record, as Restore reads it, never panics
// and restores only keys of the right size.
func FuzzRecord(f *testing.F) {
	raw, _ := json.Marshal(Record{Request: make([]byte, 200), KeyID: make([]byte, 16), Key: make([]byte, 32), State: StateWaiting})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if json.Unmarshal(data, &r) != nil {
			return
		}
		d, err := Restore(Limits{}, nil, r)
		if err != nil {
			return
		}
		if d.Request() == nil || len(r.KeyID) != auth.KeyIDSize || len(r.Key) != auth.KeySize {
			t.Fatal("restored a bad record")
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
