package ephemeral

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

// detRand is a deterministic "random" stream: SHA-256(seed ‖ counter)
// blocks. For reproducible keys, IDs and nonces in tests only.
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

func testSigner(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(seq(seed, ed25519.SeedSize))
}

var (
	testTopic = Topic(seq(0x20, TopicSize))
	testKey   = [KeySize]byte(seq(0x40, KeySize))
	// t0 is the tests' "now".
	t0 = time.UnixMilli(1_700_000_000_000)
)

func testHeader() Header {
	return Header{Topic: testTopic, KeyKind: 1, KeyID: seq(0x60, 16)}
}

// seal seals plaintext at t with the test key and signer 1.
func seal(t testing.TB, plaintext string, at time.Time) *Envelope {
	t.Helper()
	e, err := Seal(testKey, testSigner(1), testHeader(), []byte(plaintext), at, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func marshal(t testing.TB, e *Envelope) []byte {
	t.Helper()
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
