package spacepb

// The exported codec of each message; wire.go holds the encoding.

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Entry) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Entry) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Entry) Unmarshal(b []byte) error {
	*m = Entry{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Membership) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Membership) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Membership) Unmarshal(b []byte) error {
	*m = Membership{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *OpBody) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *OpBody) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *OpBody) Unmarshal(b []byte) error {
	*m = OpBody{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Seen) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Seen) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Seen) Unmarshal(b []byte) error {
	*m = Seen{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Put) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Put) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Put) Unmarshal(b []byte) error {
	*m = Put{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Delete) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Delete) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Delete) Unmarshal(b []byte) error {
	*m = Delete{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *AddWriter) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *AddWriter) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *AddWriter) Unmarshal(b []byte) error {
	*m = AddWriter{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *RemoveWriter) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *RemoveWriter) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *RemoveWriter) Unmarshal(b []byte) error {
	*m = RemoveWriter{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Rotation) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Rotation) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Rotation) Unmarshal(b []byte) error {
	*m = Rotation{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *SealedSecret) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *SealedSecret) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *SealedSecret) Unmarshal(b []byte) error {
	*m = SealedSecret{}
	return m.merge(b)
}
