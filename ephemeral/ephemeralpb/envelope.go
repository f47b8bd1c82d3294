package ephemeralpb

import (
	"github.com/mycelsync/mycel/internal/pbwire"
)

// Envelope is one ephemeral message: a gossipsub message's data, a direct
// stream's frame, a mailbox entry.
type Envelope struct {
	Topic      []byte // 32: the space's discovery key
	Sender     []byte // 32: Ed25519 public key of the sender
	Id         []byte // 16 random bytes
	Time       int64  // unix milliseconds, sender's clock
	KeyKind    uint32 // which kind of key sealed the body (caller's)
	KeyId      []byte // names that key, 0..64 bytes (caller's)
	Nonce      []byte // 24: XChaCha20-Poly1305 nonce
	Ciphertext []byte // XChaCha20-Poly1305 ciphertext ‖ tag (16)
	Signature  []byte // 64: Ed25519 by sender over the signed bytes
}

// Size returns the length of m's encoding.
func (m *Envelope) Size() int {
	if m == nil {
		return 0
	}
	return pbwire.SizeBytes(1, len(m.Topic)) + pbwire.SizeBytes(2, len(m.Sender)) +
		pbwire.SizeBytes(3, len(m.Id)) + pbwire.SizeVarint(4, uint64(m.Time)) +
		pbwire.SizeVarint(5, uint64(m.KeyKind)) + pbwire.SizeBytes(6, len(m.KeyId)) +
		pbwire.SizeBytes(7, len(m.Nonce)) + pbwire.SizeBytes(8, len(m.Ciphertext)) +
		pbwire.SizeBytes(9, len(m.Signature))
}

func (m *Envelope) appendTo(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, m.Topic)
	b = pbwire.AppendBytes(b, 2, m.Sender)
	b = pbwire.AppendBytes(b, 3, m.Id)
	b = pbwire.AppendVarint(b, 4, uint64(m.Time))
	b = pbwire.AppendVarint(b, 5, uint64(m.KeyKind))
	b = pbwire.AppendBytes(b, 6, m.KeyId)
	b = pbwire.AppendBytes(b, 7, m.Nonce)
	b = pbwire.AppendBytes(b, 8, m.Ciphertext)
	return pbwire.AppendBytes(b, 9, m.Signature)
}

func (m *Envelope) merge(b []byte) error {
	for len(b) > 0 {
		f, n, err := pbwire.Next(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if f.Type == pbwire.VarintType {
			switch f.Num {
			case 4:
				m.Time = int64(f.Varint)
			case 5:
				m.KeyKind = uint32(f.Varint)
			}
			continue
		}
		if f.Type != pbwire.BytesType {
			continue
		}
		switch f.Num {
		case 1:
			m.Topic = pbwire.Clone(f.Bytes)
		case 2:
			m.Sender = pbwire.Clone(f.Bytes)
		case 3:
			m.Id = pbwire.Clone(f.Bytes)
		case 6:
			m.KeyId = pbwire.Clone(f.Bytes)
		case 7:
			m.Nonce = pbwire.Clone(f.Bytes)
		case 8:
			m.Ciphertext = pbwire.Clone(f.Bytes)
		case 9:
			m.Signature = pbwire.Clone(f.Bytes)
		}
	}
	return nil
}

func (x *Envelope) GetTopic() []byte {
	if x != nil {
		return x.Topic
	}
	return nil
}

func (x *Envelope) GetSender() []byte {
	if x != nil {
		return x.Sender
	}
	return nil
}

func (x *Envelope) GetId() []byte {
	if x != nil {
		return x.Id
	}
	return nil
}

func (x *Envelope) GetTime() int64 {
	if x != nil {
		return x.Time
	}
	return 0
}

func (x *Envelope) GetKeyKind() uint32 {
	if x != nil {
		return x.KeyKind
	}
	return 0
}

func (x *Envelope) GetKeyId() []byte {
	if x != nil {
		return x.KeyId
	}
	return nil
}

func (x *Envelope) GetNonce() []byte {
	if x != nil {
		return x.Nonce
	}
	return nil
}

func (x *Envelope) GetCiphertext() []byte {
	if x != nil {
		return x.Ciphertext
	}
	return nil
}

func (x *Envelope) GetSignature() []byte {
	if x != nil {
		return x.Signature
	}
	return nil
}
