package auth

import (
	"errors"
	"flag"
	"testing"
)

// FuzzKeyringDecode: the keyring decoder never panics, refuses with a
// sentinel, and whatever it accepts is a valid keyring that re-encodes to
// something that decodes to the same keyring.
func FuzzKeyringDecode(f *testing.F) {
	for _, n := range []int{1, 2, 5} {
		enc, err := testKeyring(f, testSpace(f, byte(n)), n).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x20})
	f.Fuzz(func(t *testing.T, in []byte) {
		var kr Keyring
		if err := kr.UnmarshalBinary(in); err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if err := kr.Validate(); err != nil {
			t.Fatalf("accepted an invalid keyring: %v", err)
		}
		enc, err := kr.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Keyring
		if err := back.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		if back.Space != kr.Space || len(back.Epochs) != len(kr.Epochs) {
			t.Fatal("re-encoding changes the keyring")
		}
		for i := range kr.Epochs {
			if back.Epochs[i] != kr.Epochs[i] {
				t.Fatalf("re-encoding changes epoch %d", i)
			}
		}
	})
}

// FuzzSealedBoxOpen feeds arbitrary bytes to both openers. They never
// panic, and nothing opens but the boxes actually sealed: whatever opens
// must hold exactly what was sealed (every box here is sealed from the same
// deterministic keyring, so this holds in every fuzz worker).
func FuzzSealedBoxOpen(f *testing.F) {
	space := testSpace(f, 0x20)
	kr := testKeyring(f, space, 2)
	dk := testDeviceKey(f, "alice")
	b := Binding{Space: space, Feed: [32]byte(seq(0x40, 32))}
	es := kr.Epochs[1]

	ring, err := SealKeyring(dk.Public(), kr, b)
	if err != nil {
		f.Fatal(err)
	}
	one, err := SealEpochSecret(dk.Public(), es, b)
	if err != nil {
		f.Fatal(err)
	}
	capMinimizeTime(f, "1s")
	f.Add(ring)
	f.Add(one)
	f.Add([]byte{1})
	f.Add(make([]byte, SealOverhead))
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, err := OpenKeyring(dk, in, b); err == nil {
			if got.Space != kr.Space || len(got.Epochs) != len(kr.Epochs) ||
				got.Epochs[0] != kr.Epochs[0] || got.Epochs[1] != kr.Epochs[1] {
				t.Fatal("opened a keyring that was never sealed")
			}
		} else if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error without a sentinel: %v", err)
		}
		if got, err := OpenEpochSecret(dk, in, b); err == nil {
			if got != es {
				t.Fatal("opened an epoch secret that was never sealed")
			}
		} else if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}

// FuzzOpenContent: OpenContent never panics and opens nothing but the
// seeds' sealed content (deterministic: fixed key and nonce stream).
func FuzzOpenContent(f *testing.F) {
	key := EpochSecret{Secret: [32]byte(seq(1, 32))}.ContentKey(testSpace(f, 1))
	ad := []byte("feed 1 entry 2")
	r := newDetRand("fuzz nonces")
	plaintexts := map[string]bool{}
	for _, pt := range []string{"", "x", "a value that must stay private"} {
		sealed, err := SealContent(key, []byte(pt), ad, r)
		if err != nil {
			f.Fatal(err)
		}
		plaintexts[pt] = true
		f.Add(sealed)
	}
	f.Add(make([]byte, ContentOverhead))
	f.Fuzz(func(t *testing.T, in []byte) {
		pt, err := OpenContent(key, in, ad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if !plaintexts[string(pt)] || len(in) != len(pt)+ContentOverhead {
			t.Fatalf("opened content that was never sealed: %q", pt)
		}
	})
}

// capMinimizeTime lowers -fuzzminimizetime unless it was given. When an
// input finds new coverage the fuzzer minimizes it, re-running the target
// on O(n²) shortened candidates; for a 1.2 KB sealed box each candidate
// costs an ML-KEM decapsulation, so the default 60 s of minimizing would
// take the whole of a short fuzz run (the progress line then shows
// "execs: 7 (0/sec)"). A sealed box cannot shrink and stay valid anyway.
func capMinimizeTime(f *testing.F, d string) {
	const name = "test.fuzzminimizetime"
	given := false
	flag.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	if given || flag.Lookup(name) == nil {
		return
	}
	if err := flag.Set(name, d); err != nil {
		f.Fatal(err)
	}
}
