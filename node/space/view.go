package space

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mycelsync/mycel/feed"
)

// Seen is one entry of an op's causal delta: the writer had seen the first
// Length entries of Feed.
type Seen struct {
	Feed   feed.PublicKey
	Length uint64
}

// OpKind says what an op does.
type OpKind uint8

// The kinds of op.
const (
	OpPut OpKind = iota + 1
	OpDelete
	OpAddWriter
	OpRemoveWriter
	OpRotate
)

// Op is a decrypted op as the view applies it.
type Op struct {
	Kind OpKind
	// Seen lists the feeds whose seen length changed since the writer's
	// previous op (the causal delta).
	Seen []Seen
	// HLC is the hybrid logical clock: (Unix ms << 16) | counter.
	HLC uint64
	// Key and Value for put and delete.
	Key   string
	Value []byte
	// Target for add-writer and remove-writer.
	Target feed.PublicKey
	// Add-writer: the new device's name, its HPKE public key (auth device
	// key bytes) and the space's keyring sealed to it.
	Name          string
	DevicePublic  []byte
	SealedKeyring []byte
	// Rotation, on a rotate op or a remove-writer op: a new epoch secret
	// sealed to each remaining member.
	Rotation *Rotation

	invalid string // set by ApplyInvalid: why the entry could not be read
}

// Rotation starts a new epoch: its secret, named by KeyID, sealed to each
// member that remains (auth.SealEpochSecret).
type Rotation struct {
	Epoch uint32
	KeyID [16]byte
	Boxes []SealedSecret
}

// SealedSecret is an epoch secret sealed to one member's device key.
type SealedSecret struct {
	Feed feed.PublicKey
	Box  []byte
}

// Version is one value of a key: a put or a delete op that no other
// counting op on the key causally follows.
type Version struct {
	ID      OpID
	HLC     uint64
	Value   []byte
	Deleted bool
}

// opRec is an applied op.
type opRec struct {
	id    OpID
	clock Clock
	hlc   uint64
	op    *Op
	count bool   // counts under the current writer set
	seq   uint64 // place in a kvStore's op log; 0 until logged
}

type feedState struct {
	applied uint64 // ops applied from this feed (the next index to apply)
	clock   Clock  // cumulative causal context after the last applied op
	hlc     uint64
}

// Invalid records an op that was refused, for diagnosis.
type Invalid struct {
	ID     OpID
	Reason string
}

// Change is reported for every key whose versions changed.
type Change struct {
	Key      string
	Versions []Version // new versions, winner first; empty when none
}

// View is the key-value view of a space: a multi-value register per key,
// maintained incrementally as ops arrive, under the writer-set rules. It is
// a pure state machine: Apply takes ops, in any order, and returns the
// changes; it holds ops whose causal past has not arrived yet.
//
// Two views that were given the same ops hold the same versions of every
// key and the same Digest, whatever order the ops came in.
//
// A view kept in storage (OpenView) writes and reads it as it applies ops.
// When the storage fails, Apply (or Flush) returns the error and the view
// stops: it may hold the op that met the failure partly applied, so every
// later Apply and Flush returns the same error and Err reports it. The
// caller opens the view again from what its storage last committed and
// gives it again the ops after Applied (Space does so at its next use).
type View struct {
	origin  feed.PublicKey
	st      viewStore
	feeds   map[feed.PublicKey]*feedState
	members []MemberOp
	special []*opRec // membership and rotation ops, in the order applied
	ws      *WriterSet
	waiting map[OpID]*pendingOp
	blocked map[feed.PublicKey][]OpID // waiting ops by the feed they wait for
	invalid []Invalid                 // the latest refusals, at most maxInvalid
	// invalidTotal counts every refusal; voided the data ops that counted
	// until a removal voided them; notCounting the valid ops that do not
	// count now (by non-writers, before their add, or voided).
	invalidTotal, voided, notCounting int

	sum  digestSum // of every register: Digest
	live int       // keys whose winner is not a delete
	gen  uint64    // counts the calls to Apply: what depends on the view is computed again when it moved
	err  error     // the storage error that stopped the view (stop)
	// readErr is the first error a read for Get met: the store may be
	// damaged, and the view writes nothing more (Flush stops it).
	readErr error

	dirty   map[string]bool // Apply's keys changed, empty between calls
	hashBuf []byte          // appendRegisterHash's bytes, reused
}

// register is what the view keeps of a key: its versions, the counting ops
// no other counting op on the key follows. (The history of every op on the
// key is in the store, for recomputing.)
type register struct {
	versions []*opRec
	seq      uint64 // kvStore: the register reflects the ops logged up to seq
}

type pendingOp struct {
	id OpID
	op *Op
}

// NewView returns an empty view of the space whose origin feed is origin,
// kept in memory.
func NewView(origin feed.PublicKey) *View {
	return newView(origin, newMemStore())
}

func newView(origin feed.PublicKey, st viewStore) *View {
	v := &View{
		origin:  origin,
		st:      st,
		feeds:   make(map[feed.PublicKey]*feedState),
		waiting: make(map[OpID]*pendingOp),
		blocked: make(map[feed.PublicKey][]OpID),
	}
	v.ws = Resolve(origin, nil)
	st.useCounts(func(id OpID, c Clock) bool { return countsStale(v.ws, id, c) })
	return v
}

// stop records the storage error that stops the view and returns it.
func (v *View) stop(err error) error {
	if v.err == nil {
		v.err = fmt.Errorf("%w: %w", ErrViewStorage, err)
	}
	return v.err
}

// countsStale is ws.Counts for an op whose clock may lack, or hold a stale
// (lower), entry for the op's own feed, as the clocks a kvStore reads back
// share: that entry matters only when the author was added by an op of its
// own feed.
func countsStale(ws *WriterSet, id OpID, c Clock) bool {
	for _, a := range ws.adds[id.Feed] {
		if a.Feed == id.Feed && c[id.Feed] != id.Index {
			c = maps.Clone(c)
			c[id.Feed] = id.Index
			break
		}
	}
	return ws.Counts(id, c)
}

func (v *View) feed(k feed.PublicKey) *feedState {
	f := v.feeds[k]
	if f == nil {
		f = &feedState{clock: Clock{}}
		v.feeds[k] = f
	}
	return f
}

// waitingFrom returns how many consecutive ops of feed k, from the first
// not applied, are already given and waiting.
func (v *View) waitingFrom(k feed.PublicKey) int {
	n := 0
	for i := v.Applied(k); v.waiting[OpID{Feed: k, Index: i}] != nil; i++ {
		n++
	}
	return n
}

// Applied returns how many ops of feed k have been applied.
func (v *View) Applied(k feed.PublicKey) uint64 {
	if f := v.feeds[k]; f != nil {
		return f.applied
	}
	return 0
}

// Invalid returns the ops refused so far and why.
func (v *View) Invalid() []Invalid { return slices.Clone(v.invalid) }

// Waiting returns how many ops wait for their causal past.
func (v *View) Waiting() int { return len(v.waiting) }

// Stuck is an op that waits for entries of another feed, which may never
// come (a causal context pointing past what exists).
type Stuck struct {
	ID     OpID
	Feed   feed.PublicKey // the feed it waits for
	Length uint64         // the length of that feed it needs
}

// Diagnostics says what the view holds back or refused.
type Diagnostics struct {
	Invalid      []Invalid // the latest refusals, with reasons
	InvalidTotal int       // every refusal
	Waiting      int       // ops waiting for their causal past
	Stuck        []Stuck   // the first waiting op of each feed blocked on another
	NotCounting  int       // valid ops that do not count: non-writers', voided
	Voided       int       // data ops that counted until a removal voided them
}

// Diagnostics returns what the view holds back or refused.
func (v *View) Diagnostics() Diagnostics {
	d := Diagnostics{Invalid: slices.Clone(v.invalid), InvalidTotal: v.invalidTotal,
		Waiting: len(v.waiting), NotCounting: v.notCounting, Voided: v.voided}
	for k, st := range v.feeds {
		p := v.waiting[OpID{Feed: k, Index: st.applied}]
		if p == nil {
			continue
		}
		if dep, ok := v.unmet(p); ok {
			for _, s := range p.op.Seen {
				if s.Feed == dep {
					d.Stuck = append(d.Stuck, Stuck{ID: p.id, Feed: dep, Length: s.Length})
				}
			}
		}
	}
	slices.SortFunc(d.Stuck, func(a, b Stuck) int { return a.ID.compare(b.ID) })
	return d
}

// WriterSet returns the writer set the view currently applies.
func (v *View) WriterSet() *WriterSet { return v.ws }

// Apply takes the op at index of feed k. It is applied as soon as every op
// in its causal past has been; ops it unblocks are applied too. It returns
// the keys whose versions changed. An error is the view's storage failing
// (ErrViewStorage): the view has stopped (see View).
func (v *View) Apply(k feed.PublicKey, index uint64, op *Op) ([]Change, error) {
	if v.err != nil {
		return nil, v.err
	}
	id := OpID{Feed: k, Index: index}
	v.gen++
	if index < v.Applied(k) {
		return nil, nil // already applied
	}
	v.waiting[id] = &pendingOp{id: id, op: op}
	if v.dirty == nil {
		v.dirty = make(map[string]bool)
	}
	dirty := v.dirty // emptied before Apply returns: one map for every op
	defer clear(dirty)
	if err := v.drain(k, dirty); err != nil {
		return nil, v.stop(err)
	}
	return v.changes(dirty), nil
}

// ApplyInvalid takes the place of an entry that could not be decoded or
// decrypted: it never counts, and it is recorded with reason, but the
// writer's later ops are applied after it.
func (v *View) ApplyInvalid(k feed.PublicKey, index uint64, reason string) ([]Change, error) {
	return v.Apply(k, index, &Op{invalid: reason})
}

// drain applies every waiting op that has become ready, starting from feed k.
// An op that waits for another feed is filed under that feed in v.blocked
// and looked at again only when that feed advances.
func (v *View) drain(k feed.PublicKey, dirty map[string]bool) error {
	queue := []feed.PublicKey{k}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		for {
			st := v.feed(f)
			p := v.waiting[OpID{Feed: f, Index: st.applied}]
			if p == nil {
				break
			}
			if dep, ok := v.unmet(p); ok {
				v.blocked[dep] = append(v.blocked[dep], p.id)
				break
			}
			delete(v.waiting, p.id)
			if err := v.apply(p, dirty); err != nil {
				return err
			}
			if err := v.maybeFlush(); err != nil {
				return err
			}
			if ids := v.blocked[f]; len(ids) > 0 {
				delete(v.blocked, f)
				for _, id := range ids {
					queue = append(queue, id.Feed)
				}
			}
		}
	}
	return nil
}

// unmet returns a feed p waits for, if any.
func (v *View) unmet(p *pendingOp) (feed.PublicKey, bool) {
	for _, s := range p.op.Seen {
		if s.Feed != p.id.Feed && v.Applied(s.Feed) < s.Length {
			return s.Feed, true
		}
	}
	return feed.PublicKey{}, false
}

func (v *View) apply(p *pendingOp, dirty map[string]bool) error {
	st := v.feed(p.id.Feed)
	st.applied++
	if reason := v.check(st, p); reason != "" {
		// The op still takes its place in the feed, so that the writer's
		// later ops are not stuck behind it; it never counts.
		v.invalidTotal++
		if len(v.invalid) == maxInvalid {
			v.invalid = v.invalid[1:]
		}
		v.invalid = append(v.invalid, Invalid{ID: p.id, Reason: reason})
		return nil
	}
	// A feed's clock is never changed in place: ops share it until an op's
	// causal delta adds to it.
	clock := st.clock
	for _, s := range p.op.Seen {
		if clock[s.Feed] < s.Length {
			clock = maps.Clone(st.clock)
			for _, s := range p.op.Seen {
				clock[s.Feed] = max(clock[s.Feed], s.Length)
			}
			break
		}
	}
	st.clock = clock
	st.hlc = p.op.HLC
	own := maps.Clone(clock)
	own[p.id.Feed] = p.id.Index
	r := &opRec{id: p.id, clock: own, hlc: p.op.HLC, op: p.op}

	switch p.op.Kind {
	case OpAddWriter, OpRemoveWriter:
		if len(r.op.SealedKeyring) > 0 {
			// The keyring was opened before the op was applied, if it was
			// sealed to this device; the view keeps what it needs of the
			// op, not every approval's keyring (up to MaxSealedKeyringSize
			// each).
			op := *r.op
			op.SealedKeyring = nil
			r.op = &op
		}
		m := MemberOp{ID: p.id, Clock: own, HLC: p.op.HLC, Remove: p.op.Kind == OpRemoveWriter, Target: p.op.Target}
		v.members = append(v.members, m)
		v.special = append(v.special, r)
		v.notCounting++ // until rewrite finds that it counts
		if err := v.st.putOp(r); err != nil {
			return err
		}
		if v.ws.Add(m, v.members) {
			// Applied alone: only this op's count can have changed.
			if v.ws.Counts(r.id, r.clock) {
				r.count = true
				v.notCounting--
				return v.st.putOp(r)
			}
			return nil
		}
		return v.rewrite(dirty)
	case OpPut, OpDelete:
		r.count = v.ws.Counts(r.id, r.clock)
		if err := v.st.putOp(r); err != nil {
			return err
		}
		if r.count {
			// Causal delivery: nothing applied before follows r, so r is a
			// version, and it replaces the versions it follows.
			reg, err := v.st.register(p.op.Key)
			if err != nil {
				return err
			}
			if reg == nil {
				reg = &register{}
			}
			before := v.share(p.op.Key, reg.versions)
			reg.versions = slices.DeleteFunc(reg.versions, func(x *opRec) bool { return own.sees(x.id) && !final(x.op) })
			reg.versions = append(reg.versions, r)
			v.account(p.op.Key, before, reg.versions)
			if err := v.st.putRegister(p.op.Key, reg); err != nil {
				return err
			}
			dirty[p.op.Key] = true
		}
	default:
		r.count = v.ws.Counts(r.id, r.clock)
		if p.op.Rotation != nil {
			v.special = append(v.special, r)
		}
		if err := v.st.putOp(r); err != nil {
			return err
		}
	}
	if !r.count {
		v.notCounting++
	}
	return nil
}

// check validates an op against its feed's state; "" means valid.
func (v *View) check(st *feedState, p *pendingOp) string {
	op := p.op
	if op.invalid != "" {
		return op.invalid
	}
	switch op.Kind {
	case OpPut, OpDelete, OpAddWriter, OpRemoveWriter, OpRotate:
	default:
		return fmt.Sprintf("unknown op kind %d", op.Kind)
	}
	if op.HLC <= st.hlc {
		return fmt.Sprintf("clock %d not after the feed's previous op (%d)", op.HLC, st.hlc)
	}
	for _, s := range op.Seen {
		if s.Feed == p.id.Feed {
			return "causal context names the op's own feed"
		}
	}
	return ""
}

// rewrite recomputes the writer set after a membership op and re-evaluates
// the ops of every writer whose adds or removals changed.
func (v *View) rewrite(dirty map[string]bool) error {
	old := v.ws
	v.ws = Resolve(v.origin, v.members)
	recompute := map[string]bool{}
	var changed []feed.PublicKey
	for k := range v.feeds {
		if !sameTreatment(old, v.ws, k) {
			changed = append(changed, k)
		}
	}
	slices.SortFunc(changed, func(a, b feed.PublicKey) int { return OpID{Feed: a}.compare(OpID{Feed: b}) })
	var ferr error // the first error in a callback
	for _, k := range changed {
		err := v.st.feedOps(k, func(r *opRec) {
			if ferr != nil || r.op.Kind != OpPut && r.op.Kind != OpDelete {
				return // membership and rotation ops: below
			}
			// A stored op does not say whether it counted: old says.
			was, now := countsStale(old, r.id, r.clock), countsStale(v.ws, r.id, r.clock)
			r.count = now
			if now == was {
				return
			}
			if !now {
				v.voided++
				v.notCounting++
			} else {
				v.notCounting--
			}
			ferr = v.st.putOp(r)
			recompute[r.op.Key] = true
		})
		if err := cmp.Or(err, ferr); err != nil {
			return err
		}
	}
	for _, r := range v.special {
		if now := v.ws.Counts(r.id, r.clock); now != r.count {
			r.count = now
			if now {
				v.notCounting--
			} else {
				v.notCounting++
			}
			if err := v.st.putOp(r); err != nil {
				return err
			}
		}
	}
	err := v.st.histories(slices.Sorted(maps.Keys(recompute)), func(key string, hist []*opRec) {
		if ferr != nil {
			return
		}
		old, err := v.st.register(key)
		if err != nil {
			ferr = err
			return
		}
		var before share
		if old != nil {
			before = v.share(key, old.versions)
		}
		reg := v.recompute(hist)
		v.account(key, before, reg.versions)
		ferr = v.st.putRegister(key, reg)
		dirty[key] = true
	})
	return cmp.Or(err, ferr)
}

// recompute rebuilds a key's versions from its history: the counting ops
// no other counting op follows, and the final ones (see final). Needed when a removal voids ops (which may
// bring back the versions they had replaced) or a voided op counts again.
// An op x is followed when some counting op's clock covers it, that is
// when the largest clock[x.Feed] among the counting ops exceeds x.Index
// (an op's clock covers the earlier ops of its own feed, whatever its
// entry for that feed says).
func (v *View) recompute(hist []*opRec) *register {
	var counting []*opRec
	for _, r := range hist {
		if countsStale(v.ws, r.id, r.clock) {
			counting = append(counting, r)
		}
	}
	reach := map[feed.PublicKey]uint64{}
	for _, z := range counting {
		for f, n := range z.clock {
			reach[f] = max(reach[f], n)
		}
		reach[z.id.Feed] = max(reach[z.id.Feed], z.id.Index)
	}
	reg := &register{}
	for _, x := range counting {
		if reach[x.id.Feed] <= x.id.Index || final(x.op) {
			reg.versions = append(reg.versions, x)
		}
	}
	return reg
}

// sameTreatment reports whether two writer sets judge feed k's ops alike.
func sameTreatment(a, b *WriterSet, k feed.PublicKey) bool {
	return slices.Equal(a.adds[k], b.adds[k]) && slices.EqualFunc(a.removals[k], b.removals[k],
		func(x, y MemberOp) bool { return x.ID == y.ID })
}

// sorted returns the versions winner first: highest HLC, then highest feed
// key, then highest index.
func (reg *register) sorted() []Version {
	out := make([]Version, 0, len(reg.versions))
	for _, r := range reg.versions {
		out = append(out, Version{ID: r.id, HLC: r.hlc, Value: r.op.Value, Deleted: r.op.Kind == OpDelete})
	}
	slices.SortFunc(out, func(a, b Version) int {
		if c := cmp.Compare(b.HLC, a.HLC); c != 0 {
			return c
		}
		return b.ID.compare(a.ID)
	})
	return out
}

func (v *View) changes(dirty map[string]bool) []Change {
	if len(dirty) == 1 { // most ops: no sort
		for k := range dirty {
			return []Change{{Key: k, Versions: v.Get(k)}}
		}
	}
	keys := slices.Sorted(maps.Keys(dirty))
	out := make([]Change, 0, len(keys))
	for _, k := range keys {
		out = append(out, Change{Key: k, Versions: v.Get(k)})
	}
	return out
}

// Device is what an accepted add-writer op says about a device.
type Device struct {
	Feed   feed.PublicKey
	Name   string
	Public []byte // auth device public key
	Added  OpID
}

// Devices returns the current writers with what their add said, most
// senior first.
func (v *View) Devices() []Device {
	var out []Device
	for _, k := range v.ws.Writers() {
		d := Device{Feed: k}
		for _, id := range v.ws.adds[k] {
			if r := v.specialOp(id); r != nil {
				d.Name, d.Public, d.Added = r.op.Name, r.op.DevicePublic, id
				break
			}
		}
		out = append(out, d)
	}
	return out
}

func (v *View) specialOp(id OpID) *opRec {
	for _, r := range v.special {
		if r.id == id {
			return r
		}
	}
	return nil
}

// Err returns the error that stopped the view (see View), or else the
// first error a read of its storage met: after one, reads may miss what
// the failed record held, so they must not be answered as whole.
func (v *View) Err() error { return cmp.Or(v.err, v.damage()) }

// damage returns the first error a read that answers a caller met.
func (v *View) damage() error { return cmp.Or(v.readErr, v.st.failed()) }

// Get returns the versions of key, winner first. The key has a value when
// the winner is not a delete; more than one version means concurrent
// writes (siblings). A register that does not load answers nil, and Err
// reports it.
func (v *View) Get(key string) []Version {
	reg, err := v.st.register(key)
	if err != nil {
		v.readErr = cmp.Or(v.readErr, err)
		return nil
	}
	if reg == nil {
		return nil
	}
	return reg.sorted()
}

// List returns up to limit keys with prefix after the key `after`, in
// order, whose winning version is not a delete.
func (v *View) List(prefix, after string, limit int) []string {
	var out []string
	names := v.st.names()
	i, _ := slices.BinarySearch(names, max(prefix, after))
	for _, k := range names[i:] {
		if !strings.HasPrefix(k, prefix) {
			break
		}
		if k <= after || hidden(k, prefix) {
			continue
		}
		if vs := v.Get(k); len(vs) > 0 && !vs[0].Deleted {
			out = append(out, k)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}
