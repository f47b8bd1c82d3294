package space

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// The view's digest is kept up to date as registers change, so that
// reading it costs nothing however many keys the space holds: it is the
// SHA-256 of S, the sum mod 2^256 of one hash per key (of the key and its
// versions, winner first; a key without versions adds nothing). The same
// registers give the same sum in any order. A sum of hashes is a checksum
// for convergence, not a commitment: someone who chooses many keys could
// make two different views collide (a k-sum search), which gains nothing
// here — the digest only tells replicas they agree.
type digestSum [4]uint64 // big-endian limbs, [0] most significant

const digestLabel = "mycel/v1/view-digest"

func (d *digestSum) add(h [32]byte) {
	var carry uint64
	for i := 3; i >= 0; i-- {
		x := binary.BigEndian.Uint64(h[8*i:])
		s := d[i] + x
		c1 := b2u(s < x)
		s2 := s + carry
		c2 := b2u(s2 < s)
		d[i], carry = s2, c1+c2
	}
}

func (d *digestSum) sub(h [32]byte) {
	var borrow uint64
	for i := 3; i >= 0; i-- {
		x := binary.BigEndian.Uint64(h[8*i:])
		s := d[i] - x
		b1 := b2u(d[i] < x)
		s2 := s - borrow
		b2 := b2u(s < borrow)
		d[i], borrow = s2, b1+b2
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (d *digestSum) bytes() []byte {
	b := make([]byte, 0, 32)
	for _, x := range d {
		b = binary.BigEndian.AppendUint64(b, x)
	}
	return b
}

func (d *digestSum) digest() [32]byte {
	h := sha256.New()
	h.Write([]byte(digestLabel))
	h.Write([]byte{0})
	h.Write(d.bytes())
	return [32]byte(h.Sum(nil))
}

// byWinner orders versions winner first: highest clock, then feed key and
// index.
func byWinner(a, b *opRec) int {
	if c := cmp.Compare(b.hlc, a.hlc); c != 0 {
		return c
	}
	return b.id.compare(a.id)
}

// registerHash is a key's share of the digest (zero without versions).
func registerHash(key string, versions []*opRec) [32]byte {
	if len(versions) == 0 {
		return [32]byte{}
	}
	vs := slices.Clone(versions)
	slices.SortFunc(vs, byWinner)
	h := sha256.New()
	writeString(h, key)
	binary.Write(h, binary.BigEndian, uint32(len(vs)))
	for _, x := range vs {
		h.Write(x.id.Feed[:])
		binary.Write(h, binary.BigEndian, x.id.Index)
		binary.Write(h, binary.BigEndian, x.hlc)
		binary.Write(h, binary.BigEndian, x.op.Kind == OpDelete)
		writeString(h, string(x.op.Value))
	}
	return [32]byte(h.Sum(nil))
}

// live reports whether versions have a winner that is not a delete.
func live(versions []*opRec) bool {
	if len(versions) == 0 {
		return false
	}
	return slices.MinFunc(versions, byWinner).op.Kind != OpDelete
}

// account moves a key's share of the digest and of the live-key count from
// its versions before a change to those after.
func (v *View) account(key string, before, after []*opRec) {
	v.sum.sub(registerHash(key, before))
	v.sum.add(registerHash(key, after))
	if live(before) {
		v.live--
	}
	if live(after) {
		v.live++
	}
}

// Digest returns the view's digest. Views given the same ops have the same
// digest.
func (v *View) Digest() [32]byte { return v.sum.digest() }

// Keys returns the number of keys whose winning version is not a delete.
func (v *View) Keys() int { return v.live }

// scanDigest computes the digest and live-key count from every register,
// as account keeps them: for tests.
func (v *View) scanDigest() ([32]byte, int) {
	var sum digestSum
	n := 0
	for _, k := range v.st.names() {
		reg, _ := v.st.register(k)
		if reg == nil {
			continue
		}
		sum.add(registerHash(k, reg.versions))
		if live(reg.versions) {
			n++
		}
	}
	return sum.digest(), n
}
