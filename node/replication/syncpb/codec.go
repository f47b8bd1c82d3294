package syncpb

// The exported codec of each message; wire.go holds the encoding.

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Message) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Message) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Message) Unmarshal(b []byte) error {
	*m = Message{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Hello) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Hello) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Hello) Unmarshal(b []byte) error {
	*m = Hello{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Prove) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Prove) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Prove) Unmarshal(b []byte) error {
	*m = Prove{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *EpochProof) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *EpochProof) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *EpochProof) Unmarshal(b []byte) error {
	*m = EpochProof{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Heads) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Heads) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Heads) Unmarshal(b []byte) error {
	*m = Heads{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Range) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Range) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Range) Unmarshal(b []byte) error {
	*m = Range{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Want) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Want) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Want) Unmarshal(b []byte) error {
	*m = Want{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Data) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Data) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Data) Unmarshal(b []byte) error {
	*m = Data{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Refuse) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Refuse) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Refuse) Unmarshal(b []byte) error {
	*m = Refuse{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Fork) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Fork) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Fork) Unmarshal(b []byte) error {
	*m = Fork{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Done) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Done) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Done) Unmarshal(b []byte) error {
	*m = Done{}
	return m.merge(b)
}
