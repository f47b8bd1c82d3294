package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestKnownAnswers pins every derivation. The values were computed once
// from this package and checked against an independent implementation of
// FORMAT.md (Python's hmac/hashlib). A change here breaks every space.
func TestKnownAnswers(t *testing.T) {
	space := testSpace(t, 0x20)                               // 20 21 ... 3f
	es := EpochSecret{Epoch: 7, Secret: [32]byte(seq(0, 32))} // 00 01 ... 1f
	d := DiscoveryKey(space)
	c := es.ContentKey(space)
	e := es.EphemeralKey(space)
	k := es.KeyID(space)
	m := es.MirrorToken(space)
	r := es.ReplicationCapability(space)
	p := r.Proof([]byte("binding"))
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"discovery key", d[:], "b3e529bb495d3846714f0678e7a612d74ae7c68f099da4a319e7f505dc8c5dbb"},
		{"content key", c[:], "f650500e7589b3b1346eedbc4a5c77dcad87e78f66a254399c777bf2dba60abe"},
		{"ephemeral key", e[:], "54dec4738c1c9f67b98110ca29b8bc78dbc7e4071b76d97ef918044428d7658c"},
		{"key ID", k[:], "a11ea7026db9ecf54196ce7dc1ba438a"},
		{"mirror token", m.Token[:], "0bff2e7fc00b42a4fe4347ae5c2688de4fc075f926d50339232f7f1f462f4fa5"},
		{"replication capability", r.Key[:], "b4bfe03402c2110146536154a6df4bcc7b1573b94a5cb318c22006dda85ae38b"},
		{"replication proof", p[:], "c89a24dbacb3e4959e7067272ef995935ba83063376fc7a685850783a2d95af1"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, got, tc.want)
		}
	}
	if m.Space != space || m.Epoch != 7 || r.Space != space || r.Epoch != 7 {
		t.Errorf("token or capability names space %s epoch %d / %s %d", m.Space, m.Epoch, r.Space, r.Epoch)
	}
}

func TestDerivationsDeterministic(t *testing.T) {
	space := testSpace(t, 1)
	es, err := NewEpochSecret(3, newDetRand("x"))
	if err != nil {
		t.Fatal(err)
	}
	es2 := es // a copy, as another device would hold it
	if es.ContentKey(space) != es2.ContentKey(space) ||
		es.EphemeralKey(space) != es2.EphemeralKey(space) ||
		es.KeyID(space) != es2.KeyID(space) ||
		es.MirrorToken(space) != es2.MirrorToken(space) ||
		es.ReplicationCapability(space) != es2.ReplicationCapability(space) ||
		DiscoveryKey(space) != DiscoveryKey(SpaceID(space)) {
		t.Fatal("derivations differ between two calls")
	}
}

// TestDerivationsDistinct derives every key for two secrets × two spaces ×
// two epochs and checks that no two of the 56 values (and no value and any
// input) coincide.
func TestDerivationsDistinct(t *testing.T) {
	seen := map[[32]byte]string{}
	add := func(name string, b []byte) {
		t.Helper()
		var k [32]byte
		copy(k[:], b)
		if prev, ok := seen[k]; ok {
			t.Fatalf("%s equals %s: %x", name, prev, b)
		}
		seen[k] = name
	}
	spaces := []SpaceID{testSpace(t, 1), testSpace(t, 2)}
	secrets := [][32]byte{[32]byte(seq(0x80, 32)), [32]byte(seq(0x90, 32))}
	for si, space := range spaces {
		add(fmt.Sprintf("space %d", si), space[:])
		d := DiscoveryKey(space)
		add(fmt.Sprintf("discovery key %d", si), d[:])
	}
	for xi, secret := range secrets {
		add(fmt.Sprintf("secret %d", xi), secret[:])
		for si, space := range spaces {
			for _, epoch := range []uint32{0, 1} {
				es := EpochSecret{Epoch: epoch, Secret: secret}
				at := fmt.Sprintf("(secret %d, space %d, epoch %d)", xi, si, epoch)
				c, e, k := es.ContentKey(space), es.EphemeralKey(space), es.KeyID(space)
				m := es.MirrorToken(space)
				r := es.ReplicationCapability(space)
				p := r.Proof(nil)
				add("content key "+at, c[:])
				add("ephemeral key "+at, e[:])
				add("key ID "+at, k[:])
				add("mirror token "+at, m.Token[:])
				add("replication capability "+at, r.Key[:])
				add("replication proof "+at, p[:])
			}
		}
	}
}

func TestDiscoveryKeyHidesID(t *testing.T) {
	id := testSpace(t, 5)
	d := DiscoveryKey(id)
	if bytes.Contains(d[:], id[:8]) || bytes.Equal(d[:], id[:]) {
		t.Fatal("discovery key shows the space ID")
	}
}

func TestMirrorTokenChain(t *testing.T) {
	space := testSpace(t, 1)
	kr := testKeyring(t, space, 2)
	es := kr.Epochs[1]

	// A relay given the token derives the members' capability exactly.
	tok := es.MirrorToken(space)
	enc, err := tok.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var relayTok MirrorToken
	if err := relayTok.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if relayTok != tok {
		t.Fatalf("token round trip: %v != %v", relayTok, tok)
	}
	member, relay := es.ReplicationCapability(space), relayTok.ReplicationCapability()
	if member != relay {
		t.Fatal("relay and member capabilities differ")
	}

	binding := []byte("/mycel/sync/1 prover verifier nonceA nonceB")
	proof := relay.Proof(binding)
	if !member.Verify(binding, proof[:]) {
		t.Fatal("member refuses the relay's proof")
	}
	if member.Verify([]byte("/mycel/sync/1 verifier prover nonceA nonceB"), proof[:]) {
		t.Fatal("proof verifies for another binding")
	}
	if member.Verify(binding, proof[:31]) {
		t.Fatal("truncated proof verifies")
	}
	// The previous epoch's capability (a removed device's) does not verify.
	old := kr.Epochs[0].ReplicationCapability(space)
	oldProof := old.Proof(binding)
	if member.Verify(binding, oldProof[:]) {
		t.Fatal("previous epoch's proof verifies")
	}
	// The token opens no content: it is neither the content nor the
	// ephemeral key, and the content key is not derivable from it by the
	// same derivations.
	ck, ek := es.ContentKey(space), es.EphemeralKey(space)
	fromTok := EpochSecret{Epoch: es.Epoch, Secret: tok.Token}
	for _, k := range [][32]byte{tok.Token, relay.Key, fromTok.ContentKey(space), fromTok.EphemeralKey(space)} {
		if k == ck || k == ek {
			t.Fatal("mirror token chain yields a content or ephemeral key")
		}
	}
}

func TestMirrorTokenMalformed(t *testing.T) {
	good, _ := EpochSecret{Epoch: 1}.MirrorToken(testSpace(t, 1)).MarshalBinary()
	for name, in := range map[string][]byte{
		"empty":       nil,
		"garbage":     {0xff, 0xff, 0xff},
		"short space": {0x0a, 0x01, 0x00},
		"no token":    good[:34],
		"too large":   make([]byte, MaxMirrorTokenSize+1),
	} {
		var tok MirrorToken
		err := tok.UnmarshalBinary(in)
		if err == nil {
			t.Errorf("%s: decoded", name)
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrMalformed or ErrTooLarge", name, err)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	space := testSpace(t, 1)
	es := EpochSecret{Epoch: 2, Secret: [32]byte(seq(0xa0, 32))}
	tok := es.MirrorToken(space)
	cp := es.ReplicationCapability(space)
	kr := &Keyring{Space: space, Epochs: []EpochSecret{es}}
	dk := testDeviceKey(t, "x")
	for _, v := range []any{es, tok, cp, kr, *kr, dk} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			s := fmt.Sprintf(verb, v)
			for _, secret := range [][]byte{es.Secret[:], tok.Token[:], cp.Key[:], dk.Bytes()[1:]} {
				shown := []string{
					hex.EncodeToString(secret[:4]),                // %x
					fmt.Sprint(secret[:2])[1:8],                   // %v: "[160 161"
					fmt.Sprintf("%#x, %#x", secret[0], secret[1]), // %#v
				}
				if strings.Contains(s, shown[0]) || strings.Contains(s, shown[1]) || strings.Contains(s, shown[2]) {
					t.Errorf("%s of %T shows a secret: %s", verb, v, s)
				}
			}
		}
	}
}

func TestSpaceIDFromBytes(t *testing.T) {
	if _, err := SpaceIDFromBytes(make([]byte, 31)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("31 bytes: %v", err)
	}
	id := testSpace(t, 0)
	if id.String() != hex.EncodeToString(seq(0, 32)) {
		t.Fatalf("String = %s", id)
	}
}

func TestLocalKey(t *testing.T) {
	a, _ := GenerateDeviceKey(nil)
	b, _ := GenerateDeviceKey(nil)
	s1, s2 := SpaceID{1}, SpaceID{2}
	if k1, k2 := a.LocalKey(s1), a.LocalKey(s1); k1 != k2 {
		t.Fatal("local key not deterministic")
	}
	again, err := ParseDeviceKey(a.Bytes())
	if err != nil || again.LocalKey(s1) != a.LocalKey(s1) {
		t.Fatal("local key changes when the device key is stored and parsed")
	}
	if a.LocalKey(s1) == a.LocalKey(s2) || a.LocalKey(s1) == b.LocalKey(s1) {
		t.Fatal("local keys of two spaces or two devices coincide")
	}
}
