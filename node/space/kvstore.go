package space

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// kvStore keeps a view in a feed.Storage, so that reopening a space reads
// its state instead of replaying its feeds. Everything is sealed
// (XChaCha20-Poly1305 under the device's local key of the space, bound to
// the record's storage key); keys of the space appear in storage keys only
// as a keyed hash. Records, under P = "v" ‖ 8-byte tag of the space:
//
//	P 'm'                          meta: feeds (applied, clock, clock of the
//	                               last op), membership and rotation op IDs,
//	                               refusals; "incomplete" while a flush that
//	                               needed several commits is under way
//	P 'h' keyhash feed# index      a put or delete: counts?, clock, op body;
//	                               together, the key's history
//	P 'o' feed# index              a membership or rotation op, the same way
//	P 'r' keyhash                  the key's name and versions
//
// feed# numbers feeds in the order the view first met them (meta holds the
// table). Writes are buffered and flushed in one commit; a view found
// incomplete on open is dropped and rebuilt from the feeds.
type kvStore struct {
	st      feed.Storage
	key     [auth.KeySize]byte
	prefix  []byte
	rand    io.Reader
	feedKey []feed.PublicKey
	feedNo  map[feed.PublicKey]uint32

	dirty    map[string][]byte // storage key → sealed value, since the last flush
	dirtyLen int
	ops      map[OpID]*opRec // ops written since the last flush
	regs     map[string]*register
	sorted   []string        // names, once loaded
	newNames map[string]bool // registers created since the last flush
	err      error           // first error; reported by flush

	// stored holds the key hashes of every register in storage or dirty,
	// once loaded (a key-only scan), so that a key never written costs no
	// storage lookup. nil until the first write of a register needs it.
	stored map[[16]byte]struct{}

	mac      hash.Hash // HMAC of key names, reused
	lastKey  string    // memo of the last name hashed
	lastHash []byte
}

// Thresholds past which the view flushes on its own, kept under one
// storage commit's limits.
const (
	flushBytes  = 3 << 20
	flushWrites = 24 << 10
	// regCacheMax bounds the registers kept decoded in memory (about 300
	// bytes each with a 100-byte value); past it a quarter is evicted.
	regCacheMax = 1 << 18
)

func newKVStore(st feed.Storage, space auth.SpaceID, key [auth.KeySize]byte, rand io.Reader) *kvStore {
	tag := sha256.Sum256(append([]byte("mycel/v1/view\x00"), space[:]...))
	return &kvStore{
		st:       st,
		key:      key,
		prefix:   append([]byte("v"), tag[:8]...),
		rand:     rand,
		feedNo:   map[feed.PublicKey]uint32{},
		dirty:    map[string][]byte{},
		ops:      map[OpID]*opRec{},
		regs:     map[string]*register{},
		newNames: map[string]bool{},
	}
}

func (s *kvStore) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *kvStore) num(k feed.PublicKey) uint32 {
	n, ok := s.feedNo[k]
	if !ok {
		n = uint32(len(s.feedKey))
		s.feedNo[k] = n
		s.feedKey = append(s.feedKey, k)
	}
	return n
}

func (s *kvStore) recKey(kind byte, parts ...[]byte) []byte {
	k := append(slices.Clone(s.prefix), kind)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func (s *kvStore) idBytes(id OpID) []byte {
	b := binary.BigEndian.AppendUint32(nil, s.num(id.Feed))
	return binary.BigEndian.AppendUint64(b, id.Index)
}

func (s *kvStore) keyHash(name string) []byte {
	if s.lastHash != nil && name == s.lastKey {
		return s.lastHash
	}
	if s.mac == nil {
		s.mac = hmac.New(sha256.New, s.key[:])
	}
	s.mac.Reset()
	s.mac.Write([]byte("mycel/v1/view-key-name\x00"))
	s.mac.Write([]byte(name))
	s.lastKey, s.lastHash = name, s.mac.Sum(nil)[:16]
	return s.lastHash
}

func (s *kvStore) put(k, plain []byte) {
	sealed, err := auth.SealContent(s.key, plain, k, s.rand)
	if err != nil {
		s.fail(err)
		return
	}
	s.dirtyLen += len(k) + len(sealed)
	s.dirty[string(k)] = sealed
}

func (s *kvStore) get(k []byte) ([]byte, error) {
	sealed, ok := s.dirty[string(k)]
	if !ok {
		var err error
		if sealed, err = s.st.Get(k); err != nil {
			return nil, err
		}
	}
	plain, err := auth.OpenContent(s.key, sealed, k)
	if err != nil {
		return nil, fmt.Errorf("space: stored view record: %w", err)
	}
	return plain, nil
}

// ops

func (s *kvStore) putOp(r *opRec) {
	body, err := marshalBody(r.op)
	if err != nil {
		s.fail(err)
		return
	}
	b := []byte{0}
	if r.count {
		b[0] = 1
	}
	b = s.appendClock(b, r.clock)
	s.put(s.opKey(r.id, r.op), append(b, body...))
	s.ops[r.id] = r
}

// opKey is where an op is stored: a put or delete in its key's history, any
// other op by feed and index.
func (s *kvStore) opKey(id OpID, op *Op) []byte {
	if op.Kind == OpPut || op.Kind == OpDelete {
		return s.recKey('h', s.keyHash(op.Key), s.idBytes(id))
	}
	return s.recKey('o', s.idBytes(id))
}

func (s *kvStore) appendClock(b []byte, c Clock) []byte {
	feeds := make([]feed.PublicKey, 0, len(c))
	for f := range c {
		feeds = append(feeds, f)
	}
	slices.SortFunc(feeds, func(a, b feed.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	b = binary.AppendUvarint(b, uint64(len(feeds)))
	for _, f := range feeds {
		b = binary.AppendUvarint(b, uint64(s.num(f)))
		b = binary.AppendUvarint(b, c[f])
	}
	return b
}

func (s *kvStore) readClock(b []byte) (Clock, []byte, error) {
	n, b, err := uvarint(b)
	if err != nil || n > uint64(len(b)) {
		return nil, nil, errors.New("bad clock")
	}
	c := make(Clock, n)
	for range n {
		var no, l uint64
		if no, b, err = uvarint(b); err != nil || no >= uint64(len(s.feedKey)) {
			return nil, nil, errors.New("bad clock feed")
		}
		if l, b, err = uvarint(b); err != nil {
			return nil, nil, err
		}
		c[s.feedKey[no]] = l
	}
	return c, b, nil
}

func (s *kvStore) op(id OpID) *opRec {
	if r := s.ops[id]; r != nil {
		return r
	}
	if _, ok := s.feedNo[id.Feed]; !ok {
		return nil
	}
	plain, err := s.get(s.opKey(id, &Op{}))
	if errors.Is(err, feed.ErrNotFound) {
		return nil
	}
	if err != nil {
		s.fail(err)
		return nil
	}
	r, err := s.decodeOp(id, plain)
	if err != nil {
		s.fail(err)
		return nil
	}
	return r
}

func (s *kvStore) decodeOp(id OpID, plain []byte) (*opRec, error) {
	if len(plain) < 1 {
		return nil, errors.New("space: empty stored op")
	}
	clock, body, err := s.readClock(plain[1:])
	if err != nil {
		return nil, fmt.Errorf("space: stored op: %w", err)
	}
	op, err := decodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("space: stored op: %w", err)
	}
	return &opRec{id: id, clock: clock, hlc: op.HLC, op: op, count: plain[0] == 1}, nil
}

func (s *kvStore) feedOps(k feed.PublicKey, fn func(r *opRec)) {
	no, ok := s.feedNo[k]
	if !ok {
		return
	}
	// Membership and rotation ops are under the feed; puts and deletes under
	// their keys, so all histories are scanned: a rewrite after a membership
	// change is rare, and the feed number in the storage key lets the scan
	// skip other feeds' ops without opening them.
	byIndex := map[uint64]*opRec{}
	add := func(r *opRec) { byIndex[r.id.Index] = r }
	byFeed := s.recKey('o', binary.BigEndian.AppendUint32(nil, no))
	s.scanOps(byFeed, func(key []byte) (OpID, bool) {
		return OpID{Feed: k, Index: binary.BigEndian.Uint64(key[len(key)-8:])}, true
	}, add)
	hist := s.recKey('h')
	s.scanOps(hist, func(key []byte) (OpID, bool) {
		if len(key) != len(hist)+16+12 || binary.BigEndian.Uint32(key[len(hist)+16:]) != no {
			return OpID{}, false
		}
		return OpID{Feed: k, Index: binary.BigEndian.Uint64(key[len(key)-8:])}, true
	}, add)
	for id, r := range s.ops {
		if id.Feed == k {
			byIndex[id.Index] = r
		}
	}
	for _, i := range slices.Sorted(maps.Keys(byIndex)) {
		fn(byIndex[i])
	}
}

// scanOps opens and decodes the stored ops under start whose storage key
// idOf accepts, and passes each to fn.
func (s *kvStore) scanOps(start []byte, idOf func(key []byte) (OpID, bool), fn func(*opRec)) {
	err := s.st.Scan(start, feed.PrefixEnd(start), func(key, sealed []byte) error {
		id, ok := idOf(key)
		if !ok {
			return nil
		}
		plain, err := auth.OpenContent(s.key, sealed, key)
		if err != nil {
			return err
		}
		r, err := s.decodeOp(id, plain)
		if err != nil {
			return err
		}
		fn(r)
		return nil
	})
	if err != nil {
		s.fail(fmt.Errorf("space: read ops: %w", err))
	}
}

// history returns the ops on key: stored, and written since the last flush.
func (s *kvStore) history(key string) []*opRec {
	start := s.recKey('h', s.keyHash(key))
	byID := map[OpID]*opRec{}
	s.scanOps(start, func(k []byte) (OpID, bool) {
		b := k[len(start):]
		no := binary.BigEndian.Uint32(b)
		if len(b) != 12 || int(no) >= len(s.feedKey) {
			return OpID{}, false
		}
		return OpID{Feed: s.feedKey[no], Index: binary.BigEndian.Uint64(b[4:])}, true
	}, func(r *opRec) { byID[r.id] = r })
	for id, r := range s.ops {
		if (r.op.Kind == OpPut || r.op.Kind == OpDelete) && r.op.Key == key {
			byID[id] = r
		}
	}
	out := make([]*opRec, 0, len(byID))
	for _, id := range slices.SortedFunc(maps.Keys(byID), func(a, b OpID) int { return a.compare(b) }) {
		out = append(out, byID[id])
	}
	return out
}

// registers

func (s *kvStore) register(key string) *register {
	if reg, ok := s.regs[key]; ok {
		return reg
	}
	if s.stored != nil {
		if _, ok := s.stored[[16]byte(s.keyHash(key))]; !ok {
			return nil
		}
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
	s.cache(key, reg)
	return reg
}

// cache keeps a decoded register, evicting about a quarter of the cache
// (in map order, which is arbitrary) when it is full.
func (s *kvStore) cache(key string, reg *register) {
	if len(s.regs) >= regCacheMax {
		n := regCacheMax / 4
		for k := range s.regs {
			delete(s.regs, k)
			if n--; n == 0 {
				break
			}
		}
	}
	s.regs[key] = reg
}

// loadStored fills s.stored from the register records' keys.
func (s *kvStore) loadStored() {
	s.stored = map[[16]byte]struct{}{}
	start := s.recKey('r')
	err := s.st.Scan(start, feed.PrefixEnd(start), func(k, _ []byte) error {
		if len(k) == len(start)+16 {
			s.stored[[16]byte(k[len(start):])] = struct{}{}
		}
		return nil
	})
	if err != nil {
		s.fail(fmt.Errorf("space: read register keys: %w", err))
	}
	for k := range s.dirty {
		if len(k) == len(start)+16 && k[:len(start)] == string(start) {
			s.stored[[16]byte([]byte(k[len(start):]))] = struct{}{}
		}
	}
}

func (s *kvStore) putRegister(key string, reg *register) {
	if s.stored == nil {
		s.loadStored()
	}
	s.stored[[16]byte(s.keyHash(key))] = struct{}{}
	if s.register(key) == nil {
		s.newNames[key] = true
		if s.sorted != nil {
			i, _ := slices.BinarySearch(s.sorted, key)
			s.sorted = slices.Insert(s.sorted, i, key)
		}
	}
	b := binary.AppendUvarint(nil, uint64(len(key)))
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
	s.put(s.recKey('r', s.keyHash(key)), b)
	s.cache(key, reg)
}

func (s *kvStore) decodeRegister(b []byte) (string, *register, error) {
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
	reg := &register{}
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
	start := s.recKey('r')
	set := map[string]bool{}
	err := s.st.Scan(start, feed.PrefixEnd(start), func(k, sealed []byte) error {
		plain, err := auth.OpenContent(s.key, sealed, k)
		if err != nil {
			return err
		}
		name, _, err := s.decodeRegister(plain)
		if err != nil {
			return err
		}
		set[name] = true
		return nil
	})
	if err != nil {
		s.fail(fmt.Errorf("space: read names: %w", err))
	}
	for n := range s.newNames {
		set[n] = true
	}
	s.sorted = slices.Sorted(maps.Keys(set))
	return s.sorted
}

// flushing

func (s *kvStore) needsFlush() bool {
	return s.dirtyLen >= flushBytes || len(s.dirty) >= flushWrites
}

// flush writes what changed since the last flush, and meta, in one commit
// when it fits; otherwise meta first says "incomplete", so that a crash
// part-way leaves a view that the next open throws away.
func (s *kvStore) flush(meta func(incomplete bool) []byte) error {
	if s.err != nil {
		return s.err
	}
	writes := make([]feed.Write, 0, len(s.dirty)+1)
	for _, k := range slices.Sorted(maps.Keys(s.dirty)) {
		writes = append(writes, feed.Write{Key: []byte(k), Value: s.dirty[k]})
	}
	metaKey := s.recKey('m')
	seal := func(incomplete bool) feed.Write {
		sealed, err := auth.SealContent(s.key, meta(incomplete), metaKey, s.rand)
		if err != nil {
			s.fail(err)
		}
		return feed.Write{Key: metaKey, Value: sealed}
	}
	final := seal(false)
	if s.err != nil {
		return s.err
	}
	if s.dirtyLen+len(final.Value) < feed.MaxCommitBytes-(64<<10) && len(writes) < feed.MaxCommitWrites-1 {
		if err := s.st.Commit(append(writes, final)); err != nil {
			return fmt.Errorf("space: flush view: %w", err)
		}
	} else {
		if err := s.st.Commit([]feed.Write{seal(true)}); err != nil {
			return fmt.Errorf("space: flush view: %w", err)
		}
		for len(writes) > 0 {
			n, size := 0, 0
			for n < len(writes) && n < flushWrites && size < flushBytes {
				size += len(writes[n].Key) + len(writes[n].Value)
				n++
			}
			if err := s.st.Commit(writes[:n]); err != nil {
				return fmt.Errorf("space: flush view: %w", err)
			}
			writes = writes[n:]
		}
		if err := s.st.Commit([]feed.Write{final}); err != nil {
			return fmt.Errorf("space: flush view: %w", err)
		}
	}
	clear(s.dirty)
	clear(s.ops)
	clear(s.newNames)
	s.dirtyLen = 0
	return nil
}

// drop deletes every record of the view (a view left incomplete by a crash).
func (s *kvStore) drop() error {
	start := slices.Clone(s.prefix)
	for {
		var batch []feed.Write
		err := s.st.Scan(start, feed.PrefixEnd(start), func(k, _ []byte) error {
			batch = append(batch, feed.Write{Key: slices.Clone(k), Delete: true})
			if len(batch) == flushWrites {
				return feed.ErrStopScan
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := s.st.Commit(batch); err != nil {
			return err
		}
	}
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errors.New("bad varint")
	}
	return v, b[n:], nil
}
