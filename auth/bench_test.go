package auth

import "testing"

func BenchmarkContentKey(b *testing.B) {
	space := testSpace(b, 1)
	es := EpochSecret{Epoch: 3, Secret: [32]byte(seq(1, 32))}
	for b.Loop() {
		es.ContentKey(space)
	}
}

func BenchmarkSealContent1KiB(b *testing.B) {
	key := [32]byte(seq(1, 32))
	pt := make([]byte, 1024)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := SealContent(key, pt, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenContent1KiB(b *testing.B) {
	key := [32]byte(seq(1, 32))
	sealed, _ := SealContent(key, make([]byte, 1024), nil, nil)
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := OpenContent(key, sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealEpochSecret(b *testing.B) {
	dk := testDeviceKey(b, "alice")
	es := EpochSecret{Epoch: 1}
	for b.Loop() {
		if _, err := SealEpochSecret(dk.Public(), es, Binding{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenEpochSecret(b *testing.B) {
	dk := testDeviceKey(b, "alice")
	sealed, _ := SealEpochSecret(dk.Public(), EpochSecret{Epoch: 1}, Binding{})
	for b.Loop() {
		if _, err := OpenEpochSecret(dk, sealed, Binding{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenKeyringFull(b *testing.B) {
	dk := testDeviceKey(b, "alice")
	kr := &Keyring{Space: testSpace(b, 1), Epochs: make([]EpochSecret, MaxEpochs)}
	for i := range kr.Epochs {
		kr.Epochs[i].Epoch = uint32(i)
	}
	bind := Binding{Space: kr.Space}
	sealed, err := SealKeyring(dk.Public(), kr, bind)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(sealed)))
	for b.Loop() {
		if _, err := OpenKeyring(dk, sealed, bind); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateDeviceKey(b *testing.B) {
	for b.Loop() {
		if _, err := GenerateDeviceKey(nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordKey measures Argon2id with the format's parameters
// (t = 3, m = 64 MiB, p = 4): what signing in with a password costs the
// device, and a member once per password set.
func BenchmarkPasswordKey(b *testing.B) {
	space := testSpace(b, 1)
	for b.Loop() {
		PasswordKey("correct horse battery staple", space)
	}
}
