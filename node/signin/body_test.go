package signin

import (
	"strings"
	"testing"

	"github.com/mycelsync/mycel/auth"
)

// The wire form is JSON with these exact names (FORMAT.md): a change
// breaks every node of an older version.
func TestBodyWire(t *testing.T) {
	for _, c := range []struct {
		b    Body
		want string
	}{
		{Body{Kind: KindJoinRequest, Request: []byte{1, 2, 3}}, `{"kind":"join-request","request":"AQID"}`},
		{Body{Kind: KindPending, Hash: []byte{0xff}}, `{"kind":"pending","hash":"/w=="}`},
		{Body{Kind: KindApproval, Answer: []byte("a")}, `{"kind":"approval","answer":"YQ=="}`},
		{Body{Kind: KindRefusal, Password: true, Reason: "no", Generation: 2}, `{"kind":"refusal","reason":"no","password":true,"generation":2}`},
	} {
		raw, err := c.b.Encode()
		if err != nil || string(raw) != c.want {
			t.Errorf("%s: %s, want %s", c.b.Kind, raw, c.want)
		}
	}
}

func TestDecodeBodyBounds(t *testing.T) {
	b64 := func(n int) string { return strings.Repeat("A", 4*((n+2)/3)) }
	for _, bad := range []string{
		`{"kind":"join-request","request":"` + b64(auth.MaxJoinRequestSize+3) + `"}`,
		`{"kind":"approval","answer":"` + b64(MaxAnswer+3) + `"}`,
		`{"kind":"pending","hash":"AAAA"}`,
		`{"kind":"refusal","reason":"` + strings.Repeat("r", MaxReason+1) + `"}`,
		`[`,
	} {
		if _, err := DecodeBody([]byte(bad)); err == nil {
			t.Errorf("accepted %.60s…", bad)
		}
	}
	if b, err := DecodeBody([]byte(`{"kind":"later","new":1}`)); err != nil || b.Kind != "later" {
		t.Errorf("a later version's body: %+v %v", b, err)
	}
}

// The refusal key is fixed by the key ID: FORMAT.md gives its derivation.
func TestRefusalKey(t *testing.T) {
	k := RefusalKey([auth.KeyIDSize]byte{1})
	if k.Kind != auth.RequestByPassword || k.ID != ([auth.KeyIDSize]byte{1}) {
		t.Fatalf("%+v", k)
	}
	if got := RefusalKey([auth.KeyIDSize]byte{1}); got != k || RefusalKey([auth.KeyIDSize]byte{2}).Key == k.Key {
		t.Fatal("refusal key not a function of the key ID")
	}
	if KeyKind(auth.RequestByPassword) != KeyKindPassword || KeyKind(auth.RequestByInvite) != KeyKindInvite {
		t.Fatal("key kinds")
	}
}
