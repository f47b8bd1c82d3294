package auth

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"strings"
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

// FuzzParseInvite: ParseInvite never panics, refuses with a sentinel, and
// whatever it accepts re-encodes to a form that parses to the same invite.
func FuzzParseInvite(f *testing.F) {
	inv := &Invite{Space: testSpace(f, 0x20), Secret: InviteSecret(seq(0, InviteSecretSize)), Expires: testExpires}
	link, err := inv.Link()
	if err != nil {
		f.Fatal(err)
	}
	hinted := *inv
	hinted.Hints = InviteHints{Peer: seq(1, 38), Addrs: [][]byte{seq(2, 8), seq(3, 20)}}
	hlink, err := hinted.Link()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{link, hlink, hlink[:len(hlink)-1], link + "/", inv.Code(), strings.ToLower(link), " " + inv.Code() + "\n",
		strings.ReplaceAll(inv.Code(), "-", ""), "mycel://join/", "mycel://", "0000-0000", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseInvite(s, testNow)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		back, err := ParseInvite(got.Code(), testNow)
		if err != nil || back.Secret != got.Secret {
			t.Fatalf("the code of an accepted invite does not parse back: %v", err)
		}
		if !got.KnowsSpace() {
			if !got.Expires.IsZero() {
				t.Fatal("a code-only invite with an expiry")
			}
			return
		}
		l, err := got.Link()
		if err != nil {
			t.Fatal(err)
		}
		back, err = ParseInvite(l, testNow)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("the link of an accepted invite does not parse back: %v", err)
		}
	})
}

// FuzzUnmarshalJoinRequest: the decoder never panics, refuses with a
// sentinel, and what it accepts is valid and re-encodes to the same
// request.
func FuzzUnmarshalJoinRequest(f *testing.F) {
	req, _ := testRequest(f, testSpace(f, 1), "Firefox on Ubuntu 64-bit")
	enc, err := req.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(append(bytes.Clone(enc), 0x78, 0x01))
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := UnmarshalJoinRequest(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted an invalid request: %v", err)
		}
		re, err := got.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalJoinRequest(re)
		if err != nil || !sameRequest(back, got) || back.Hash() != got.Hash() {
			t.Fatalf("re-encoding changes the request: %v", err)
		}
		SafetyCode(got)
	})
}

// FuzzOpenJoinRequest: opening never panics, and nothing opens but the
// requests actually sealed (deterministic: fixed key and nonce stream).
func FuzzOpenJoinRequest(f *testing.F) {
	inv := &Invite{Space: testSpace(f, 1), Secret: InviteSecret(seq(0, InviteSecretSize)), Expires: testExpires}
	k := inv.RequestKey()
	r := newDetRand("fuzz request nonces")
	hashes := map[[RequestHashSize]byte]bool{}
	for _, name := range []string{"laptop", "phone"} {
		req, _ := testRequest(f, inv.Space, name)
		sealed, err := SealJoinRequest(k, req, r)
		if err != nil {
			f.Fatal(err)
		}
		hashes[req.Hash()] = true
		f.Add(sealed)
	}
	f.Add(make([]byte, ContentOverhead))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := OpenJoinRequest(k, in)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if !hashes[got.Hash()] {
			t.Fatal("opened a request that was never sealed")
		}
	})
}

// FuzzOpenApproval: the approval decoder and OpenApproval never panic,
// refuse with a sentinel, and open nothing but the keyring approved for
// the device's own request.
func FuzzOpenApproval(f *testing.F) {
	space := testSpace(f, 1)
	kr := testKeyring(f, space, 2)
	req, dk := testRequest(f, space, "laptop")
	a, err := NewApproval(req, kr, testApprover, 3)
	if err != nil {
		f.Fatal(err)
	}
	enc, err := a.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	capMinimizeTime(f, "1s")
	f.Add(enc)
	f.Add(mustMarshal(f, NewDenial(req, testApprover)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, err := UnmarshalApproval(in); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error without a sentinel: %v", err)
		}
		got, _, err := OpenApproval(dk, req, in)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMismatch) {
				t.Fatalf("error without a sentinel: %v", err)
			}
		} else if got.Space != kr.Space || len(got.Epochs) != 2 || got.Epochs[1] != kr.Epochs[1] {
			t.Fatal("opened a keyring that was never sealed")
		}
		if d, err := UnmarshalDenial(req, in); err == nil {
			if d.Request != req.Hash() {
				t.Fatal("accepted a denial of another request")
			}
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMismatch) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}

// FuzzInviteRecordDecode: the record decoder never panics and what it
// accepts re-encodes to the same record.
func FuzzInviteRecordDecode(f *testing.F) {
	rec := (&Invite{Space: testSpace(f, 1), Secret: InviteSecret(seq(0, InviteSecretSize)), Expires: testExpires}).Record()
	f.Add(mustMarshal(f, rec))
	if err := rec.MarkUsed(testApprover); err != nil {
		f.Fatal(err)
	}
	f.Add(mustMarshal(f, rec))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var r InviteRecord
		if err := r.UnmarshalBinary(in); err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		var back InviteRecord
		if err := back.UnmarshalBinary(mustMarshal(t, r)); err != nil || back != r {
			t.Fatalf("re-encoding changes the record: %v", err)
		}
	})
}
