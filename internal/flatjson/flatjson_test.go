package flatjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// body is a struct of every kind of member, as the envelopes' bodies are.
type body struct {
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`
	Data  []byte `json:"data,omitempty"`
	Flag  bool   `json:"flag,omitempty"`
	Count uint32 `json:"count,omitempty"`
}

func (b body) encode() []byte {
	o := NewObject()
	o.String("kind", b.Kind)
	if b.Name != "" {
		o.String("name", b.Name)
	}
	if len(b.Data) != 0 {
		o.Bytes("data", b.Data)
	}
	if b.Flag {
		o.Bool("flag", b.Flag)
	}
	if b.Count != 0 {
		o.Uint("count", uint64(b.Count))
	}
	return o.End()
}

func decode(data []byte) (body, error) {
	var b body
	err := Decode(data, []Field{
		{Name: "kind", String: &b.Kind},
		{Name: "name", String: &b.Name},
		{Name: "data", Bytes: &b.Data},
		{Name: "flag", Bool: &b.Flag},
		{Name: "count", Uint32: &b.Count},
	})
	return b, err
}

var seeds = []string{
	`{"kind":"app","name":"n","data":"AAE=","flag":true,"count":7}`,
	`null`, ` { } `, `{"KIND":"x","Kind":"y"}`, `{"kind":"a","kind":"b"}`,
	`{"data":"AAE=","data":null}`, `{"name":"a","name":null}`,
	`{"kind":"\ud83d\ude00\ud800\u0041\"\\\/\b\f\n\r\t"}`, "{\"kind\":\"\xff\xfe\"}",
	`{"x":[1,{"a":[null,true,false,-0.5e+3]}],"kind":"k"}`, `{"count":4294967296}`,
	`{"count":-0}`, `{"count":1.0}`, `{"count":01}`, `{"kind":5}`, `{"data":"AA"}`,
	"{\"data\":\"AA\\r\\n==\"}", `{"data":[1,2]}`, `[]`, `"s"`, `{"kind":"a"} x`,
	`{"kind":"a",}`, `{"flag":"true"}`, `{"ſ":1}`, `{"K":"kelvin"}`, "{\"kind\":\"\x01\"}",
}

// TestDecodeAsEncodingJSON plays the seeds through both decoders.
func TestDecodeAsEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		compareDecode(t, []byte(s))
	}
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	compareDecode(t, []byte(`{"x":`+deep+`}`))
}

func compareDecode(t *testing.T, data []byte) {
	t.Helper()
	got, err := decode(data)
	var want body
	werr := json.Unmarshal(data, &want)
	switch {
	case err == nil && werr != nil:
		t.Fatalf("%q: accepted, encoding/json refuses it: %v", data, werr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("%q: got %#v, encoding/json %#v", data, got, want)
	case err != nil && werr == nil && !bytes.Contains(data, []byte("[")):
		// Only a byte string as an array of numbers is refused where
		// encoding/json accepts.
		t.Fatalf("%q: refused (%v), encoding/json accepts it: %#v", data, err, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { compareDecode(t, data) })
}

// FuzzEncode checks that Object writes what encoding/json.Marshal writes
// and that Decode reads it back.
func FuzzEncode(f *testing.F) {
	f.Add("app", "<a&b>\u2028\u2029\x00\x1f\b\f\"\\", []byte{0, 1, 2}, true, uint32(1))
	f.Add("", "\xff", []byte(nil), false, uint32(0))
	f.Fuzz(func(t *testing.T, kind, name string, data []byte, flag bool, count uint32) {
		b := body{Kind: kind, Name: name, Data: data, Flag: flag, Count: count}
		want, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got := b.encode()
		if utf8.ValidString(kind) && utf8.ValidString(name) {
			if !bytes.Equal(got, want) {
				t.Fatalf("encode %#v:\n got %s\nwant %s", b, got, want)
			}
		} else {
			// Invalid UTF-8 reads back as U+FFFD either way; encoding/json
			// writes it as \ufffd up to Go 1.26 and as the rune itself
			// from Go 1.27 (the fuzz toolchain), so only the meaning is
			// compared.
			var g, w body
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("encode %#v: %s is not JSON: %v", b, got, err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("encode %#v: %s reads as %#v, encoding/json's %s as %#v", b, got, g, want, w)
			}
		}
		compareDecode(t, got)
		compareDecode(t, want)
	})
}
