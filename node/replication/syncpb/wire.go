package syncpb

import (
	"errors"

	"github.com/mycelsync/mycel/internal/pbwire"
	"google.golang.org/protobuf/encoding/protowire"
)

// Size, appendTo and merge of each message, field by field as sync.proto
// numbers them; package internal/pbwire states the rules they follow.

// part is what each body of a Message is (nil pointers included: a body
// set to a nil message is written as an empty one, as proto.Marshal did).
type part interface {
	Size() int
	appendTo(b []byte) []byte
}

// body returns the field number and message of m's body, or 0.
func (m *Message) body() (protowire.Number, part) {
	switch b := m.Body.(type) {
	case *Message_Hello:
		return 1, b.Hello
	case *Message_Prove:
		return 2, b.Prove
	case *Message_Heads:
		return 3, b.Heads
	case *Message_Want:
		return 4, b.Want
	case *Message_Data:
		return 5, b.Data
	case *Message_Refuse:
		return 6, b.Refuse
	case *Message_Fork:
		return 7, b.Fork
	case *Message_Done:
		return 8, b.Done
	}
	return 0, nil
}

// Size returns the length of m's encoding.
func (m *Message) Size() int {
	if m == nil {
		return 0
	}
	num, p := m.body()
	if num == 0 {
		return 0
	}
	return pbwire.SizeMessage(num, p.Size())
}

// check refuses what proto.Marshal refused: a reason that is not UTF-8.
func (m *Message) check() error {
	if r := m.GetRefuse(); r != nil {
		return r.check()
	}
	return nil
}

func (m *Message) appendTo(b []byte) []byte {
	num, p := m.body()
	if num == 0 {
		return b
	}
	return p.appendTo(pbwire.AppendMessage(b, num, p.Size()))
}

func (m *Message) merge(b []byte) error { return m.mergeWithin(b, Limits{}) }

// Limits bound the repeated fields of a Message as it is decoded, so that a
// peer's frame cannot make the decoder allocate far more than its own size:
// 16 MiB of empty heads were 8 million slice headers, about a gigabyte
// allocated as the slice grew. A zero field is no limit.
type Limits struct {
	Heads  int // heads of a Heads
	Ranges int // ranges of a Want
	Proofs int // proofs of a Prove
}

// ErrLimit is UnmarshalWithin's refusal of a message over its Limits.
var ErrLimit = errors.New("syncpb: message over its limits")

// UnmarshalWithin is Unmarshal refusing a message over lim (ErrLimit) as
// soon as it is.
func (m *Message) UnmarshalWithin(b []byte, lim Limits) error {
	*m = Message{}
	return m.mergeWithin(b, lim)
}

// mergeWithin decodes b into m. A body read again merges into the one held;
// another body replaces it (as proto.Unmarshal does).
func (m *Message) mergeWithin(b []byte, lim Limits) error {
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
			w, ok := m.Body.(*Message_Hello)
			if !ok || w.Hello == nil {
				w = &Message_Hello{Hello: new(Hello)}
			}
			m.Body = w
			err = w.Hello.merge(f.Bytes)
		case 2:
			w, ok := m.Body.(*Message_Prove)
			if !ok || w.Prove == nil {
				w = &Message_Prove{Prove: new(Prove)}
			}
			m.Body = w
			err = w.Prove.mergeWithin(f.Bytes, lim.Proofs)
		case 3:
			w, ok := m.Body.(*Message_Heads)
			if !ok || w.Heads == nil {
				w = &Message_Heads{Heads: new(Heads)}
			}
			m.Body = w
			err = w.Heads.mergeWithin(f.Bytes, lim.Heads)
		case 4:
			w, ok := m.Body.(*Message_Want)
			if !ok || w.Want == nil {
				w = &Message_Want{Want: new(Want)}
			}
			m.Body = w
			err = w.Want.mergeWithin(f.Bytes, lim.Ranges)
		case 5:
			w, ok := m.Body.(*Message_Data)
			if !ok || w.Data == nil {
				w = &Message_Data{Data: new(Data)}
			}
			m.Body = w
			err = w.Data.merge(f.Bytes)
		case 6:
			w, ok := m.Body.(*Message_Refuse)
			if !ok || w.Refuse == nil {
				w = &Message_Refuse{Refuse: new(Refuse)}
			}
			m.Body = w
			err = w.Refuse.merge(f.Bytes)
		case 7:
			w, ok := m.Body.(*Message_Fork)
			if !ok || w.Fork == nil {
				w = &Message_Fork{Fork: new(Fork)}
			}
			m.Body = w
			err = w.Fork.merge(f.Bytes)
		case 8:
			w, ok := m.Body.(*Message_Done)
			if !ok || w.Done == nil {
				w = &Message_Done{Done: new(Done)}
			}
			m.Body = w
			err = w.Done.merge(f.Bytes)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Hello) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, uint64(m.Version)) + pbwire.SizeBytes(2, len(m.Nonce))
}

func (m *Hello) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, uint64(m.Version))
	return pbwire.AppendBytes(b, 2, m.Nonce)
}

func (m *Hello) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.VarintType:
			m.Version = uint32(f.Varint)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			m.Nonce = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Prove) Size() int {
	if m == nil {
		return 0
	}
	n := 0
	for _, p := range m.Proofs {
		n += pbwire.SizeMessage(1, p.Size())
	}
	return n
}

func (m *Prove) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	for _, p := range m.Proofs {
		b = p.appendTo(pbwire.AppendMessage(b, 1, p.Size()))
	}
	return b
}

func (m *Prove) merge(b []byte) error { return m.mergeWithin(b, 0) }

// mergeWithin decodes b into m, refusing more than max proofs (0: no limit).
func (m *Prove) mergeWithin(b []byte, max int) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if f.Num == 1 && f.Type == pbwire.BytesType {
			if max > 0 && len(m.Proofs) >= max {
				return ErrLimit
			}
			p := new(EpochProof)
			m.Proofs = append(m.Proofs, p)
			if err := p.merge(f.Bytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *EpochProof) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, uint64(m.Epoch)) + pbwire.SizeBytes(2, len(m.Proof)) +
		pbwire.SizeBytes(3, len(m.SealedWriter))
}

func (m *EpochProof) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, uint64(m.Epoch))
	b = pbwire.AppendBytes(b, 2, m.Proof)
	return pbwire.AppendBytes(b, 3, m.SealedWriter)
}

func (m *EpochProof) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.VarintType:
			m.Epoch = uint32(f.Varint)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			m.Proof = pbwire.Clone(f.Bytes)
		case f.Num == 3 && f.Type == pbwire.BytesType:
			m.SealedWriter = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Heads) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeRepeatedBytes(1, m.Heads)
}

func (m *Heads) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	return pbwire.AppendRepeatedBytes(b, 1, m.Heads)
}

func (m *Heads) merge(b []byte) error { return m.mergeWithin(b, 0) }

// mergeWithin decodes b into m, refusing more than max heads (0: no limit).
func (m *Heads) mergeWithin(b []byte, max int) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if f.Num == 1 && f.Type == pbwire.BytesType {
			if max > 0 && len(m.Heads) >= max {
				return ErrLimit
			}
			m.Heads = append(m.Heads, pbwire.CloneElem(f.Bytes))
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Range) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, m.Start) + pbwire.SizeVarint(2, m.End)
}

func (m *Range) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, m.Start)
	return pbwire.AppendVarint(b, 2, m.End)
}

func (m *Range) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if f.Type != pbwire.VarintType {
			continue
		}
		switch f.Num {
		case 1:
			m.Start = f.Varint
		case 2:
			m.End = f.Varint
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Want) Size() int {
	if m == nil {
		return 0
	}
	n := pbwire.SizeBytes(1, len(m.Feed)) + pbwire.SizeVarint(3, m.Base) +
		pbwire.SizeVarint(4, uint64(m.Id)) + pbwire.SizeVarint(5, uint64(m.MaxBytes))
	for _, r := range m.Ranges {
		n += pbwire.SizeMessage(2, r.Size())
	}
	return n
}

func (m *Want) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendBytes(b, 1, m.Feed)
	for _, r := range m.Ranges {
		b = r.appendTo(pbwire.AppendMessage(b, 2, r.Size()))
	}
	b = pbwire.AppendVarint(b, 3, m.Base)
	b = pbwire.AppendVarint(b, 4, uint64(m.Id))
	return pbwire.AppendVarint(b, 5, uint64(m.MaxBytes))
}

func (m *Want) merge(b []byte) error { return m.mergeWithin(b, 0) }

// mergeWithin decodes b into m, refusing more than max ranges (0: no limit).
func (m *Want) mergeWithin(b []byte, max int) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			m.Feed = pbwire.Clone(f.Bytes)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			if max > 0 && len(m.Ranges) >= max {
				return ErrLimit
			}
			r := new(Range)
			m.Ranges = append(m.Ranges, r)
			if err := r.merge(f.Bytes); err != nil {
				return err
			}
		case f.Num == 3 && f.Type == pbwire.VarintType:
			m.Base = f.Varint
		case f.Num == 4 && f.Type == pbwire.VarintType:
			m.Id = uint32(f.Varint)
		case f.Num == 5 && f.Type == pbwire.VarintType:
			m.MaxBytes = uint32(f.Varint)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Data) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, uint64(m.Id)) + pbwire.SizeBytes(2, len(m.Batch))
}

func (m *Data) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, uint64(m.Id))
	return pbwire.AppendBytes(b, 2, m.Batch)
}

func (m *Data) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.VarintType:
			m.Id = uint32(f.Varint)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			m.Batch = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Refuse) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, uint64(m.Id)) + pbwire.SizeBytes(2, len(m.Reason))
}

func (m *Refuse) check() error {
	return pbwire.ValidString(m.Reason)
}

func (m *Refuse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, uint64(m.Id))
	return pbwire.AppendString(b, 2, m.Reason)
}

func (m *Refuse) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.VarintType:
			m.Id = uint32(f.Varint)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			if m.Reason, err = pbwire.String(f.Bytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Fork) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Evidence))
}

func (m *Fork) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	return pbwire.AppendBytes(b, 1, m.Evidence)
}

func (m *Fork) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if f.Num == 1 && f.Type == pbwire.BytesType {
			m.Evidence = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding: always 0.
func (m *Done) Size() int { return 0 }

func (m *Done) appendTo(b []byte) []byte { return b }

// merge checks b's fields and keeps none: Done has none.
func (m *Done) merge(b []byte) error {
	for len(b) > 0 {
		_, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
