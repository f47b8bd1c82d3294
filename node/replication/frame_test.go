package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mycelsync/mycel/node/replication/syncpb"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestFrameRoundTrip(t *testing.T) {
	msgs := []*syncpb.Message{
		{Body: &syncpb.Message_Hello{Hello: &syncpb.Hello{Version: 1, Nonce: make([]byte, 32)}}},
		msgProve(bytes.Repeat([]byte{7}, 32)),
		{Body: &syncpb.Message_Heads{Heads: &syncpb.Heads{Heads: [][]byte{{1, 2}, {3}}}}},
		{Body: &syncpb.Message_Want{Want: &syncpb.Want{Feed: make([]byte, 32), Ranges: []*syncpb.Range{{Start: 1, End: 5}}, Base: 9, Id: 3, MaxBytes: 100}}},
		{Body: &syncpb.Message_Data{Data: &syncpb.Data{Id: 3, Batch: bytes.Repeat([]byte{1}, 300)}}},
		{Body: &syncpb.Message_Refuse{Refuse: &syncpb.Refuse{Id: 3, Reason: ReasonNotHeld}}},
		{Body: &syncpb.Message_Fork{Fork: &syncpb.Fork{Evidence: []byte{1}}}},
		{Body: &syncpb.Message_Done{Done: &syncpb.Done{}}},
		{},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range msgs {
		got, err := ReadFrame(&buf, 0)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !sameMessage(got, want) {
			t.Errorf("frame %d: got %v, want %v", i, got, want)
		}
	}
	if _, err := ReadFrame(&buf, 0); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

// limitedReader fails the test if more than n bytes are read: the payload
// of an oversized frame must not be read (nor allocated).
type limitedReader struct {
	t *testing.T
	r io.Reader
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= n
	if l.n < 0 {
		l.t.Errorf("read %d bytes past the length prefix", -l.n)
	}
	return n, err
}

func TestReadFrameErrors(t *testing.T) {
	prefix := func(n uint64) []byte { return binary.AppendUvarint(nil, n) }
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"over MaxFrameSize", prefix(MaxFrameSize + 1), 0, ErrFrameTooLarge},
		{"over the caller's max", append(prefix(101), make([]byte, 101)...), 100, ErrFrameTooLarge},
		{"huge length", prefix(1 << 62), 0, ErrFrameTooLarge},
		{"varint overflow", bytes.Repeat([]byte{0xff}, 11), 0, ErrMalformed},
		{"truncated prefix", []byte{0x80}, 0, io.ErrUnexpectedEOF},
		{"truncated payload", append(prefix(10), 1, 2, 3), 0, io.ErrUnexpectedEOF},
		{"garbage payload", append(prefix(3), 0xff, 0xff, 0xff), 0, ErrMalformed},
		{"wrong wire type", append(prefix(2), 0x0a, 0x05), 0, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := io.Reader(bytes.NewReader(tc.in))
			if errors.Is(tc.want, ErrFrameTooLarge) {
				_, n := binary.Uvarint(tc.in)
				r = &limitedReader{t: t, r: r, n: n}
			}
			_, err := ReadFrame(r, tc.max)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	m := &syncpb.Message{Body: &syncpb.Message_Data{Data: &syncpb.Data{Batch: make([]byte, MaxFrameSize)}}}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, m); !errors.Is(err, ErrFrameTooLarge) || buf.Len() != 0 {
		t.Errorf("got %v with %d bytes written", err, buf.Len())
	}
}

// TestDataFrames: Data frames with large batches, written and read without
// copying the batch, are the bytes Message.Marshal makes and decode as
// Message.Unmarshal does.
func TestDataFrames(t *testing.T) {
	for _, id := range []uint32{0, 1, 300, 1<<32 - 1} {
		for _, n := range []int{dataFastPath - 1, dataFastPath, 1 << 20} {
			m := &syncpb.Message{Body: &syncpb.Message_Data{Data: &syncpb.Data{Id: id, Batch: bytes.Repeat([]byte{byte(n)}, n)}}}
			enc, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			want := append(binary.AppendUvarint(nil, uint64(len(enc))), enc...)
			var buf bytes.Buffer
			if err := WriteFrame(&buf, m); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("id %d, %d bytes: frame differs from Message.Marshal's", id, n)
			}
			got, err := ReadFrame(&buf, 0)
			if err != nil || !sameMessage(got, m) {
				t.Fatalf("id %d, %d bytes: read back %v", id, n, err)
			}
		}
	}
	// Encodings the fast path leaves to Message.Unmarshal, or decodes alike.
	batch := protowire.AppendBytes(protowire.AppendTag(nil, fieldDataBatch, protowire.BytesType), make([]byte, 100))
	id := protowire.AppendVarint(protowire.AppendTag(nil, fieldDataID, protowire.VarintType), 7)
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1)
	wrap := func(inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, fieldMessageData, protowire.BytesType), inner)
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for i, buf := range [][]byte{
		wrap(cat(batch, id)),        // fields out of order
		wrap(cat(id, batch, batch)), // repeated: the last wins
		wrap(cat(id, unknown, batch)),
		cat(wrap(cat(id, batch)), wrap(id)), // two data fields: merged
		cat(wrap(cat(id, batch)), unknown),
		wrap(cat(id, batch[:5])), // truncated
		wrap(nil),
	} {
		checkReadData(t, fmt.Sprint("case ", i), buf)
	}
}

// checkReadData checks that readData decodes buf as Message.Unmarshal does,
// or leaves it to it.
func checkReadData(t *testing.T, name string, buf []byte) {
	t.Helper()
	fast := readData(buf, 0)
	if fast == nil {
		return
	}
	slow := new(syncpb.Message)
	if err := slow.Unmarshal(buf); err != nil {
		t.Fatalf("%s: fast path decoded what Message.Unmarshal refuses: %v", name, err)
	}
	if !sameMessage(fast, slow) {
		t.Fatalf("%s: fast path %v, Message.Unmarshal %v", name, fast, slow)
	}
}

// FuzzReadData: the Data fast path agrees with Message.Unmarshal.
func FuzzReadData(f *testing.F) {
	m := &syncpb.Message{Body: &syncpb.Message_Data{Data: &syncpb.Data{Id: 3, Batch: []byte("batch")}}}
	enc, _ := m.Marshal()
	f.Add(enc)
	f.Add([]byte{0x2a, 0x00})
	f.Fuzz(func(t *testing.T, buf []byte) { checkReadData(t, "fuzz", buf) })
}

// TestReadFrameAllocatesAsBytesArrive plays a peer that sends only the
// length of the largest frame and then stalls (here: ends): the reader must
// not have allocated the frame's size for bytes that never came.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	prefix := binary.AppendUvarint(nil, MaxFrameSize)
	in := append(prefix, make([]byte, 1000)...) // a length, then 1000 bytes of it
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 8 {
		if _, err := ReadFrame(bytes.NewReader(in), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 8*2*frameChunk {
		t.Fatalf("8 reads of a %d-byte frame cut after 1000 bytes allocated %d bytes, want ≤ %d", MaxFrameSize, got, 8*2*frameChunk)
	}
}

// TestReadFrameGrows reads frames whose payload arrives a few bytes at a
// time across the buffer's growth steps.
func TestReadFrameGrows(t *testing.T) {
	for _, n := range []int{0, 1, frameChunk - 1, frameChunk, frameChunk + 1, 5*frameChunk + 3} {
		m := &syncpb.Message{Body: &syncpb.Message_Refuse{Refuse: &syncpb.Refuse{Id: 7, Reason: strings.Repeat("x", n)}}}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFrame(iotest.HalfReader(&buf), 0)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !sameMessage(got, m) {
			t.Fatalf("%d bytes: frame changed", n)
		}
	}
}

// sameMessage reports whether a and b are the same message: syncpb
// messages keep no unknown fields, so their encodings are.
func sameMessage(a, b *syncpb.Message) bool {
	ea, errA := a.Marshal()
	eb, errB := b.Marshal()
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}

// TestReadFrameElementsBounded plays a peer that sends the largest frame
// made of the smallest repeated fields (2 bytes each: a tag and a zero
// length) of Heads, Want and Prove: it is refused (ErrMalformed) once it
// holds more than a session accepts, before the decoder made a Go value of
// each. Before: about 1.1 GB allocated for 16 MiB of empty heads.
func TestReadFrameElementsBounded(t *testing.T) {
	body := func(field, inner protowire.Number) []byte {
		var b []byte
		for len(b) < MaxFrameSize-16 {
			b = protowire.AppendBytes(protowire.AppendTag(b, inner, protowire.BytesType), nil)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, field, protowire.BytesType), b)
	}
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"heads", body(3, 1)},
		{"ranges", body(4, 2)},
		{"proofs", body(2, 1)},
	} {
		frame := append(binary.AppendUvarint(nil, uint64(len(c.msg))), c.msg...)
		if _, err := ReadFrame(bytes.NewReader(frame), 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
		// What ReadFrame does with the payload it read (whose buffer
		// is allocated in any case).
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err := new(syncpb.Message).UnmarshalWithin(c.msg, frameLimits)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: decoded", c.name)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("%s: decoding a frame of %d bytes allocated %d KiB, want ≤ 1 MiB", c.name, len(c.msg), got>>10)
		}
	}
}
