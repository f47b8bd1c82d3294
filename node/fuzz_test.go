package node

import (
	"encoding/json"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/space"
)

// FuzzSigninBody: the decoder of sign-in bodies from the ephemeral channel
// never panics and bounds what it accepts.
func FuzzSigninBody(f *testing.F) {
	for _, b := range []signinBody{
		{Kind: bodyJoinRequest, Request: make([]byte, 1300)},
		{Kind: bodyApproval, Answer: make([]byte, 3000)},
		{Kind: bodyPending, Hash: make([]byte, 32)},
		{Kind: bodyRefusal, Password: true, Reason: "wrong password"},
	} {
		raw, _ := json.Marshal(b)
		f.Add(raw)
	}
	f.Add([]byte(`{"kind":"approval","answer":"AAAA","hash":"AA=="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeSigninBody(data)
		if err != nil {
			return
		}
		if len(b.Request) > auth.MaxJoinRequestSize || len(b.Answer) > maxSigninAnswer ||
			(len(b.Hash) != 0 && len(b.Hash) != auth.RequestHashSize) || len(b.Reason) > 256 {
			t.Fatalf("accepted out of bounds: %d/%d/%d/%d", len(b.Request), len(b.Answer), len(b.Hash), len(b.Reason))
		}
		if b.Request != nil {
			auth.UnmarshalJoinRequest(b.Request) // must not panic either
		}
	})
}

// FuzzMemberBody: a member's body, as decodeBody reads it. It never
// accepts evidence over the bound, nor an approver that is no feed key.
func FuzzMemberBody(f *testing.F) {
	for _, b := range []body{
		{Kind: bodyPresence, Name: "laptop"},
		{Kind: bodyPresence, Name: "phone", By: make([]byte, 32)},
		{Kind: bodyApp, Topic: "chat", Data: []byte("hi")},
		{Kind: bodyRemoved, Evidence: make([]byte, 3000)},
	} {
		raw, _ := json.Marshal(b)
		f.Add(raw)
	}
	f.Add([]byte(`{"kind":"removed","evidence":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBody(data)
		if err != nil {
			return
		}
		if len(b.Evidence) > space.MaxRemovalEvidence {
			t.Fatalf("accepted evidence of %d bytes", len(b.Evidence))
		}
		if len(b.By) != 0 && len(b.By) != 32 {
			t.Fatalf("accepted an approver of %d bytes", len(b.By))
		}
	})
}
