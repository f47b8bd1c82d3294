package sync

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/mycelsync/mycel/node/sync/syncpb"
	"google.golang.org/protobuf/proto"
)

func TestFrameRoundTrip(t *testing.T) {
	msgs := []*syncpb.Message{
		{Body: &syncpb.Message_Hello{Hello: &syncpb.Hello{Version: 1, Nonce: make([]byte, 32)}}},
		{Body: &syncpb.Message_Prove{Prove: &syncpb.Prove{Proof: bytes.Repeat([]byte{7}, 32)}}},
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
		if !proto.Equal(got, want) {
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
