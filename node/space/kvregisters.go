package space

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/mycelsync/mycel/feed"
)

// memReg is a register kept in memory, with its size when it was put there
// (a register is changed in place before it is put again).
type memReg struct {
	reg  *register
	size int
}

// The estimated heap bytes of a register in memory besides its names and
// values: the map entry, the register and its slice; and per version, its
// opRec and Op.
const (
	regOverhead     = 128
	versionOverhead = 320
)

func regSize(key string, reg *register) int {
	n := regOverhead + len(key)
	for _, x := range reg.versions {
		n += versionOverhead + len(x.op.Value)
	}
	return n
}

// lean replaces the versions of reg that carry a causal context or more of
// their op than a register needs by copies without: a register in memory
// keeps, of each version, its ID, clock, kind, key and value (what Get,
// the digest, final and the view's rules on later ops read). The op log
// keeps the causal contexts.
func lean(reg *register) {
	for i, x := range reg.versions {
		op := x.op
		heavy := len(op.Seen) > 0 || op.Name != "" || op.DevicePublic != nil ||
			op.SealedKeyring != nil || op.Rotation != nil || op.Target != (feed.PublicKey{})
		if x.clock == nil && !heavy {
			continue
		}
		if heavy {
			op = &Op{Kind: op.Kind, Key: op.Key, HLC: op.HLC, Value: op.Value}
		}
		reg.versions[i] = &opRec{id: x.id, hlc: x.hlc, op: op, count: x.count}
	}
}

func (s *kvStore) register(key string) *register {
	if m, ok := s.dirty[key]; ok {
		return m.reg
	}
	if m, ok := s.regs[key]; ok {
		return m.reg
	}
	reg := s.loadRegister(key)
	if tail, ok := s.pending[key]; ok {
		delete(s.pending, key)
		if reg == nil {
			reg = &register{}
		}
		s.replay(key, reg, tail)
		if len(reg.versions) == 0 && reg.seq == 0 {
			return nil // no op on the key counted
		}
		s.setDirty(key, reg)
		return reg
	}
	if reg != nil {
		s.cache(key, reg)
	}
	return reg
}

func (s *kvStore) loadRegister(key string) *register {
	if s.stored != nil && !s.stored.has(s.keyHash(key)) {
		return nil
	}
	plain, err := s.get(s.recKey('r', s.keyHash(key)))
	if errors.Is(err, feed.ErrNotFound) {
		return nil
	}
	if err != nil {
		s.fail(err)
		return nil
	}
	name, reg, err := s.decodeRegister(plain)
	if err != nil || name != key {
		s.fail(fmt.Errorf("space: stored register of %q: %v", key, err))
		return nil
	}
	return reg
}

// replay applies to reg the tail ops on its key that it does not reflect,
// as View.apply did (no membership op is in the tail: see openLog).
func (s *kvStore) replay(key string, reg *register, tail []pendOp) {
	for i := range tail {
		p := &tail[i]
		if p.seq <= reg.seq || !s.counts(p.id, p.ctx) {
			continue
		}
		reg.versions = slices.DeleteFunc(reg.versions, func(x *opRec) bool {
			if final(x.op) {
				return false
			}
			if x.id.Feed == p.id.Feed {
				return x.id.Index < p.id.Index
			}
			return p.ctx[x.id.Feed] > x.id.Index
		})
		reg.versions = append(reg.versions, &opRec{id: p.id, hlc: p.hlc, count: true,
			op: &Op{Kind: p.kind, Key: key, HLC: p.hlc, Value: slices.Clone(p.value)}})
	}
}

// cache keeps a clean decoded register, evicting about a quarter of the
// cache (in map order, which is arbitrary) when it is full by count or by
// bytes. A register larger than a quarter of the bytes is not kept.
func (s *kvStore) cache(key string, reg *register) {
	size := regSize(key, reg)
	if size > s.lim.regCacheBytes/4 {
		return
	}
	if len(s.regs) >= s.lim.regCacheMax || s.regsBytes+size > s.lim.regCacheBytes {
		n, b := s.lim.regCacheMax*3/4, s.lim.regCacheBytes*3/4
		for k, m := range s.regs {
			if len(s.regs) <= n && s.regsBytes <= b {
				break
			}
			delete(s.regs, k)
			s.regsBytes -= m.size
		}
	}
	s.regs[key] = memReg{reg, size}
	s.regsBytes += size
}

// setDirty puts reg among the dirty registers, without its versions'
// causal contexts (lean), and counts its size.
func (s *kvStore) setDirty(key string, reg *register) {
	lean(reg)
	size := regSize(key, reg)
	s.dirtyBytes += size - s.dirty[key].size
	s.dirty[key] = memReg{reg, size}
}

// loadStored fills s.stored from the register records' keys.
func (s *kvStore) loadStored() {
	s.stored = &hashSet{}
	start := s.recKey('r')
	err := s.st.Scan(start, feed.PrefixEnd(start), func(k, _ []byte) error {
		if len(k) == len(start)+16 {
			s.stored.sorted = append(s.stored.sorted, binary.BigEndian.Uint64(k[len(start):]))
		}
		return nil
	})
	if err != nil {
		s.fail(fmt.Errorf("space: read register keys: %w", err))
	}
	slices.Sort(s.stored.sorted) // in key order already: cheap
}

// hashSet is a set of 8-byte prefixes of key hashes: 8 bytes a key in a
// sorted slice, and the ones added since in a map, merged into the slice
// when it grows.
type hashSet struct {
	sorted []uint64
	added  map[uint64]struct{}
}

func (h *hashSet) has(hash []byte) bool {
	x := binary.BigEndian.Uint64(hash)
	if _, ok := h.added[x]; ok {
		return true
	}
	_, ok := slices.BinarySearch(h.sorted, x)
	return ok
}

func (h *hashSet) add(hash []byte) {
	x := binary.BigEndian.Uint64(hash)
	if h.added == nil {
		h.added = map[uint64]struct{}{}
	}
	h.added[x] = struct{}{}
	if len(h.added) >= max(4096, len(h.sorted)/8) {
		h.merge()
	}
}

// merge moves the added prefixes into the sorted slice.
func (h *hashSet) merge() {
	add := slices.Sorted(maps.Keys(h.added))
	out := make([]uint64, 0, len(h.sorted)+len(add))
	i := 0
	for _, x := range add {
		for i < len(h.sorted) && h.sorted[i] < x {
			out = append(out, h.sorted[i])
			i++
		}
		if i < len(h.sorted) && h.sorted[i] == x {
			continue
		}
		out = append(out, x)
	}
	h.sorted = append(out, h.sorted[i:]...)
	clear(h.added)
}

func (s *kvStore) putRegister(key string, reg *register) {
	if _, ok := s.dirty[key]; !ok {
		if s.stored == nil {
			s.loadStored()
		}
		if s.sorted != nil {
			if i, found := slices.BinarySearch(s.sorted, key); !found {
				s.sorted = slices.Insert(s.sorted, i, key)
			}
		}
		if m, ok := s.regs[key]; ok {
			delete(s.regs, key)
			s.regsBytes -= m.size
		}
		delete(s.pending, key) // reg reflects every op so far
	}
	s.setDirty(key, reg)
}

func (s *kvStore) encodeRegister(key string, reg *register, seq uint64) []byte {
	b := binary.AppendUvarint(nil, seq)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(len(reg.versions)))
	for _, x := range reg.versions {
		b = binary.AppendUvarint(b, uint64(s.num(x.id.Feed)))
		b = binary.AppendUvarint(b, x.id.Index)
		b = binary.AppendUvarint(b, x.hlc)
		b = append(b, byte(x.op.Kind))
		b = binary.AppendUvarint(b, uint64(len(x.op.Value)))
		b = append(b, x.op.Value...)
	}
	return b
}

// registerName reads only the name of an encoded register.
func registerName(b []byte) (string, error) {
	_, b, err := uvarint(b)
	if err != nil {
		return "", errors.New("bad seq")
	}
	n, b, err := uvarint(b)
	if err != nil || n > uint64(len(b)) {
		return "", errors.New("bad name")
	}
	return string(b[:n]), nil
}

func (s *kvStore) decodeRegister(b []byte) (string, *register, error) {
	seq, b, err := uvarint(b)
	if err != nil {
		return "", nil, errors.New("bad seq")
	}
	n, b, err := uvarint(b)
	if err != nil || n > uint64(len(b)) {
		return "", nil, errors.New("bad name")
	}
	name := string(b[:n])
	b = b[n:]
	count, b, err := uvarint(b)
	if err != nil || count > uint64(len(b)) {
		return "", nil, errors.New("bad versions")
	}
	reg := &register{seq: seq}
	for range count {
		var no, index, hlc, l uint64
		if no, b, err = uvarint(b); err != nil || no >= uint64(len(s.feedKey)) {
			return "", nil, errors.New("bad version feed")
		}
		if index, b, err = uvarint(b); err != nil {
			return "", nil, err
		}
		if hlc, b, err = uvarint(b); err != nil || len(b) < 1 {
			return "", nil, errors.New("bad version")
		}
		kind := OpKind(b[0])
		if l, b, err = uvarint(b[1:]); err != nil || l > uint64(len(b)) {
			return "", nil, errors.New("bad value")
		}
		op := &Op{Kind: kind, Key: name, HLC: hlc, Value: slices.Clone(b[:l])}
		b = b[l:]
		reg.versions = append(reg.versions, &opRec{id: OpID{Feed: s.feedKey[no], Index: index}, hlc: hlc, op: op, count: true})
	}
	return name, reg, nil
}

func (s *kvStore) names() []string {
	if s.sorted != nil {
		return s.sorted
	}
	// A slice, sorted then compacted: a set of every name would take
	// about twice its memory while it is built.
	start := s.recKey('r')
	var names []string
	err := s.st.Scan(start, feed.PrefixEnd(start), func(k, sealed []byte) error {
		plain, err := s.open(k, sealed)
		if err != nil {
			return err
		}
		name, err := registerName(plain)
		if err != nil {
			return err
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		s.fail(fmt.Errorf("space: read names: %w", err))
	}
	for n := range s.pending {
		names = append(names, n)
	}
	for n := range s.dirty {
		names = append(names, n)
	}
	slices.Sort(names)
	// A copy of the exact size: the slice appended to may be twice that.
	s.sorted = slices.Clone(slices.Compact(names))
	return s.sorted
}
