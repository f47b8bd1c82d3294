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
	h, _ := appendRegisterHash(nil, key, versions)
	return h
}

// appendRegisterHash is registerHash, hashing in one call what it writes
// into buf (reused by the caller, returned grown): the key (its length as 8
// bytes big-endian, then its bytes), the number of versions (4 bytes), then
// each version winner first — feed key, index (8), HLC (8), 1 if a delete
// else 0, value (length as 8 bytes, then its bytes).
func appendRegisterHash(buf []byte, key string, versions []*opRec) ([32]byte, []byte) {
	if len(versions) == 0 {
		return [32]byte{}, buf
	}
	vs := versions
	if len(vs) > 1 {
		vs = slices.SortedFunc(slices.Values(versions), byWinner)
	}
	b := appendString(buf[:0], key)
	b = binary.BigEndian.AppendUint32(b, uint32(len(vs)))
	for _, x := range vs {
		b = append(b, x.id.Feed[:]...)
		b = binary.BigEndian.AppendUint64(b, x.id.Index)
		b = binary.BigEndian.AppendUint64(b, x.hlc)
		del := byte(0)
		if x.op.Kind == OpDelete {
			del = 1
		}
		b = append(b, del)
		b = appendString(b, string(x.op.Value))
	}
	return sha256.Sum256(b), b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// live reports whether versions have a winner that is not a delete.
func live(versions []*opRec) bool {
	if len(versions) == 0 {
		return false
	}
	return slices.MinFunc(versions, byWinner).op.Kind != OpDelete
}

// share is a key's share of the digest and of the live-key count.
type share struct {
	hash [32]byte
	live bool
}

// share returns the share of key with versions, before they change (see
// account). The bytes hashed are written into v.hashBuf, reused.
func (v *View) share(key string, versions []*opRec) share {
	var s share
	s.hash, v.hashBuf = appendRegisterHash(v.hashBuf, key, versions)
	if cap(v.hashBuf) > 64<<10 {
		v.hashBuf = nil // a large value's bytes are not kept
	}
	s.live = live(versions)
	return s
}

// account moves a key's share of the digest and of the live-key count from
// before (its share before a change, see View.share) to its versions after.
func (v *View) account(key string, before share, after []*opRec) {
	v.sum.sub(before.hash)
	if before.live {
		v.live--
	}
	a := v.share(key, after)
	v.sum.add(a.hash)
	if a.live {
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
