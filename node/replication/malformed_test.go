package replication

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/replication/syncpb"
)

// opened returns a pair where A holds 2000 entries of wA and B has just
// sent its wants (#1 [0,1024) and #2 [1024,2000)), not yet delivered.
func opened(t testing.TB) *harness {
	a := newNode(t, "A", []feed.PublicKey{keyA, keyB})
	b := newNode(t, "B", []feed.PublicKey{keyA, keyB})
	a.appendEntries(t, privA, "a", 2000, 8)
	h := newHarness(t, a, b, testCap(1), testCap(1), nil, nil)
	h.names[keyA] = "wA"
	h.start()
	for _, n := range []*node{a, b, a, b, b} {
		h.deliver(n)
	}
	if !b.s.Authenticated() || len(a.inbox) != 2 {
		t.Fatalf("opening: authed %v, %d wants", b.s.Authenticated(), len(a.inbox))
	}
	return h
}

func msgHello(v uint32, nonce []byte) *syncpb.Message {
	return &syncpb.Message{Body: &syncpb.Message_Hello{Hello: &syncpb.Hello{Version: v, Nonce: nonce}}}
}

func msgWant(k feed.PublicKey, id uint32, ranges ...*syncpb.Range) *syncpb.Message {
	return &syncpb.Message{Body: &syncpb.Message_Want{Want: &syncpb.Want{Feed: k[:], Id: id, Ranges: ranges}}}
}

func msgData(t testing.TB, id uint32, b *feed.Batch) *syncpb.Message {
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &syncpb.Message{Body: &syncpb.Message_Data{Data: &syncpb.Data{Id: id, Batch: data}}}
}

func msgHeads(heads ...[]byte) *syncpb.Message {
	return &syncpb.Message{Body: &syncpb.Message_Heads{Heads: &syncpb.Heads{Heads: heads}}}
}

func batchOf(t testing.TB, n *node, k feed.PublicKey, ranges ...feed.Range) *feed.Batch {
	b, err := n.model.Batch(k, feed.BatchRequest{Want: ranges})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proveOf is a Prove of n proofs of epochs 1…n (none of them valid), each
// with the given sealed writer.
func proveOf(n int, sealed []byte) *syncpb.Message {
	p := &syncpb.Prove{}
	for i := range n {
		p.Proofs = append(p.Proofs, &syncpb.EpochProof{Epoch: uint32(i + 1), Proof: make([]byte, 32), SealedWriter: sealed})
	}
	return &syncpb.Message{Body: &syncpb.Message_Prove{Prove: p}}
}

// validProve is peerA's Prove of testCap(1) to a session of peerB whose
// nonce is verifierNonce, with a writer sealed by seal (nil: none).
func validProve(nonce, verifierNonce [NonceSize]byte, seal func(aead cipher.AEAD, binding []byte) []byte) *syncpb.Message {
	c := testCap(1)
	binding := Binding([]byte("peerA"), []byte("peerB"), nonce, verifierNonce)
	proof := c.Proof(binding)
	ep := &syncpb.EpochProof{Epoch: 1, Proof: proof[:]}
	if seal != nil {
		ep.SealedWriter = seal(sealAEAD(c, binding), binding)
	}
	return &syncpb.Message{Body: &syncpb.Message_Prove{Prove: &syncpb.Prove{Proofs: []*syncpb.EpochProof{ep}}}}
}

func TestStepBeforeProof(t *testing.T) {
	a := newNode(t, "A", []feed.PublicKey{keyA})
	a.appendEntries(t, privA, "a", 10, 8)
	b := newNode(t, "B", []feed.PublicKey{keyA})
	newHarness(t, a, b, testCap(1), testCap(1), nil, nil)
	nonce := bytes.Repeat([]byte{1}, 32)
	nonce32, verifierNonce := [NonceSize]byte(nonce), b.s.cfg.Nonce
	headA, _ := a.model.Head(keyA)
	rawHead, _ := headA.MarshalBinary()
	tests := []struct {
		name string
		msgs []*syncpb.Message
		want error
	}{
		{"Want first", []*syncpb.Message{msgWant(keyA, 1, &syncpb.Range{Start: 0, End: 10})}, ErrProtocol},
		{"Want after Hello", []*syncpb.Message{msgHello(Version, nonce), msgWant(keyA, 1, &syncpb.Range{Start: 0, End: 10})}, ErrProtocol},
		{"Heads after Hello", []*syncpb.Message{msgHello(Version, nonce), msgHeads(rawHead)}, ErrProtocol},
		{"Data after Hello", []*syncpb.Message{msgHello(Version, nonce), msgData(t, 1, batchOf(t, a, keyA, feed.Range{Start: 0, End: 10}))}, ErrProtocol},
		{"Prove first", []*syncpb.Message{msgProve(make([]byte, 32))}, ErrProtocol},
		{"wrong proof", []*syncpb.Message{msgHello(Version, nonce), msgProve(make([]byte, 32))}, ErrUnauthorized},
		{"short proof", []*syncpb.Message{msgHello(Version, nonce), msgProve(make([]byte, 31))}, ErrMalformed},
		{"no proof", []*syncpb.Message{msgHello(Version, nonce), {Body: &syncpb.Message_Prove{Prove: &syncpb.Prove{}}}}, ErrMalformed},
		{"nine proofs", []*syncpb.Message{msgHello(Version, nonce), proveOf(9, nil)}, ErrMalformed},
		{"one epoch twice", []*syncpb.Message{msgHello(Version, nonce), {Body: &syncpb.Message_Prove{Prove: &syncpb.Prove{
			Proofs: []*syncpb.EpochProof{{Epoch: 1, Proof: make([]byte, 32)}, {Epoch: 1, Proof: make([]byte, 32)}}}}}}, ErrMalformed},
		{"short sealed writer", []*syncpb.Message{msgHello(Version, nonce), proveOf(1, make([]byte, SealedWriterSize-1))}, ErrMalformed},
		{"long sealed writer", []*syncpb.Message{msgHello(Version, nonce), proveOf(1, make([]byte, SealedWriterSize+1))}, ErrMalformed},
		{"sealed writer that does not open", []*syncpb.Message{msgHello(Version, nonce), validProve(nonce32, verifierNonce, func(cipher.AEAD, []byte) []byte {
			return make([]byte, SealedWriterSize)
		})}, ErrUnauthorized},
		{"forged writer signature", []*syncpb.Message{msgHello(Version, nonce), validProve(nonce32, verifierNonce, func(aead cipher.AEAD, binding []byte) []byte {
			return aead.Seal(nil, zeroNonce[:], append(bytes.Clone(keyA[:]), make([]byte, 64)...), binding)
		})}, ErrUnauthorized},
		{"second Hello", []*syncpb.Message{msgHello(Version, nonce), msgHello(Version, nonce)}, ErrProtocol},
		{"version 1", []*syncpb.Message{msgHello(1, nonce)}, ErrVersion},
		{"version 3", []*syncpb.Message{msgHello(3, nonce)}, ErrVersion},
		{"short nonce", []*syncpb.Message{msgHello(Version, nonce[:31])}, ErrMalformed},
		{"one-byte nonce", []*syncpb.Message{msgHello(Version, []byte{0xb0})}, ErrMalformed},
		{"empty message", []*syncpb.Message{{}}, ErrMalformed},
		{"nil message", []*syncpb.Message{nil}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(b.s.cfg)
			s.Start()
			s.Ready()
			s.Advance()
			var err error
			for _, m := range tc.msgs {
				if err = s.Step(m); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			rd := s.Ready()
			if len(rd.Send) != 0 || len(rd.Ingest) != 0 || !errors.Is(rd.Err, tc.want) {
				t.Errorf("after the error: %d to send, %d to ingest, err %v", len(rd.Send), len(rd.Ingest), rd.Err)
			}
			if again := s.Step(msgHello(Version, nonce)); again != err {
				t.Errorf("Step after the error: %v", again)
			}
		})
	}
	// Our own nonce sent back.
	s := New(b.s.cfg)
	s.Start()
	if err := s.Step(msgHello(Version, s.cfg.Nonce[:])); !errors.Is(err, ErrProtocol) {
		t.Errorf("reflected nonce: %v", err)
	}
	// Step before Start.
	if err := New(b.s.cfg).Step(msgHello(Version, nonce)); !errors.Is(err, ErrMisuse) {
		t.Errorf("Step before Start: %v", err)
	}
}

func TestStepMalformedAfterOpening(t *testing.T) {
	other := newNode(t, "X", []feed.PublicKey{keyB})
	other.appendEntries(t, privB, "b", 10, 8)
	src := newNode(t, "S", []feed.PublicKey{keyA})
	src.appendEntries(t, privA, "a", 2000, 8)
	headA, _ := src.model.Head(keyA)
	rawHead, _ := headA.MarshalBinary()
	badSig := headA
	badSig.Signature[0] ^= 1
	rawBad, _ := badSig.MarshalBinary()
	tooManyRanges := make([]*syncpb.Range, MaxRangesPerWant+1)
	for i := range tooManyRanges {
		tooManyRanges[i] = &syncpb.Range{Start: uint64(2 * i), End: uint64(2*i + 1)}
	}
	manyHeads := make([][]byte, MaxHeadsPerMessage+1)
	for i := range manyHeads {
		manyHeads[i] = rawHead
	}

	tests := []struct {
		name string
		msg  func(t testing.TB) *syncpb.Message
		want error
	}{
		{"Data for unknown want", func(t testing.TB) *syncpb.Message {
			return msgData(t, 99, batchOf(t, src, keyA, feed.Range{Start: 0, End: 10}))
		}, ErrProtocol},
		{"Data for a feed never wanted", func(t testing.TB) *syncpb.Message {
			return msgData(t, 1, batchOf(t, other, keyB, feed.Range{Start: 0, End: 10}))
		}, ErrProtocol},
		{"Data with entries not asked for", func(t testing.TB) *syncpb.Message {
			return msgData(t, 1, batchOf(t, src, keyA, feed.Range{Start: 1500, End: 1510}))
		}, ErrProtocol},
		{"Data garbage batch", func(t testing.TB) *syncpb.Message {
			return &syncpb.Message{Body: &syncpb.Message_Data{Data: &syncpb.Data{Id: 1, Batch: []byte{0xff, 0xff}}}}
		}, ErrMalformed},
		{"Refuse for unknown want", func(t testing.TB) *syncpb.Message {
			return &syncpb.Message{Body: &syncpb.Message_Refuse{Refuse: &syncpb.Refuse{Id: 42}}}
		}, ErrProtocol},
		{"Refuse reason too long", func(t testing.TB) *syncpb.Message {
			return &syncpb.Message{Body: &syncpb.Message_Refuse{Refuse: &syncpb.Refuse{Id: 1, Reason: strings.Repeat("x", MaxReasonSize+1)}}}
		}, ErrMalformed},
		{"Heads garbage", func(t testing.TB) *syncpb.Message { return msgHeads([]byte{1, 2, 3}) }, ErrMalformed},
		{"Heads bad signature", func(t testing.TB) *syncpb.Message { return msgHeads(rawBad) }, ErrProtocol},
		{"Heads too many", func(t testing.TB) *syncpb.Message { return msgHeads(manyHeads...) }, ErrMalformed},
		{"Want short key", func(t testing.TB) *syncpb.Message {
			return &syncpb.Message{Body: &syncpb.Message_Want{Want: &syncpb.Want{Feed: []byte{1}}}}
		}, ErrMalformed},
		{"Want ranges out of order", func(t testing.TB) *syncpb.Message {
			return msgWant(keyA, 1, &syncpb.Range{Start: 5, End: 9}, &syncpb.Range{Start: 0, End: 2})
		}, ErrMalformed},
		{"Want empty range", func(t testing.TB) *syncpb.Message { return msgWant(keyA, 1, &syncpb.Range{Start: 5, End: 5}) }, ErrMalformed},
		{"Want beyond MaxLength", func(t testing.TB) *syncpb.Message {
			return msgWant(keyA, 1, &syncpb.Range{Start: 5, End: feed.MaxLength + 1})
		}, ErrMalformed},
		{"Want too many ranges", func(t testing.TB) *syncpb.Message { return msgWant(keyA, 1, tooManyRanges...) }, ErrMalformed},
		{"Fork garbage", func(t testing.TB) *syncpb.Message {
			return &syncpb.Message{Body: &syncpb.Message_Fork{Fork: &syncpb.Fork{Evidence: []byte{9}}}}
		}, ErrMalformed},
		{"Fork that is no fork", func(t testing.TB) *syncpb.Message {
			ev := &feed.ForkEvidence{A: headA, B: headA}
			data, _ := ev.MarshalBinary()
			return &syncpb.Message{Body: &syncpb.Message_Fork{Fork: &syncpb.Fork{Evidence: data}}}
		}, ErrProtocol},
		{"second Hello", func(t testing.TB) *syncpb.Message { return msgHello(Version, make([]byte, 32)) }, ErrProtocol},
		{"second Prove", func(t testing.TB) *syncpb.Message {
			return msgProve(make([]byte, 32))
		}, ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := opened(t)
			err := h.b.s.Step(tc.msg(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if rd := h.b.s.Ready(); len(rd.Ingest) != 0 || len(rd.Send) != 0 {
				t.Errorf("after the error: %d to ingest, %d to send", len(rd.Ingest), len(rd.Send))
			}
			if f := h.b.model.feed(keyA); f.Length() != 0 {
				t.Error("something was ingested")
			}
		})
	}
}

// A valid Data for an open want is ingested; Ingested without one is misuse.
func TestIngestedMisuse(t *testing.T) {
	h := opened(t)
	h.b.s.Ingested(keyA, nil)
	if !errors.Is(h.b.s.Err(), ErrMisuse) {
		t.Errorf("got %v", h.b.s.Err())
	}
}

// A peer that omits the consistency proof it was asked for is at fault.
func TestMissingConsistencyIsProtocolError(t *testing.T) {
	h := opened(t)
	b := h.b
	// A's honest answer to want #1, then a batch for want #2 from a longer
	// head without the consistency proof from B's new length.
	if err := b.s.Step(msgData(t, 1, batchOf(t, h.a, keyA, feed.Range{Start: 0, End: 1024}))); err != nil {
		t.Fatal(err)
	}
	h.collect(b)
	h.ingestOne(b)
	h.a.appendEntries(t, privA, "a", 5, 8)
	bt := batchOf(t, h.a, keyA, feed.Range{Start: 1024, End: 1100})
	bt.Consistency = nil
	if err := b.s.Step(msgData(t, 2, bt)); err != nil {
		t.Fatal(err)
	}
	h.collect(b)
	h.ingestOne(b) // need-consistency: B's head moved, so it asks again
	var again *syncpb.Want
	for _, m := range h.a.inbox {
		if w := m.GetWant(); w != nil && w.GetBase() == 2000 && w.GetRanges()[0].GetStart() == 1024 {
			again = w
		}
	}
	if again == nil {
		t.Fatalf("B did not ask again from its length; log:\n%s", h.log.String())
	}
	if err := b.s.Step(msgData(t, again.GetId(), bt)); err != nil {
		t.Fatal(err)
	}
	h.collect(b)
	h.ingestOne(b)
	if !errors.Is(b.s.Err(), ErrProtocol) {
		t.Errorf("got %v, want ErrProtocol", b.s.Err())
	}
}

// Wants beyond MaxPendingAnswers (not yet handed to the driver) are refused.
func TestPeerWantsBounded(t *testing.T) {
	h := opened(t)
	a := h.a
	for i := range 10 {
		if err := a.s.Step(msgWant(keyA, uint32(100+i), &syncpb.Range{Start: uint64(i), End: uint64(i + 1)})); err != nil {
			t.Fatal(err)
		}
	}
	var data, busy int
	for _, m := range a.s.Ready().Send {
		switch {
		case m.GetData() != nil:
			data++
		case m.GetRefuse().GetReason() == ReasonBusy:
			busy++
		}
	}
	// B's own wants are still in A's inbox: 8 answered, 2 busy.
	if data != 8 || busy != 2 {
		t.Errorf("%d data, %d busy", data, busy)
	}
	// Unknown feed.
	var k feed.PublicKey
	k[0] = 1
	a.s.Advance()
	if err := a.s.Step(msgWant(k, 7)); err != nil {
		t.Fatal(err)
	}
	if r := a.s.Ready().Send[0].GetRefuse(); r.GetReason() != ReasonUnknownFeed {
		t.Errorf("got %v", r)
	}
}

// TestOutsiderLearnsNoFeedKey: an outsider that sends Hello, then a Prove
// that fails, receives no byte of this node's feed key — for the creator of
// a space, the space ID. A holder of the capability reads it.
func TestOutsiderLearnsNoFeedKey(t *testing.T) {
	a := newNode(t, "A", []feed.PublicKey{keyA})
	a.appendEntries(t, privA, "a", 3, 8)
	b := newNode(t, "B", []feed.PublicKey{keyA})
	newHarness(t, a, b, testCap(1), testCap(1), func(c *Config) {
		c.Creds.Writer = privA // A created the space: its feed key is the space ID
	}, nil)
	nonce := [NonceSize]byte(bytes.Repeat([]byte{7}, NonceSize))
	s := New(a.s.cfg)
	s.Start()
	var sent bytes.Buffer
	take := func() {
		rd := s.Ready()
		for _, m := range rd.Send {
			if err := WriteFrame(&sent, m); err != nil {
				t.Fatal(err)
			}
		}
		s.Advance()
	}
	take()
	if err := s.Step(msgHello(Version, nonce[:])); err != nil {
		t.Fatal(err)
	}
	take()
	if err := s.Step(proveOf(1, nil)); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("outsider's proof: %v", err)
	}
	take()
	if sent.Len() == 0 {
		t.Fatal("A sent nothing")
	}
	for _, secret := range [][]byte{keyA[:], keyA[:8], keyA[24:]} {
		if bytes.Contains(sent.Bytes(), secret) {
			t.Fatalf("the outsider received the feed key (%x) in %d bytes", secret, sent.Len())
		}
	}
	if sent.Len() > MaxOpeningFrameSize {
		t.Errorf("A sent %d bytes to an outsider", sent.Len())
	}

	// A member opens the sealed writer.
	var seen Proof
	h := pair(t, []feed.PublicKey{keyA}, func(c *Config) { c.Creds.Writer = privA }, func(c *Config) {
		v := c.Verify
		c.Verify = func(binding []byte, p Proof) bool { seen = p; return v(binding, p) }
	})
	h.start()
	h.pump()
	if seen.Writer == nil || *seen.Writer != keyA {
		t.Fatalf("the member read writer %v, want %x", seen.Writer, keyA[:4])
	}
}

// TestIngestNotStored: a batch the driver verified but refused to store
// for its own reasons (ErrNotStored: a relay's quota) does not end the
// session, unlike data that fails to ingest; the ranges are not asked for
// again.
func TestIngestNotStored(t *testing.T) {
	h := opened(t)
	b := h.b
	if err := b.s.Step(msgData(t, 1, batchOf(t, h.a, keyA, feed.Range{Start: 0, End: 1024}))); err != nil {
		t.Fatal(err)
	}
	h.collect(b)
	if len(b.pending) != 1 {
		t.Fatalf("%d ingests pending", len(b.pending))
	}
	in := b.pending[0]
	b.pending = b.pending[1:]
	sent := len(h.a.inbox)
	b.s.Ingested(in.Feed, fmt.Errorf("%w: quota", ErrNotStored))
	h.collect(b)
	if err := b.s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
	for _, m := range h.a.inbox[sent:] {
		if w := m.GetWant(); w != nil && w.GetRanges()[0].GetStart() == 0 {
			t.Fatalf("B asked again for what it refused: %v", w)
		}
	}
}
