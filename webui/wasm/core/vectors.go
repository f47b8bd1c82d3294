package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Vectors are test vectors of the core's wire formats, checked by Check in
// Go (vectors_test.go) and by the same checks through the JavaScript API in
// the browser (webui/wasm_browser_test.go): signed heads, batches with their
// proofs, op encodings (sealed entries), a view over entries, envelopes and
// sign-in bodies. Each vector says whether it must verify: the invalid ones
// are valid ones with one byte flipped, and must be refused.
type Vectors struct {
	Heads     []HeadVector
	Batches   []BatchVector
	Entries   []EntryVector
	View      ViewVector
	Envelopes []EnvelopeVector
	Signin    []SigninVector
}

type HeadVector struct {
	Bytes  []byte
	Valid  bool
	Key    []byte
	Length uint64
	Root   []byte
}

type BatchVector struct {
	Bytes   []byte
	Valid   bool
	Length  uint64
	Entries [][]byte // of all runs, in order
}

type EntryVector struct {
	Space, Author []byte
	Index         uint64
	Data          []byte
	Secrets       []Secret
	Valid         bool
	Op            Op
}

type ViewVector struct {
	Space, Origin []byte
	Secrets       []Secret
	Entries       []Entry
	Digest        []byte
	KVs           []KV
}

type EnvelopeVector struct {
	Key, Bytes []byte
	Valid      bool
	Sender     []byte
	Plaintext  []byte
}

// SigninVector is a join request as a device signing in with a password
// publishes it: the envelope is sealed under the password's request key.
type SigninVector struct {
	Password   string
	Space      []byte
	KeyID      []byte // the password request key's ID
	Envelope   []byte
	Valid      bool
	Name       string
	SafetyCode string
}

// ParseVectors decodes vectors from their JSON file.
func ParseVectors(b []byte) (*Vectors, error) {
	var v Vectors
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Check verifies every vector with this package's calls and returns the
// first disagreement.
func (v *Vectors) Check() error {
	for i, h := range v.Heads {
		got, err := VerifyHead(h.Bytes)
		if err := expect(h.Valid, err); err != nil {
			return fmt.Errorf("head %d: %w", i, err)
		}
		if h.Valid && (!bytes.Equal(got.Key, h.Key) || got.Length != h.Length || !bytes.Equal(got.Root, h.Root)) {
			return fmt.Errorf("head %d: got %x/%d/%x", i, got.Key, got.Length, got.Root)
		}
	}
	for i, b := range v.Batches {
		got, err := VerifyBatch(b.Bytes)
		if err := expect(b.Valid, err); err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		if b.Valid && (got.Head.Length != b.Length || !slices.EqualFunc(slices.Concat(got.Entries...), b.Entries, bytes.Equal)) {
			return fmt.Errorf("batch %d: entries differ", i)
		}
	}
	for i, e := range v.Entries {
		got, err := OpenEntry(e.Space, e.Author, e.Index, e.Data, e.Secrets)
		if err := expect(e.Valid, err); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if e.Valid && (got.Kind != e.Op.Kind || got.Key != e.Op.Key || !bytes.Equal(got.Value, e.Op.Value) || got.HLC != e.Op.HLC) {
			return fmt.Errorf("entry %d: got %+v", i, got)
		}
	}
	vr, err := ComputeView(v.View.Space, v.View.Origin, v.View.Secrets, v.View.Entries)
	if err != nil {
		return fmt.Errorf("view: %w", err)
	}
	if !bytes.Equal(vr.Digest, v.View.Digest) || !slices.EqualFunc(vr.KVs, v.View.KVs, func(a, b KV) bool {
		return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.Deleted == b.Deleted && a.Siblings == b.Siblings
	}) {
		return fmt.Errorf("view: digest %x, %d keys", vr.Digest, len(vr.KVs))
	}
	for i, e := range v.Envelopes {
		got, err := OpenEnvelope(e.Key, e.Bytes)
		if err := expect(e.Valid, err); err != nil {
			return fmt.Errorf("envelope %d: %w", i, err)
		}
		if e.Valid && (!bytes.Equal(got.Sender, e.Sender) || !bytes.Equal(got.Plaintext, e.Plaintext)) {
			return fmt.Errorf("envelope %d: got %x %q", i, got.Sender, got.Plaintext)
		}
	}
	for i, s := range v.Signin {
		id, key, err := PasswordRequestKey(s.Password, s.Space)
		if err != nil {
			return fmt.Errorf("signin %d: %w", i, err)
		}
		if !bytes.Equal(id, s.KeyID) {
			return fmt.Errorf("signin %d: key ID %x", i, id)
		}
		env, err := OpenEnvelope(key, s.Envelope)
		var body SigninBody
		if err == nil {
			body, err = DecodeSigninBody(env.Plaintext)
		}
		if err := expect(s.Valid, err); err != nil {
			return fmt.Errorf("signin %d: %w", i, err)
		}
		if s.Valid && (body.Kind != "join-request" || body.Name != s.Name || body.SafetyCode != s.SafetyCode) {
			return fmt.Errorf("signin %d: got %q %q %q", i, body.Kind, body.Name, body.SafetyCode)
		}
	}
	return nil
}

func expect(valid bool, err error) error {
	switch {
	case valid && err != nil:
		return fmt.Errorf("refused a valid vector: %w", err)
	case !valid && err == nil:
		return errors.New("accepted a vector with a flipped byte")
	}
	return nil
}
