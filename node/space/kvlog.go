package space

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/mycelsync/mycel/feed"
)

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

func (s *kvStore) pageKey(seq uint64) []byte {
	return s.recKey('l', binary.BigEndian.AppendUint64(nil, seq))
}

// putOp logs a new op. Whether an op counts is not stored (it follows
// from the writer set), so a change of it needs no write.
func (s *kvStore) putOp(r *opRec) {
	if r.seq != 0 {
		return
	}
	s.seq++
	r.seq = s.seq
	s.recent = append(s.recent, r)
	if s.pageN == 0 {
		s.pageFirst = r.seq
	}
	n := len(s.page)
	s.page = s.appendOp(s.page, r)
	if s.pageN > 0 && len(s.page) > s.lim.pageBytes {
		// A page is sealed whole: keep it under auth's limit, and start
		// the next with this op.
		s.page = s.page[:n]
		s.endPage()
		s.pageFirst, n = r.seq, 0
		s.page = s.appendOp(s.page, r)
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
			s.fail(err)
			return
		}
		w := s.seal(s.specialKey(r.id), append(b, body...))
		s.writes = append(s.writes, w)
		s.bufBytes += len(w.Key) + len(w.Value)
	}
	if len(s.page) >= s.lim.pageBytes {
		s.endPage()
	}
}

func (s *kvStore) specialKey(id OpID) []byte {
	b := binary.BigEndian.AppendUint32(nil, s.num(id.Feed))
	return s.recKey('o', binary.BigEndian.AppendUint64(b, id.Index))
}

// endPage seals the page being filled.
func (s *kvStore) endPage() {
	if s.pageN == 0 {
		return
	}
	plain := binary.AppendUvarint(make([]byte, 0, len(s.page)+10), uint64(s.pageN))
	plain = append(plain, s.page...)
	w := s.seal(s.pageKey(s.pageFirst), plain)
	s.writes = append(s.writes, w)
	s.bufBytes += len(w.Key) + len(w.Value) - len(s.page)
	s.page, s.pageN = s.page[:0], 0
	clear(s.pageFeeds)
}

// appendOp encodes r into a page: feed#, index, its causal context (in
// full for a feed's first op in the page; for the next ones it follows
// from the previous op and the causal delta), and the op.
func (s *kvStore) appendOp(b []byte, r *opRec) []byte {
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
			s.fail(err)
		}
		b = binary.AppendUvarint(b, uint64(len(body)))
		b = append(b, body...)
	}
	return b
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
func (s *kvStore) feedOps(k feed.PublicKey, fn func(r *opRec)) {
	cs := clocks{}
	err := s.scanLog(1, func(seq uint64, d *decodedOp) error {
		clock, err := cs.after(d)
		if err == nil && d.id.Feed == k {
			fn(d.rec(seq, clock))
		}
		return err
	})
	if err != nil {
		s.fail(fmt.Errorf("space: read op log: %w", err))
	}
	for _, r := range s.recent {
		if r.id.Feed == k {
			fn(r)
		}
	}
}

// histories reads the whole log once for the ops on keys.
func (s *kvStore) histories(keys []string, fn func(key string, hist []*opRec)) {
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
		s.fail(fmt.Errorf("space: read op log: %w", err))
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
}

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
