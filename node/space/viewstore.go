package space

import (
	"cmp"
	"maps"
	"slices"

	"github.com/mycelsync/mycel/feed"
)

// viewStore holds what a View does not keep in memory: every applied op,
// each key's history (the ops applied on it) and its register. memStore
// keeps them in maps; kvStore in a feed.Storage, encrypted, so that a view
// survives a restart without replaying the feeds. A store may not keep
// whether an op counts: the view takes that from the writer set.
//
// Ops and registers returned by a store may be the store's own: the view
// changes them only through putOp and putRegister.
//
// The methods the view calls while applying ops return the store's
// errors: a record that does not open, a storage read or write that
// failed. After one, the view stops (View.Err) and is to be opened again
// from what the store last committed (OpenView). names, which has no
// error to return, records its own: failed reports it.
type viewStore interface {
	// putOp records a new op, or a change of whether it counts (which a
	// store may ignore).
	putOp(r *opRec) error
	// op returns a membership or rotation op (nil if not applied).
	op(id OpID) *opRec
	// feedOps calls fn for every applied op of feed k, in index order. The
	// ops' clocks may lack their own feed's entry (see countsStale).
	feedOps(k feed.PublicKey, fn func(r *opRec)) error
	// histories calls fn with every applied op on each key of keys, key by
	// key in the order given (every key with ops, sorted, when keys is nil).
	// The ops' clocks may lack their own feed's entry (see countsStale).
	histories(keys []string, fn func(key string, hist []*opRec)) error
	// register returns the key's register, nil if no op on the key
	// counted yet.
	register(key string) (*register, error)
	putRegister(key string, reg *register) error
	names() []string // keys with a register, sorted
	// failed returns the first error a read of the stored view met (a
	// record that does not open, a storage error), after which reads may
	// miss what that record held.
	failed() error

	// useCounts gives the store the view's answer to whether an op counts
	// now (countsStale under the view's writer set).
	useCounts(counts func(id OpID, clock Clock) bool)
	// needsFlush reports whether the store buffers enough to flush on its
	// own, before the caller's next Flush.
	needsFlush() bool
	// flushView makes what the store buffers durable, with v's state.
	flushView(v *View) error
}

type memStore struct {
	ops    map[OpID]*opRec
	byFeed map[feed.PublicKey][]*opRec
	hist   map[string][]*opRec
	regs   map[string]*register
	sorted []string // names, sorted; nil when stale
}

func newMemStore() *memStore {
	return &memStore{
		ops:    map[OpID]*opRec{},
		byFeed: map[feed.PublicKey][]*opRec{},
		hist:   map[string][]*opRec{},
		regs:   map[string]*register{},
	}
}

func (m *memStore) op(id OpID) *opRec { return m.ops[id] }

func (m *memStore) putOp(r *opRec) error {
	if _, ok := m.ops[r.id]; !ok {
		m.byFeed[r.id.Feed] = append(m.byFeed[r.id.Feed], r)
		if r.op.Kind == OpPut || r.op.Kind == OpDelete {
			m.hist[r.op.Key] = append(m.hist[r.op.Key], r)
		}
	}
	m.ops[r.id] = r
	return nil
}

func (m *memStore) feedOps(k feed.PublicKey, fn func(r *opRec)) error {
	ops := m.byFeed[k]
	if !slices.IsSortedFunc(ops, func(a, b *opRec) int { return cmp.Compare(a.id.Index, b.id.Index) }) {
		panic("space: ops of a feed stored out of order")
	}
	for _, r := range ops {
		fn(r)
	}
	return nil
}

func (m *memStore) histories(keys []string, fn func(key string, hist []*opRec)) error {
	if keys == nil {
		keys = slices.Sorted(maps.Keys(m.hist))
	}
	for _, k := range keys {
		fn(k, m.hist[k])
	}
	return nil
}

func (m *memStore) register(key string) (*register, error) { return m.regs[key], nil }

func (m *memStore) putRegister(key string, reg *register) error {
	if _, ok := m.regs[key]; !ok {
		m.sorted = nil
	}
	m.regs[key] = reg
	return nil
}

func (m *memStore) failed() error { return nil }

// A view in memory has nothing to flush, and keeps whether ops count with
// them.
func (m *memStore) useCounts(func(OpID, Clock) bool) {}
func (m *memStore) needsFlush() bool                 { return false }
func (m *memStore) flushView(*View) error            { return nil }

func (m *memStore) names() []string {
	if m.sorted == nil {
		m.sorted = slices.Sorted(maps.Keys(m.regs))
	}
	return m.sorted
}
