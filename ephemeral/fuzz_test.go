package ephemeral

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse: the envelope decoder never panics, refuses with a sentinel,
// and whatever it accepts verifies, re-encodes to something that parses to
// the same envelope, and fits MaxEnvelopeSize. Nothing but the seeds the
// test sealed opens with the test key.
func FuzzParse(f *testing.F) {
	sealed := map[string]bool{}
	for i, pt := range []string{"", "hello", string(make([]byte, 1000))} {
		e, err := Seal(testKey, testSigner(byte(i+1)), testHeader(), []byte(pt), t0, newDetRand(pt))
		if err != nil {
			f.Fatal(err)
		}
		b := marshal(f, e)
		sealed[string(b)] = true
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x20})
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Parse(in)
		if err != nil {
			for _, s := range []error{ErrMalformed, ErrTooLarge, ErrSignature} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		if err := e.Verify(); err != nil {
			t.Fatal(err)
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("re-encoded envelope does not parse: %v", err)
		}
		if back.SeenKey() != e.SeenKey() || back.Time != e.Time || !bytes.Equal(back.Ciphertext, e.Ciphertext) ||
			!bytes.Equal(back.KeyID, e.KeyID) || back.Signature != e.Signature {
			t.Fatal("re-encoding changes the envelope")
		}
		if pt, err := e.Open(testKey); err == nil && !sealed[string(b)] {
			t.Fatalf("opened %q from an envelope never sealed", pt)
		}
	})
}
