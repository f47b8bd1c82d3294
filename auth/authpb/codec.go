package authpb

// The exported codec of each message; wire.go holds the encoding.

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Keyring) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Keyring) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Keyring) Unmarshal(b []byte) error {
	*m = Keyring{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *ConcurrentSecret) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *ConcurrentSecret) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *ConcurrentSecret) Unmarshal(b []byte) error {
	*m = ConcurrentSecret{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *MirrorToken) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *MirrorToken) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *MirrorToken) Unmarshal(b []byte) error {
	*m = MirrorToken{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *InviteRecord) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *InviteRecord) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *InviteRecord) Unmarshal(b []byte) error {
	*m = InviteRecord{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *JoinRequest) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *JoinRequest) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *JoinRequest) Unmarshal(b []byte) error {
	*m = JoinRequest{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Approval) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Approval) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Approval) Unmarshal(b []byte) error {
	*m = Approval{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Denial) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Denial) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Denial) Unmarshal(b []byte) error {
	*m = Denial{}
	return m.merge(b)
}
