package auth

import (
	"bytes"
	"errors"
	"testing"
)

func TestDeviceKeyEncoding(t *testing.T) {
	k := testDeviceKey(t, "alice")
	b := k.Bytes()
	if len(b) != DeviceKeySize || b[0] != 1 {
		t.Fatalf("device key encodes as %d bytes, suite %d", len(b), b[0])
	}
	back, err := ParseDeviceKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(k) || !back.Public().Equal(k.Public()) {
		t.Fatal("device key round trip differs")
	}
	pb := k.Public().Bytes()
	if len(pb) != DevicePublicKeySize || pb[0] != 1 {
		t.Fatalf("public key encodes as %d bytes, suite %d", len(pb), pb[0])
	}
	pub, err := ParseDevicePublicKey(pb)
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("public key round trip: %v", err)
	}
	pb[5] ^= 1 // Bytes returns a copy
	if bytes.Equal(pb, k.Public().Bytes()) {
		t.Fatal("Bytes shares its slice")
	}
	if other := testDeviceKey(t, "bob"); other.Equal(k) || other.Public().Equal(k.Public()) {
		t.Fatal("two device keys are equal")
	}

	for name, in := range map[string][]byte{
		"empty":     nil,
		"short":     b[:DeviceKeySize-1],
		"long":      append(bytes.Clone(b), 0),
		"suite 0":   append([]byte{0}, b[1:]...),
		"suite 2":   append([]byte{2}, b[1:]...),
		"seed only": b[1:],
	} {
		if _, err := ParseDeviceKey(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("device key %s: %v", name, err)
		}
	}
	good := k.Public().Bytes()
	badMLKEM := bytes.Clone(good)
	for i := 1; i < 1+384; i++ { // coefficients ≥ q are refused by ML-KEM
		badMLKEM[i] = 0xff
	}
	for name, in := range map[string][]byte{
		"empty":        nil,
		"short":        good[:DevicePublicKeySize-1],
		"long":         append(bytes.Clone(good), 0),
		"suite 0":      append([]byte{0}, good[1:]...),
		"bad ML-KEM":   badMLKEM,
		"without tag":  good[1:],
		"private key":  b,
		"X25519 alone": good[len(good)-32:],
	} {
		if _, err := ParseDevicePublicKey(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("public key %s: %v", name, err)
		}
	}
}

// TestSealedKnownAnswers opens boxes sealed once and stored in testdata:
// boxes sealed today must open on every later version.
func TestSealedKnownAnswers(t *testing.T) {
	dk, err := ParseDeviceKey(readHexFile(t, "testdata/device_key.hex"))
	if err != nil {
		t.Fatal(err)
	}
	space := testSpace(t, 0x20)
	b := Binding{Space: space, Feed: [32]byte(seq(0x40, 32))}

	kr, err := OpenKeyring(dk, readHexFile(t, "testdata/sealed_keyring.hex"), b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"e047460f9144850261403d93b3a4fd91e93f09b12edcd06b1b978ec6e618de3e",
		"b560a5026772aaeff75dae8f0cbe2df35b52568b98573ac2a38daf6a1a1d0429",
		"d41582c0c4b7de4cd201b03cc81ff5c99444d40391b491110d7429aeb98667d5",
	}
	if kr.Space != space || len(kr.Epochs) != len(want) {
		t.Fatalf("keyring of space %s with %d epochs", kr.Space, len(kr.Epochs))
	}
	for i, w := range want {
		if kr.Epochs[i].Secret != [32]byte(mustHex(t, w)) {
			t.Errorf("epoch %d: %x, want %s", i, kr.Epochs[i].Secret, w)
		}
	}

	es, err := OpenEpochSecret(dk, readHexFile(t, "testdata/sealed_epoch_secret.hex"), b)
	if err != nil {
		t.Fatal(err)
	}
	if es != (EpochSecret{Epoch: 7, Secret: [32]byte(seq(0, 32))}) {
		t.Fatalf("epoch secret %d %x", es.Epoch, es.Secret)
	}
}

func TestSealKeyring(t *testing.T) {
	space := testSpace(t, 1)
	kr := testKeyring(t, space, 4)
	alice, bob := testDeviceKey(t, "alice"), testDeviceKey(t, "bob")
	b := Binding{Space: space, Feed: [32]byte(seq(0x40, 32))}

	sealed, err := SealKeyring(alice.Public(), kr, b)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := kr.MarshalBinary()
	if len(sealed) != SealOverhead+len(enc) {
		t.Fatalf("sealed %d bytes, want %d", len(sealed), SealOverhead+len(enc))
	}
	got, err := OpenKeyring(alice, sealed, b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Space != kr.Space || len(got.Epochs) != len(kr.Epochs) {
		t.Fatal("opened keyring differs")
	}
	for i := range kr.Epochs {
		if got.Epochs[i] != kr.Epochs[i] {
			t.Fatalf("epoch %d differs", i)
		}
	}
	again, _ := SealKeyring(alice.Public(), kr, b)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are equal")
	}

	// Another device's key.
	if _, err := OpenKeyring(bob, sealed, b); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("bob opens alice's box: %v", err)
	}
	// Another binding: space, feed.
	otherSpace := b
	otherSpace.Space = testSpace(t, 2)
	otherFeed := b
	otherFeed.Feed[31] ^= 1
	for name, ob := range map[string]Binding{"other space": otherSpace, "other feed": otherFeed, "zero": {}} {
		if _, err := OpenKeyring(alice, sealed, ob); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Sealing a keyring under another space's binding is refused.
	if _, err := SealKeyring(alice.Public(), kr, otherSpace); !errors.Is(err, ErrMalformed) {
		t.Fatalf("seal to other space: %v", err)
	}
	// An invalid keyring is not sealed.
	if _, err := SealKeyring(alice.Public(), &Keyring{Space: space}, b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("seal empty keyring: %v", err)
	}
	if _, err := SealKeyring(nil, kr, b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("seal to nil key: %v", err)
	}
	checkBoxTampering(t, sealed, func(box []byte) error {
		_, err := OpenKeyring(alice, box, b)
		return err
	})
	if _, err := OpenKeyring(alice, make([]byte, MaxSealedKeyringSize+1), b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}

func TestSealEpochSecret(t *testing.T) {
	space := testSpace(t, 1)
	kr := testKeyring(t, space, 1)
	alice, bob := testDeviceKey(t, "alice"), testDeviceKey(t, "bob")
	b := Binding{Space: space, Feed: [32]byte(seq(0x40, 32))}

	// A rotation: a fresh secret sealed to each remaining member.
	es, err := NewEpochSecret(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := SealEpochSecret(alice.Public(), es, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != SealedEpochSecretSize {
		t.Fatalf("sealed %d bytes, want %d", len(sealed), SealedEpochSecretSize)
	}
	got, err := OpenEpochSecret(alice, sealed, b)
	if err != nil || got != es {
		t.Fatalf("open: %v, %v", got, err)
	}
	if err := kr.Add(got); err != nil {
		t.Fatal(err)
	}

	if _, err := OpenEpochSecret(bob, sealed, b); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("bob opens alice's box: %v", err)
	}
	ob := b
	ob.Space[0] ^= 1
	if _, err := OpenEpochSecret(alice, sealed, ob); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other binding: %v", err)
	}
	// A sealed keyring is not a sealed epoch secret and back, even when
	// the sizes fit (the HPKE info labels differ).
	one := &Keyring{Space: space, Epochs: []EpochSecret{{Secret: es.Secret}}}
	ring, _ := SealKeyring(alice.Public(), one, b)
	if _, err := OpenEpochSecret(alice, ring, b); err == nil {
		t.Fatal("a sealed keyring opens as an epoch secret")
	}
	if _, err := OpenKeyring(alice, sealed, b); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a sealed epoch secret opens as a keyring: %v", err)
	}
	checkBoxTampering(t, sealed, func(box []byte) error {
		_, err := OpenEpochSecret(alice, box, b)
		return err
	})
}

// checkBoxTampering flips bytes in every region of a sealed box (suite, the
// ML-KEM and X25519 halves of enc, ciphertext, tag), truncates and extends
// it, and expects open to refuse each.
func checkBoxTampering(t *testing.T, sealed []byte, open func([]byte) error) {
	t.Helper()
	if err := open(sealed); err != nil {
		t.Fatalf("untouched box: %v", err)
	}
	var positions []int
	for i := 0; i < len(sealed); i += 7 {
		positions = append(positions, i)
	}
	positions = append(positions,
		0, 1, 1+1087, 1+1088, 1+xwingEncSize-1, // suite, ML-KEM ct, X25519
		1+xwingEncSize, len(sealed)-hpkeTagSize-1, // ciphertext
		len(sealed)-hpkeTagSize, len(sealed)-1) // tag
	for _, i := range positions {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x80
		err := open(bad)
		if err == nil {
			t.Fatalf("byte %d flipped: opened", i)
		}
		if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, n := range []int{0, 1, SealOverhead - 1, SealOverhead, len(sealed) - 1} {
		if err := open(sealed[:n]); err == nil {
			t.Fatalf("truncated to %d: opened", n)
		}
	}
	if err := open(append(bytes.Clone(sealed), 0)); err == nil {
		t.Fatal("extended: opened")
	}
}
