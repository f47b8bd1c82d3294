package space

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/space/spacepb"
	"google.golang.org/protobuf/encoding/protowire"
)

// entryEnv is a space with three epoch secrets, and an author writing in it.
type entryEnv struct {
	space   auth.SpaceID
	author  feed.PublicKey
	secrets []auth.EpochSecret
}

func newEntryEnv(t testing.TB, seed uint64) *entryEnv {
	t.Helper()
	var s [32]byte
	s[0] = byte(seed)
	r := rand.NewChaCha8(s)
	env := &entryEnv{}
	r.Read(env.space[:])
	r.Read(env.author[:])
	for n := range 3 {
		es, err := auth.NewEpochSecret(uint32(n), r)
		if err != nil {
			t.Fatal(err)
		}
		env.secrets = append(env.secrets, es)
	}
	return env
}

// keys returns Keys that know the given epochs.
func (env *entryEnv) keys(epochs ...int) Keys {
	m := make(map[[auth.KeyIDSize]byte]auth.EpochSecret)
	for _, n := range epochs {
		es := env.secrets[n]
		m[es.KeyID(env.space)] = es
	}
	return func(id [auth.KeyIDSize]byte) (auth.EpochSecret, bool) {
		es, ok := m[id]
		return es, ok
	}
}

func (env *entryEnv) seal(t testing.TB, epoch int, index uint64, op *Op) []byte {
	t.Helper()
	data, err := SealEntry(env.space, env.author, index, env.secrets[epoch], op, nil)
	if err != nil {
		t.Fatalf("seal %s: %v", kindName(op.Kind), err)
	}
	return data
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randFeed(rng *rand.Rand) feed.PublicKey { return feed.PublicKey(randBytes(rng, feed.KeySize)) }

// randString returns valid UTF-8 of 1 to 4-byte runes, at most max bytes.
func randString(rng *rand.Rand, max int) string {
	runes := []rune{'a', 'Z', '/', ' ', 'é', 'ß', '日', '語', '🍄', 0x10FFFF, 0}
	var b strings.Builder
	for n := rng.IntN(max + 1); ; {
		r := runes[rng.IntN(len(runes))]
		if b.Len()+len(string(r)) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

func randKeyString(rng *rand.Rand) string {
	for {
		if k := randString(rng, 64); k != "" {
			return k
		}
	}
}

func randSeen(rng *rand.Rand) []Seen {
	n := rng.IntN(6)
	if rng.IntN(30) == 0 {
		n = rng.IntN(MaxSeen + 1)
	}
	var out []Seen
	for range n {
		out = append(out, Seen{Feed: randFeed(rng), Length: rng.Uint64() >> rng.IntN(64)})
	}
	return out
}

func randRotation(rng *rand.Rand) *Rotation {
	r := &Rotation{Epoch: rng.Uint32(), KeyID: [16]byte(randBytes(rng, 16))}
	for range rng.IntN(6) {
		r.Boxes = append(r.Boxes, SealedSecret{Feed: randFeed(rng), Box: randBytes(rng, 1+rng.IntN(auth.SealedEpochSecretSize))})
	}
	return r
}

// randomOp returns an op of the given kind with random fields, now and then
// a large one.
func randomOp(rng *rand.Rand, kind OpKind) *Op {
	op := &Op{Kind: kind, Seen: randSeen(rng), HLC: rng.Uint64()}
	switch kind {
	case OpPut:
		op.Key = randKeyString(rng)
		op.Value = randBytes(rng, rng.IntN(300))
		if rng.IntN(40) == 0 {
			op.Value = randBytes(rng, rng.IntN(MaxValueSize+1))
		}
	case OpDelete:
		op.Key = randKeyString(rng)
	case OpAddWriter:
		op.Target = randFeed(rng)
		op.Name = randString(rng, MaxNameSize)
		if rng.IntN(4) > 0 {
			op.DevicePublic = randBytes(rng, rng.IntN(MaxDevicePublicSize+1))
			op.SealedKeyring = randBytes(rng, rng.IntN(4000))
		}
	case OpRemoveWriter:
		op.Target = randFeed(rng)
		if rng.IntN(2) == 0 {
			op.Rotation = randRotation(rng)
		}
	case OpRotate:
		op.Rotation = randRotation(rng)
	}
	return op
}

// sampleOps returns one small op of each kind.
func sampleOps() []*Op {
	rng := rand.New(rand.NewPCG(7, 7))
	var out []*Op
	for k := OpPut; k <= OpRotate; k++ {
		op := randomOp(rng, k)
		op.Seen = op.Seen[:min(len(op.Seen), 2)]
		if k == OpRemoveWriter && op.Rotation == nil {
			op.Rotation = randRotation(rng)
		}
		out = append(out, op)
	}
	return out
}

// diffOps describes how two ops differ; "" when they are the same (an
// empty byte slice is the same as nil).
func diffOps(a, b *Op) string {
	switch {
	case a.Kind != b.Kind:
		return fmt.Sprintf("kind %d != %d", a.Kind, b.Kind)
	case a.HLC != b.HLC:
		return "HLC"
	case !slices.Equal(a.Seen, b.Seen):
		return "seen"
	case a.Key != b.Key:
		return "key"
	case !bytes.Equal(a.Value, b.Value):
		return "value"
	case a.Target != b.Target:
		return "target"
	case a.Name != b.Name:
		return "name"
	case !bytes.Equal(a.DevicePublic, b.DevicePublic):
		return "device public key"
	case !bytes.Equal(a.SealedKeyring, b.SealedKeyring):
		return "sealed keyring"
	case (a.Rotation == nil) != (b.Rotation == nil):
		return "rotation presence"
	case a.Rotation != nil && (a.Rotation.Epoch != b.Rotation.Epoch || a.Rotation.KeyID != b.Rotation.KeyID):
		return "rotation epoch or key ID"
	case a.Rotation != nil && !slices.EqualFunc(a.Rotation.Boxes, b.Rotation.Boxes, func(x, y SealedSecret) bool {
		return x.Feed == y.Feed && bytes.Equal(x.Box, y.Box)
	}):
		return "rotation boxes"
	}
	return ""
}

func wantHeader(es auth.EpochSecret, space auth.SpaceID, op *Op) EntryHeader {
	h := EntryHeader{KeyID: es.KeyID(space)}
	if op.Kind == OpAddWriter || op.Kind == OpRemoveWriter {
		h.Membership, h.Target = op.Kind, op.Target
	}
	if op.Kind == OpAddWriter {
		h.SealedKeyring = op.SealedKeyring
	}
	return h
}

func sameHeader(a, b EntryHeader) bool {
	return a.KeyID == b.KeyID && a.Membership == b.Membership && a.Target == b.Target && bytes.Equal(a.SealedKeyring, b.SealedKeyring)
}

func TestEntryRoundTrip(t *testing.T) {
	env := newEntryEnv(t, 1)
	keys := env.keys(0, 1, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		op := randomOp(rng, OpKind(1+i%5))
		epoch := rng.IntN(3)
		author := randFeed(rng)
		index := rng.Uint64() >> rng.IntN(64)
		data, err := SealEntry(env.space, author, index, env.secrets[epoch], op, nil)
		if err != nil {
			t.Fatalf("op %d (%s): seal: %v", i, kindName(op.Kind), err)
		}
		if len(data) > feed.MaxEntrySize {
			t.Fatalf("op %d: entry of %d bytes", i, len(data))
		}
		got, err := OpenEntry(env.space, author, index, data, keys)
		if err != nil {
			t.Fatalf("op %d (%s): open: %v", i, kindName(op.Kind), err)
		}
		if d := diffOps(op, got); d != "" {
			t.Fatalf("op %d (%s): %s differs after the round trip", i, kindName(op.Kind), d)
		}
		h, err := PeekEntry(data)
		if err != nil {
			t.Fatalf("op %d: peek: %v", i, err)
		}
		if want := wantHeader(env.secrets[epoch], env.space, op); !sameHeader(h, want) {
			t.Fatalf("op %d: peek = %+v, want %+v", i, h, want)
		}
	}
}

// TestEntryAD pins the byte layout of the additional data (FORMAT.md).
func TestEntryAD(t *testing.T) {
	seq := func(start byte, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	space := auth.SpaceID(seq(0x20, 32))
	author := feed.PublicKey(seq(0x40, 32))
	h := EntryHeader{KeyID: [16]byte(seq(0x60, 16)), Membership: OpRemoveWriter, Target: feed.PublicKey(seq(0x80, 32))}
	want := "6d7963656c2f76312f656e747279" + "00" + // label, NUL
		"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" + // space
		"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f" + // author
		"0102030405060708" + // index
		"606162636465666768696a6b6c6d6e6f" + // key ID
		"02" + // membership kind: remove
		"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" + // membership feed
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // SHA-256 of no sealed keyring
	if got := hex.EncodeToString(entryAD(space, author, 0x0102030405060708, h)); got != want {
		t.Fatalf("additional data\n got %s\nwant %s", got, want)
	}
	none := entryAD(space, author, 1, EntryHeader{KeyID: h.KeyID})
	if len(none) != adSize || adSize != 168 {
		t.Fatalf("additional data of %d bytes, adSize %d, want 168", len(none), adSize)
	}
	if !bytes.Equal(none[len(none)-65:len(none)-32], make([]byte, 33)) {
		t.Fatal("no membership must be kind 0 and a zero feed")
	}
}

// goldenEnv is where the golden entries were written: a fixed space,
// author and epoch-1 secret, at index 3.
func goldenEnv() (auth.SpaceID, feed.PublicKey, auth.EpochSecret) {
	var space auth.SpaceID
	var author feed.PublicKey
	es := auth.EpochSecret{Epoch: 1}
	for i := range 32 {
		space[i], author[i], es.Secret[i] = 0x20+byte(i), 0x40+byte(i), byte(i)
	}
	return space, author, es
}

// goldenEntries were written by the first version of the codec (with the
// sealed keyring in the clear header) and must open, to the same op, in
// every later one.
var goldenEntries = []struct {
	op  *Op
	hex string
}{
	{&Op{Kind: OpPut, Seen: []Seen{{Feed: feed.PublicKey{1}, Length: 5}}, HLC: 0x0190_0000_0001_0002, Key: "notes/héllo", Value: []byte("world")},
		"08011210f7a8d87d84f3485c032e82dcde28f5f3226fa0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0d591" +
			"56dd94a339d7e54c42e59577c05f85fdc680d6d45cfb96e31321293d020d6778e2051eb10af2216809cf6e13acc4e44a" +
			"a30068f93d26515b41273bd2d3a8b40099114a1356ec34cf76f2973364cd762ae218fac0de"},
	{&Op{Kind: OpAddWriter, HLC: 0x0190_0000_0002_0000, Target: feed.PublicKey{2}, Name: "Ada's phone", DevicePublic: []byte{1, 2, 3}, SealedKeyring: []byte{4, 5}},
		"08011210f7a8d87d84f3485c032e82dcde28f5f31a280801122002000000000000000000000000000000000000000000" +
			"000000000000000000001a0204052268a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1cfb3ee5b8290da66" +
			"e65623fe45908ada266d3ac075a15aa27919a1db4f1d57525791e5ebeedc9c26fc0b1485d671cddc0e509ab2b57eeea9" +
			"2b5f40034a063bce5baf68d275d33aca87063d26edb8ba59"},
	{&Op{Kind: OpRemoveWriter, HLC: 0x0190_0000_0003_0000, Target: feed.PublicKey{2},
		Rotation: &Rotation{Epoch: 2, KeyID: [16]byte{9}, Boxes: []SealedSecret{{Feed: feed.PublicKey{3}, Box: []byte{7, 7}}}}},
		"08011210f7a8d87d84f3485c032e82dcde28f5f31a240802122002000000000000000000000000000000000000000000" +
			"00000000000000000000229401a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a27e7fb44ad6b44025626353" +
			"e287dc8efe54541babd9f27b94d0fbdff861e460684345c2ba507b934a4dedbb5b9354ff640386d2538e43f4d62ba1aa" +
			"25776c22238f322ab1b50556b8727e0c7e19dfe5c50ca837072f3443fe886f519ab6e182d860b89e6ece9e8f1b6779f1" +
			"ecd96c2a3cbdad2e598488d27cf585ff57"},
}

func TestEntryGolden(t *testing.T) {
	space, author, es := goldenEnv()
	keys := func(id [auth.KeyIDSize]byte) (auth.EpochSecret, bool) { return es, id == es.KeyID(space) }
	for i, g := range goldenEntries {
		data, err := hex.DecodeString(g.hex)
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenEntry(space, author, 3, data, keys)
		if err != nil {
			t.Fatalf("golden %d: %v", i, err)
		}
		if d := diffOps(g.op, got); d != "" {
			t.Fatalf("golden %d: %s differs", i, d)
		}
	}
}

// checkRefused checks that a tampered entry is refused with
// ErrInvalidEntry, or with ErrUnknownKey when the tampering changed the key
// ID to one keys does not know.
func checkRefused(t *testing.T, env *entryEnv, index uint64, bad []byte, keys Keys, what string) {
	t.Helper()
	op, err := OpenEntry(env.space, env.author, index, bad, keys)
	switch {
	case err == nil:
		t.Fatalf("%s: opened (%s)", what, kindName(op.Kind))
	case errors.Is(err, ErrUnknownKey):
		h, perr := PeekEntry(bad)
		if perr != nil {
			t.Fatalf("%s: unknown key, yet the header does not decode: %v", what, perr)
		}
		if _, ok := keys(h.KeyID); ok {
			t.Fatalf("%s: unknown key, yet keys know %x", what, h.KeyID)
		}
	case !errors.Is(err, ErrInvalidEntry):
		t.Fatalf("%s: error without a sentinel: %v", what, err)
	}
}

func wantInvalid(t *testing.T, what string, op *Op, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted (%s)", what, kindName(op.Kind))
	}
	if !errors.Is(err, ErrInvalidEntry) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("%s: %v, want ErrInvalidEntry", what, err)
	}
}

func TestEntryTamper(t *testing.T) {
	env := newEntryEnv(t, 2)
	keys := env.keys(0, 1, 2)
	other := newEntryEnv(t, 3)
	const index = 7
	for _, op := range sampleOps() {
		name := kindName(op.Kind)
		data := env.seal(t, 1, index, op)
		if _, err := OpenEntry(env.space, env.author, index, data, keys); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range data {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				bad := slices.Clone(data)
				bad[i] ^= mask
				checkRefused(t, env, index, bad, keys, fmt.Sprintf("%s: byte %d ^ %#x", name, i, mask))
			}
		}
		for n := range len(data) {
			checkRefused(t, env, index, data[:n], keys, fmt.Sprintf("%s: truncated to %d", name, n))
		}

		// Moved to another position, feed or space.
		for _, i := range []uint64{index - 1, index + 1, index ^ 1<<63, 0, math.MaxUint64} {
			got, err := OpenEntry(env.space, env.author, i, data, keys)
			wantInvalid(t, fmt.Sprintf("%s: at index %d", name, i), got, err)
		}
		got, err := OpenEntry(env.space, other.author, index, data, keys)
		wantInvalid(t, name+": other author", got, err)
		got, err = OpenEntry(other.space, env.author, index, data, keys)
		wantInvalid(t, name+": other space", got, err)

		// The clear header changed by someone in between.
		reencode := func(f func(e *spacepb.Entry)) []byte {
			var e spacepb.Entry
			if err := e.Unmarshal(data); err != nil {
				t.Fatal(err)
			}
			f(&e)
			b, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		kid0, kid2 := env.secrets[0].KeyID(env.space), env.secrets[2].KeyID(env.space)
		cases := map[string]func(e *spacepb.Entry){
			"key ID of an earlier epoch": func(e *spacepb.Entry) { e.KeyId = kid0[:] },
			"key ID of a later epoch":    func(e *spacepb.Entry) { e.KeyId = kid2[:] },
		}
		if isMembership(op.Kind) {
			cases["membership dropped"] = func(e *spacepb.Entry) { e.Membership = nil }
			cases["membership to another feed"] = func(e *spacepb.Entry) { e.Membership.Feed = other.author[:] }
			cases["membership of the other kind"] = func(e *spacepb.Entry) {
				e.Membership.Kind = 3 - e.Membership.Kind // add <-> remove
			}
		} else {
			for _, k := range []spacepb.MembershipKind{spacepb.MembershipKind_MEMBERSHIP_KIND_ADD, spacepb.MembershipKind_MEMBERSHIP_KIND_REMOVE} {
				cases[fmt.Sprintf("membership %v added", k)] = func(e *spacepb.Entry) {
					e.Membership = &spacepb.Membership{Kind: k, Feed: other.author[:]}
				}
			}
		}
		for what, f := range cases {
			got, err := OpenEntry(env.space, env.author, index, reencode(f), keys)
			wantInvalid(t, name+": "+what, got, err)
		}
	}
}

// TestEntryHeaderMismatch: an author who seals a body under a clear header
// that disagrees with it (so the AEAD holds) is refused too.
func TestEntryHeaderMismatch(t *testing.T) {
	env := newEntryEnv(t, 4)
	keys := env.keys(1)
	es := env.secrets[1]
	kid := es.KeyID(env.space)
	ops := sampleOps()
	put, add, remove, rotate := ops[0], ops[2], ops[3], ops[4]
	elsewhere := feed.PublicKey{1}
	cases := []struct {
		name string
		op   *Op
		h    EntryHeader
	}{
		{"add without header", add, EntryHeader{KeyID: kid}},
		{"add under a remove header", add, EntryHeader{KeyID: kid, Membership: OpRemoveWriter, Target: add.Target}},
		{"add under another feed", add, EntryHeader{KeyID: kid, Membership: OpAddWriter, Target: elsewhere}},
		{"remove without header", remove, EntryHeader{KeyID: kid}},
		{"remove under an add header", remove, EntryHeader{KeyID: kid, Membership: OpAddWriter, Target: remove.Target}},
		{"remove under another feed", remove, EntryHeader{KeyID: kid, Membership: OpRemoveWriter, Target: elsewhere}},
		{"put under an add header", put, EntryHeader{KeyID: kid, Membership: OpAddWriter, Target: elsewhere}},
		{"rotate under a remove header", rotate, EntryHeader{KeyID: kid, Membership: OpRemoveWriter, Target: elsewhere}},
	}
	for _, c := range cases {
		body, err := encodeBody(c.op)
		if err != nil {
			t.Fatal(err)
		}
		data, err := sealBody(env.space, env.author, 0, es, c.h, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenEntry(env.space, env.author, 0, data, keys)
		wantInvalid(t, c.name, got, err)
		if !strings.Contains(err.Error(), "disagrees") {
			t.Fatalf("%s: refused for another reason: %v", c.name, err)
		}
	}
}

// TestEntryKeyIDBound: the key ID is in the additional data, so the sealed
// body does not open under another key ID even with the right secret.
func TestEntryKeyIDBound(t *testing.T) {
	env := newEntryEnv(t, 5)
	data := env.seal(t, 1, 0, sampleOps()[0])
	h, sealed, err := parseEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openSealed(env.space, env.author, 0, h, sealed, env.secrets[1]); err != nil {
		t.Fatal(err)
	}
	h.KeyID[0] ^= 1
	got, err := openSealed(env.space, env.author, 0, h, sealed, env.secrets[1])
	wantInvalid(t, "other key ID, right secret", got, err)
}

func TestEntryUnknownKey(t *testing.T) {
	env := newEntryEnv(t, 6)
	for _, op := range sampleOps() {
		name := kindName(op.Kind)
		data := env.seal(t, 1, 0, op)
		for what, keys := range map[string]Keys{
			"no keys":                   nil,
			"empty keys":                env.keys(),
			"only the other epochs":     env.keys(0, 2),
			"the keys of another space": newEntryEnv(t, 7).keys(0, 1, 2),
		} {
			_, err := OpenEntry(env.space, env.author, 0, data, keys)
			if !errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("%s, %s: %v, want ErrUnknownKey", name, what, err)
			}
		}
		// Once the key is known, the entry opens.
		if _, err := OpenEntry(env.space, env.author, 0, data, env.keys(0, 1, 2)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Keys that break their contract (a secret of another ID) make the
		// entry look tampered.
		liar := func([auth.KeyIDSize]byte) (auth.EpochSecret, bool) { return env.secrets[2], true }
		got, err := OpenEntry(env.space, env.author, 0, data, liar)
		wantInvalid(t, name+": wrong secret for the key ID", got, err)
	}
}

func TestPeekEntry(t *testing.T) {
	env := newEntryEnv(t, 8)
	for _, op := range sampleOps() {
		data := env.seal(t, 2, 5, op)
		h, err := PeekEntry(data)
		if err != nil {
			t.Fatal(err)
		}
		if want := wantHeader(env.secrets[2], env.space, op); !sameHeader(h, want) {
			t.Fatalf("%s: peek = %+v, want %+v", kindName(op.Kind), h, want)
		}
	}

	// Headers that do not decode or break the rules.
	good := &spacepb.Entry{Version: 1, KeyId: make([]byte, 16), Sealed: make([]byte, auth.ContentOverhead)}
	if _, err := PeekEntry(mustMarshal(t, good)); err != nil {
		t.Fatal(err)
	}
	feed32 := make([]byte, 32)
	for what, f := range map[string]func(e *spacepb.Entry){
		"no version":       func(e *spacepb.Entry) { e.Version = 0 },
		"version 2":        func(e *spacepb.Entry) { e.Version = 2 },
		"key ID of 15":     func(e *spacepb.Entry) { e.KeyId = e.KeyId[:15] },
		"key ID of 17":     func(e *spacepb.Entry) { e.KeyId = append(e.KeyId, 0) },
		"no key ID":        func(e *spacepb.Entry) { e.KeyId = nil },
		"sealed too short": func(e *spacepb.Entry) { e.Sealed = e.Sealed[:auth.ContentOverhead-1] },
		"membership of no kind": func(e *spacepb.Entry) {
			e.Membership = &spacepb.Membership{Feed: feed32}
		},
		"membership of kind 3": func(e *spacepb.Entry) {
			e.Membership = &spacepb.Membership{Kind: 3, Feed: feed32}
		},
		"membership feed of 31": func(e *spacepb.Entry) {
			e.Membership = &spacepb.Membership{Kind: spacepb.MembershipKind_MEMBERSHIP_KIND_ADD, Feed: feed32[:31]}
		},
		"entry over MaxEntrySize": func(e *spacepb.Entry) { e.Sealed = make([]byte, feed.MaxEntrySize) },
	} {
		e := new(spacepb.Entry)
		if err := e.Unmarshal(mustMarshal(t, good)); err != nil {
			t.Fatal(err)
		}
		f(e)
		if _, err := PeekEntry(mustMarshal(t, e)); !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("%s: %v, want ErrInvalidEntry", what, err)
		}
	}
	for _, junk := range [][]byte{nil, {0xff}, {0x0a, 0x7f}, bytes.Repeat([]byte{0x80}, 12)} {
		if _, err := PeekEntry(junk); !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("%x: %v, want ErrInvalidEntry", junk, err)
		}
	}
}

func mustMarshal(t testing.TB, m interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEntryNoPlaintext plants random canaries in the key, value and device
// name and finds no trace of them in the entries: only the key ID and the
// membership target are in the clear.
func TestEntryNoPlaintext(t *testing.T) {
	env := newEntryEnv(t, 10)
	rng := rand.New(rand.NewPCG(10, 10))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for range 200 {
		canary := make([]byte, 16)
		for i := range canary {
			canary[i] = letters[rng.IntN(len(letters))]
		}
		c := string(canary)
		ops := []*Op{
			{Kind: OpPut, HLC: 1, Key: "k/" + c, Value: []byte("v " + c + " v")},
			{Kind: OpDelete, HLC: 2, Key: c},
			{Kind: OpAddWriter, HLC: 3, Target: randFeed(rng), Name: "phone of " + c},
		}
		for _, op := range ops {
			data := env.seal(t, 0, 0, op)
			for i := 0; i+8 <= len(canary); i++ {
				if bytes.Contains(data, canary[i:i+8]) {
					t.Fatalf("%s entry holds canary bytes %q", kindName(op.Kind), canary[i:i+8])
				}
			}
			h, err := PeekEntry(data)
			if err != nil {
				t.Fatal(err)
			}
			if !sameHeader(h, wantHeader(env.secrets[0], env.space, op)) {
				t.Fatalf("peek = %+v", h)
			}
		}
	}
}

// TestEntryUnknownFields: fields a later version adds are ignored, in the
// clear header and in the body.
func TestEntryUnknownFields(t *testing.T) {
	env := newEntryEnv(t, 11)
	op := sampleOps()[2]
	data := env.seal(t, 0, 0, op)
	data = protowire.AppendTag(data, 15, protowire.VarintType)
	data = protowire.AppendVarint(data, 42)
	got, err := OpenEntry(env.space, env.author, 0, data, env.keys(0))
	if err != nil {
		t.Fatal(err)
	}
	if d := diffOps(op, got); d != "" {
		t.Fatal(d)
	}

	body, err := encodeBody(op)
	if err != nil {
		t.Fatal(err)
	}
	body = protowire.AppendTag(body, 20, protowire.BytesType)
	body = protowire.AppendBytes(body, []byte("later"))
	got, err = decodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffOps(op, got); d != "" {
		t.Fatal(d)
	}
}

// boundCases returns ops that break one rule each and, for those that test
// a bound, the op exactly at the bound.
func boundCases() []struct {
	name    string
	ok, bad *Op
	// sealOnly: the body cannot carry the mistake (a field the kind does
	// not have), so only SealEntry can refuse it.
	sealOnly bool
} {
	rng := rand.New(rand.NewPCG(12, 12))
	f := randFeed(rng)
	ascii := func(n int) string { return strings.Repeat("k", n) }
	seen := func(n int) []Seen {
		out := make([]Seen, n)
		for i := range out {
			out[i] = Seen{Feed: randFeed(rng), Length: uint64(i)}
		}
		return out
	}
	boxes := func(n, size int) []SealedSecret {
		out := make([]SealedSecret, n)
		for i := range out {
			out[i] = SealedSecret{Feed: randFeed(rng), Box: randBytes(rng, size)}
		}
		return out
	}
	dupSeen := seen(3)
	dupSeen[2].Feed = dupSeen[0].Feed
	dupBoxes := boxes(3, 10)
	dupBoxes[1].Feed = dupBoxes[2].Feed
	rot := func(b []SealedSecret) *Rotation { return &Rotation{Epoch: 1, KeyID: [16]byte{1}, Boxes: b} }
	type c = struct {
		name     string
		ok, bad  *Op
		sealOnly bool
	}
	return []c{
		{"put key size", &Op{Kind: OpPut, Key: ascii(MaxKeySize)}, &Op{Kind: OpPut, Key: ascii(MaxKeySize + 1)}, false},
		{"delete key size", &Op{Kind: OpDelete, Key: ascii(MaxKeySize)}, &Op{Kind: OpDelete, Key: ascii(MaxKeySize + 1)}, false},
		{"multibyte key size", &Op{Kind: OpPut, Key: strings.Repeat("日", MaxKeySize/3)}, &Op{Kind: OpPut, Key: strings.Repeat("日", MaxKeySize/3+1)}, false},
		{"empty key", &Op{Kind: OpPut, Key: "k"}, &Op{Kind: OpPut, Key: ""}, false},
		{"empty delete key", &Op{Kind: OpDelete, Key: "k"}, &Op{Kind: OpDelete}, false},
		{"key not UTF-8", &Op{Kind: OpPut, Key: "\u00ff"}, &Op{Kind: OpPut, Key: "\xff"}, false},
		{"half a rune in the key", &Op{Kind: OpDelete, Key: "日"}, &Op{Kind: OpDelete, Key: "日"[:2]}, false},
		{"value size", &Op{Kind: OpPut, Key: "k", Value: make([]byte, MaxValueSize)}, &Op{Kind: OpPut, Key: "k", Value: make([]byte, MaxValueSize+1)}, false},
		{"name size", &Op{Kind: OpAddWriter, Target: f, Name: ascii(MaxNameSize)}, &Op{Kind: OpAddWriter, Target: f, Name: ascii(MaxNameSize + 1)}, false},
		{"name not UTF-8", &Op{Kind: OpAddWriter, Target: f, Name: "ok"}, &Op{Kind: OpAddWriter, Target: f, Name: "\xc3("}, false},
		{"seen items", &Op{Kind: OpPut, Key: "k", Seen: seen(MaxSeen)}, &Op{Kind: OpPut, Key: "k", Seen: seen(MaxSeen + 1)}, false},
		{"seen twice", &Op{Kind: OpPut, Key: "k", Seen: dupSeen[:2]}, &Op{Kind: OpPut, Key: "k", Seen: dupSeen}, false},
		{"device public size", &Op{Kind: OpAddWriter, Target: f, DevicePublic: make([]byte, MaxDevicePublicSize)}, &Op{Kind: OpAddWriter, Target: f, DevicePublic: make([]byte, MaxDevicePublicSize+1)}, false},
		{"sealed keyring size", &Op{Kind: OpAddWriter, Target: f, SealedKeyring: make([]byte, MaxSealedKeyringSize)}, &Op{Kind: OpAddWriter, Target: f, SealedKeyring: make([]byte, MaxSealedKeyringSize+1)}, false},
		{"boxes", &Op{Kind: OpRotate, Rotation: rot(boxes(MaxBoxes, 1))}, &Op{Kind: OpRotate, Rotation: rot(boxes(MaxBoxes+1, 1))}, false},
		{"boxes of a removal", &Op{Kind: OpRemoveWriter, Target: f, Rotation: rot(boxes(MaxBoxes, 1))}, &Op{Kind: OpRemoveWriter, Target: f, Rotation: rot(boxes(MaxBoxes+1, 1))}, false},
		{"box size", &Op{Kind: OpRotate, Rotation: rot(boxes(1, MaxBoxSize))}, &Op{Kind: OpRotate, Rotation: rot(boxes(1, MaxBoxSize+1))}, false},
		{"empty box", &Op{Kind: OpRotate, Rotation: rot(boxes(1, 1))}, &Op{Kind: OpRotate, Rotation: rot(boxes(1, 0))}, false},
		{"two boxes for a feed", &Op{Kind: OpRotate, Rotation: rot(dupBoxes[:2])}, &Op{Kind: OpRotate, Rotation: rot(dupBoxes)}, false},
		{"rotate without rotation", &Op{Kind: OpRotate, Rotation: rot(nil)}, &Op{Kind: OpRotate}, false},
		{"delete with a value", &Op{Kind: OpDelete, Key: "k"}, &Op{Kind: OpDelete, Key: "k", Value: []byte{1}}, true},
		{"put with a target", nil, &Op{Kind: OpPut, Key: "k", Target: f}, true},
		{"put with a name", nil, &Op{Kind: OpPut, Key: "k", Name: "n"}, true},
		{"put with a rotation", nil, &Op{Kind: OpPut, Key: "k", Rotation: rot(nil)}, true},
		{"add with a key", nil, &Op{Kind: OpAddWriter, Target: f, Key: "k"}, true},
		{"add with a value", nil, &Op{Kind: OpAddWriter, Target: f, Value: []byte{1}}, true},
		{"add with a rotation", nil, &Op{Kind: OpAddWriter, Target: f, Rotation: rot(nil)}, true},
		{"remove with a name", nil, &Op{Kind: OpRemoveWriter, Target: f, Name: "n"}, true},
		{"remove with a sealed keyring", nil, &Op{Kind: OpRemoveWriter, Target: f, SealedKeyring: []byte{1}}, true},
		{"rotate with a target", nil, &Op{Kind: OpRotate, Target: f, Rotation: rot(nil)}, true},
		{"rotate with a device key", nil, &Op{Kind: OpRotate, DevicePublic: []byte{1}, Rotation: rot(nil)}, true},
		{"kind 0", nil, &Op{Key: "k"}, false},
		{"kind 6", nil, &Op{Kind: OpRotate + 1, Key: "k"}, false},
	}
}

func TestEntryBounds(t *testing.T) {
	env := newEntryEnv(t, 12)
	keys := env.keys(0)
	for _, c := range boundCases() {
		if c.ok != nil {
			data := env.seal(t, 0, 1, c.ok)
			got, err := OpenEntry(env.space, env.author, 1, data, keys)
			if err != nil {
				t.Fatalf("%s: at the bound: %v", c.name, err)
			}
			if d := diffOps(c.ok, got); d != "" {
				t.Fatalf("%s: %s differs", c.name, d)
			}
		}
		_, err := SealEntry(env.space, env.author, 1, env.secrets[0], c.bad, nil)
		wantInvalid(t, c.name+": seal", c.bad, err)
		if c.sealOnly {
			continue
		}
		// A writer that does not check: the same op sealed anyway.
		body := uncheckedBody(t, c.bad)
		data, err := sealBody(env.space, env.author, 1, env.secrets[0], wantHeader(env.secrets[0], env.space, c.bad), body, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := OpenEntry(env.space, env.author, 1, data, keys)
		wantInvalid(t, c.name+": open", got, err)
	}
	if _, err := SealEntry(env.space, env.author, 1, env.secrets[0], nil, nil); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("nil op: %v", err)
	}
}

// uncheckedBody encodes op without the checks of encodeBody; a name that
// is not UTF-8 (which protobuf refuses to marshal) is patched in.
func uncheckedBody(t *testing.T, op *Op) []byte {
	t.Helper()
	o := *op
	if !utf8.ValidString(op.Name) {
		o.Name = strings.Repeat("\x01", len(op.Name))
	}
	body, err := marshalBody(&o)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != op.Name {
		i := bytes.Index(body, []byte(o.Name))
		copy(body[i:], op.Name)
	}
	return body
}

// TestEntryLargest: ops with every field at its bound still fit an entry,
// except rotations to more members than an entry holds boxes for.
func TestEntryLargest(t *testing.T) {
	env := newEntryEnv(t, 13)
	rng := rand.New(rand.NewPCG(13, 13))
	seen := make([]Seen, MaxSeen)
	for i := range seen {
		seen[i] = Seen{Feed: randFeed(rng), Length: math.MaxUint64}
	}
	for _, op := range []*Op{
		{Kind: OpAddWriter, Seen: seen, HLC: math.MaxUint64, Target: randFeed(rng),
			Name: strings.Repeat("n", MaxNameSize), DevicePublic: randBytes(rng, MaxDevicePublicSize),
			SealedKeyring: randBytes(rng, MaxSealedKeyringSize)},
		{Kind: OpPut, Seen: seen, HLC: math.MaxUint64, Key: strings.Repeat("k", MaxKeySize), Value: randBytes(rng, MaxValueSize)},
	} {
		data := env.seal(t, 0, math.MaxUint64, op)
		got, err := OpenEntry(env.space, env.author, math.MaxUint64, data, env.keys(0))
		if err != nil {
			t.Fatalf("%s: %v", kindName(op.Kind), err)
		}
		if d := diffOps(op, got); d != "" {
			t.Fatalf("%s: %s differs", kindName(op.Kind), d)
		}
		t.Logf("largest %s: entry of %d bytes", kindName(op.Kind), len(data))
	}

	// Rotations: MaxBoxes boxes of MaxBoxSize do not fit; find how many real
	// sealed epoch secrets do.
	boxes := make([]SealedSecret, MaxBoxes)
	for i := range boxes {
		boxes[i] = SealedSecret{Feed: randFeed(rng), Box: randBytes(rng, MaxBoxSize)}
	}
	big := &Op{Kind: OpRotate, Seen: seen, Rotation: &Rotation{Epoch: 1, Boxes: boxes}}
	if _, err := SealEntry(env.space, env.author, 0, env.secrets[0], big, nil); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("rotation over the entry size: %v", err)
	}
	for i := range boxes {
		boxes[i].Box = boxes[i].Box[:auth.SealedEpochSecretSize]
	}
	for _, s := range [][]Seen{nil, seen} {
		// Binary search for the most boxes that fit.
		fits, over := 0, MaxBoxes+1
		for over-fits > 1 {
			n := (fits + over) / 2
			op := &Op{Kind: OpRotate, Seen: s, Rotation: &Rotation{Epoch: 1, Boxes: boxes[:n]}}
			_, err := SealEntry(env.space, env.author, 0, env.secrets[0], op, nil)
			switch {
			case err == nil:
				fits = n
			case errors.Is(err, ErrInvalidEntry):
				over = n
			default:
				t.Fatal(err)
			}
		}
		t.Logf("a rotation with %d seen feeds holds up to %d sealed epoch secrets", len(s), fits)
		if fits < 700 {
			t.Fatalf("only %d boxes fit", fits)
		}
	}

	// The largest bodies that fit an entry (FORMAT.md), with and without
	// the membership header.
	for _, c := range []struct {
		h    EntryHeader
		most int
	}{{EntryHeader{}, 1_048_512}, {EntryHeader{Membership: OpAddWriter}, 1_048_474}} {
		if _, err := sealBody(env.space, env.author, 0, env.secrets[0], c.h, make([]byte, c.most), nil); err != nil {
			t.Fatalf("body of %d bytes: %v", c.most, err)
		}
		if _, err := sealBody(env.space, env.author, 0, env.secrets[0], c.h, make([]byte, c.most+1), nil); !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("body of %d bytes: %v", c.most+1, err)
		}
	}

	if _, err := OpenEntry(env.space, env.author, 0, make([]byte, feed.MaxEntrySize+1), env.keys(0)); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("entry over MaxEntrySize: %v", err)
	}
}

// TestDecodeBodyRefuses: bodies no correct writer produces.
func TestDecodeBodyRefuses(t *testing.T) {
	f32 := make([]byte, 32)
	kid := make([]byte, 16)
	msgs := map[string]*spacepb.OpBody{
		"no op":                    {Hlc: 1},
		"seen feed of 31":          {Seen: []*spacepb.Seen{{Feed: f32[:31]}}, Op: &spacepb.OpBody_Delete{Delete: &spacepb.Delete{Key: []byte("k")}}},
		"seen feed of 33":          {Seen: []*spacepb.Seen{{Feed: append(f32, 0)}}, Op: &spacepb.OpBody_Delete{Delete: &spacepb.Delete{Key: []byte("k")}}},
		"add target of 0":          {Op: &spacepb.OpBody_AddWriter{AddWriter: &spacepb.AddWriter{}}},
		"remove target of 31":      {Op: &spacepb.OpBody_RemoveWriter{RemoveWriter: &spacepb.RemoveWriter{Feed: f32[:31]}}},
		"rotation key ID of 15":    {Op: &spacepb.OpBody_Rotate{Rotate: &spacepb.Rotation{KeyId: kid[:15]}}},
		"rotation without key ID":  {Op: &spacepb.OpBody_Rotate{Rotate: &spacepb.Rotation{}}},
		"removal rotation bad key": {Op: &spacepb.OpBody_RemoveWriter{RemoveWriter: &spacepb.RemoveWriter{Feed: f32, Rotation: &spacepb.Rotation{KeyId: kid[:1]}}}},
		"box feed of 1": {Op: &spacepb.OpBody_Rotate{Rotate: &spacepb.Rotation{KeyId: kid,
			Boxes: []*spacepb.SealedSecret{{Feed: f32[:1], Box: []byte{1}}}}}},
		"empty put":    {Op: &spacepb.OpBody_Put{Put: &spacepb.Put{}}},
		"empty rotate": {Op: &spacepb.OpBody_Rotate{}},
	}
	for what, m := range msgs {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if op, err := decodeBody(b); !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("%s: %v (%v), want ErrInvalidEntry", what, err, op)
		}
	}

	// A kind added after this version, and wire garbage.
	later := protowire.AppendTag(nil, 9, protowire.BytesType)
	later = protowire.AppendBytes(later, []byte{0x0a, 0x01, 'k'})
	for what, b := range map[string][]byte{
		"later op kind":  later,
		"bad tag":        {0xff},
		"short bytes":    {0x1a, 0x05, 0x0a},
		"bad varint":     bytes.Repeat([]byte{0x80}, 11),
		"empty":          {},
		"seen over 4096": bytes.Repeat([]byte{0x0a, 0x00}, MaxSeen+1),
	} {
		if op, err := decodeBody(b); !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("%s: %v (%v), want ErrInvalidEntry", what, err, op)
		}
	}
}

// TestScanBodyBeforeAllocation: the repeated fields are counted before the
// body is decoded, also where they are split over repeated occurrences of
// the message that holds them (which protobuf merges).
func TestScanBodyBeforeAllocation(t *testing.T) {
	box := protowire.AppendTag(nil, fieldRotationBoxes, protowire.BytesType)
	box = protowire.AppendBytes(box, nil)
	rotation := func(n int) []byte { return bytes.Repeat(box, n) }
	var rotate, remove []byte
	for range 2 {
		rotate = protowire.AppendTag(rotate, fieldBodyRotate, protowire.BytesType)
		rotate = protowire.AppendBytes(rotate, rotation(MaxBoxes/2+1))
		inner := protowire.AppendTag(nil, fieldRemoveRotation, protowire.BytesType)
		inner = protowire.AppendBytes(inner, rotation(MaxBoxes/2+1))
		remove = protowire.AppendTag(remove, fieldBodyRemoveWriter, protowire.BytesType)
		remove = protowire.AppendBytes(remove, inner)
	}
	for what, b := range map[string][]byte{"rotate": rotate, "remove": remove} {
		if err := scanBody(b); err == nil || !strings.Contains(err.Error(), "boxes") {
			t.Fatalf("%s: %v, want refused for its boxes", what, err)
		}
	}
	if err := scanBody(bytes.Repeat([]byte{0x0a, 0x00}, MaxSeen)); err != nil {
		t.Fatal(err)
	}
	accepted := protowire.AppendTag(bytes.Repeat([]byte{0x0a, 0x00}, MaxSeen), fieldBodyRotate, protowire.BytesType)
	accepted = protowire.AppendBytes(accepted, rotation(MaxBoxes))
	if err := scanBody(accepted); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(10, func() { _ = scanBody(accepted) }); allocs > 0 {
		t.Fatalf("scanBody allocates %v times", allocs)
	}
}

// TestEntryContentKeyMemo: openSealed keeps the content key it derived
// last. Opening entries alternately under what that memo must tell apart
// (another space with the same secrets, the same secret bytes under
// another epoch number, another secret) opens each with its own key: an
// entry never opens with the key of the entry opened just before it.
func TestEntryContentKeyMemo(t *testing.T) {
	a := newEntryEnv(t, 8)
	b := newEntryEnv(t, 9)
	b.secrets = a.secrets // the same secrets in another space
	op := &Op{Kind: OpPut, Key: "k", Value: []byte("v"), HLC: 1}
	dataA, dataB := a.seal(t, 1, 0, op), b.seal(t, 1, 0, op)
	for range 3 {
		if _, err := OpenEntry(a.space, a.author, 0, dataA, a.keys(0, 1, 2)); err != nil {
			t.Fatalf("space a: %v", err)
		}
		if _, err := OpenEntry(b.space, b.author, 0, dataB, b.keys(0, 1, 2)); err != nil {
			t.Fatalf("space b: %v", err)
		}
		// dataB's secret is memoised: opened as an entry of space a (whose
		// content key is another), it does not authenticate.
		same := func([auth.KeyIDSize]byte) (auth.EpochSecret, bool) { return a.secrets[1], true }
		got, err := OpenEntry(a.space, b.author, 0, dataB, same)
		wantInvalid(t, "an entry of space b opened in space a", got, err)
		// The same secret bytes under another epoch number derive another key.
		renumbered := a.secrets[1]
		renumbered.Epoch = 7
		liar := func([auth.KeyIDSize]byte) (auth.EpochSecret, bool) { return renumbered, true }
		if _, err := OpenEntry(a.space, a.author, 0, dataA, a.keys(1)); err != nil {
			t.Fatal(err)
		}
		got, err = OpenEntry(a.space, a.author, 0, dataA, liar)
		wantInvalid(t, "the secret under another epoch number", got, err)
	}
}

// BenchmarkOpenEntry opens the entries of one feed under one epoch, as a
// catch-up does.
func BenchmarkOpenEntry(b *testing.B) {
	env := newEntryEnv(b, 10)
	data := env.seal(b, 1, 0, &Op{Kind: OpPut, Key: "key", Value: []byte("value"), HLC: 1})
	ks := env.keys(1)
	for b.Loop() {
		if _, err := OpenEntry(env.space, env.author, 0, data, ks); err != nil {
			b.Fatal(err)
		}
	}
}
