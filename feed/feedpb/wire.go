package feedpb

import (
	"errors"
	"slices"

	"github.com/mycelsync/mycel/internal/pbwire"
	"google.golang.org/protobuf/encoding/protowire"
)

// Each message has Size (its encoding's length), Marshal and MarshalAppend
// (the encoding proto.Marshal wrote; the error is always nil here, kept for
// the shape of the other packages' codecs) and Unmarshal (replaces the
// message with the one decoded; unknown fields are skipped). See package
// internal/pbwire for the rules they share.

// Size returns the length of m's encoding.
func (m *SignedHead) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Key)) + pbwire.SizeVarint(2, m.Length) +
		pbwire.SizeBytes(3, len(m.Root)) + pbwire.SizeVarint(4, uint64(m.TimeMs)) +
		pbwire.SizeBytes(5, len(m.Signature))
}

func (m *SignedHead) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendBytes(b, 1, m.Key)
	b = pbwire.AppendVarint(b, 2, m.Length)
	b = pbwire.AppendBytes(b, 3, m.Root)
	b = pbwire.AppendVarint(b, 4, uint64(m.TimeMs))
	return pbwire.AppendBytes(b, 5, m.Signature)
}

func (m *SignedHead) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			m.Key = pbwire.Clone(f.Bytes)
		case f.Num == 2 && f.Type == pbwire.VarintType:
			m.Length = f.Varint
		case f.Num == 3 && f.Type == pbwire.BytesType:
			m.Root = pbwire.Clone(f.Bytes)
		case f.Num == 4 && f.Type == pbwire.VarintType:
			m.TimeMs = int64(f.Varint)
		case f.Num == 5 && f.Type == pbwire.BytesType:
			m.Signature = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Run) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, m.Start) + pbwire.SizeRepeatedBytes(2, m.Entries) +
		pbwire.SizeRepeatedBytes(3, m.Left) + pbwire.SizeRepeatedBytes(4, m.Right)
}

func (m *Run) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, m.Start)
	b = pbwire.AppendRepeatedBytes(b, 2, m.Entries)
	b = pbwire.AppendRepeatedBytes(b, 3, m.Left)
	return pbwire.AppendRepeatedBytes(b, 4, m.Right)
}

func (m *Run) merge(b []byte) error { return m.mergeWithin(b, 0) }

// mergeWithin decodes b into m, refusing more than maxHashes hashes on
// either side (0: no limit). Entries are counted first and their slice
// made once, not grown as they come (growing it by appending allocated
// about five times the final slice).
func (m *Run) mergeWithin(b []byte, maxHashes int) error {
	if n, err := count(b, 2); err != nil {
		return err
	} else if n > 0 {
		m.Entries = slices.Grow(m.Entries, n)
	}
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.VarintType:
			m.Start = f.Varint
		case f.Num == 2 && f.Type == pbwire.BytesType:
			m.Entries = append(m.Entries, pbwire.CloneElem(f.Bytes))
		case f.Num == 3 && f.Type == pbwire.BytesType:
			if maxHashes > 0 && len(m.Left) >= maxHashes {
				return ErrLimit
			}
			m.Left = append(m.Left, pbwire.CloneElem(f.Bytes))
		case f.Num == 4 && f.Type == pbwire.BytesType:
			if maxHashes > 0 && len(m.Right) >= maxHashes {
				return ErrLimit
			}
			m.Right = append(m.Right, pbwire.CloneElem(f.Bytes))
		}
	}
	return nil
}

// count returns how many length-delimited fields numbered num b holds.
func count(b []byte, num protowire.Number) (int, error) {
	c := 0
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return 0, err
		}
		b = b[n:]
		if f.Num == num && f.Type == pbwire.BytesType {
			c++
		}
	}
	return c, nil
}

// Size returns the length of m's encoding.
func (m *Consistency) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, m.Base) + pbwire.SizeRepeatedBytes(2, m.Left) +
		pbwire.SizeRepeatedBytes(3, m.Right)
}

func (m *Consistency) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, m.Base)
	b = pbwire.AppendRepeatedBytes(b, 2, m.Left)
	return pbwire.AppendRepeatedBytes(b, 3, m.Right)
}

func (m *Consistency) merge(b []byte) error { return m.mergeWithin(b, 0) }

// mergeWithin decodes b into m, refusing more than maxHashes hashes on
// either side (0: no limit).
func (m *Consistency) mergeWithin(b []byte, maxHashes int) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.VarintType:
			m.Base = f.Varint
		case f.Num == 2 && f.Type == pbwire.BytesType:
			if maxHashes > 0 && len(m.Left) >= maxHashes {
				return ErrLimit
			}
			m.Left = append(m.Left, pbwire.CloneElem(f.Bytes))
		case f.Num == 3 && f.Type == pbwire.BytesType:
			if maxHashes > 0 && len(m.Right) >= maxHashes {
				return ErrLimit
			}
			m.Right = append(m.Right, pbwire.CloneElem(f.Bytes))
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Batch) Size() int {
	if m == nil {
		return 0
	}
	n := 0
	if m.Head != nil {
		n += pbwire.SizeMessage(1, m.Head.Size())
	}
	for _, r := range m.Runs {
		n += pbwire.SizeMessage(2, r.Size())
	}
	if m.Consistency != nil {
		n += pbwire.SizeMessage(3, m.Consistency.Size())
	}
	return n
}

func (m *Batch) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	if m.Head != nil {
		b = m.Head.appendTo(pbwire.AppendMessage(b, 1, m.Head.Size()))
	}
	for _, r := range m.Runs {
		b = r.appendTo(pbwire.AppendMessage(b, 2, r.Size()))
	}
	if m.Consistency != nil {
		b = m.Consistency.appendTo(pbwire.AppendMessage(b, 3, m.Consistency.Size()))
	}
	return b
}

func (m *Batch) merge(b []byte) error { return m.mergeWithin(b, Limits{}) }

// Limits bound the repeated fields of a Batch as it is decoded, so that a
// peer's batch cannot make the decoder allocate far more than its own size:
// 16 MiB of empty runs were 8 million Run structs, about a gigabyte. A zero
// field is no limit.
type Limits struct {
	Runs   int // runs in the batch
	Hashes int // hashes on each side (left, right) of a run or of the consistency proof
}

// ErrLimit is UnmarshalWithin's refusal of a batch over its Limits.
var ErrLimit = errors.New("feedpb: batch over its limits")

// UnmarshalWithin is Unmarshal refusing a batch over lim (ErrLimit) as
// soon as it is.
func (m *Batch) UnmarshalWithin(b []byte, lim Limits) error {
	*m = Batch{}
	return m.mergeWithin(b, lim)
}

func (m *Batch) mergeWithin(b []byte, lim Limits) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if f.Type != pbwire.BytesType {
			continue
		}
		switch f.Num {
		case 1:
			if m.Head == nil {
				m.Head = new(SignedHead)
			}
			err = m.Head.merge(f.Bytes)
		case 2:
			if lim.Runs > 0 && len(m.Runs) >= lim.Runs {
				return ErrLimit
			}
			r := new(Run)
			m.Runs = append(m.Runs, r)
			err = r.mergeWithin(f.Bytes, lim.Hashes)
		case 3:
			if m.Consistency == nil {
				m.Consistency = new(Consistency)
			}
			err = m.Consistency.mergeWithin(f.Bytes, lim.Hashes)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *ForkEvidence) Size() int {
	if m == nil {
		return 0
	}
	n := pbwire.SizeRepeatedBytes(3, m.Left) + pbwire.SizeRepeatedBytes(4, m.Right)
	if m.A != nil {
		n += pbwire.SizeMessage(1, m.A.Size())
	}
	if m.B != nil {
		n += pbwire.SizeMessage(2, m.B.Size())
	}
	return n
}

func (m *ForkEvidence) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	if m.A != nil {
		b = m.A.appendTo(pbwire.AppendMessage(b, 1, m.A.Size()))
	}
	if m.B != nil {
		b = m.B.appendTo(pbwire.AppendMessage(b, 2, m.B.Size()))
	}
	b = pbwire.AppendRepeatedBytes(b, 3, m.Left)
	return pbwire.AppendRepeatedBytes(b, 4, m.Right)
}

func (m *ForkEvidence) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if f.Type != pbwire.BytesType {
			continue
		}
		switch f.Num {
		case 1:
			if m.A == nil {
				m.A = new(SignedHead)
			}
			err = m.A.merge(f.Bytes)
		case 2:
			if m.B == nil {
				m.B = new(SignedHead)
			}
			err = m.B.merge(f.Bytes)
		case 3:
			m.Left = append(m.Left, pbwire.CloneElem(f.Bytes))
		case 4:
			m.Right = append(m.Right, pbwire.CloneElem(f.Bytes))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *HeadRecord) Size() int {
	if m == nil {
		return 0
	}
	n := pbwire.SizeVarint(2, m.Length) + pbwire.SizeRepeatedBytes(3, m.Frontier)
	if m.Head != nil {
		n += pbwire.SizeMessage(1, m.Head.Size())
	}
	return n
}

func (m *HeadRecord) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	if m.Head != nil {
		b = m.Head.appendTo(pbwire.AppendMessage(b, 1, m.Head.Size()))
	}
	b = pbwire.AppendVarint(b, 2, m.Length)
	return pbwire.AppendRepeatedBytes(b, 3, m.Frontier)
}

func (m *HeadRecord) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			if m.Head == nil {
				m.Head = new(SignedHead)
			}
			if err := m.Head.merge(f.Bytes); err != nil {
				return err
			}
		case f.Num == 2 && f.Type == pbwire.VarintType:
			m.Length = f.Varint
		case f.Num == 3 && f.Type == pbwire.BytesType:
			m.Frontier = append(m.Frontier, pbwire.CloneElem(f.Bytes))
		}
	}
	return nil
}
