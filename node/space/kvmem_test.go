package space

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
)

// discardStore keeps nothing: a view over it holds in memory only what
// the kvStore keeps itself.
type discardStore struct{}

func (discardStore) Get([]byte) ([]byte, error)                         { return nil, feed.ErrNotFound }
func (discardStore) Scan([]byte, []byte, func(k, v []byte) error) error { return nil }
func (discardStore) Commit([]feed.Write) error                          { return nil }
func (discardStore) Close() error                                       { return nil }

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestViewDirtyRegisterMemory: the registers a persisted view keeps in
// memory until a checkpoint do not hold each version's causal context (a
// map per op, as large as the number of writers): with 10 writers, the
// heap per dirty register stays under 400 bytes besides the ops
// themselves (it was over 1,000).
func TestViewDirtyRegisterMemory(t *testing.T) {
	origin, ops := benchWorkload(40_000)
	v, err := OpenView(origin, discardStore{}, [auth.KeySize]byte{1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kv := v.st.(*kvStore)
	kv.lim.dirtyMax, kv.lim.dirtyBytes = 1<<30, 1<<30
	kv.lim.checkpointOps, kv.lim.checkpointBytes = 1<<30, 1<<30
	for _, g := range ops[:10] { // the writers' adds
		v.Apply(g.feed, g.index, g.op)
	}
	if err := v.Flush(); err != nil { // a checkpoint: membership ops
		t.Fatal(err)
	}
	before := liveHeap()
	for _, g := range ops[10:] {
		v.Apply(g.feed, g.index, g.op)
	}
	if err := v.Flush(); err != nil { // drops the ops kept until a flush
		t.Fatal(err)
	}
	if kv.ckpt != 10 {
		t.Fatalf("checkpoint at %d", kv.ckpt)
	}
	per := float64(liveHeap()-before) / float64(len(kv.dirty))
	t.Logf("%d dirty registers, %.0f bytes each", len(kv.dirty), per)
	if len(kv.dirty) < 20_000 || per > 400 {
		t.Fatalf("%d dirty registers of %.0f bytes each; want ≥ 20,000 of ≤ 400", len(kv.dirty), per)
	}
	runtime.KeepAlive(ops)
}

// TestViewRegistersBoundedByBytes: large values fill the dirty registers'
// and the cache's byte budgets long before their counts: a checkpoint
// comes when the dirty ones reach theirs, the cache evicts, and the view
// read back is the same.
func TestViewRegistersBoundedByBytes(t *testing.T) {
	st := memstore.New()
	origin := feed.PublicKey{1}
	key := [auth.KeySize]byte{9}
	v, _ := OpenView(origin, st, key, nil)
	kv := v.st.(*kvStore)
	kv.lim.dirtyBytes, kv.lim.regCacheBytes = 256<<10, 256<<10
	v.Apply(origin, 0, &Op{Kind: OpAddWriter, Target: origin, HLC: 1})
	const size = 16 << 10
	values := func(m map[string]memReg) (n int) {
		for _, r := range m {
			for _, x := range r.reg.versions {
				n += len(x.op.Value)
			}
		}
		return n
	}
	for i := range 300 {
		value := bytes.Repeat([]byte{byte(i)}, size)
		v.Apply(origin, uint64(1+i), &Op{Kind: OpPut, Key: fmt.Sprint("k", i%150), Value: value, HLC: uint64(2 + i)})
		if n := values(kv.dirty); n > kv.lim.dirtyBytes+size {
			t.Fatalf("after %d puts: %d bytes of values in dirty registers, limit %d", i+1, n, kv.lim.dirtyBytes)
		}
		if n := values(kv.regs); n > kv.lim.regCacheBytes {
			t.Fatalf("after %d puts: %d bytes of values in cached registers, limit %d", i+1, n, kv.lim.regCacheBytes)
		}
	}
	if kv.ckpt == 0 {
		t.Fatal("no checkpoint")
	}
	for i := range 150 {
		v.Get(fmt.Sprint("k", i)) // fills the cache
		if n := values(kv.regs); n > kv.lim.regCacheBytes {
			t.Fatalf("%d bytes of values in cached registers, limit %d", n, kv.lim.regCacheBytes)
		}
	}
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	want := v.Digest()
	again, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest() != want {
		t.Fatal("reopened view differs")
	}
	if got := again.Get("k7"); len(got) != 1 || got[0].Value[0] != 157 {
		t.Fatalf("k7 = %v", got)
	}
	checkAccount(t, again)
}

// TestViewQuietFlushCheckpoints: a flush with nothing new to write (a
// Close, or a Refresh that applied nothing) makes a checkpoint when the
// log has a tail, so that the next open holds no tail ops in memory; also
// right after an open that read a tail.
func TestViewQuietFlushCheckpoints(t *testing.T) {
	st := memstore.New()
	origin := feed.PublicKey{1}
	key := [auth.KeySize]byte{9}
	v, _ := OpenView(origin, st, key, nil)
	v.Apply(origin, 0, &Op{Kind: OpAddWriter, Target: origin, HLC: 1})
	if err := v.Flush(); err != nil { // checkpoint: a membership op
		t.Fatal(err)
	}
	put := func(v *View, from, to int) {
		for i := from; i < to; i++ {
			v.Apply(origin, uint64(i), &Op{Kind: OpPut, Key: fmt.Sprint("k", i%30), Value: []byte(fmt.Sprint(i)), HLC: uint64(1 + i)})
		}
	}
	put(v, 1, 101)
	if err := v.Flush(); err != nil { // no checkpoint
		t.Fatal(err)
	}
	kv := v.st.(*kvStore)
	if kv.ckpt != 1 || kv.flushed != 101 {
		t.Fatalf("checkpoint %d, log %d; want 1, 101", kv.ckpt, kv.flushed)
	}
	// A crash here: the next open holds the tail.
	want := v.Digest()
	again, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kv := again.st.(*kvStore); len(kv.pending) != 30 {
		t.Fatalf("%d keys pending after open, want 30", len(kv.pending))
	}
	if err := again.Flush(); err != nil { // quiet
		t.Fatal(err)
	}
	if kv := again.st.(*kvStore); kv.ckpt != 101 || len(kv.pending) != 0 || len(kv.dirty) != 0 {
		t.Fatalf("after a quiet flush: checkpoint %d, %d pending, %d dirty; want 101, 0, 0", kv.ckpt, len(kv.pending), len(kv.dirty))
	}
	third, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kv := third.st.(*kvStore); len(kv.pending) != 0 || kv.ckpt != 101 {
		t.Fatalf("reopened: %d keys pending, checkpoint %d", len(kv.pending), kv.ckpt)
	}
	if third.Digest() != want {
		t.Fatal("reopened view differs")
	}

	// Ops, a flush, then a quiet one (a Close after a Refresh).
	put(third, 101, 151)
	if err := third.Flush(); err != nil {
		t.Fatal(err)
	}
	if kv := third.st.(*kvStore); kv.ckpt != 101 {
		t.Fatalf("checkpoint %d, want 101", kv.ckpt)
	}
	want = third.Digest()
	if err := third.Flush(); err != nil {
		t.Fatal(err)
	}
	fourth, err := OpenView(origin, st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kv := fourth.st.(*kvStore); len(kv.pending) != 0 || kv.ckpt != 151 || kv.flushed != 151 {
		t.Fatalf("after a quiet flush: %d keys pending, checkpoint %d, log %d", len(kv.pending), kv.ckpt, kv.flushed)
	}
	if fourth.Digest() != want {
		t.Fatal("reopened view differs")
	}
	if vs := fourth.Get("k3"); len(vs) != 1 || string(vs[0].Value) != "123" {
		t.Fatalf("k3 = %v", vs)
	}
}

// TestHashSet: the set of stored registers' key hashes answers for every
// hash added, before and after its merges, and for none other (but for a
// shared 8-byte prefix).
func TestHashSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hash := func() []byte { return binary.BigEndian.AppendUint64(nil, rng.Uint64()) }
	h := &hashSet{}
	for range 1000 {
		h.sorted = append(h.sorted, binary.BigEndian.Uint64(hash()))
	}
	slices.Sort(h.sorted)
	in := [][]byte{}
	for _, x := range h.sorted {
		in = append(in, binary.BigEndian.AppendUint64(nil, x))
	}
	for i := range 20_000 {
		x := hash()
		h.add(x)
		in = append(in, x)
		if i%7 == 0 {
			h.add(in[rng.IntN(len(in))]) // again
		}
		if i%1000 == 0 {
			for _, x := range in {
				if !h.has(x) {
					t.Fatalf("after %d adds: %x missing", i+1, x)
				}
			}
			for range 1000 {
				if x := hash(); h.has(x) {
					t.Fatalf("%x never added is there", x)
				}
			}
		}
	}
	h.merge()
	if len(h.sorted) != len(in) || !slices.IsSorted(h.sorted) {
		t.Fatalf("%d prefixes after the merge, want %d, sorted", len(h.sorted), len(in))
	}
}

// TestViewCachedRegisterKeepsFinal: a used invite record stays a version
// when a later op on its key follows it (final), also when its register
// was written at a checkpoint and is read back from the cache: the copy
// kept in memory keeps the op's key, which final reads (it was dropped).
func TestViewCachedRegisterKeepsFinal(t *testing.T) {
	origin := feed.PublicKey{1}
	invite := func(used bool) []byte {
		rec := auth.InviteRecord{ID: auth.InviteID{7}, Expires: time.Unix(2_000_000_000, 0)}
		if used {
			if err := rec.MarkUsed([32]byte{3}); err != nil {
				t.Fatal(err)
			}
		}
		b, err := rec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	}
	key := invitePrefix + auth.InviteID{7}.String()
	ops := []genOp{
		{origin, 0, &Op{Kind: OpAddWriter, Target: origin, HLC: 1}},
		{origin, 1, &Op{Kind: OpPut, Key: key, Value: invite(true), HLC: 2}},
		{origin, 2, &Op{Kind: OpPut, Key: key, Value: invite(false), HLC: 3}},
	}
	v, _ := OpenView(origin, memstore.New(), [auth.KeySize]byte{9}, nil)
	for _, g := range ops[:2] {
		v.Apply(g.feed, g.index, g.op)
	}
	if err := v.Flush(); err != nil { // a checkpoint: a membership op
		t.Fatal(err)
	}
	kv := v.st.(*kvStore)
	if _, ok := kv.regs[key]; !ok || kv.ckpt != 2 {
		t.Fatalf("register not cached after the checkpoint (checkpoint %d)", kv.ckpt)
	}
	v.Apply(ops[2].feed, ops[2].index, ops[2].op)
	if got := v.Get(key); len(got) != 2 {
		t.Fatalf("%d versions of the invite, want 2 (the used record is final)", len(got))
	}
	mem := NewView(origin)
	for _, g := range ops {
		mem.Apply(g.feed, g.index, g.op)
	}
	if v.Digest() != mem.Digest() {
		t.Fatalf("view differs from the same in memory (%d versions there)", len(mem.Get(key)))
	}
}
