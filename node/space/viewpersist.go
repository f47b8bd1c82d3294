package space

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// maxInvalid bounds the refusals a view remembers (it counts them all).
const maxInvalid = 1000

// OpenView opens the view of a space kept in st, sealed under key (the
// device's local key of the space), or starts an empty one. Reopening reads
// the view's state; it does not replay the ops. Ops applied since the last
// Flush are not in it: the caller reads them from the feeds again (Applied
// says from where).
func OpenView(origin feed.PublicKey, st feed.Storage, key [auth.KeySize]byte, rand io.Reader) (*View, error) {
	space := auth.SpaceID(origin)
	kv := newKVStore(st, space, key, rand)
	v := newView(origin, kv)
	plain, err := kv.get(kv.recKey('m'))
	if errors.Is(err, feed.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	if len(plain) < 1 || plain[0] != metaVersion {
		// A view of another format: the feeds rebuild it.
		if err := kv.drop(); err != nil {
			return nil, fmt.Errorf("space: drop view of version %d: %w", plain[0], err)
		}
		return newView(origin, newKVStore(st, space, key, rand)), nil
	}
	if err := v.decodeMeta(kv, plain); err != nil {
		return nil, fmt.Errorf("space: stored view: %w", err)
	}
	member, err := kv.openLog()
	if err != nil {
		return nil, err
	}
	if member {
		// A flush logged a membership op, then stopped before its
		// checkpoint: the stored registers may count ops it voided (or
		// miss ops it made count). Recompute them all from the log.
		var ferr error
		err := kv.histories(nil, func(key string, hist []*opRec) {
			reg := v.recompute(hist)
			keep := len(reg.versions) > 0
			if !keep {
				stored, err := kv.loadRegister(key)
				if err != nil {
					ferr = cmp.Or(ferr, err)
					return
				}
				keep = stored != nil
			}
			if keep {
				ferr = cmp.Or(ferr, kv.putRegister(key, reg))
			}
		})
		if err = cmp.Or(err, ferr); err != nil {
			return nil, fmt.Errorf("space: stored view: %w", err)
		}
		clear(kv.pending)
		kv.rebuilt = true
	}
	return v, nil
}

// Flush makes the view's state durable, for a view opened with OpenView
// (a no-op for one in memory). An error stops the view, as one in Apply
// does.
func (v *View) Flush() error {
	if v.err != nil {
		return v.err
	}
	if err := v.readErr; err != nil {
		return v.stop(err) // it may be damage: write nothing over it
	}
	if err := v.st.flushView(v); err != nil {
		return v.stop(err)
	}
	return nil
}

// maybeFlush flushes a persisted view whose buffered writes near one
// commit's limits.
func (v *View) maybeFlush() error {
	if v.st.needsFlush() {
		return v.Flush()
	}
	return nil
}

// flushView implements viewStore: it commits the buffered log with the
// view's meta record.
func (s *kvStore) flushView(v *View) error {
	return s.flush(func() []byte { return v.encodeMeta(s) })
}

// useCounts implements viewStore.
func (s *kvStore) useCounts(counts func(id OpID, clock Clock) bool) { s.counts = counts }

// MaxHLC returns the largest clock of any op applied.
func (v *View) MaxHLC() uint64 {
	var m uint64
	for _, st := range v.feeds {
		m = max(m, st.hlc)
	}
	return m
}

// metaVersion is the first byte of the meta record: 3 since the digest and
// the live-key count are kept in it (2 brought the op log; 1 kept a record
// per op).
const metaVersion = 3

func (v *View) encodeMeta(kv *kvStore) []byte {
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(v.feeds)))
	for k, st := range v.feeds {
		body = binary.AppendUvarint(body, uint64(kv.num(k)))
		body = binary.AppendUvarint(body, st.applied)
		body = binary.AppendUvarint(body, st.hlc)
		body = kv.appendClock(body, st.clock)
	}
	body = binary.AppendUvarint(body, uint64(len(v.special)))
	for _, r := range v.special {
		body = binary.AppendUvarint(body, uint64(kv.num(r.id.Feed)))
		body = binary.AppendUvarint(body, r.id.Index)
	}
	body = binary.AppendUvarint(body, uint64(v.voided))
	body = binary.AppendUvarint(body, uint64(v.notCounting))
	body = binary.AppendUvarint(body, uint64(v.invalidTotal))
	body = binary.AppendUvarint(body, uint64(len(v.invalid)))
	for _, in := range v.invalid {
		body = binary.AppendUvarint(body, uint64(kv.num(in.ID.Feed)))
		body = binary.AppendUvarint(body, in.ID.Index)
		body = binary.AppendUvarint(body, uint64(len(in.Reason)))
		body = append(body, in.Reason...)
	}
	body = append(body, v.sum.bytes()...)
	body = binary.AppendUvarint(body, uint64(v.live))
	// The feed table goes first, once every feed named above has a number.
	b := []byte{metaVersion}
	b = binary.AppendUvarint(b, uint64(len(kv.feedKey)))
	for _, k := range kv.feedKey {
		b = append(b, k[:]...)
	}
	b = binary.AppendUvarint(b, kv.flushed)
	b = binary.AppendUvarint(b, kv.ckpt)
	return append(b, body...)
}

func (v *View) decodeMeta(kv *kvStore, b []byte) (err error) {
	bad := func(what string) error { return fmt.Errorf("meta: bad %s", what) }
	if len(b) < 1 || b[0] != metaVersion {
		return bad("version")
	}
	b = b[1:]
	n, b, err := uvarint(b)
	if err != nil || n > uint64(len(b))/feed.KeySize {
		return bad("feed table")
	}
	for range n {
		k := feed.PublicKey(b[:feed.KeySize])
		b = b[feed.KeySize:]
		kv.num(k)
	}
	if kv.flushed, b, err = uvarint(b); err != nil {
		return bad("log length")
	}
	if kv.ckpt, b, err = uvarint(b); err != nil || kv.ckpt > kv.flushed {
		return bad("checkpoint")
	}
	kv.seq = kv.flushed
	feedAt := func(no uint64) (feed.PublicKey, error) {
		if no >= uint64(len(kv.feedKey)) {
			return feed.PublicKey{}, bad("feed number")
		}
		return kv.feedKey[no], nil
	}
	if n, b, err = uvarint(b); err != nil || n > uint64(len(kv.feedKey)) {
		return bad("feeds")
	}
	for range n {
		var no uint64
		st := &feedState{}
		if no, b, err = uvarint(b); err != nil {
			return bad("feed")
		}
		k, err := feedAt(no)
		if err != nil {
			return err
		}
		if st.applied, b, err = uvarint(b); err != nil {
			return bad("applied")
		}
		if st.hlc, b, err = uvarint(b); err != nil {
			return bad("clock")
		}
		if st.clock, b, err = kv.readClock(b); err != nil {
			return err
		}
		v.feeds[k] = st
	}
	if n, b, err = uvarint(b); err != nil || n > uint64(len(b)) {
		return bad("special ops")
	}
	for range n {
		var no, index uint64
		if no, b, err = uvarint(b); err != nil {
			return bad("special op")
		}
		if index, b, err = uvarint(b); err != nil {
			return bad("special op")
		}
		k, err := feedAt(no)
		if err != nil {
			return err
		}
		r := kv.op(OpID{Feed: k, Index: index})
		if r == nil {
			return fmt.Errorf("meta: membership op %x/%d missing: %v", k[:4], index, kv.err)
		}
		r.op.SealedKeyring = nil // a view stored by an earlier version kept it; no one reads it
		v.special = append(v.special, r)
		if r.op.Kind == OpAddWriter || r.op.Kind == OpRemoveWriter {
			v.members = append(v.members, MemberOp{ID: r.id, Clock: r.clock, HLC: r.hlc,
				Remove: r.op.Kind == OpRemoveWriter, Target: r.op.Target})
		}
	}
	var voided, notCounting, total uint64
	if voided, b, err = uvarint(b); err != nil {
		return bad("counters")
	}
	if notCounting, b, err = uvarint(b); err != nil {
		return bad("counters")
	}
	if total, b, err = uvarint(b); err != nil {
		return bad("counters")
	}
	v.voided, v.notCounting, v.invalidTotal = int(voided), int(notCounting), int(total)
	if n, b, err = uvarint(b); err != nil || n > maxInvalid {
		return bad("refusals")
	}
	for range n {
		var no, index, l uint64
		if no, b, err = uvarint(b); err != nil {
			return bad("refusal")
		}
		if index, b, err = uvarint(b); err != nil {
			return bad("refusal")
		}
		if l, b, err = uvarint(b); err != nil || l > uint64(len(b)) {
			return bad("refusal")
		}
		k, err := feedAt(no)
		if err != nil {
			return err
		}
		v.invalid = append(v.invalid, Invalid{ID: OpID{Feed: k, Index: index}, Reason: string(b[:l])})
		b = b[l:]
	}
	if len(b) < 32 {
		return bad("digest")
	}
	for i := range v.sum {
		v.sum[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	b = b[32:]
	var live uint64
	if live, b, err = uvarint(b); err != nil || live > math.MaxInt32 {
		return bad("key count")
	}
	v.live = int(live)
	if len(b) != 0 {
		return bad("length")
	}
	v.ws = Resolve(v.origin, v.members)
	for _, r := range v.special {
		r.count = v.ws.Counts(r.id, r.clock)
	}
	return nil
}
