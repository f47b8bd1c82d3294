package feed

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// nodeHash returns the hash of the perfect subtree node id, from (in order)
// the in-memory frontier, the entries beneath it when it is low enough to
// recompute cheaply, the stored nodes, or its children. The caller holds
// f.mu for reading.
func (f *Feed) nodeHash(id compact.NodeID) ([]byte, error) {
	begin, end := id.Coverage()
	if end > f.length {
		return nil, errorf(ErrOutOfRange, "node %s beyond length %d", nodeName(id), f.length)
	}
	fids := compact.RangeNodes(0, f.length, nil)
	for i, fid := range fids {
		if fid == id {
			return f.frontier.Hashes()[i], nil
		}
	}
	if id.Level <= nodeStoreLevel && f.held.covers(begin, end) {
		return f.subtreeFromEntries(begin, end)
	}
	v, err := f.db.st.Get(nodeKey(f.key, id))
	switch {
	case err == nil:
		if len(v) != HashSize {
			return nil, fmt.Errorf("feed: stored node %s of %d bytes", nodeName(id), len(v))
		}
		return v, nil
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("feed: read node %s: %w", nodeName(id), err)
	}
	if id.Level == 0 || id.Level > nodeStoreLevel {
		// Leaves come from entries (handled above); higher nodes are always
		// stored when known, so this one is not.
		return nil, errorf(ErrNotHeld, "tree node %s", nodeName(id))
	}
	l, err := f.nodeHash(compact.NewNodeID(id.Level-1, id.Index*2))
	if err != nil {
		return nil, err
	}
	r, err := f.nodeHash(compact.NewNodeID(id.Level-1, id.Index*2+1))
	if err != nil {
		return nil, err
	}
	return hasher.HashChildren(l, r), nil
}

// subtreeFromEntries hashes the held entries [begin, end), a perfect subtree.
func (f *Feed) subtreeFromEntries(begin, end uint64) ([]byte, error) {
	r := factory.NewEmptyRange(begin)
	var n uint64
	err := f.db.st.Scan(entryKey(f.key, begin), entryKey(f.key, end), func(_, v []byte) error {
		lh := LeafHash(v)
		n++
		return r.Append(lh[:], nil)
	})
	if err != nil {
		return nil, fmt.Errorf("feed: read entries [%d, %d): %w", begin, end, err)
	}
	if n != end-begin || len(r.Hashes()) != 1 {
		return nil, fmt.Errorf("feed: entries [%d, %d) missing from storage", begin, end)
	}
	return r.Hashes()[0], nil
}

// rangeHashes returns the compact range hashes of [begin, end).
func (f *Feed) rangeHashes(begin, end uint64) ([][]byte, error) {
	ids := compact.RangeNodes(begin, end, nil)
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := f.nodeHash(id)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// InclusionProof returns the RFC 6962 inclusion proof of entry index in the
// tree of the first size entries (size ≤ Length). Check it with
// VerifyInclusion.
func (f *Feed) InclusionProof(index, size uint64) ([][]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if size > f.headLength() || index >= size {
		return nil, errorf(ErrOutOfRange, "inclusion of %d in %d (length %d)", index, size, f.headLength())
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, errorf(ErrOutOfRange, "%v", err)
	}
	return f.rehash(nodes)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of the first size1 and size2 entries (size1 ≤ size2 ≤ Length). Check it
// with VerifyConsistency.
func (f *Feed) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if size1 > size2 || size2 > f.headLength() {
		return nil, errorf(ErrOutOfRange, "consistency %d→%d (length %d)", size1, size2, f.headLength())
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, errorf(ErrOutOfRange, "%v", err)
	}
	return f.rehash(nodes)
}

func (f *Feed) rehash(nodes proof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := f.nodeHash(id)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// RootAt returns the Merkle root of the first size entries (size ≤ Length).
func (f *Feed) RootAt(size uint64) (Hash, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if size > f.headLength() {
		return Hash{}, errorf(ErrOutOfRange, "root at %d (length %d)", size, f.headLength())
	}
	hs, err := f.rangeHashes(0, size)
	if err != nil {
		return Hash{}, err
	}
	r, err := factory.NewRange(0, size, hs)
	if err != nil {
		return Hash{}, err
	}
	return rangeRoot(r), nil
}

// BatchRequest says what a peer wants from a feed.
type BatchRequest struct {
	// Want lists the ranges of entries wanted; parts not held are skipped.
	Want []Range
	// Base is the length of the peer's own latest head of this feed. When it
	// is shorter than ours and no run starts at or before it and reaches it,
	// the batch carries a consistency proof from Base.
	Base uint64
	// MaxBytes bounds the entry bytes in the batch (at least one entry is
	// always included). Zero means 4 MiB; it is capped at MaxBatchBytes/2.
	MaxBytes int
}

// Batch builds a batch against the latest head: runs for the wanted entries
// held, each with its proof, and a consistency proof from req.Base when
// needed. Entries beyond the byte budget are left out; ask again for them.
func (f *Feed) Batch(req BatchRequest) (*Batch, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return nil, ErrClosed
	}
	if f.head == nil {
		return nil, errorf(ErrNotHeld, "feed %x has no head", f.key[:8])
	}
	budget := req.MaxBytes
	if budget <= 0 {
		budget = 4 << 20
	}
	budget = min(budget, MaxBatchBytes/2)
	n := f.head.Length
	b := &Batch{Head: *f.head}
	var used int
	var last uint64
	for _, w := range req.Want {
		for _, r := range f.held.intersect(max(w.Start, last), min(w.End, n)) {
			if used >= budget {
				break
			}
			run := Run{Start: r.Start}
			err := f.db.st.Scan(entryKey(f.key, r.Start), entryKey(f.key, r.End), func(_, v []byte) error {
				if used > 0 && used+len(v) > budget {
					return ErrStopScan
				}
				run.Entries = append(run.Entries, append([]byte(nil), v...))
				used += len(v)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("feed: read entries: %w", err)
			}
			if len(run.Entries) == 0 {
				continue
			}
			if run.Left, err = f.rangeHashes(0, run.Start); err != nil {
				return nil, err
			}
			if run.Right, err = f.rangeHashes(run.End(), n); err != nil {
				return nil, err
			}
			b.Runs = append(b.Runs, run)
			last = run.End()
			if len(b.Runs) == MaxRuns {
				break
			}
		}
	}
	if req.Base < n && b.runReaching(req.Base) < 0 {
		left, err := f.rangeHashes(0, req.Base)
		if err != nil {
			return nil, err
		}
		right, err := f.rangeHashes(req.Base, n)
		if err != nil {
			return nil, err
		}
		b.Consistency = &Consistency{Base: req.Base, Left: left, Right: right}
	}
	return b, nil
}
