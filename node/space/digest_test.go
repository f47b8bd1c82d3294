package space

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// refRegisterHash is registerHash as it was written before it hashed one
// buffer (a hash.Hash written field by field): the digest's definition,
// which appendRegisterHash must keep byte for byte.
func refRegisterHash(key string, versions []*opRec) [32]byte {
	if len(versions) == 0 {
		return [32]byte{}
	}
	vs := slices.Clone(versions)
	slices.SortFunc(vs, byWinner)
	h := sha256.New()
	refWriteString(h, key)
	binary.Write(h, binary.BigEndian, uint32(len(vs)))
	for _, x := range vs {
		h.Write(x.id.Feed[:])
		binary.Write(h, binary.BigEndian, x.id.Index)
		binary.Write(h, binary.BigEndian, x.hlc)
		binary.Write(h, binary.BigEndian, x.op.Kind == OpDelete)
		refWriteString(h, string(x.op.Value))
	}
	return [32]byte(h.Sum(nil))
}

func refWriteString(h interface{ Write([]byte) (int, error) }, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// TestRegisterHashMatchesDefinition checks the digest's per-key hash, and
// the view's reused buffer for it, against the definition over random
// registers: one or several versions in any order (the sort picks the
// winner), puts and deletes, empty and large values, ties on the clock.
func TestRegisterHashMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	v := NewView(feed.PublicKey{})
	for i := range 3000 {
		key := string(make([]byte, r.IntN(40)))
		var vs []*opRec
		for range r.IntN(5) {
			var f feed.PublicKey
			f[r.IntN(3)] = byte(r.IntN(3))
			op := &Op{Kind: OpPut, Value: make([]byte, r.IntN(100))}
			if r.IntN(3) == 0 {
				op.Kind, op.Value = OpDelete, nil
			}
			if r.IntN(50) == 0 {
				op.Value = make([]byte, 70<<10) // past the kept buffer's bound
			}
			for j := range op.Value {
				op.Value[j] = byte(r.Uint32())
			}
			vs = append(vs, &opRec{id: OpID{Feed: f, Index: uint64(r.IntN(4))}, hlc: uint64(r.IntN(3)), op: op})
		}
		want := refRegisterHash(key, vs)
		if got := registerHash(key, vs); got != want {
			t.Fatalf("register %d: registerHash %x, definition %x", i, got, want)
		}
		order := slices.Clone(vs)
		if s := v.share(key, vs); s.hash != want || s.live != live(vs) {
			t.Fatalf("register %d: View.share %x/%v, definition %x/%v", i, s.hash, s.live, want, live(vs))
		}
		if !slices.Equal(order, vs) {
			t.Fatalf("register %d: hashing reordered the versions", i)
		}
	}
}
