package feed

import (
	"fmt"
)

// ErrDamaged is wrapped by Verify's error when the stored feed does not
// match its signed head: entries or tree hashes that changed on disk.
var ErrDamaged = fmt.Errorf("feed: stored feed does not match its signed head")

// CheckReport is what Verify found of one feed.
type CheckReport struct {
	Length   uint64 // the signed head's length (0 without a head)
	Held     uint64 // entries held
	Verified uint64 // entries read and hashed into a root that the signed head matched
}

// Verify reads every entry this replica holds of the feed and checks the
// feed against its latest signed head: the head's signature, and — when
// the entries held start at 0 — the Merkle root of those entries, which
// must be the signed root (for all of them) or the stored frontier's.
// Entries held only in later ranges are read (a damaged store fails the
// read) but not hashed: their proof hashes are not kept. progress, if not
// nil, is called after each chunk with the entries read so far.
func (f *Feed) Verify(progress func(read uint64)) (CheckReport, error) {
	f.mu.RLock()
	var head *SignedHead
	if f.head != nil {
		h := *f.head
		head = &h
	}
	held := f.held.intersect(0, f.headLength())
	f.mu.RUnlock()
	var rep CheckReport
	if head == nil {
		return rep, nil
	}
	rep.Length = head.Length
	if err := head.Verify(); err != nil {
		return rep, fmt.Errorf("%w: feed %x: %w", ErrDamaged, f.key[:8], err)
	}
	const chunk = 4096
	for _, r := range held {
		rep.Held += r.End - r.Start
		hashed := r.Start == 0
		cr := factory.NewEmptyRange(0)
		for i := r.Start; i < r.End; i += chunk {
			end := min(r.End, i+chunk)
			entries, err := f.GetRange(i, end)
			if err != nil {
				return rep, fmt.Errorf("%w: feed %x: %w", ErrDamaged, f.key[:8], err)
			}
			if hashed {
				for _, h := range leafHashes(entries) {
					if err := cr.Append(h, nil); err != nil {
						return rep, err
					}
				}
			}
			if progress != nil {
				progress(end - r.Start)
			}
		}
		if hashed {
			if r.End == head.Length {
				if rangeRoot(cr) != head.Root {
					return rep, fmt.Errorf("%w: feed %x: the %d entries held do not hash to the signed root", ErrDamaged, f.key[:8], r.End)
				}
			}
			rep.Verified = r.End
			if r.End < head.Length {
				rep.Verified = 0 // the head's root needs hashes not kept
			}
		}
	}
	return rep, nil
}
