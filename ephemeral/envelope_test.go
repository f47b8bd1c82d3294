package ephemeral

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestSealOpen(t *testing.T) {
	for _, size := range []int{0, 1, 100, MaxPlaintextSize} {
		pt := bytes.Repeat([]byte{'x'}, size)
		e, err := Seal(testKey, testSigner(1), testHeader(), pt, t0, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := marshal(t, e)
		if len(b) > MaxEnvelopeSize {
			t.Fatalf("plaintext of %d bytes: envelope of %d", size, len(b))
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("plaintext of %d bytes: %v", size, err)
		}
		if got.Sender != PublicKey(testSigner(1).Public().(ed25519.PublicKey)) || got.Topic != testTopic ||
			got.ID != e.ID || !got.Timestamp().Equal(t0) || got.KeyKind != 1 || !bytes.Equal(got.KeyID, seq(0x60, 16)) {
			t.Fatalf("parsed header differs: %+v", got)
		}
		open, err := got.Open(testKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(open, pt) {
			t.Fatal("opened a different plaintext")
		}
	}
}

func TestSealLimits(t *testing.T) {
	_, err := Seal(testKey, testSigner(1), testHeader(), make([]byte, MaxPlaintextSize+1), t0, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("plaintext over the limit: %v", err)
	}
	h := testHeader()
	h.KeyID = make([]byte, MaxKeyIDSize+1)
	if _, err := Seal(testKey, testSigner(1), h, nil, t0, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("key ID over the limit: %v", err)
	}
	if _, err := Seal(testKey, testSigner(1)[:32], testHeader(), nil, t0, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("short signing key: %v", err)
	}
	// The largest envelope: every field at its bound.
	h.KeyID = make([]byte, MaxKeyIDSize)
	h.KeyKind = ^uint32(0)
	e, err := Seal(testKey, testSigner(1), h, make([]byte, MaxPlaintextSize), time.UnixMilli(-1<<62), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := marshal(t, e); len(b) > MaxEnvelopeSize {
		t.Fatalf("largest envelope: %d bytes", len(b))
	}
}

func TestWrongKey(t *testing.T) {
	e := seal(t, "secret", t0)
	other := testKey
	other[0] ^= 1
	if _, err := e.Open(other); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestTamperField changes each field of a sealed envelope: Parse refuses
// every change (the signature covers every field), and Open refuses every
// change but one to the signature (the AEAD binds the header).
func TestTamperField(t *testing.T) {
	for _, tc := range []struct {
		field  string
		change func(e *Envelope)
	}{
		{"topic", func(e *Envelope) { e.Topic[3] ^= 1 }},
		{"sender", func(e *Envelope) { e.Sender = PublicKey(testSigner(2).Public().(ed25519.PublicKey)) }},
		{"id", func(e *Envelope) { e.ID[15] ^= 0x80 }},
		{"time", func(e *Envelope) { e.Time++ }},
		{"key kind", func(e *Envelope) { e.KeyKind = 2 }},
		{"key id", func(e *Envelope) { e.KeyID = append(e.KeyID, 0) }},
		{"key id removed", func(e *Envelope) { e.KeyID = nil }},
		{"nonce", func(e *Envelope) { e.Nonce[0] ^= 1 }},
		{"ciphertext", func(e *Envelope) { e.Ciphertext[0] ^= 1 }},
		{"tag", func(e *Envelope) { e.Ciphertext[len(e.Ciphertext)-1] ^= 1 }},
		{"ciphertext extended", func(e *Envelope) { e.Ciphertext = append(e.Ciphertext, 0) }},
		{"signature", func(e *Envelope) { e.Signature[10] ^= 1 }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			e := seal(t, "hello", t0)
			tc.change(e)
			if _, err := Parse(marshal(t, e)); !errors.Is(err, ErrSignature) {
				t.Errorf("Parse: %v, want ErrSignature", err)
			}
			_, err := e.Open(testKey)
			if tc.field == "signature" {
				if err != nil {
					t.Errorf("Open after a change to the signature only: %v", err)
				}
			} else if !errors.Is(err, ErrDecrypt) {
				t.Errorf("Open: %v, want ErrDecrypt", err)
			}
		})
	}
}

// TestTamperBytes flips bits in every byte of an encoded envelope: nothing
// parses.
func TestTamperBytes(t *testing.T) {
	b := marshal(t, seal(t, "hello", t0))
	for i := range b {
		for _, bit := range []byte{0x01, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= bit
			if _, err := Parse(c); err == nil {
				t.Fatalf("byte %d ^ %#x: parsed", i, bit)
			}
		}
	}
	for n := range len(b) {
		if _, err := Parse(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: parsed", n)
		}
	}
}

func TestParseSizes(t *testing.T) {
	e := seal(t, "hello", t0)
	good := marshal(t, e)
	// Each fixed-size field one byte short and one byte long, by rewriting
	// the protobuf field directly (the struct cannot hold a wrong size).
	for _, field := range []protowire.Number{1, 2, 3, 7, 9} {
		for _, delta := range []int{-1, 1} {
			b := rewrite(t, good, field, func(v []byte) []byte {
				if delta < 0 {
					return v[:len(v)-1]
				}
				return append(v, 0)
			})
			if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("field %d, %+d byte: %v", field, delta, err)
			}
		}
	}
	b := rewrite(t, good, 6, func([]byte) []byte { return make([]byte, MaxKeyIDSize+1) })
	if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("key ID over the limit: %v", err)
	}
	b = rewrite(t, good, 8, func([]byte) []byte { return make([]byte, TagSize-1) })
	if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("ciphertext shorter than a tag: %v", err)
	}
	if _, err := Parse(make([]byte, MaxEnvelopeSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	if _, err := Parse(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty: %v", err)
	}
	// Unknown fields are ignored (and unsigned).
	withUnknown := protowire.AppendBytes(protowire.AppendTag(bytes.Clone(good), 99, protowire.BytesType), []byte("later"))
	if _, err := Parse(withUnknown); err != nil {
		t.Errorf("unknown field: %v", err)
	}
}

// rewrite returns b with the bytes field number replaced by change(value).
func rewrite(t *testing.T, b []byte, number protowire.Number, change func([]byte) []byte) []byte {
	t.Helper()
	var out []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatal("bad tag")
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			t.Fatal("bad field")
		}
		if num == number && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n:])
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, change(bytes.Clone(v)))
		} else {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return out
}

// TestSeenKeyBindsSender: another sender reusing an ID gets another seen
// key, so it cannot shadow the first sender's message.
func TestSeenKeyBindsSender(t *testing.T) {
	e := seal(t, "hello", t0)
	f := *e
	f.Sender[0] ^= 1
	g := *e
	g.Topic[0] ^= 1
	if e.SeenKey() == f.SeenKey() || e.SeenKey() == g.SeenKey() {
		t.Fatal("seen key ignores the sender or the topic")
	}
}

// TestVector pins the format: the signed bytes, the additional data and
// the seen key of a deterministic envelope (FORMAT.md).
func TestVector(t *testing.T) {
	e, err := Seal(testKey, testSigner(1), testHeader(), []byte("hello, mycel"), t0, newDetRand("vector"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"id":         hex.EncodeToString(e.ID[:]),
		"nonce":      hex.EncodeToString(e.Nonce[:]),
		"ciphertext": hex.EncodeToString(e.Ciphertext),
		"signature":  hex.EncodeToString(e.Signature[:]),
		"seen key":   e.SeenKey().String(),
		"envelope":   hex.EncodeToString(marshal(t, e)),
	}
	want := map[string]string{
		"id":         "4e2e9c11f42fbab7746046c18349428a",
		"nonce":      "1771e9db82a126cbcd0afe33e0b2dd4b626ca2f71f69a78d",
		"ciphertext": "410da19ba57064aab458cebb6c57fe71fe265ad5ce940585f23d58d8",
		"signature":  "23e79509d2d2ba0f0c3fa4b07eddb46fc99a8a5f555debfa30f0f4c76559061831e13cf34c5ee443eb7dd63c4eaefde6bdaf56031ff9d6dc0e44bed3ca9ebe06",
		"seen key":   "643d89210747a51706c971d24b806cd4",
		"envelope":   "0a20202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f122079b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad0496641a104e2e9c11f42fbab7746046c18349428a2080d095ffbc3128013210606162636465666768696a6b6c6d6e6f3a181771e9db82a126cbcd0afe33e0b2dd4b626ca2f71f69a78d421c410da19ba57064aab458cebb6c57fe71fe265ad5ce940585f23d58d84a4023e79509d2d2ba0f0c3fa4b07eddb46fc99a8a5f555debfa30f0f4c76559061831e13cf34c5ee443eb7dd63c4eaefde6bdaf56031ff9d6dc0e44bed3ca9ebe06",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if t.Failed() {
		var sb strings.Builder
		for _, k := range []string{"id", "nonce", "ciphertext", "signature", "seen key", "envelope"} {
			sb.WriteString(k + " " + got[k] + "\n")
		}
		t.Log("\n" + sb.String())
	}
}
