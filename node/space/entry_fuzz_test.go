package space

import (
	"errors"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"google.golang.org/protobuf/encoding/protowire"
)

// fuzzEntries returns an entry of every kind, as seeds.
func fuzzEntries(f *testing.F, env *entryEnv) [][]byte {
	var out [][]byte
	for _, op := range sampleOps() {
		out = append(out, env.seal(f, 1, 3, op))
	}
	return out
}

// FuzzOpenEntry: arbitrary bytes as an entry, with every key of the space
// known. OpenEntry never panics and refuses with a sentinel; whatever opens
// seals again into an entry that opens to the same op.
func FuzzOpenEntry(f *testing.F) {
	env := newEntryEnv(f, 20)
	keys := env.keys(0, 1, 2)
	for _, e := range fuzzEntries(f, env) {
		f.Add(e)
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := OpenEntry(env.space, env.author, 3, data, keys)
		if err != nil {
			if errors.Is(err, ErrUnknownKey) == errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("want exactly one sentinel: %v", err)
			}
			return
		}
		h, err := PeekEntry(data)
		if err != nil {
			t.Fatalf("opens but does not peek: %v", err)
		}
		var es auth.EpochSecret
		for _, s := range env.secrets {
			if s.KeyID(env.space) == h.KeyID {
				es = s
			}
		}
		again, err := SealEntry(env.space, env.author, 3, es, op, nil)
		if err != nil {
			t.Fatalf("opens but does not seal again: %v", err)
		}
		back, err := OpenEntry(env.space, env.author, 3, again, keys)
		if err != nil {
			t.Fatalf("sealed again, does not open: %v", err)
		}
		if d := diffOps(op, back); d != "" {
			t.Fatalf("sealed again, %s differs", d)
		}
	})
}

// FuzzPeekEntry: PeekEntry never panics, refuses with ErrInvalidEntry, and
// what it accepts is a header SealEntry could have written.
func FuzzPeekEntry(f *testing.F) {
	env := newEntryEnv(f, 21)
	for _, e := range fuzzEntries(f, env) {
		f.Add(e)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := PeekEntry(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("error without the sentinel: %v", err)
			}
			return
		}
		switch h.Membership {
		case 0:
			if h.Target != ([32]byte{}) {
				t.Fatal("a target without a membership kind")
			}
		case OpAddWriter, OpRemoveWriter:
		default:
			t.Fatalf("membership of kind %d", h.Membership)
		}
	})
}

// FuzzOpBody: arbitrary bytes as a decrypted body. decodeBody never panics
// and refuses with ErrInvalidEntry; every op it accepts SealEntry accepts
// too (encodeBody runs the same checks), and it survives re-encoding.
func FuzzOpBody(f *testing.F) {
	for _, op := range sampleOps() {
		b, err := encodeBody(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, g := range goldenEntries {
		b, err := encodeBody(g.op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(protowire.AppendTag(nil, fieldBodyRotate, protowire.BytesType))
	f.Fuzz(func(t *testing.T, body []byte) {
		op, err := decodeBody(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("error without the sentinel: %v", err)
			}
			return
		}
		again, err := encodeBody(op)
		if err != nil {
			t.Fatalf("decoded an op that does not encode: %v", err)
		}
		back, err := decodeBody(again)
		if err != nil {
			t.Fatalf("re-encoded op does not decode: %v", err)
		}
		if d := diffOps(op, back); d != "" {
			t.Fatalf("re-encoding changes the %s", d)
		}
	})
}
