package authpb

import (
	"github.com/mycelsync/mycel/internal/pbwire"
)

// Size, appendTo and merge of each message, field by field as auth.proto
// numbers them; package internal/pbwire states the rules they follow.

// Size returns the length of m's encoding.
func (m *Keyring) Size() int {
	if m == nil {
		return 0
	}
	n := pbwire.SizeBytes(1, len(m.Space)) + pbwire.SizeRepeatedBytes(2, m.Secrets)
	for _, c := range m.Concurrent {
		n += pbwire.SizeMessage(3, c.Size())
	}
	return n
}

func (m *Keyring) appendTo(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, m.Space)
	b = pbwire.AppendRepeatedBytes(b, 2, m.Secrets)
	for _, c := range m.Concurrent {
		b = c.appendTo(pbwire.AppendMessage(b, 3, c.Size()))
	}
	return b
}

func (m *Keyring) merge(b []byte) error {
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
			m.Space = pbwire.Clone(f.Bytes)
		case 2:
			m.Secrets = append(m.Secrets, pbwire.CloneElem(f.Bytes))
		case 3:
			c := new(ConcurrentSecret)
			m.Concurrent = append(m.Concurrent, c)
			if err := c.merge(f.Bytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *ConcurrentSecret) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeVarint(1, uint64(m.Epoch)) + pbwire.SizeBytes(2, len(m.Secret))
}

func (m *ConcurrentSecret) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	b = pbwire.AppendVarint(b, 1, uint64(m.Epoch))
	return pbwire.AppendBytes(b, 2, m.Secret)
}

func (m *ConcurrentSecret) merge(b []byte) error {
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
			m.Secret = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *MirrorToken) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Space)) + pbwire.SizeVarint(2, uint64(m.Epoch)) +
		pbwire.SizeBytes(3, len(m.Token))
}

func (m *MirrorToken) appendTo(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, m.Space)
	b = pbwire.AppendVarint(b, 2, uint64(m.Epoch))
	return pbwire.AppendBytes(b, 3, m.Token)
}

func (m *MirrorToken) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			m.Space = pbwire.Clone(f.Bytes)
		case f.Num == 2 && f.Type == pbwire.VarintType:
			m.Epoch = uint32(f.Varint)
		case f.Num == 3 && f.Type == pbwire.BytesType:
			m.Token = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *InviteRecord) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Id)) + pbwire.SizeBytes(2, len(m.Key)) +
		pbwire.SizeVarint(3, uint64(m.Expires)) + pbwire.SizeBool(4, m.Used) +
		pbwire.SizeBytes(5, len(m.UsedBy))
}

func (m *InviteRecord) appendTo(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, m.Id)
	b = pbwire.AppendBytes(b, 2, m.Key)
	b = pbwire.AppendVarint(b, 3, uint64(m.Expires))
	b = pbwire.AppendBool(b, 4, m.Used)
	return pbwire.AppendBytes(b, 5, m.UsedBy)
}

func (m *InviteRecord) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			m.Id = pbwire.Clone(f.Bytes)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			m.Key = pbwire.Clone(f.Bytes)
		case f.Num == 3 && f.Type == pbwire.VarintType:
			m.Expires = int64(f.Varint)
		case f.Num == 4 && f.Type == pbwire.VarintType:
			m.Used = f.Varint != 0
		case f.Num == 5 && f.Type == pbwire.BytesType:
			m.UsedBy = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *JoinRequest) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Space)) + pbwire.SizeBytes(2, len(m.Name)) +
		pbwire.SizeBytes(3, len(m.Feed)) + pbwire.SizeBytes(4, len(m.Device)) +
		pbwire.SizeBytes(5, len(m.Nonce)) + pbwire.SizeVarint(6, uint64(m.Time))
}

func (m *JoinRequest) check() error {
	return pbwire.ValidString(m.Name)
}

func (m *JoinRequest) appendTo(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, m.Space)
	b = pbwire.AppendString(b, 2, m.Name)
	b = pbwire.AppendBytes(b, 3, m.Feed)
	b = pbwire.AppendBytes(b, 4, m.Device)
	b = pbwire.AppendBytes(b, 5, m.Nonce)
	return pbwire.AppendVarint(b, 6, uint64(m.Time))
}

func (m *JoinRequest) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			m.Space = pbwire.Clone(f.Bytes)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			if m.Name, err = pbwire.String(f.Bytes); err != nil {
				return err
			}
		case f.Num == 3 && f.Type == pbwire.BytesType:
			m.Feed = pbwire.Clone(f.Bytes)
		case f.Num == 4 && f.Type == pbwire.BytesType:
			m.Device = pbwire.Clone(f.Bytes)
		case f.Num == 5 && f.Type == pbwire.BytesType:
			m.Nonce = pbwire.Clone(f.Bytes)
		case f.Num == 6 && f.Type == pbwire.VarintType:
			m.Time = int64(f.Varint)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Approval) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Request)) + pbwire.SizeBytes(2, len(m.Approver)) +
		pbwire.SizeVarint(3, m.AddWriterIndex) + pbwire.SizeBytes(4, len(m.Keyring))
}

func (m *Approval) appendTo(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, m.Request)
	b = pbwire.AppendBytes(b, 2, m.Approver)
	b = pbwire.AppendVarint(b, 3, m.AddWriterIndex)
	return pbwire.AppendBytes(b, 4, m.Keyring)
}

func (m *Approval) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case f.Num == 1 && f.Type == pbwire.BytesType:
			m.Request = pbwire.Clone(f.Bytes)
		case f.Num == 2 && f.Type == pbwire.BytesType:
			m.Approver = pbwire.Clone(f.Bytes)
		case f.Num == 3 && f.Type == pbwire.VarintType:
			m.AddWriterIndex = f.Varint
		case f.Num == 4 && f.Type == pbwire.BytesType:
			m.Keyring = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

// Size returns the length of m's encoding.
func (m *Denial) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Request)) + pbwire.SizeBytes(2, len(m.Denier))
}

func (m *Denial) appendTo(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, m.Request)
	return pbwire.AppendBytes(b, 2, m.Denier)
}

func (m *Denial) merge(b []byte) error {
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
			m.Request = pbwire.Clone(f.Bytes)
		case 2:
			m.Denier = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}
