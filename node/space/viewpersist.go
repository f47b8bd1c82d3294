package space

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

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
	plain, err := kv.get(kv.recKey('m'))
	if errors.Is(err, feed.ErrNotFound) {
		return newView(origin, kv), nil
	}
	if err != nil {
		return nil, err
	}
	v := newView(origin, kv)
	incomplete, err := v.decodeMeta(kv, plain)
	if err != nil {
		return nil, fmt.Errorf("space: stored view: %w", err)
	}
	if incomplete {
		// A flush was cut short: throw the view away, the feeds rebuild it.
		if err := kv.drop(); err != nil {
			return nil, fmt.Errorf("space: drop incomplete view: %w", err)
		}
		return newView(origin, newKVStore(st, space, key, rand)), nil
	}
	return v, nil
}

// Flush makes the view's state durable, for a view opened with OpenView
// (a no-op for one in memory). It reports the first error the store met.
func (v *View) Flush() error {
	kv, ok := v.st.(*kvStore)
	if !ok {
		return nil
	}
	return kv.flush(func(incomplete bool) []byte { return v.encodeMeta(kv, incomplete) })
}

// maybeFlush flushes a persisted view whose buffered writes near one
// commit's limits. Errors stay with the store until Flush reports them.
func (v *View) maybeFlush() {
	if kv, ok := v.st.(*kvStore); ok && kv.needsFlush() {
		_ = v.Flush()
	}
}

// MaxHLC returns the largest clock of any op applied.
func (v *View) MaxHLC() uint64 {
	var m uint64
	for _, st := range v.feeds {
		m = max(m, st.hlc)
	}
	return m
}

func (v *View) encodeMeta(kv *kvStore, incomplete bool) []byte {
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
	// The feed table goes first, once every feed named above has a number.
	b := []byte{1, 0}
	if incomplete {
		b[1] = 1
	}
	b = binary.AppendUvarint(b, uint64(len(kv.feedKey)))
	for _, k := range kv.feedKey {
		b = append(b, k[:]...)
	}
	return append(b, body...)
}

func (v *View) decodeMeta(kv *kvStore, b []byte) (incomplete bool, err error) {
	bad := func(what string) error { return fmt.Errorf("meta: bad %s", what) }
	if len(b) < 2 || b[0] != 1 {
		return false, bad("version")
	}
	incomplete = b[1] == 1
	b = b[2:]
	n, b, err := uvarint(b)
	if err != nil || n > uint64(len(b))/feed.KeySize {
		return false, bad("feed table")
	}
	for range n {
		k := feed.PublicKey(b[:feed.KeySize])
		b = b[feed.KeySize:]
		kv.num(k)
	}
	feedAt := func(no uint64) (feed.PublicKey, error) {
		if no >= uint64(len(kv.feedKey)) {
			return feed.PublicKey{}, bad("feed number")
		}
		return kv.feedKey[no], nil
	}
	if n, b, err = uvarint(b); err != nil || n > uint64(len(kv.feedKey)) {
		return false, bad("feeds")
	}
	for range n {
		var no uint64
		st := &feedState{}
		if no, b, err = uvarint(b); err != nil {
			return false, bad("feed")
		}
		k, err := feedAt(no)
		if err != nil {
			return false, err
		}
		if st.applied, b, err = uvarint(b); err != nil {
			return false, bad("applied")
		}
		if st.hlc, b, err = uvarint(b); err != nil {
			return false, bad("clock")
		}
		if st.clock, b, err = kv.readClock(b); err != nil {
			return false, err
		}
		v.feeds[k] = st
	}
	if n, b, err = uvarint(b); err != nil || n > uint64(len(b)) {
		return false, bad("special ops")
	}
	for range n {
		var no, index uint64
		if no, b, err = uvarint(b); err != nil {
			return false, bad("special op")
		}
		if index, b, err = uvarint(b); err != nil {
			return false, bad("special op")
		}
		k, err := feedAt(no)
		if err != nil {
			return false, err
		}
		r := kv.op(OpID{Feed: k, Index: index})
		if r == nil {
			return false, fmt.Errorf("meta: membership op %x/%d missing: %v", k[:4], index, kv.err)
		}
		v.special = append(v.special, r)
		if r.op.Kind == OpAddWriter || r.op.Kind == OpRemoveWriter {
			v.members = append(v.members, MemberOp{ID: r.id, Clock: r.clock, HLC: r.hlc,
				Remove: r.op.Kind == OpRemoveWriter, Target: r.op.Target})
		}
	}
	var voided, notCounting, total uint64
	if voided, b, err = uvarint(b); err != nil {
		return false, bad("counters")
	}
	if notCounting, b, err = uvarint(b); err != nil {
		return false, bad("counters")
	}
	if total, b, err = uvarint(b); err != nil {
		return false, bad("counters")
	}
	v.voided, v.notCounting, v.invalidTotal = int(voided), int(notCounting), int(total)
	if n, b, err = uvarint(b); err != nil || n > maxInvalid {
		return false, bad("refusals")
	}
	for range n {
		var no, index, l uint64
		if no, b, err = uvarint(b); err != nil {
			return false, bad("refusal")
		}
		if index, b, err = uvarint(b); err != nil {
			return false, bad("refusal")
		}
		if l, b, err = uvarint(b); err != nil || l > uint64(len(b)) {
			return false, bad("refusal")
		}
		k, err := feedAt(no)
		if err != nil {
			return false, err
		}
		v.invalid = append(v.invalid, Invalid{ID: OpID{Feed: k, Index: index}, Reason: string(b[:l])})
		b = b[l:]
	}
	v.ws = Resolve(v.origin, v.members)
	return incomplete, nil
}
