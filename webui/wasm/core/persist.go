package core

import (
	"errors"
	"fmt"

	"github.com/mycelsync/mycel/feed"
)

// The browser node's durable store (DESIGN.md, "The browser node"; the
// page's side is src/node/store.ts).
//
// feed.DB's storage interface is synchronous and IndexedDB is not, so the
// node keeps its in-memory store (memstore) as the working copy and hands
// the page each change it commits as a record to put in IndexedDB: every
// batch a session ingested, in the order it was ingested, exactly as it was
// verified (signed head, runs, proofs). At start the page reads the records
// back in that order and Import ingests each one through feed.Ingest again,
// which verifies the head's signature and every proof as it did when the
// batch came from a peer: a damaged or edited record is refused, not
// believed, and a record of a feed the node does not replicate is refused
// too. Nothing the page reads back is trusted more than what a peer sends.
//
// Record format (version 1): one byte 0x01, then the batch's encoding
// (feed.Batch.MarshalBinary, feedpb.Batch: feed FORMAT.md). A record is at
// most MaxRecordSize bytes; the batch decoder bounds the rest. Compact's
// records (a space's records replaced by one per feed) are version 1
// records too: no other format is read back.

// recordV1 is the first byte of a version 1 record.
const recordV1 = 0x01

// MaxRecordSize bounds a record read back: a batch of at most
// feed.MaxBatchBytes and its version byte.
const MaxRecordSize = feed.MaxBatchBytes + 1

// maxPending bounds the records the node holds for the page between two
// TakeRecords calls; past it the oldest are dropped and counted (the page
// then misses them in IndexedDB and fetches them again after a reload).
const maxPending = 4096

// record encodes a batch just ingested as a record.
func record(b *feed.Batch) ([]byte, error) {
	enc, err := b.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append([]byte{recordV1}, enc...), nil
}

// decodeRecord decodes a record within its bounds. It does not verify the
// batch: Import ingests it, which does.
func decodeRecord(rec []byte) (*feed.Batch, error) {
	if len(rec) > MaxRecordSize {
		return nil, fmt.Errorf("record of %d bytes, limit %d", len(rec), MaxRecordSize)
	}
	if len(rec) == 0 || rec[0] != recordV1 {
		return nil, errors.New("record: unknown version")
	}
	var b feed.Batch
	if err := b.UnmarshalBinary(rec[1:]); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return &b, nil
}

// keep queues the record of a batch ingested into the node for the page.
// n.mu is held.
func (n *Node) keep(b *feed.Batch) {
	rec, err := record(b)
	if err != nil {
		n.dropped++ // a batch that decoded and verified encodes; count it anyway
		return
	}
	if len(n.pending) >= maxPending {
		n.pending = n.pending[1:]
		n.dropped++
	}
	n.pending = append(n.pending, rec)
}

// TakeRecords returns the records of the batches ingested since the last
// call, in order, and how many were dropped since then (the queue is
// bounded by maxPending). The page puts them in IndexedDB in one
// transaction.
func (n *Node) TakeRecords() (records [][]byte, dropped int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	records, dropped = n.pending, n.dropped
	n.pending, n.dropped = nil, 0
	return records, dropped
}

// Import ingests a record the page read back from IndexedDB: decoded
// within bounds, of a feed the node replicates, and verified by
// feed.Ingest (signature, proofs, consistency with what the node holds)
// before anything is stored. The view the node keeps, if any, applies it.
// An imported record is not handed back by TakeRecords: it is stored
// already.
func (n *Node) Import(rec []byte) error {
	b, err := decodeRecord(rec)
	if err != nil {
		return err
	}
	k := b.Head.Key
	if !n.replicates(k) {
		return fmt.Errorf("record of feed %x, which the node does not replicate", k[:8])
	}
	f, err := n.db.Feed(k)
	if err != nil {
		return err
	}
	if err := f.Ingest(b); err != nil {
		return fmt.Errorf("record of feed %x refused: %w", k[:8], err)
	}
	n.applyBatch(k, b)
	return nil
}

func (n *Node) replicates(k feed.PublicKey) bool {
	for _, f := range n.allFeeds() {
		if f == k {
			return true
		}
	}
	return false
}

// Compact returns the records that replace every record the page holds of
// the node's space: per feed the node replicates and holds a head of, the
// entries it holds with their proofs up to the feed's latest head, built by
// feed.Feed.Batch as a batch for a peer is (one record per
// feed.MaxBatchBytes/2 of entries, so a long feed takes several). They are
// version 1 records like any other: Import verifies them at start exactly
// as a received batch. The page deletes the records they replace and puts
// these in one IndexedDB transaction (src/node/store.ts), so it holds
// either the old records or the compacted ones.
func (n *Node) Compact() ([][]byte, error) {
	var out [][]byte
	for _, k := range n.allFeeds() {
		f, err := n.db.Feed(k)
		if err != nil {
			return nil, err
		}
		if _, ok := f.Head(); !ok {
			continue
		}
		want := f.Ranges()
		for first := true; first || len(want) > 0; first = false {
			b, err := f.Batch(feed.BatchRequest{Want: want, MaxBytes: feed.MaxBatchBytes / 2})
			if err != nil {
				return nil, fmt.Errorf("compact feed %x: %w", k[:8], err)
			}
			rec, err := record(b)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
			if len(b.Runs) == 0 {
				break
			}
			want = after(want, b.Runs[len(b.Runs)-1].End())
		}
	}
	return out, nil
}

// after returns the parts of rs at or after i.
func after(rs []feed.Range, i uint64) []feed.Range {
	var out []feed.Range
	for _, r := range rs {
		if r.End <= i {
			continue
		}
		out = append(out, feed.Range{Start: max(r.Start, i), End: r.End})
	}
	return out
}
