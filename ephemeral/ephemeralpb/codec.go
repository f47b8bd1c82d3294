package ephemeralpb

// The exported codec of each message; wire.go holds the encoding.

// Marshal returns m's encoding, the bytes proto.Marshal wrote.
func (m *Envelope) Marshal() ([]byte, error) {
	return m.MarshalAppend(make([]byte, 0, m.Size()))
}

// MarshalAppend appends m's encoding to b.
func (m *Envelope) MarshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return m.appendTo(b), nil
}

// Unmarshal replaces m with the message b encodes, skipping unknown fields.
func (m *Envelope) Unmarshal(b []byte) error {
	*m = Envelope{}
	return m.merge(b)
}
