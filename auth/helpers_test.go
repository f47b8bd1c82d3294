package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
)

// detRand is a deterministic "random" stream: SHA-256(seed ‖ counter)
// blocks. For reproducible keys and nonces in tests only.
type detRand struct {
	seed string
	n    uint64
	buf  []byte
}

func newDetRand(seed string) *detRand { return &detRand{seed: seed} }

func (r *detRand) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		h := sha256.New()
		h.Write([]byte(r.seed))
		h.Write(binary.BigEndian.AppendUint64(nil, r.n))
		r.n++
		r.buf = h.Sum(r.buf)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// seq returns n bytes start, start+1, ...
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func testSpace(t testing.TB, tag byte) SpaceID {
	t.Helper()
	id, err := SpaceIDFromBytes(seq(tag, SpaceIDSize))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testKeyring(t testing.TB, space SpaceID, epochs int) *Keyring {
	t.Helper()
	r := newDetRand("keyring " + space.String())
	kr, err := NewKeyring(space, r)
	if err != nil {
		t.Fatal(err)
	}
	for len(kr.Epochs) < epochs {
		if _, err := kr.Rotate(r); err != nil {
			t.Fatal(err)
		}
	}
	return kr
}

func testDeviceKey(t testing.TB, name string) *DeviceKey {
	t.Helper()
	k, err := GenerateDeviceKey(newDetRand("device " + name))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readHexFile reads a testdata file of hex, whitespace ignored.
func readHexFile(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return mustHex(t, strings.Join(strings.Fields(string(raw)), ""))
}

// fmtV formats v with %v, %+v and %#v, to check none leaks a secret.
func fmtV(v any) string { return fmt.Sprintf("%v %+v %#v", v, v, v) }
