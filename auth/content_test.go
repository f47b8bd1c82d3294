package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"testing/iotest"
)

func TestContentKnownAnswer(t *testing.T) {
	key := [32]byte(mustHex(t, "f650500e7589b3b1346eedbc4a5c77dcad87e78f66a254399c777bf2dba60abe"))
	sealed, err := SealContent(key, []byte("hello, mycel"), []byte("ad"), newDetRand("nonce"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "f4b99ca9abea252982c269ee80672a2d025d2dc9148fe403311dfabdd8cd42b6fb742f344ccdf7e509a3dd865a4188e120404ca2"
	if got := hex.EncodeToString(sealed); got != want {
		t.Fatalf("sealed = %s, want %s", got, want)
	}
	pt, err := OpenContent(key, mustHex(t, want), []byte("ad"))
	if err != nil || string(pt) != "hello, mycel" {
		t.Fatalf("open = %q, %v", pt, err)
	}
}

func TestContentRoundTrip(t *testing.T) {
	key := EpochSecret{Secret: [32]byte(seq(1, 32))}.ContentKey(testSpace(t, 1))
	for _, size := range []int{0, 1, 100, 64 << 10, MaxContentSize - ContentOverhead} {
		pt := bytes.Repeat([]byte{0x5a}, size)
		sealed, err := SealContent(key, pt, []byte("entry 7"), nil)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if len(sealed) != size+ContentOverhead {
			t.Fatalf("size %d: sealed %d bytes", size, len(sealed))
		}
		got, err := OpenContent(key, sealed, []byte("entry 7"))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("size %d: open: %v", size, err)
		}
	}
	// Two seals of one plaintext differ (fresh nonces).
	a, _ := SealContent(key, []byte("x"), nil, nil)
	b, _ := SealContent(key, []byte("x"), nil, nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals are equal")
	}
}

func TestContentRefused(t *testing.T) {
	space := testSpace(t, 1)
	es := EpochSecret{Secret: [32]byte(seq(1, 32))}
	key := es.ContentKey(space)
	ad := []byte("feed 1 entry 2")
	pt := []byte("a value that must stay private")
	sealed, err := SealContent(key, pt, ad, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Flip each byte of every region: nonce, ciphertext, tag.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := OpenContent(key, bad, ad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("byte %d flipped: %v, want ErrDecrypt", i, err)
		}
	}
	// Truncated, extended.
	for _, n := range []int{len(sealed) - 1, ContentOverhead} {
		if _, err := OpenContent(key, sealed[:n], ad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	for _, n := range []int{0, 1, ContentOverhead - 1} {
		if _, err := OpenContent(key, sealed[:n], ad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: %v, want ErrMalformed", n, err)
		}
	}
	if _, err := OpenContent(key, append(bytes.Clone(sealed), 0), ad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("extended: %v", err)
	}
	// Wrong key: another label, epoch, space or secret.
	for name, k := range map[string][32]byte{
		"ephemeral key":  es.EphemeralKey(space),
		"next epoch":     EpochSecret{Epoch: 1, Secret: es.Secret}.ContentKey(space),
		"other space":    es.ContentKey(testSpace(t, 2)),
		"other secret":   EpochSecret{Secret: [32]byte(seq(2, 32))}.ContentKey(space),
		"mirror token":   es.MirrorToken(space).Token,
		"the secret too": es.Secret,
	} {
		if _, err := OpenContent(k, sealed, ad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Wrong additional data.
	if _, err := OpenContent(key, sealed, []byte("feed 1 entry 3")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other ad: %v", err)
	}
	// Bounds.
	if _, err := SealContent(key, make([]byte, MaxContentSize-ContentOverhead+1), nil, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("seal too large: %v", err)
	}
	if _, err := OpenContent(key, make([]byte, MaxContentSize+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("open too large: %v", err)
	}
	// A failing random source is an error, not a zero nonce.
	if _, err := SealContent(key, pt, nil, iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Fatal("sealed without a nonce")
	}
}
