package auth

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mycelsync/mycel/auth/authpb"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestKeyringEpochs(t *testing.T) {
	space := testSpace(t, 1)
	kr, err := NewKeyring(space, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := kr.Current(); err != nil || cur.Epoch != 0 {
		t.Fatalf("Current = %v, %v", cur, err)
	}
	es1, err := kr.Rotate(nil)
	if err != nil || es1.Epoch != 1 {
		t.Fatalf("Rotate = %v, %v", es1, err)
	}
	if cur, _ := kr.Current(); cur != es1 {
		t.Fatal("Current is not the rotated secret")
	}
	if got, err := kr.Epoch(1); err != nil || got != es1 {
		t.Fatalf("Epoch(1) = %v, %v", got, err)
	}
	if _, err := kr.Epoch(2); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("Epoch(2): %v", err)
	}
	if _, err := kr.Epoch(^uint32(0)); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("Epoch(max): %v", err)
	}
	// Adding a secret already held is a no-op; a different one for the same
	// epoch (a concurrent rotation) is kept beside it, once.
	if err := kr.Add(es1); err != nil {
		t.Fatalf("re-add: %v", err)
	}
	other := EpochSecret{Epoch: 1, Secret: [32]byte(seq(9, 32))}
	for range 2 {
		if err := kr.Add(other); err != nil {
			t.Fatalf("concurrent add: %v", err)
		}
	}
	if len(kr.Concurrent) != 1 || kr.Concurrent[0] != other || len(kr.All()) != 3 {
		t.Fatalf("concurrent secrets %d, all %d", len(kr.Concurrent), len(kr.All()))
	}
	data, err := kr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Keyring
	if err := back.UnmarshalBinary(data); err != nil || len(back.Concurrent) != 1 || back.Concurrent[0] != other {
		t.Fatalf("concurrent secret lost in a round trip: %v", err)
	}
	if err := kr.Add(EpochSecret{Epoch: 3}); !errors.Is(err, ErrEpochOrder) {
		t.Fatalf("gap: %v", err)
	}
	es2, _ := NewEpochSecret(2, nil)
	if err := kr.Add(es2); err != nil {
		t.Fatal(err)
	}
	if len(kr.Epochs) != 3 || kr.Validate() != nil {
		t.Fatalf("keyring of %d epochs: %v", len(kr.Epochs), kr.Validate())
	}
	// Clone is deep.
	c := kr.Clone()
	c.Epochs[0].Secret[0] ^= 1
	if c.Epochs[0] == kr.Epochs[0] {
		t.Fatal("Clone shares epochs")
	}
	// Fresh secrets differ.
	if kr.Epochs[0].Secret == kr.Epochs[1].Secret || kr.Epochs[1].Secret == kr.Epochs[2].Secret {
		t.Fatal("equal fresh secrets")
	}

	empty := &Keyring{Space: space}
	if _, err := empty.Current(); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("Current of empty: %v", err)
	}
	if err := empty.Validate(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Validate empty: %v", err)
	}
	if err := (&Keyring{Space: space, Epochs: []EpochSecret{{Epoch: 1}}}).Validate(); !errors.Is(err, ErrEpochOrder) {
		t.Fatalf("Validate not from 0: %v", err)
	}
}

func TestKeyringLimit(t *testing.T) {
	kr := &Keyring{Space: testSpace(t, 1), Epochs: make([]EpochSecret, MaxEpochs)}
	for i := range kr.Epochs {
		kr.Epochs[i] = EpochSecret{Epoch: uint32(i), Secret: [32]byte(seq(byte(i), 32))}
	}
	if _, err := kr.Rotate(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("rotate past MaxEpochs: %v", err)
	}
	enc, err := kr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > MaxKeyringSize {
		t.Fatalf("a full keyring encodes in %d bytes, over MaxKeyringSize %d", len(enc), MaxKeyringSize)
	}
	var back Keyring
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if len(back.Epochs) != MaxEpochs || back.Epochs[MaxEpochs-1] != kr.Epochs[MaxEpochs-1] {
		t.Fatal("full keyring round trip differs")
	}
	// One more epoch is refused by the encoder and the decoder.
	kr.Epochs = append(kr.Epochs, EpochSecret{Epoch: MaxEpochs})
	if _, err := kr.MarshalBinary(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encode past MaxEpochs: %v", err)
	}
	m := &authpb.Keyring{Space: kr.Space[:]}
	for range MaxEpochs + 1 {
		m.Secrets = append(m.Secrets, make([]byte, 32))
	}
	over, _ := m.Marshal()
	if err := back.UnmarshalBinary(over); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("decode past MaxEpochs: %v", err)
	}
	// A sealed full keyring fits a feed entry (1 MiB).
	if MaxSealedKeyringSize > 1<<20 {
		t.Fatalf("MaxSealedKeyringSize %d exceeds a feed entry", MaxSealedKeyringSize)
	}
}

func TestKeyringEncoding(t *testing.T) {
	kr := testKeyring(t, testSpace(t, 1), 5)
	enc, err := kr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := 34 + 5*34; len(enc) != want {
		t.Fatalf("encoded %d bytes, want %d", len(enc), want)
	}
	var back Keyring
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if back.Space != kr.Space || len(back.Epochs) != 5 {
		t.Fatalf("round trip: %v", back)
	}
	for i := range kr.Epochs {
		if back.Epochs[i] != kr.Epochs[i] {
			t.Fatalf("epoch %d differs", i)
		}
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(again, enc) {
		t.Fatal("re-encoding differs")
	}
	// Unknown fields (a later version's) are ignored.
	withUnknown := protowire.AppendTag(bytes.Clone(enc), 15, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, []byte("later"))
	if err := back.UnmarshalBinary(withUnknown); err != nil || len(back.Epochs) != 5 {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestKeyringDecodeRefuses(t *testing.T) {
	space := testSpace(t, 1)
	enc := func(m *authpb.Keyring) []byte {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	secret := make([]byte, 32)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"garbage", []byte{0xff, 0xff, 0xff, 0xff}, ErrMalformed},
		{"truncated", enc(&authpb.Keyring{Space: space[:], Secrets: [][]byte{secret}})[:50], ErrMalformed},
		{"no space", enc(&authpb.Keyring{Secrets: [][]byte{secret}}), ErrMalformed},
		{"short space", enc(&authpb.Keyring{Space: space[:31], Secrets: [][]byte{secret}}), ErrMalformed},
		{"long space", enc(&authpb.Keyring{Space: append(space[:], 0), Secrets: [][]byte{secret}}), ErrMalformed},
		{"no epochs", enc(&authpb.Keyring{Space: space[:]}), ErrMalformed},
		{"short secret", enc(&authpb.Keyring{Space: space[:], Secrets: [][]byte{secret, secret[:31]}}), ErrMalformed},
		{"long secret", enc(&authpb.Keyring{Space: space[:], Secrets: [][]byte{append(secret, 0)}}), ErrMalformed},
		{"empty secret", enc(&authpb.Keyring{Space: space[:], Secrets: [][]byte{{}}}), ErrMalformed},
		{"too large", make([]byte, MaxKeyringSize+1), ErrTooLarge},
	} {
		kr := testKeyring(t, testSpace(t, 9), 1)
		before := kr.Clone()
		err := kr.UnmarshalBinary(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if kr.Space != before.Space || len(kr.Epochs) != 1 || kr.Epochs[0] != before.Epochs[0] {
			t.Errorf("%s: keyring changed by a failed decode", tc.name)
		}
	}
}
