package feed

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
)

// Limits of one Append call, and of one group commit: entries, their keys
// and tree nodes must fit in one storage commit (MaxCommitBytes).
const (
	MaxAppendEntries = 4096
	MaxAppendBytes   = 2 << 20
)

// Writer appends to the feed whose private key it holds. It is a Feed with
// Append; Writer.Ingest also works (for a node that restores its own feed
// from peers).
type Writer struct {
	*Feed
}

type appendReq struct {
	entries [][]byte
	leaves  [][]byte // hashed by the caller, while a commit may be in flight
	bytes   int
	first   uint64
	err     error
	done    chan struct{}
}

// Append adds entries to the end of the feed and returns the index of the
// first. It returns once the entries and their tree nodes are durable and a
// head covering them is signed.
//
// Concurrent Appends are committed together (group commit): whichever caller
// finds no commit in progress becomes the leader and commits everything that
// is waiting — one storage commit, one fsync, one signature — while the
// others wait. If ctx ends first, Append returns ctx's error and the entries
// may or may not be appended.
func (w *Writer) Append(ctx context.Context, entries ...[]byte) (uint64, error) {
	if w.db.opts.NoAppend {
		return 0, ErrAppendsHeld
	}
	if len(entries) == 0 {
		return 0, fmt.Errorf("feed: append of no entries")
	}
	if len(entries) > MaxAppendEntries {
		return 0, errorf(ErrTooLarge, "append of %d entries, limit %d", len(entries), MaxAppendEntries)
	}
	req := &appendReq{entries: entries, done: make(chan struct{})}
	for _, e := range entries {
		if len(e) > MaxEntrySize {
			return 0, errorf(ErrTooLarge, "entry of %d bytes, limit %d", len(e), MaxEntrySize)
		}
		req.bytes += len(e)
	}
	if req.bytes > MaxAppendBytes {
		return 0, errorf(ErrTooLarge, "append of %d bytes, limit %d", req.bytes, MaxAppendBytes)
	}

	req.leaves = leafHashes(entries)
	f := w.Feed
	f.qmu.Lock()
	f.queue = append(f.queue, req)
	if f.leading {
		f.qmu.Unlock()
		select {
		case <-req.done:
			return req.first, req.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	// Lead: commit groups until the queue is empty. Our own request is in
	// the first group.
	f.leading = true
	for len(f.queue) > 0 {
		group, rest := takeGroup(f.queue)
		f.queue = rest
		f.qmu.Unlock()
		first, err := w.commit(group)
		for _, r := range group {
			r.first, r.err = first, err
			first += uint64(len(r.entries))
			close(r.done)
		}
		f.qmu.Lock()
	}
	f.leading = false
	f.qmu.Unlock()
	return req.first, req.err
}

// takeGroup splits off the requests that fit in one commit.
func takeGroup(q []*appendReq) (group, rest []*appendReq) {
	var n, size int
	for i, r := range q {
		if i > 0 && (n+len(r.entries) > MaxAppendEntries || size+r.bytes > MaxAppendBytes) {
			return q[:i:i], q[i:]
		}
		n += len(r.entries)
		size += r.bytes
	}
	return q, nil
}

// commit appends a group: entries, tree nodes, ranges and the tree record in
// one storage commit; then, once durable, the head is signed.
func (w *Writer) commit(group []*appendReq) (uint64, error) {
	f := w.Feed
	f.commitMu.Lock()
	defer f.commitMu.Unlock()

	f.mu.RLock()
	closed, ev := f.closed, f.evidence
	start := f.length
	fr := cloneRange(f.frontier)
	prevHead := f.head
	held := f.held
	f.mu.RUnlock()
	switch {
	case closed:
		return 0, ErrClosed
	case ev != nil:
		return 0, &ForkError{Evidence: ev, frozen: true}
	}

	var writes []Write
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level >= nodeStoreLevel {
			writes = append(writes, Write{Key: nodeKey(f.key, id), Value: append([]byte(nil), hash...)})
		}
	}
	i := start
	for _, r := range group {
		for j, e := range r.entries {
			writes = append(writes, Write{Key: entryKey(f.key, i), Value: e})
			if err := fr.Append(r.leaves[j], visit); err != nil {
				return 0, fmt.Errorf("feed: append: %w", err)
			}
			i++
		}
	}
	end := i
	newHeld, writes := f.holdWrites(held, Range{start, end}, writes)
	// The tree record names the new length; it carries the previous signed
	// head, because the new one is signed only after this commit is durable.
	writes = append(writes, f.headRecordWrite(prevHead, end, fr))
	if err := f.db.st.Commit(writes); err != nil {
		return 0, fmt.Errorf("feed: append: %w", err)
	}
	h := signHead(f.priv, end, rangeRoot(fr), f.db.opts.Now())

	f.mu.Lock()
	f.head, f.length, f.frontier, f.held = &h, end, fr, newHeld
	f.headDirty = true
	f.mu.Unlock()
	return start, nil
}
