package feedpb

// The exported codec of each message; wire.go holds the encoding.

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *SignedHead) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *SignedHead) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *SignedHead) Unmarshal(b []byte) error {
	*m = SignedHead{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Run) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Run) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Run) Unmarshal(b []byte) error {
	*m = Run{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Consistency) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Consistency) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Consistency) Unmarshal(b []byte) error {
	*m = Consistency{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Batch) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Batch) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Batch) Unmarshal(b []byte) error {
	*m = Batch{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *ForkEvidence) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *ForkEvidence) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *ForkEvidence) Unmarshal(b []byte) error {
	*m = ForkEvidence{}
	return m.merge(b)
}

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *HeadRecord) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *HeadRecord) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *HeadRecord) Unmarshal(b []byte) error {
	*m = HeadRecord{}
	return m.merge(b)
}
