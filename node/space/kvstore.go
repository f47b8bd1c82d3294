package space

import (
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
//	P 'm'              meta: the op log's length and checkpoint, feeds
//	                   (applied, clock, clock of the last op), membership
//	                   and rotation op IDs, refusals
//	P 'l' seq          a page of the op log: the ops applied from the
//	                   seq-th on, in the order applied, many to a record
//	P 'o' feed# index  a membership or rotation op
//	P 'r' keyhash      a register snapshot: the seq it reflects, the key's
//	                   name and versions
//
// Applying an op appends it to the page being filled; a flush seals the
// pages and commits them with meta. Registers change in memory and are
// written at a checkpoint, once for all the ops on the key since the last
// one: when the log has grown by checkpointOps since, or the registers
// waiting are too many or too large, or a membership op was applied, or a
// flush finds nothing new to write (the view is quiet: a Close, or a
// Refresh that applied nothing), so that the next open has no tail to
// hold. Reopening reads only the log's tail, the ops after the checkpoint,
// and applies them to each register when it is first read. FORMAT.md has
// the byte layout.
//
// Memory: the registers in memory (dirty ones, and clean ones cached) keep
// what Get and the view's rules need of each version, not its causal
// context (the log has it, for recomputing), and both sets are bounded by
// count and by an estimate of their bytes (kvLimits).
type kvStore struct {
	st      feed.Storage
	key     [auth.KeySize]byte
	prefix  []byte
	rand    io.Reader
	lim     kvLimits
	feedKey []feed.PublicKey
	feedNo  map[feed.PublicKey]uint32
	// counts says whether an op counts under the view's writer set now;
	// its clock's entry for the op's own feed may be stale (countsStale).
	counts func(id OpID, clock Clock) bool

	// The op log. An op's seq is its place in it, from 1.
	seq       uint64       // ops logged, flushed or buffered
	flushed   uint64       // ops in storage (meta's seq)
	ckpt      uint64       // the stored registers reflect every op ≤ ckpt
	tailBytes int          // log bytes since ckpt
	member    bool         // a membership op was logged since ckpt
	page      []byte       // plaintext of the page being filled
	pageN     int          // ops in page
	pageFirst uint64       // seq of page's first op
	pageFeeds []bool       // by feed#: the feed has an op in page
	writes    []feed.Write // sealed pages and special ops not yet committed
	bufBytes  int          // bytes in page and writes
	recent    []*opRec     // ops not yet flushed

	// Registers, with their estimated sizes (regSize) and the sums.
	dirty      map[string]memReg // changed since the checkpoint
	regs       map[string]memReg // clean, cached
	dirtyBytes int
	regsBytes  int
	pending    map[string][]pendOp // tail ops on registers not read since open
	sorted     []string            // names, once loaded
	// stored holds the first 8 bytes of the key hash of every register
	// in storage, once loaded (a key-only scan), so that a key never
	// written costs no storage lookup (a prefix shared by chance costs one
	// lookup). nil until the first write of a register needs it.
	stored *hashSet

	rebuilt  bool      // the registers were recomputed on open
	err      error     // first error a read met (failed); flush refuses after it
	mac      hash.Hash // HMAC of key names, reused
	lastKey  string    // memo of the last name hashed
	lastHash []byte
}

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

// pendOp is an op of the log's tail, read on open, waiting to be applied
// to its key's register. ctx is its causal context except for its own
// feed's entry (shared by consecutive ops of a feed).
type pendOp struct {
	seq   uint64
	id    OpID
	hlc   uint64
	kind  OpKind
	value []byte
	ctx   Clock
}

// kvLimits bounds the buffers, under one storage commit's limits and a
// bounded reopen. Tests make them small.
type kvLimits struct {
	flushBytes   int // buffered log past which the view flushes on its own
	pageBytes    int // a page is closed before an op would take it past this
	commitBytes  int // the largest commit the store makes (with one record more)
	commitWrites int
	// A checkpoint is made at the flush after the log has grown by
	// checkpointOps ops or checkpointBytes since the last one (bounding
	// what reopening reads), or once dirtyMax registers wait.
	checkpointOps   uint64
	checkpointBytes int
	dirtyMax        int
	dirtyBytes      int // estimated (regSize), like regCacheBytes
	// regCacheMax and regCacheBytes bound the clean registers kept
	// decoded in memory; past either, a quarter is evicted.
	regCacheMax   int
	regCacheBytes int
}

var defaultKVLimits = kvLimits{
	flushBytes:      2 << 20,
	pageBytes:       512 << 10,
	commitBytes:     3 << 20,
	commitWrites:    24 << 10,
	checkpointOps:   256 << 10,
	checkpointBytes: 64 << 20,
	dirtyMax:        128 << 10,
	dirtyBytes:      64 << 20,
	regCacheMax:     1 << 16,
	regCacheBytes:   32 << 20,
}

func newKVStore(st feed.Storage, space auth.SpaceID, key [auth.KeySize]byte, rand io.Reader) *kvStore {
	return &kvStore{
		st:      st,
		key:     key,
		prefix:  StorePrefixes(space)[1],
		rand:    rand,
		feedNo:  map[feed.PublicKey]uint32{},
		dirty:   map[string]memReg{},
		regs:    map[string]memReg{},
		pending: map[string][]pendOp{},
		counts:  func(OpID, Clock) bool { return true },
		lim:     defaultKVLimits,
	}
}

func (s *kvStore) failed() error { return s.err }

// fail records an error of a read with no error to return (the names for
// List, a membership op on open): failed reports it, and no flush writes
// over what may be damage after it.
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

func (s *kvStore) pageKey(seq uint64) []byte {
	return s.recKey('l', binary.BigEndian.AppendUint64(nil, seq))
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

func (s *kvStore) seal(k, plain []byte) (feed.Write, error) {
	sealed, err := auth.SealContent(s.key, plain, k, s.rand)
	if err != nil {
		return feed.Write{}, fmt.Errorf("space: seal view record: %w", err)
	}
	return feed.Write{Key: k, Value: sealed}, nil
}

func (s *kvStore) get(k []byte) ([]byte, error) {
	sealed, err := s.st.Get(k)
	if err != nil {
		return nil, err
	}
	return s.open(k, sealed)
}

func (s *kvStore) open(k, sealed []byte) ([]byte, error) {
	plain, err := auth.OpenContent(s.key, sealed, k)
	if err != nil {
		return nil, fmt.Errorf("space: stored view record: %w", err)
	}
	return plain, nil
}

// ops

// putOp logs a new op. Whether an op counts is not stored (it follows
// from the writer set), so a change of it needs no write.
func (s *kvStore) putOp(r *opRec) error {
	if r.seq != 0 {
		return nil
	}
	s.seq++
	r.seq = s.seq
	s.recent = append(s.recent, r)
	if s.pageN == 0 {
		s.pageFirst = r.seq
	}
	n := len(s.page)
	var err error
	if s.page, err = s.appendOp(s.page, r); err != nil {
		return err
	}
	if s.pageN > 0 && len(s.page) > s.lim.pageBytes {
		// A page is sealed whole: keep it under auth's limit, and start
		// the next with this op.
		s.page = s.page[:n]
		if err := s.endPage(); err != nil {
			return err
		}
		s.pageFirst, n = r.seq, 0
		if s.page, err = s.appendOp(s.page, r); err != nil {
			return err
		}
	}
	s.pageN++
	s.bufBytes += len(s.page) - n
	s.tailBytes += len(s.page) - n
	switch r.op.Kind {
	case OpPut, OpDelete:
	default:
		if r.op.Kind != OpRotate {
			s.member = true
		}
		b := s.appendClock(nil, r.clock)
		body, err := marshalBody(r.op)
		if err != nil {
			return err
		}
		w, err := s.seal(s.specialKey(r.id), append(b, body...))
		if err != nil {
			return err
		}
		s.writes = append(s.writes, w)
		s.bufBytes += len(w.Key) + len(w.Value)
	}
	if len(s.page) >= s.lim.pageBytes {
		return s.endPage()
	}
	return nil
}

func (s *kvStore) specialKey(id OpID) []byte {
	b := binary.BigEndian.AppendUint32(nil, s.num(id.Feed))
	return s.recKey('o', binary.BigEndian.AppendUint64(b, id.Index))
}

// endPage seals the page being filled.
func (s *kvStore) endPage() error {
	if s.pageN == 0 {
		return nil
	}
	plain := binary.AppendUvarint(make([]byte, 0, len(s.page)+10), uint64(s.pageN))
	plain = append(plain, s.page...)
	w, err := s.seal(s.pageKey(s.pageFirst), plain)
	if err != nil {
		return err
	}
	s.writes = append(s.writes, w)
	s.bufBytes += len(w.Key) + len(w.Value) - len(s.page)
	s.page, s.pageN = s.page[:0], 0
	clear(s.pageFeeds)
	return nil
}

// appendOp encodes r into a page: feed#, index, its causal context (in
// full for a feed's first op in the page; for the next ones it follows
// from the previous op and the causal delta), and the op.
func (s *kvStore) appendOp(b []byte, r *opRec) ([]byte, error) {
	no := s.num(r.id.Feed)
	for int(no) >= len(s.pageFeeds) {
		s.pageFeeds = append(s.pageFeeds, false)
	}
	b = binary.AppendUvarint(b, uint64(no))
	b = binary.AppendUvarint(b, r.id.Index)
	if s.pageFeeds[no] {
		b = append(b, 0)
	} else {
		s.pageFeeds[no] = true
		b = append(b, 1)
		b = s.appendClock(b, r.clock)
	}
	op := r.op
	b = append(b, byte(op.Kind))
	switch op.Kind {
	case OpPut, OpDelete:
		b = binary.AppendUvarint(b, op.HLC)
		b = binary.AppendUvarint(b, uint64(len(op.Seen)))
		for _, x := range op.Seen {
			b = binary.AppendUvarint(b, uint64(s.num(x.Feed)))
			b = binary.AppendUvarint(b, x.Length)
		}
		b = binary.AppendUvarint(b, uint64(len(op.Key)))
		b = append(b, op.Key...)
		if op.Kind == OpPut {
			b = binary.AppendUvarint(b, uint64(len(op.Value)))
			b = append(b, op.Value...)
		}
	default:
		body, err := marshalBody(op)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(body)))
		b = append(b, body...)
	}
	return b, nil
}

// decodedOp is one op read from a page.
type decodedOp struct {
	id    OpID
	full  Clock // the causal context, when the page holds it in full
	kind  OpKind
	hlc   uint64
	seen  []Seen
	key   string
	value []byte
	op    *Op // membership and rotation ops
}

// readPage decodes the ops of a page, calling fn for each in order.
func (s *kvStore) readPage(plain []byte, fn func(d *decodedOp) error) error {
	bad := errors.New("space: stored log page: bad encoding")
	n, b, err := uvarint(plain)
	if err != nil || n > uint64(len(b)) {
		return bad
	}
	var d decodedOp
	for range n {
		d = decodedOp{}
		var no, x uint64
		if no, b, err = uvarint(b); err != nil || no >= uint64(len(s.feedKey)) {
			return bad
		}
		d.id.Feed = s.feedKey[no]
		if d.id.Index, b, err = uvarint(b); err != nil || len(b) < 2 {
			return bad
		}
		full := b[0] == 1
		if b = b[1:]; full {
			if d.full, b, err = s.readClock(b); err != nil || len(b) < 1 {
				return bad
			}
		}
		d.kind = OpKind(b[0])
		b = b[1:]
		switch d.kind {
		case OpPut, OpDelete:
			if d.hlc, b, err = uvarint(b); err != nil {
				return bad
			}
			if x, b, err = uvarint(b); err != nil || x > uint64(len(b)) {
				return bad
			}
			if x > 0 {
				d.seen = make([]Seen, x)
			}
			for i := range d.seen {
				if no, b, err = uvarint(b); err != nil || no >= uint64(len(s.feedKey)) {
					return bad
				}
				d.seen[i].Feed = s.feedKey[no]
				if d.seen[i].Length, b, err = uvarint(b); err != nil {
					return bad
				}
			}
			if x, b, err = uvarint(b); err != nil || x > uint64(len(b)) {
				return bad
			}
			d.key, b = string(b[:x]), b[x:]
			if d.kind == OpPut {
				if x, b, err = uvarint(b); err != nil || x > uint64(len(b)) {
					return bad
				}
				d.value, b = b[:x:x], b[x:]
			}
		default:
			if x, b, err = uvarint(b); err != nil || x > uint64(len(b)) {
				return bad
			}
			op, err := decodeBody(b[:x])
			if err != nil {
				return fmt.Errorf("space: stored log page: %w", err)
			}
			b = b[x:]
			d.op, d.hlc, d.seen = op, op.HLC, op.Seen
		}
		if err := fn(&d); err != nil {
			return err
		}
	}
	return nil
}

// scanLog reads the stored pages from the one starting at seq from, up to
// the flushed length, and calls fn for every op with its seq.
func (s *kvStore) scanLog(from uint64, fn func(seq uint64, d *decodedOp) error) error {
	start := s.pageKey(from)
	return s.st.Scan(start, feed.PrefixEnd(s.recKey('l')), func(k, sealed []byte) error {
		if len(k) != len(start) {
			return errors.New("space: stored log page: bad key")
		}
		seq := binary.BigEndian.Uint64(k[len(k)-8:])
		if seq > s.flushed {
			return feed.ErrStopScan
		}
		plain, err := s.open(k, sealed)
		if err != nil {
			return err
		}
		return s.readPage(plain, func(d *decodedOp) error {
			if seq > s.flushed {
				return errors.New("space: stored log page past the log's end")
			}
			err := fn(seq, d)
			seq++
			return err
		})
	})
}

// clocks follows the causal contexts of the ops of a page as it is read:
// after(d) returns d's context, built on the previous op of its feed in
// the page. The entry of the op's own feed may be stale (lower), and a
// context is shared by the ops that add nothing to it.
type clocks map[feed.PublicKey]Clock

func (c clocks) after(d *decodedOp) (Clock, error) {
	if d.full != nil {
		c[d.id.Feed] = d.full
		return d.full, nil
	}
	clock, ok := c[d.id.Feed]
	if !ok {
		return nil, errors.New("space: stored log page: op without a causal context")
	}
	for _, x := range d.seen {
		if clock[x.Feed] < x.Length {
			clock = maps.Clone(clock)
			for _, x := range d.seen {
				clock[x.Feed] = max(clock[x.Feed], x.Length)
			}
			c[d.id.Feed] = clock
			break
		}
	}
	return clock, nil
}

func (d *decodedOp) rec(seq uint64, clock Clock) *opRec {
	op := d.op
	if op == nil {
		// A copy: the value must not hold the page's memory.
		op = &Op{Kind: d.kind, HLC: d.hlc, Key: d.key, Value: slices.Clone(d.value)}
	}
	return &opRec{id: d.id, clock: clock, hlc: d.hlc, op: op, seq: seq}
}

func (s *kvStore) appendClock(b []byte, c Clock) []byte {
	b = binary.AppendUvarint(b, uint64(len(c)))
	if len(c) == 0 {
		return b
	}
	type ent struct{ no, n uint64 }
	ents := make([]ent, 0, len(c))
	for f, n := range c {
		ents = append(ents, ent{uint64(s.num(f)), n})
	}
	slices.SortFunc(ents, func(a, b ent) int { return int(a.no) - int(b.no) })
	for _, e := range ents {
		b = binary.AppendUvarint(b, e.no)
		b = binary.AppendUvarint(b, e.n)
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

// op returns a stored membership or rotation op (used on open).
func (s *kvStore) op(id OpID) *opRec {
	if _, ok := s.feedNo[id.Feed]; !ok {
		return nil
	}
	plain, err := s.get(s.specialKey(id))
	if errors.Is(err, feed.ErrNotFound) {
		return nil
	}
	if err != nil {
		s.fail(err)
		return nil
	}
	clock, body, err := s.readClock(plain)
	if err != nil {
		s.fail(fmt.Errorf("space: stored op: %w", err))
		return nil
	}
	op, err := decodeBody(body)
	if err != nil {
		s.fail(fmt.Errorf("space: stored op: %w", err))
		return nil
	}
	return &opRec{id: id, clock: clock, hlc: op.HLC, op: op, seq: ^uint64(0)}
}

// feedOps reads the whole log (a rewrite after a membership op changed
// whose ops count, which is rare) for the ops of feed k.
func (s *kvStore) feedOps(k feed.PublicKey, fn func(r *opRec)) error {
	cs := clocks{}
	err := s.scanLog(1, func(seq uint64, d *decodedOp) error {
		clock, err := cs.after(d)
		if err == nil && d.id.Feed == k {
			fn(d.rec(seq, clock))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("space: read op log: %w", err)
	}
	for _, r := range s.recent {
		if r.id.Feed == k {
			fn(r)
		}
	}
	return nil
}

// histories reads the whole log once for the ops on keys.
func (s *kvStore) histories(keys []string, fn func(key string, hist []*opRec)) error {
	want := map[string][]*opRec{}
	for _, k := range keys {
		want[k] = nil
	}
	add := func(r *opRec) {
		if r.op.Kind != OpPut && r.op.Kind != OpDelete {
			return
		}
		if _, ok := want[r.op.Key]; ok || keys == nil {
			want[r.op.Key] = append(want[r.op.Key], r)
		}
	}
	cs := clocks{}
	err := s.scanLog(1, func(seq uint64, d *decodedOp) error {
		clock, err := cs.after(d)
		if err == nil {
			add(d.rec(seq, clock))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("space: read op log: %w", err)
	}
	for _, r := range s.recent {
		add(r)
	}
	if keys == nil {
		keys = slices.Sorted(maps.Keys(want))
	}
	for _, k := range keys {
		fn(k, want[k])
	}
	return nil
}

// registers

func (s *kvStore) register(key string) (*register, error) {
	if m, ok := s.dirty[key]; ok {
		return m.reg, nil
	}
	if m, ok := s.regs[key]; ok {
		return m.reg, nil
	}
	reg, err := s.loadRegister(key)
	if err != nil {
		return nil, err
	}
	if tail, ok := s.pending[key]; ok {
		delete(s.pending, key)
		if reg == nil {
			reg = &register{}
		}
		s.replay(key, reg, tail)
		if len(reg.versions) == 0 && reg.seq == 0 {
			return nil, nil // no op on the key counted
		}
		s.setDirty(key, reg)
		return reg, nil
	}
	if reg != nil {
		s.cache(key, reg)
	}
	return reg, nil
}

func (s *kvStore) loadRegister(key string) (*register, error) {
	if s.stored != nil && !s.stored.has(s.keyHash(key)) {
		return nil, nil
	}
	plain, err := s.get(s.recKey('r', s.keyHash(key)))
	if errors.Is(err, feed.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	name, reg, err := s.decodeRegister(plain)
	if err != nil || name != key {
		return nil, fmt.Errorf("space: stored register of %q: %v", key, err)
	}
	return reg, nil
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
func (s *kvStore) loadStored() error {
	stored := &hashSet{}
	start := s.recKey('r')
	err := s.st.Scan(start, feed.PrefixEnd(start), func(k, _ []byte) error {
		if len(k) == len(start)+16 {
			stored.sorted = append(stored.sorted, binary.BigEndian.Uint64(k[len(start):]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("space: read register keys: %w", err)
	}
	slices.Sort(stored.sorted) // in key order already: cheap
	s.stored = stored
	return nil
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

func (s *kvStore) putRegister(key string, reg *register) error {
	if _, ok := s.dirty[key]; !ok {
		if s.stored == nil {
			if err := s.loadStored(); err != nil {
				return err
			}
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
	return nil
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

// opening

// openLog reads the log's tail, the ops after the checkpoint, into
// s.pending, after deleting pages past the log's end (left by a flush cut
// short). It reports whether the tail holds a membership op: then the
// registers must be recomputed, since the checkpoint's may predate it.
func (s *kvStore) openLog() (member bool, err error) {
	// Pages past the end: written by a flush that did not reach its meta.
	start := s.pageKey(s.flushed + 1)
	if err := s.deleteRange(start, feed.PrefixEnd(s.recKey('l'))); err != nil {
		return false, err
	}
	cs := clocks{}
	err = s.scanLog(s.ckpt+1, func(seq uint64, d *decodedOp) error {
		s.tailBytes += len(d.key) + len(d.value) + 16
		switch d.kind {
		case OpPut, OpDelete:
		case OpAddWriter, OpRemoveWriter:
			member = true
		}
		ctx, err := cs.after(d)
		if err != nil {
			return err
		}
		if d.kind == OpPut || d.kind == OpDelete {
			s.pending[d.key] = append(s.pending[d.key], pendOp{seq: seq, id: d.id, hlc: d.hlc,
				kind: d.kind, value: d.value, ctx: ctx})
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("space: read op log: %w", err)
	}
	s.member = member
	return member, nil
}

// flushing

func (s *kvStore) needsFlush() bool {
	return s.bufBytes >= s.lim.flushBytes || s.dirtyFull()
}

func (s *kvStore) dirtyFull() bool {
	return len(s.dirty) >= s.lim.dirtyMax || s.dirtyBytes >= s.lim.dirtyBytes
}

func (s *kvStore) needsCheckpoint() bool {
	return s.member || s.dirtyFull() || s.seq-s.ckpt >= s.lim.checkpointOps ||
		s.tailBytes >= s.lim.checkpointBytes
}

// flush commits the log buffered since the last flush, then meta. When the
// writes exceed one commit, the pages go first, in as many commits as
// needed: until meta says the log is longer they are ignored (and deleted
// on open). Then, when one is due, it makes a checkpoint: a flush that has
// nothing new to write makes one whenever the log has a tail.
func (s *kvStore) flush(meta func() []byte) error {
	if s.err != nil {
		return s.err
	}
	// Nothing logged since the last flush (meta may still have changed:
	// an invalid op is not logged).
	quiet := s.seq == s.flushed && len(s.writes) == 0 && s.pageN == 0
	if err := s.endPage(); err != nil {
		return err
	}
	metaKey := s.recKey('m')
	seq := s.seq
	s.flushed = seq
	if err := s.commit(s.writes, func() (feed.Write, error) { return s.seal(metaKey, meta()) }); err != nil {
		s.flushed -= uint64(len(s.recent))
		return fmt.Errorf("space: flush view: %w", err)
	}
	s.writes, s.bufBytes = nil, 0
	s.recent = nil
	if !(quiet && s.ckpt < seq) && !s.needsCheckpoint() {
		return nil
	}
	if err := s.checkpoint(); err != nil {
		return fmt.Errorf("space: flush view: %w", err)
	}
	ckpt := s.ckpt
	s.ckpt = seq
	if err := s.commit(nil, func() (feed.Write, error) { return s.seal(metaKey, meta()) }); err != nil {
		s.ckpt = ckpt
		return fmt.Errorf("space: flush view: %w", err)
	}
	s.tailBytes, s.member = 0, false
	return nil
}

// commit writes ws and the record last() returns, in one commit if they
// fit, otherwise ws in several and last alone after them.
func (s *kvStore) commit(ws []feed.Write, last func() (feed.Write, error)) error {
	final, err := last()
	if err != nil {
		return err
	}
	size := len(final.Key) + len(final.Value)
	for _, w := range ws {
		size += len(w.Key) + len(w.Value)
	}
	if size <= s.lim.commitBytes && len(ws) < s.lim.commitWrites {
		return s.st.Commit(append(ws, final))
	}
	for len(ws) > 0 {
		n, size := 0, 0
		for n < len(ws) && n < s.lim.commitWrites && (n == 0 || size+len(ws[n].Key)+len(ws[n].Value) <= s.lim.commitBytes) {
			size += len(ws[n].Key) + len(ws[n].Value)
			n++
		}
		if err := s.st.Commit(ws[:n]); err != nil {
			return err
		}
		ws = ws[n:]
	}
	return s.st.Commit([]feed.Write{final})
}

// checkpoint writes every register changed since the last checkpoint, as
// of s.seq (all flushed). A checkpoint cut short leaves registers newer
// than meta's checkpoint: each says which ops it reflects, so reading the
// tail again skips them.
func (s *kvStore) checkpoint() error {
	for key := range s.pending {
		if _, err := s.register(key); err != nil {
			return err
		}
	}
	if s.stored == nil {
		if err := s.loadStored(); err != nil {
			return err
		}
	}
	var batch []feed.Write
	size := 0
	for _, key := range slices.Sorted(maps.Keys(s.dirty)) {
		reg := s.dirty[key].reg
		h := s.keyHash(key)
		w, err := s.seal(s.recKey('r', h), s.encodeRegister(key, reg, s.seq))
		if err != nil {
			return err
		}
		batch = append(batch, w)
		size += len(w.Key) + len(w.Value)
		s.stored.add(h)
		if size >= s.lim.commitBytes/2 || len(batch) == s.lim.commitWrites {
			if err := s.st.Commit(batch); err != nil {
				return err
			}
			batch, size = batch[:0], 0
		}
	}
	if len(batch) > 0 {
		if err := s.st.Commit(batch); err != nil {
			return err
		}
	}
	// The registers are clean now (and lean since setDirty).
	for key, m := range s.dirty {
		m.reg.seq = s.seq
		s.cache(key, m.reg)
	}
	clear(s.dirty)
	s.dirtyBytes = 0
	return nil
}

// drop deletes every record of the view (one of another format version).
func (s *kvStore) drop() error {
	return s.deleteRange(s.prefix, feed.PrefixEnd(s.prefix))
}

func (s *kvStore) deleteRange(start, end []byte) error {
	for {
		var batch []feed.Write
		err := s.st.Scan(start, end, func(k, _ []byte) error {
			batch = append(batch, feed.Write{Key: slices.Clone(k), Delete: true})
			if len(batch) == s.lim.commitWrites {
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
