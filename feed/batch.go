package feed

import (
	"errors"

	"github.com/mycelsync/mycel/feed/feedpb"
)

// Batch carries a signed head, runs of entries proven against it and
// optionally a consistency proof, from one replica to another. See
// feedpb.Batch for the meaning of each field.
type Batch struct {
	Head        SignedHead
	Runs        []Run
	Consistency *Consistency

	verified *verifiedBatch // kept by Verify
}

// Run is a contiguous run of entries starting at Start, with the compact
// range hashes Left (of [0, Start)) and Right (of [Start+len(Entries),
// Head.Length)) that prove it against the batch's head.
type Run struct {
	Start   uint64
	Entries [][]byte
	Left    [][]byte
	Right   [][]byte
}

// End returns the index after the run's last entry.
func (r *Run) End() uint64 { return r.Start + uint64(len(r.Entries)) }

// Consistency proves that the first Base entries of a longer head are a
// given tree: Left are the compact range hashes of [0, Base), Right those of
// [Base, longer length).
type Consistency struct {
	Base  uint64
	Left  [][]byte
	Right [][]byte
}

// MarshalBinary encodes the batch as a feedpb.Batch.
func (b *Batch) MarshalBinary() ([]byte, error) {
	p := &feedpb.Batch{Head: b.Head.toProto()}
	for _, r := range b.Runs {
		p.Runs = append(p.Runs, &feedpb.Run{Start: r.Start, Entries: r.Entries, Left: r.Left, Right: r.Right})
	}
	if c := b.Consistency; c != nil {
		p.Consistency = &feedpb.Consistency{Base: c.Base, Left: c.Left, Right: c.Right}
	}
	return p.Marshal()
}

// UnmarshalBinary decodes a batch and checks every bound that does not need
// the feed's state: sizes of hashes and entries, run order, lengths. It does
// not verify signatures or proofs; Feed.Ingest does.
func (b *Batch) UnmarshalBinary(data []byte) error {
	if len(data) > MaxBatchBytes {
		return errorf(ErrTooLarge, "batch of %d bytes, limit %d", len(data), MaxBatchBytes)
	}
	var p feedpb.Batch
	if err := p.UnmarshalWithin(data, feedpb.Limits{Runs: MaxRuns, Hashes: maxRangeHashes}); errors.Is(err, feedpb.ErrLimit) {
		return errorf(ErrTooLarge, "batch: more than %d runs or %d hashes on a side of a proof", MaxRuns, maxRangeHashes)
	} else if err != nil {
		return errorf(ErrMalformed, "batch: %v", err)
	}
	head, err := headFromProto(p.Head)
	if err != nil {
		return err
	}
	out := Batch{Head: head}
	for _, r := range p.Runs {
		out.Runs = append(out.Runs, Run{Start: r.Start, Entries: r.Entries, Left: r.Left, Right: r.Right})
	}
	if c := p.Consistency; c != nil {
		out.Consistency = &Consistency{Base: c.Base, Left: c.Left, Right: c.Right}
	}
	if err := out.check(); err != nil {
		return err
	}
	*b = out
	return nil
}

// maxRangeHashes bounds the hashes of one compact range: two per level.
const maxRangeHashes = 2 * 64

// check validates the shape of a batch against its own head.
func (b *Batch) check() error {
	n := b.Head.Length
	if n > MaxLength {
		return errorf(ErrMalformed, "head length %d exceeds %d", n, uint64(MaxLength))
	}
	if len(b.Runs) > MaxRuns {
		return errorf(ErrTooLarge, "%d runs, limit %d", len(b.Runs), MaxRuns)
	}
	var total int
	var prevEnd uint64
	for i := range b.Runs {
		r := &b.Runs[i]
		if len(r.Entries) == 0 {
			return errorf(ErrMalformed, "run %d is empty", i)
		}
		if r.Start >= n || uint64(len(r.Entries)) > n-r.Start {
			return errorf(ErrMalformed, "run %d [%d, +%d) beyond head length %d", i, r.Start, len(r.Entries), n)
		}
		if i > 0 && r.Start < prevEnd {
			return errorf(ErrMalformed, "run %d starts at %d, before the previous run's end %d", i, r.Start, prevEnd)
		}
		prevEnd = r.End()
		for _, e := range r.Entries {
			if len(e) > MaxEntrySize {
				return errorf(ErrTooLarge, "entry of %d bytes, limit %d", len(e), MaxEntrySize)
			}
			total += len(e)
		}
		if len(r.Left) > maxRangeHashes || len(r.Right) > maxRangeHashes {
			return errorf(ErrMalformed, "run %d has too many hashes", i)
		}
	}
	if total > MaxBatchBytes {
		return errorf(ErrTooLarge, "batch entries total %d bytes, limit %d", total, MaxBatchBytes)
	}
	if c := b.Consistency; c != nil {
		if c.Base > MaxLength || len(c.Left) > maxRangeHashes || len(c.Right) > maxRangeHashes {
			return errorf(ErrMalformed, "consistency proof out of bounds")
		}
	}
	return nil
}
