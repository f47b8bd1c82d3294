package spacepb

import (
	"github.com/mycelsync/mycel/internal/pbwire"
)

// Size, appendTo and merge of each message, field by field as space.proto
// numbers them; package internal/pbwire states the rules they follow.

// Size returns the length of m's encoding.
func (m *Entry) Size() int {
	if m == nil {
		return 0
	}
	n := pbwire.SizeVarint(1, uint64(m.Version)) + pbwire.SizeBytes(2, len(m.KeyId)) +
		pbwire.SizeBytes(4, len(m.Sealed))
	if m.Membership != nil {
		n += pbwire.SizeMessage(3, m.Membership.Size())
	}
	return n
}

func (m *Entry) appendTo(b []byte) []byte {
	b = pbwire.AppendVarint(b, 1, uint64(m.Version))
	b = pbwire.AppendBytes(b, 2, m.KeyId)
	if m.Membership != nil {
		b = m.Membership.appendTo(pbwire.AppendMessage(b, 3, m.Membership.Size()))
	}
	return pbwire.AppendBytes(b, 4, m.Sealed)
}

func (m *Entry) merge(b []byte) error {
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
			m.KeyId = pbwire.Clone(f.Bytes)
		case f.Num == 3 && f.Type == pbwire.BytesType:
			if m.Membership == nil {
				m.Membership = new(Membership)
			}
			if err := m.Membership.merge(f.Bytes); err != nil {
				return err
			}
		case f.Num == 4 && f.Type == pbwire.BytesType:
			m.Sealed = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Membership) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, uint64(int64(m.Kind))) + pbwire.SizeBytes(2, len(m.Feed)) +
		pbwire.SizeBytes(3, len(m.SealedKeyring))
}

func (m *Membership) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, uint64(int64(m.Kind)))
	b = pbwire.AppendBytes(b, 2, m.Feed)
	return pbwire.AppendBytes(b, 3, m.SealedKeyring)
}

func (m *Membership) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.VarintType:
			m.Kind = MembershipKind(int32(f.Varint))
		case f.Num == 2 && f.Type == pbwire.BytesType:
			m.Feed = pbwire.Clone(f.Bytes)
		case f.Num == 3 && f.Type == pbwire.BytesType:
			m.SealedKeyring = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Field numbers of OpBody's oneof op.
const (
	fieldPut          = 3
	fieldDelete       = 4
	fieldAddWriter    = 5
	fieldRemoveWriter = 6
	fieldRotate       = 7
)

// Size returns the length of m's encoding.
func (m *OpBody) Size() int {
	if m == nil {
		return 0
	}
	n := pbwire.SizeVarint(2, m.Hlc)
	for _, s := range m.Seen {
		n += pbwire.SizeMessage(1, s.Size())
	}
	switch op := m.Op.(type) {
	case *OpBody_Put:
		n += pbwire.SizeMessage(fieldPut, op.Put.Size())
	case *OpBody_Delete:
		n += pbwire.SizeMessage(fieldDelete, op.Delete.Size())
	case *OpBody_AddWriter:
		n += pbwire.SizeMessage(fieldAddWriter, op.AddWriter.Size())
	case *OpBody_RemoveWriter:
		n += pbwire.SizeMessage(fieldRemoveWriter, op.RemoveWriter.Size())
	case *OpBody_Rotate:
		n += pbwire.SizeMessage(fieldRotate, op.Rotate.Size())
	}
	return n
}

// check refuses what proto.Marshal refused: a name that is not UTF-8.
func (m *OpBody) check() error {
	if op, ok := m.Op.(*OpBody_AddWriter); ok && op.AddWriter != nil {
		return op.AddWriter.check()
	}
	return nil
}

func (m *OpBody) appendTo(b []byte) []byte {
	for _, s := range m.Seen {
		b = s.appendTo(pbwire.AppendMessage(b, 1, s.Size()))
	}
	b = pbwire.AppendVarint(b, 2, m.Hlc)
	switch op := m.Op.(type) {
	case *OpBody_Put:
		b = op.Put.appendTo(pbwire.AppendMessage(b, fieldPut, op.Put.Size()))
	case *OpBody_Delete:
		b = op.Delete.appendTo(pbwire.AppendMessage(b, fieldDelete, op.Delete.Size()))
	case *OpBody_AddWriter:
		b = op.AddWriter.appendTo(pbwire.AppendMessage(b, fieldAddWriter, op.AddWriter.Size()))
	case *OpBody_RemoveWriter:
		b = op.RemoveWriter.appendTo(pbwire.AppendMessage(b, fieldRemoveWriter, op.RemoveWriter.Size()))
	case *OpBody_Rotate:
		b = op.Rotate.appendTo(pbwire.AppendMessage(b, fieldRotate, op.Rotate.Size()))
	}
	return b
}

// merge decodes b into m. A oneof member read again merges into the one
// held; another member replaces it (as proto.Unmarshal does).
func (m *OpBody) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 2 && f.Type == pbwire.VarintType:
			m.Hlc = f.Varint
			continue
		case f.Type != pbwire.BytesType:
			continue
		}
		switch f.Num {
		case 1:
			s := new(Seen)
			m.Seen = append(m.Seen, s)
			err = s.merge(f.Bytes)
		case fieldPut:
			op, ok := m.Op.(*OpBody_Put)
			if !ok || op.Put == nil {
				op = &OpBody_Put{Put: new(Put)}
			}
			m.Op = op
			err = op.Put.merge(f.Bytes)
		case fieldDelete:
			op, ok := m.Op.(*OpBody_Delete)
			if !ok || op.Delete == nil {
				op = &OpBody_Delete{Delete: new(Delete)}
			}
			m.Op = op
			err = op.Delete.merge(f.Bytes)
		case fieldAddWriter:
			op, ok := m.Op.(*OpBody_AddWriter)
			if !ok || op.AddWriter == nil {
				op = &OpBody_AddWriter{AddWriter: new(AddWriter)}
			}
			m.Op = op
			err = op.AddWriter.merge(f.Bytes)
		case fieldRemoveWriter:
			op, ok := m.Op.(*OpBody_RemoveWriter)
			if !ok || op.RemoveWriter == nil {
				op = &OpBody_RemoveWriter{RemoveWriter: new(RemoveWriter)}
			}
			m.Op = op
			err = op.RemoveWriter.merge(f.Bytes)
		case fieldRotate:
			op, ok := m.Op.(*OpBody_Rotate)
			if !ok || op.Rotate == nil {
				op = &OpBody_Rotate{Rotate: new(Rotation)}
			}
			m.Op = op
			err = op.Rotate.merge(f.Bytes)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Seen) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Feed)) + pbwire.SizeVarint(2, m.Length)
}

func (m *Seen) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendBytes(b, 1, m.Feed)
	return pbwire.AppendVarint(b, 2, m.Length)
}

func (m *Seen) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			m.Feed = pbwire.Clone(f.Bytes)
		case f.Num == 2 && f.Type == pbwire.VarintType:
			m.Length = f.Varint
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Put) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Key)) + pbwire.SizeBytes(2, len(m.Value))
}

func (m *Put) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendBytes(b, 1, m.Key)
	return pbwire.AppendBytes(b, 2, m.Value)
}

func (m *Put) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			m.Key = pbwire.Clone(f.Bytes)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			m.Value = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Delete) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Key))
}

func (m *Delete) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	return pbwire.AppendBytes(b, 1, m.Key)
}

func (m *Delete) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if f.Num == 1 && f.Type == pbwire.BytesType {
			m.Key = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *AddWriter) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Feed)) + pbwire.SizeBytes(2, len(m.Name)) +
		pbwire.SizeBytes(3, len(m.DevicePublic))
}

func (m *AddWriter) check() error {
	return pbwire.ValidString(m.Name)
}

func (m *AddWriter) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendBytes(b, 1, m.Feed)
	b = pbwire.AppendString(b, 2, m.Name)
	return pbwire.AppendBytes(b, 3, m.DevicePublic)
}

func (m *AddWriter) merge(b []byte) error {
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
			m.Feed = pbwire.Clone(f.Bytes)
		case 2:
			if m.Name, err = pbwire.String(f.Bytes); err != nil {
				return err
			}
		case 3:
			m.DevicePublic = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *RemoveWriter) Size() int {
	if m == nil {
		return 0
	}
	n := pbwire.SizeBytes(1, len(m.Feed))
	if m.Rotation != nil {
		n += pbwire.SizeMessage(2, m.Rotation.Size())
	}
	return n
}

func (m *RemoveWriter) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendBytes(b, 1, m.Feed)
	if m.Rotation != nil {
		b = m.Rotation.appendTo(pbwire.AppendMessage(b, 2, m.Rotation.Size()))
	}
	return b
}

func (m *RemoveWriter) merge(b []byte) error {
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
			m.Feed = pbwire.Clone(f.Bytes)
		case 2:
			if m.Rotation == nil {
				m.Rotation = new(Rotation)
			}
			if err := m.Rotation.merge(f.Bytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Rotation) Size() int {
	if m == nil {
		return 0
	}
	n := pbwire.SizeVarint(1, uint64(m.Epoch)) + pbwire.SizeBytes(2, len(m.KeyId))
	for _, s := range m.Boxes {
		n += pbwire.SizeMessage(3, s.Size())
	}
	return n
}

func (m *Rotation) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, uint64(m.Epoch))
	b = pbwire.AppendBytes(b, 2, m.KeyId)
	for _, s := range m.Boxes {
		b = s.appendTo(pbwire.AppendMessage(b, 3, s.Size()))
	}
	return b
}

func (m *Rotation) merge(b []byte) error {
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
			m.KeyId = pbwire.Clone(f.Bytes)
		case f.Num == 3 && f.Type == pbwire.BytesType:
			s := new(SealedSecret)
			m.Boxes = append(m.Boxes, s)
			if err := s.merge(f.Bytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *SealedSecret) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Feed)) + pbwire.SizeBytes(2, len(m.Box))
}

func (m *SealedSecret) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendBytes(b, 1, m.Feed)
	return pbwire.AppendBytes(b, 2, m.Box)
}

func (m *SealedSecret) merge(b []byte) error {
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
			m.Feed = pbwire.Clone(f.Bytes)
		case 2:
			m.Box = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}
