package replication

import (
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"encoding/binary"
	"testing"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/replication/syncpb"
)

// seedMessages are valid messages of every kind, from a real exchange.
func seedMessages(t testing.TB) []*syncpb.Message {
	h := opened(t)
	msgs := append([]*syncpb.Message(nil), h.a.inbox...)
	h.pump()
	head, _ := h.a.model.Head(keyA)
	raw, _ := head.MarshalBinary()
	ev := &feed.ForkEvidence{A: head, B: head}
	evRaw, _ := ev.MarshalBinary()
	return append(msgs,
		msgHello(Version, bytes.Repeat([]byte{1}, 32)),
		msgProve(make([]byte, 32)),
		proveOf(2, make([]byte, SealedWriterSize)),
		validProve(fuzzProverNonce, fuzzVerifierNonce, func(aead cipher.AEAD, binding []byte) []byte {
			plain := append(bytes.Clone(keyA[:]), ed25519.Sign(privA, writerMessage(binding))...)
			return aead.Seal(nil, zeroNonce[:], plain, binding)
		}),
		msgHeads(raw),
		msgData(t, 1, batchOf(t, h.a, keyA, feed.Range{Start: 0, End: 3})),
		&syncpb.Message{Body: &syncpb.Message_Refuse{Refuse: &syncpb.Refuse{Id: 1, Reason: ReasonBusy}}},
		&syncpb.Message{Body: &syncpb.Message_Fork{Fork: &syncpb.Fork{Evidence: evRaw}}},
		&syncpb.Message{Body: &syncpb.Message_Done{Done: &syncpb.Done{}}},
	)
}

func FuzzReadFrame(f *testing.F) {
	for _, m := range seedMessages(f) {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, m); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(binary.AppendUvarint(nil, MaxFrameSize+1))
	f.Add(bytes.Repeat([]byte{0xff}, 12))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			m, err := ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			// What decodes re-encodes and decodes to the same message.
			var buf bytes.Buffer
			if err := WriteFrame(&buf, m); err != nil {
				t.Fatal(err)
			}
			again, err := ReadFrame(&buf, 0)
			if err != nil || !sameMessage(m, again) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

// FuzzStep feeds random messages into a session after a valid opening,
// with wants outstanding. It must not panic, and a message it rejects must
// leave nothing to send or ingest.
func FuzzStep(f *testing.F) {
	for _, m := range seedMessages(f) {
		b, _ := m.Marshal()
		f.Add(b)
	}
	// The session holds 1000 entries of wA; the peer shows a head of 2000.
	src := newNode(f, "S", []feed.PublicKey{keyA})
	src.appendEntries(f, privA, "a", 1000, 8)
	peer := newNode(f, "P", []feed.PublicKey{keyA})
	peer.appendEntries(f, privA, "a", 2000, 8)
	peerHead, _ := peer.model.Head(keyA)
	rawHead, _ := peerHead.MarshalBinary()
	c := testCap(1)
	cfg := Config{LocalID: []byte("local"), RemoteID: []byte("remote"), Creds: Credentials{Caps: []auth.ReplicationCapability{c}}, Verify: VerifyCap(c), Model: src.model}
	cfg.Nonce[0] = 1
	var peerNonce [NonceSize]byte
	peerNonce[0] = 2
	proof := c.Proof(Binding(cfg.RemoteID, cfg.LocalID, peerNonce, cfg.Nonce))
	f.Add(func() []byte {
		b, _ := msgData(f, 1, batchOf(f, peer, keyA, feed.Range{Start: 1000, End: 1010})).Marshal()
		return b
	}())
	// A head of another branch at the session's length: a fork in the heads.
	fork := newNode(f, "F", []feed.PublicKey{keyA})
	fork.appendEntries(f, privA, "b", 1000, 8)
	forkHead, _ := fork.model.Head(keyA)
	rawFork, _ := forkHead.MarshalBinary()
	f.Add(func() []byte {
		b, _ := msgHeads(rawFork).Marshal()
		return b
	}())
	f.Fuzz(func(t *testing.T, data []byte) {
		var m syncpb.Message
		if m.Unmarshal(data) != nil {
			return
		}
		s := New(cfg)
		s.Start()
		for _, open := range []*syncpb.Message{
			msgHello(Version, peerNonce[:]),
			msgProve(proof[:]),
			msgHeads(rawHead),
		} {
			if err := s.Step(open); err != nil {
				t.Fatal(err)
			}
		}
		if len(s.wants) == 0 {
			t.Fatal("no wants outstanding")
		}
		s.Ready()
		s.Advance()
		if err := s.Step(&m); err != nil {
			if rd := s.Ready(); len(rd.Ingest) != 0 || len(rd.Send) != 0 || rd.Err == nil {
				t.Fatalf("rejected message left outputs: %v", err)
			}
		}
		s.Progress()
	})
}

// message is a syncpb message type M, a pointer to T.
type message[T any] interface {
	*T
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// fuzzDecoder fuzzes one message decoder with proto bytes of its message.
func fuzzDecoder[T any, M message[T]](f *testing.F, pick func(*syncpb.Message) M, parse func(M) error) {
	for _, m := range seedMessages(f) {
		if inner := pick(m); inner != nil {
			b, _ := inner.Marshal()
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := M(new(T))
		if m.Unmarshal(data) != nil {
			return
		}
		parse(m) // must not panic
	})
}

func FuzzHello(f *testing.F) {
	fuzzDecoder(f, (*syncpb.Message).GetHello, func(m *syncpb.Hello) error { _, err := parseHello(m); return err })
}

// The nonces of the valid Prove among the seeds.
var fuzzProverNonce, fuzzVerifierNonce = [NonceSize]byte{1}, [NonceSize]byte{2}

func FuzzProve(f *testing.F) {
	fuzzDecoder(f, (*syncpb.Message).GetProve, func(m *syncpb.Prove) error {
		binding := Binding([]byte("peerA"), []byte("peerB"), fuzzProverNonce, fuzzVerifierNonce)
		p, err := parseProve(m, binding, []auth.ReplicationCapability{testCap(1)})
		if err == nil && p.Writer != nil && *p.Writer != keyA {
			panic("a writer other than the one sealed was accepted")
		}
		return err
	})
}

func FuzzHeads(f *testing.F) {
	fuzzDecoder(f, (*syncpb.Message).GetHeads, func(m *syncpb.Heads) error { _, err := parseHeads(m); return err })
}

func FuzzWant(f *testing.F) {
	fuzzDecoder(f, (*syncpb.Message).GetWant, func(m *syncpb.Want) error {
		w, err := parseWant(m)
		if err == nil && len(w.ranges) > MaxRangesPerWant {
			panic("too many ranges accepted")
		}
		return err
	})
}

func FuzzData(f *testing.F) {
	fuzzDecoder(f, (*syncpb.Message).GetData, func(m *syncpb.Data) error { _, err := parseData(m); return err })
}

func FuzzRefuse(f *testing.F) {
	fuzzDecoder(f, (*syncpb.Message).GetRefuse, func(m *syncpb.Refuse) error { return parseRefuse(m) })
}

func FuzzFork(f *testing.F) {
	fuzzDecoder(f, (*syncpb.Message).GetFork, func(m *syncpb.Fork) error { _, err := parseFork(m); return err })
}
