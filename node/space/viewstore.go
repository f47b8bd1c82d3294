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
type viewStore interface {
	// putOp records a new op, or a change of whether it counts (which a
	// store may ignore).
	putOp(r *opRec)
	// op returns a membership or rotation op (nil if not applied).
	op(id OpID) *opRec
	// feedOps calls fn for every applied op of feed k, in index order. The
	// ops' clocks may lack their own feed's entry (see countsStale).
	feedOps(k feed.PublicKey, fn func(r *opRec))
	// histories calls fn with every applied op on each key of keys, key by
	// key in the order given (every key with ops, sorted, when keys is nil).
	// The ops' clocks may lack their own feed's entry (see countsStale).
	histories(keys []string, fn func(key string, hist []*opRec))
	register(key string) *register // nil if no op on the key counted yet
	putRegister(key string, reg *register)
	names() []string // keys with a register, sorted
	// failed returns the first error a read or write of the stored view
	// met (a record that does not open, a storage error), after which
	// reads may miss what that record held.
	failed() error
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

func (m *memStore) putOp(r *opRec) {
	if _, ok := m.ops[r.id]; !ok {
		m.byFeed[r.id.Feed] = append(m.byFeed[r.id.Feed], r)
		if r.op.Kind == OpPut || r.op.Kind == OpDelete {
			m.hist[r.op.Key] = append(m.hist[r.op.Key], r)
		}
	}
	m.ops[r.id] = r
}

func (m *memStore) feedOps(k feed.PublicKey, fn func(r *opRec)) {
	ops := m.byFeed[k]
	if !slices.IsSortedFunc(ops, func(a, b *opRec) int { return cmp.Compare(a.id.Index, b.id.Index) }) {
		panic("space: ops of a feed stored out of order")
	}
	for _, r := range ops {
		fn(r)
	}
}

func (m *memStore) histories(keys []string, fn func(key string, hist []*opRec)) {
	if keys == nil {
		keys = slices.Sorted(maps.Keys(m.hist))
	}
	for _, k := range keys {
		fn(k, m.hist[k])
	}
}

func (m *memStore) register(key string) *register { return m.regs[key] }

func (m *memStore) putRegister(key string, reg *register) {
	if _, ok := m.regs[key]; !ok {
		m.sorted = nil
	}
	m.regs[key] = reg
}

func (m *memStore) failed() error { return nil }

func (m *memStore) names() []string {
	if m.sorted == nil {
		m.sorted = slices.Sorted(maps.Keys(m.regs))
	}
	return m.sorted
}
