package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzReadFrame: the direct stream's frame decoder never panics, never
// returns more than the limit, and returns exactly the payload of a
// well-formed frame.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{3, 'a', 'b', 'c'})
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	const limit = 1024
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := readFrame(bufio.NewReader(bytes.NewReader(in)), limit)
		if err != nil {
			if n, k := binary.Uvarint(in); k > 0 && n > limit && !errors.Is(err, errFrameTooLarge) {
				t.Fatalf("length %d over the limit: %v", n, err)
			}
			return
		}
		if len(b) > limit {
			t.Fatalf("%d bytes past the limit", len(b))
		}
		n, k := binary.Uvarint(in)
		if k <= 0 || n != uint64(len(b)) || !bytes.Equal(b, in[k:k+len(b)]) {
			t.Fatal("payload differs from the frame")
		}
		// The length may come in a longer varint than needed (binary's
		// reader accepts it; it is still bounded), so compare by decoding.
		var w bytes.Buffer
		if err := writeFrame(&w, b); err != nil {
			t.Fatal(err)
		}
		back, err := readFrame(bufio.NewReader(&w), limit)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatal("writeFrame does not round-trip")
		}
	})
}
