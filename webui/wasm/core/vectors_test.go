package core

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/signin"
)

var update = flag.Bool("update", false, "regenerate testdata/vectors.json")

const vectorsFile = "testdata/vectors.json"

func seed(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// flip returns b with its middle byte flipped.
func flip(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0x01
	return c
}

// generate makes the vectors from fixed keys and secrets (nonces are
// random: the file is what both sides check).
func generate(t *testing.T) *Vectors {
	var v Vectors
	sp := auth.SpaceID(seed(0x51))
	origin := ed25519.NewKeyFromSeed(seed(0x01))
	originKey := origin.Public().(ed25519.PublicKey)
	secret := Secret{Epoch: 0, Secret: seed(0x5e)}
	secrets := []Secret{secret}

	// Ops sealed as the origin's entries 0..3; the view applies them.
	ops := []Op{
		{Kind: "put", Key: "greeting", Value: []byte("hello"), HLC: 1 << 16},
		{Kind: "put", Key: "colour", Value: []byte("blue"), HLC: 2 << 16},
		{Kind: "put", Key: "greeting", Value: []byte("hello, world"), HLC: 3 << 16},
		{Kind: "delete", Key: "colour", HLC: 4 << 16},
	}
	var data [][]byte
	for i, op := range ops {
		d, err := SealEntry(sp[:], originKey, uint64(i), secret, op)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, d)
		v.View.Entries = append(v.View.Entries, Entry{Author: originKey, Index: uint64(i), Data: d})
		v.Entries = append(v.Entries, EntryVector{Space: sp[:], Author: originKey, Index: uint64(i), Data: d, Secrets: secrets, Valid: true, Op: op})
	}
	v.Entries = append(v.Entries, EntryVector{Space: sp[:], Author: originKey, Index: 0, Data: flip(data[0]), Secrets: secrets})
	// The same entry at another index is refused too: entries are bound to their place.
	v.Entries = append(v.Entries, EntryVector{Space: sp[:], Author: originKey, Index: 1, Data: data[0], Secrets: secrets})
	v.View.Space, v.View.Origin, v.View.Secrets = sp[:], originKey, secrets
	vr, err := ComputeView(sp[:], originKey, secrets, v.View.Entries)
	if err != nil {
		t.Fatal(err)
	}
	v.View.Digest, v.View.KVs = vr.Digest, vr.KVs

	// The feed holding them: its signed head and a batch with proofs.
	db, err := feed.Open(memstore.New(), feed.WithClock(func() time.Time { return time.UnixMilli(1_760_000_000_000) }))
	if err != nil {
		t.Fatal(err)
	}
	w, err := db.Writer(origin)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range data {
		if _, err := w.Append(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := w.Head()
	hb, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v.Heads = []HeadVector{{Bytes: hb, Valid: true, Key: originKey, Length: h.Length, Root: h.Root[:]}, {Bytes: flip(hb)}}
	b, err := w.Batch(feed.BatchRequest{Want: []feed.Range{{Start: 1, End: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v.Batches = []BatchVector{{Bytes: bb, Valid: true, Length: h.Length, Entries: data[1:3]}, {Bytes: flip(bb)}}

	// An envelope under the epoch's ephemeral key.
	es, _ := epochSecret(secret)
	ek := es.EphemeralKey(sp)
	topic := auth.DiscoveryKey(sp)
	kid := es.KeyID(sp)
	env, err := SealEnvelope(ek[:], seed(0x02), topic[:], 1, kid[:], []byte("typing…"), 1_760_000_000_000)
	if err != nil {
		t.Fatal(err)
	}
	sender := ed25519.NewKeyFromSeed(seed(0x02)).Public().(ed25519.PublicKey)
	v.Envelopes = []EnvelopeVector{
		{Key: ek[:], Bytes: env, Valid: true, Sender: sender, Plaintext: []byte("typing…")},
		{Key: ek[:], Bytes: flip(env)},
	}

	// A join request sealed under a password's request key.
	const password = "correct horse battery staple"
	rk := auth.PasswordRequestKey(auth.PasswordKey(password, sp), sp)
	dk, err := auth.GenerateDeviceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	newFeed := ed25519.NewKeyFromSeed(seed(0x03)).Public().(ed25519.PublicKey)
	req, err := auth.NewJoinRequest(sp, "browser tab", [32]byte(newFeed), dk.Public(), time.UnixMilli(1_760_000_000_000), nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	body, err := signin.Body{Kind: signin.KindJoinRequest, Request: rb}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ephemeral.Seal(rk.Key, ed25519.NewKeyFromSeed(seed(0x03)),
		ephemeral.Header{Topic: topic, KeyKind: signin.KeyKind(rk.Kind), KeyID: rk.ID[:]}, body, time.UnixMilli(1_760_000_000_000), nil)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	code := auth.SafetyCode(req)
	v.Signin = []SigninVector{
		{Password: password, Space: sp[:], KeyID: rk.ID[:], Envelope: eb, Valid: true, Name: "browser tab", SafetyCode: code},
		{Password: password, Space: sp[:], KeyID: rk.ID[:], Envelope: flip(eb)},
	}
	return &v
}

// TestVectors checks the vectors file with the core's calls: what the
// browser test checks again through the wasm build.
func TestVectors(t *testing.T) {
	if *update {
		b, err := json.MarshalIndent(generate(t), "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVectors(b)
	if err != nil {
		t.Fatal(err)
	}
	// colour was deleted; greeting's last put wins.
	if len(v.View.KVs) != 1 || v.View.KVs[0].Key != "greeting" || string(v.View.KVs[0].Value) != "hello, world" {
		t.Fatalf("the view vector holds %+v", v.View.KVs)
	}
	if err := v.Check(); err != nil {
		t.Fatal(err)
	}
	// Every invalid vector is refused for its flipped byte alone: the same
	// bytes unflipped verify (a vector refused for another reason would
	// prove nothing).
	for i, h := range v.Heads {
		if !h.Valid {
			if _, err := VerifyHead(flip(h.Bytes)); err != nil {
				t.Errorf("head %d unflipped: %v", i, err)
			}
		}
	}
	for i, e := range v.Envelopes {
		if !e.Valid {
			if _, err := OpenEnvelope(e.Key, flip(e.Bytes)); err != nil {
				t.Errorf("envelope %d unflipped: %v", i, err)
			}
		}
	}
}
