package feed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/mycelsync/mycel/feed/feedpb"
	"github.com/transparency-dev/merkle/compact"
)

// Ingest verifies a batch from a peer and stores it atomically. Verification
// comes first and is complete: the head's signature; its consistency with
// the latest head already held (from this replica's own tree, a run that
// reaches the current length, or the batch's consistency proof); and every
// run's proof against the head. Anything that fails leaves storage untouched
// and returns an error wrapping ErrBadSignature, ErrInvalidProof,
// ErrMalformed, ErrTooLarge or ErrNeedConsistency. What Batch.Verify
// checked already is not checked again.
//
// A head that conflicts with the held one is a fork: the evidence is stored,
// the feed is frozen, and a *ForkError is returned (errors.Is ErrFork).
//
// Entries already held are not written again. A batch larger than one
// storage commit is written in several, each consistent on its own.
func (f *Feed) Ingest(b *Batch) error {
	if b.Head.Key != f.key {
		return errorf(ErrWrongFeed, "batch for %x sent to %x", b.Head.Key[:8], f.key[:8])
	}
	v, err := b.verify()
	if err != nil {
		return err
	}
	// The consistency check adds nodes: keep v's (perhaps a Verify memo
	// that other ingests of the batch share) unchanged.
	nodes := v.nodes.clone()

	f.commitMu.Lock()
	defer f.commitMu.Unlock()
	f.mu.RLock()
	closed, ev := f.closed, f.evidence
	var ref *SignedHead
	if f.head != nil {
		h := *f.head
		ref = &h
	}
	consistent := f.head == nil && f.length == 0 || f.head != nil && f.head.Length == f.length
	refRange := cloneRange(f.frontier)
	f.mu.RUnlock()
	switch {
	case closed:
		return ErrClosed
	case ev != nil:
		return &ForkError{Evidence: ev, frozen: true}
	case !consistent:
		return fmt.Errorf("feed: %x holds entries not covered by a signed head; open it with DB.Writer first", f.key[:8])
	}

	frontier, err := f.checkConsistency(b, v.leaves, ref, refRange, nodes)
	if err != nil {
		return f.fail(err)
	}
	return f.store(b, frontier, nodes)
}

// Verify checks what a batch proves on its own, whatever the feed holds:
// its shape, its head's signature, and every run's proof against the head.
// Feed.Ingest does the same and more; a batch verified first keeps the
// result (entry hashes, proven tree nodes), which Ingest then reuses. So a
// caller can verify one batch while another is being written: Ingest holds
// the feed's commit lock, and with Verify done that time goes to checking
// consistency with the held head and to storage alone.
//
// Verify must not run concurrently with other uses of b, and b must not be
// changed after it: Ingest trusts the kept result as long as b's head and
// number of runs are those verified.
func (b *Batch) Verify() error {
	v, err := b.verify()
	if err != nil {
		return err
	}
	b.verified = v
	return nil
}

// verifiedBatch is the result of Batch.verify.
type verifiedBatch struct {
	head   SignedHead
	runs   int
	leaves [][][]byte // per run, the leaf hash of each entry
	nodes  *nodeSet   // tree nodes the runs prove
}

// verify returns b's kept verification or, without keeping it, verifies b:
// shape, head signature, run proofs. Each entry is hashed once, for the
// runs' proofs and for the consistency check.
func (b *Batch) verify() (*verifiedBatch, error) {
	if v := b.verified; v != nil && v.head == b.Head && v.runs == len(b.Runs) {
		return v, nil
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	if err := b.Head.Verify(); err != nil {
		return nil, err
	}
	v := &verifiedBatch{head: b.Head, runs: len(b.Runs), leaves: make([][][]byte, len(b.Runs)), nodes: newNodeSet()}
	for i := range b.Runs {
		v.leaves[i] = leafHashes(b.Runs[i].Entries)
		if err := verifyRun(&b.Runs[i], v.leaves[i], &b.Head, v.nodes); err != nil {
			return nil, fmt.Errorf("run %d: %w", i, err)
		}
	}
	return v, nil
}

// fail stores fork evidence when err is a fork, freezing the feed.
func (f *Feed) fail(err error) error {
	fe, ok := err.(*ForkError)
	if !ok {
		return err
	}
	data, merr := fe.Evidence.MarshalBinary()
	if merr != nil {
		return merr
	}
	if serr := f.db.st.Commit([]Write{{Key: evidenceKey(f.key), Value: data}}); serr != nil {
		return fmt.Errorf("feed: store fork evidence: %w (%w)", serr, err)
	}
	f.mu.Lock()
	f.evidence = fe.Evidence
	f.mu.Unlock()
	f.db.opts.Logger.Warn("feed: fork detected, feed frozen", "feed", fmt.Sprintf("%x", f.key[:8]),
		"a_length", fe.Evidence.A.Length, "b_length", fe.Evidence.B.Length)
	return err
}

// ImportEvidence verifies fork evidence passed on by a peer and, if it is
// about this feed and valid, stores it and freezes the feed.
func (f *Feed) ImportEvidence(ev *ForkEvidence) error {
	if ev.A.Key != f.key {
		return errorf(ErrWrongFeed, "evidence for %x sent to %x", ev.A.Key[:8], f.key[:8])
	}
	if err := VerifyEvidence(ev); err != nil {
		return err
	}
	f.commitMu.Lock()
	defer f.commitMu.Unlock()
	if f.Evidence() != nil {
		return nil
	}
	if err := f.fail(&ForkError{Evidence: ev}); !errors.Is(err, ErrFork) {
		return err // storing the evidence failed
	}
	return nil
}

// checkConsistency checks the batch's head against the held head ref (whose
// tree is refRange, [0, ref.Length)). When the batch's head is longer it
// returns the new head's frontier, the compact range of [0, head.Length).
func (f *Feed) checkConsistency(b *Batch, leaves [][][]byte, ref *SignedHead, refRange *compact.Range, nodes *nodeSet) (*compact.Range, error) {
	h := &b.Head
	n := h.Length
	var m uint64
	refRoot := emptyRoot
	if ref != nil {
		m, refRoot = ref.Length, ref.Root
	}
	switch {
	case n == m:
		if h.Root == refRoot {
			return nil, nil
		}
		return nil, &ForkError{Evidence: &ForkEvidence{A: *ref, B: *h}}

	case n > m:
		// The peer's view of [m, n), and of [0, m) for fork evidence.
		var right, peerLeft *compact.Range
		var err error
		if i := b.runReaching(m); i >= 0 {
			right, peerLeft, err = splitRun(&b.Runs[i], leaves[i], m, n)
		} else if m == 0 && len(b.Runs) > 0 {
			// Nothing held yet: any run proves the whole tree.
			right, _, _, err = wholeRange(&b.Runs[0], leaves[0], n, nil)
		} else if c := b.Consistency; c != nil && c.Base == m {
			if right, err = newRange(m, n, c.Right); err == nil {
				peerLeft, _ = newRange(0, m, c.Left)
			}
		} else {
			return nil, errorf(ErrNeedConsistency, "head %d is longer than held %d", n, m)
		}
		if err != nil {
			return nil, err
		}
		var visited []visitedNode
		full := cloneRange(refRange)
		if err := full.AppendRange(right, collect(&visited)); err != nil {
			return nil, errorf(ErrInvalidProof, "%v", err)
		}
		if rangeRoot(full) == h.Root {
			nodes.addVisited(visited)
			nodes.addRange(right)
			return full, nil
		}
		if ref != nil && peerLeft != nil {
			peer := cloneRange(peerLeft)
			if peer.AppendRange(right, nil) == nil && rangeRoot(peer) == h.Root {
				return nil, &ForkError{Evidence: &ForkEvidence{
					A: *ref, B: *h, Left: cloneHashes(peerLeft.Hashes()), Right: cloneHashes(right.Hashes()),
				}}
			}
		}
		return nil, errorf(ErrInvalidProof, "head %d does not extend held head %d", n, m)

	default: // n < m: the held tree says what the root at n must be.
		f.mu.RLock()
		left, lerr := f.rangeHashes(0, n)
		right, rerr := f.rangeHashes(n, m)
		f.mu.RUnlock()
		if lerr == nil && rerr == nil {
			l, err := newRange(0, n, left)
			if err != nil {
				return nil, err
			}
			if rangeRoot(l) == h.Root {
				return nil, nil
			}
			return nil, &ForkError{Evidence: &ForkEvidence{A: *h, B: *ref, Left: left, Right: right}}
		}
		c := b.Consistency
		if c == nil || c.Base != n {
			return nil, errorf(ErrNeedConsistency, "head %d is older than held %d and this replica lacks the nodes to check it", n, m)
		}
		l, err := newRange(0, n, c.Left)
		if err != nil {
			return nil, err
		}
		r, err := newRange(n, m, c.Right)
		if err != nil {
			return nil, err
		}
		whole := cloneRange(l)
		if whole.AppendRange(r, nil) != nil || rangeRoot(whole) != refRoot {
			return nil, errorf(ErrInvalidProof, "consistency proof does not reproduce held head %d", m)
		}
		if rangeRoot(l) != h.Root {
			return nil, &ForkError{Evidence: &ForkEvidence{A: *h, B: *ref, Left: cloneHashes(c.Left), Right: cloneHashes(c.Right)}}
		}
		nodes.addRange(l)
		nodes.addRange(r)
		return nil, nil
	}
}

// runReaching returns the index of a run with Start ≤ m ≤ End, or -1.
func (b *Batch) runReaching(m uint64) int {
	for i := range b.Runs {
		if r := &b.Runs[i]; r.Start <= m && m <= r.End() {
			return i
		}
	}
	return -1
}

// splitRun cuts a run (proven against a head of length n) at m into the
// compact ranges of [m, n) and [0, m).
func splitRun(r *Run, leaves [][]byte, m, n uint64) (right, left *compact.Range, err error) {
	left, err = newRange(0, r.Start, r.Left)
	if err != nil {
		return nil, nil, err
	}
	tail, err := newRange(r.End(), n, r.Right)
	if err != nil {
		return nil, nil, err
	}
	right = factory.NewEmptyRange(m)
	for i, lh := range leaves {
		target := left
		if r.Start+uint64(i) >= m {
			target = right
		}
		if err := target.Append(lh, nil); err != nil {
			return nil, nil, errorf(ErrInvalidProof, "%v", err)
		}
	}
	if err := right.AppendRange(tail, nil); err != nil {
		return nil, nil, errorf(ErrInvalidProof, "%v", err)
	}
	return right, left, nil
}

// wholeRange returns the compact range [0, n) a run (proven against a head
// of length n) implies, and its boundary ranges. visit, if not nil, sees
// every node the merge creates.
func wholeRange(r *Run, leaves [][]byte, n uint64, visit compact.VisitFn) (whole, left, right *compact.Range, err error) {
	if left, err = newRange(0, r.Start, r.Left); err != nil {
		return nil, nil, nil, err
	}
	if right, err = newRange(r.End(), n, r.Right); err != nil {
		return nil, nil, nil, err
	}
	whole = cloneRange(left)
	for _, lh := range leaves {
		if err := whole.Append(lh, visit); err != nil {
			return nil, nil, nil, errorf(ErrInvalidProof, "%v", err)
		}
	}
	if err := whole.AppendRange(right, visit); err != nil {
		return nil, nil, nil, errorf(ErrInvalidProof, "%v", err)
	}
	return whole, left, right, nil
}

// verifyRun checks a run against head h and records the tree nodes it
// proves.
func verifyRun(r *Run, leaves [][]byte, h *SignedHead, nodes *nodeSet) error {
	var visited []visitedNode
	whole, left, right, err := wholeRange(r, leaves, h.Length, collect(&visited))
	if err != nil {
		return err
	}
	if rangeRoot(whole) != h.Root {
		return errorf(ErrInvalidProof, "run [%d, %d) does not reproduce the root of head %d", r.Start, r.End(), h.Length)
	}
	nodes.addVisited(visited)
	nodes.addRange(left)
	nodes.addRange(right)
	return nil
}

// store writes a verified batch: the new head and frontier, the proven tree
// nodes, the entries not yet held and the ranges now held. The first commit
// carries the head and nodes; entries follow in commits of bounded size,
// each recording the ranges it completes, so a crash between two leaves a
// consistent state.
func (f *Feed) store(b *Batch, frontier *compact.Range, nodes *nodeSet) error {
	var writes []Write
	size := 0
	if frontier != nil {
		w := f.headRecordWrite(&b.Head, b.Head.Length, frontier)
		writes = append(writes, w)
		size += len(w.Key) + len(w.Value) + MaxPrefixSize
	}
	for _, n := range nodes.list {
		writes = append(writes, Write{Key: nodeKey(f.key, n.id), Value: n.hash})
		size += 2 + KeySize + 9 + HashSize + MaxPrefixSize
	}
	f.mu.RLock()
	held := f.held
	f.mu.RUnlock()

	first := true
	var added []Range
	flush := func() error {
		newHeld := held
		for _, r := range added {
			newHeld, writes = f.holdWrites(newHeld, r, writes)
		}
		if len(writes) == 0 {
			return nil
		}
		if err := f.db.st.Commit(writes); err != nil {
			return fmt.Errorf("feed: store batch: %w", err)
		}
		f.mu.Lock()
		if first && frontier != nil {
			h := b.Head
			f.head, f.length, f.frontier = &h, h.Length, frontier
			f.headDirty = false
		}
		f.held = newHeld
		f.mu.Unlock()
		held, writes, size, added, first = newHeld, nil, 0, nil, false
		return nil
	}

	const maxWrites = MaxCommitWrites - 2*maxRangeHashes
	// Leave room for the range records written with each commit.
	const maxIngestCommit = MaxCommitBytes - 64<<10
	for i := range b.Runs {
		r := &b.Runs[i]
		for _, miss := range held.missing(r.Start, r.End()) {
			// Entries of this gap may span several commits.
			start := miss.Start
			for j := miss.Start; j < miss.End; j++ {
				e := r.Entries[j-r.Start]
				k := entryKey(f.key, j)
				// Each write may grow by a namespace prefix (Prefixed).
				if size+len(k)+len(e)+MaxPrefixSize > maxIngestCommit || len(writes)+8 > maxWrites {
					if j > start {
						added = append(added, Range{start, j})
					}
					if err := flush(); err != nil {
						return err
					}
					start = j
				}
				writes = append(writes, Write{Key: k, Value: e})
				size += len(k) + len(e) + MaxPrefixSize
			}
			added = append(added, Range{start, miss.End})
		}
	}
	return flush()
}

// headRecordWrite encodes the stored state of the tree.
func (f *Feed) headRecordWrite(h *SignedHead, length uint64, frontier *compact.Range) Write {
	rec := &feedpb.HeadRecord{Length: length, Frontier: frontier.Hashes()}
	if h != nil {
		rec.Head = h.toProto()
	}
	data, err := rec.Marshal()
	if err != nil {
		panic(err) // encoding a well-formed message cannot fail
	}
	return Write{Key: headKey(f.key), Value: data}
}

type visitedNode struct {
	id   compact.NodeID
	hash []byte
}

// collect returns a visitor that records nodes worth storing: those at or
// above nodeStoreLevel (lower ones are recomputed from entries).
func collect(out *[]visitedNode) compact.VisitFn {
	return func(id compact.NodeID, hash []byte) {
		if id.Level >= nodeStoreLevel {
			*out = append(*out, visitedNode{id, hash})
		}
	}
}

// nodeSet gathers the tree nodes a batch proved, without duplicates.
type nodeSet struct {
	seen map[compact.NodeID]bool
	list []visitedNode
}

func newNodeSet() *nodeSet { return &nodeSet{seen: make(map[compact.NodeID]bool)} }

func (s *nodeSet) clone() *nodeSet {
	return &nodeSet{seen: maps.Clone(s.seen), list: slices.Clone(s.list)}
}

func (s *nodeSet) add(id compact.NodeID, hash []byte) {
	if !s.seen[id] {
		s.seen[id] = true
		s.list = append(s.list, visitedNode{id, append([]byte(nil), hash...)})
	}
}

func (s *nodeSet) addVisited(v []visitedNode) {
	for _, n := range v {
		s.add(n.id, n.hash)
	}
}

// addRange records the perfect subtrees of a compact range (proof hashes,
// which may cover entries this replica does not hold).
func (s *nodeSet) addRange(r *compact.Range) {
	ids := compact.RangeNodes(r.Begin(), r.End(), nil)
	for i, id := range ids {
		s.add(id, r.Hashes()[i])
	}
}

// holdWrites adds r to the ranges held and appends the storage writes
// that record it: the merged range's record, and deletes of the records it
// replaced.
func (f *Feed) holdWrites(held rangeSet, r Range, writes []Write) (rangeSet, []Write) {
	held, removed, merged := held.add(r.Start, r.End)
	for _, old := range removed {
		if old.Start != merged.Start {
			writes = append(writes, Write{Key: rangeKey(f.key, old.Start), Delete: true})
		}
	}
	end := binary.BigEndian.AppendUint64(nil, merged.End)
	return held, append(writes, Write{Key: rangeKey(f.key, merged.Start), Value: end})
}
