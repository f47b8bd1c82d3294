package feed

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestBatchDecodeAllocation plays a peer that sends the largest batch made
// of the smallest repeated fields: 2 bytes each (a tag and a zero length)
// that the decoder turned into a Run struct or a slice header each. The
// batches with too many runs or hashes are refused before they are
// decoded whole; entries, which no count bounds, cost their slice headers
// once (the slice is not grown). Before: about 960 MB allocated for the
// runs, 1.1 GB for the entries.
func TestBatchDecodeAllocation(t *testing.T) {
	pairs := (MaxBatchBytes - 16) / 2
	runOf := func(field protowire.Number, n int) []byte {
		var inner []byte
		for i := 0; i < n; i++ {
			inner = protowire.AppendBytes(protowire.AppendTag(inner, field, protowire.BytesType), nil)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), inner)
	}
	for _, c := range []struct {
		name     string
		data     []byte
		want     error
		maxAlloc uint64
	}{
		{"empty runs", bytes.Repeat([]byte{0x12, 0x00}, pairs), ErrTooLarge, 16 << 20},
		{"empty left hashes", runOf(3, pairs-8), ErrTooLarge, 16 << 20},
		{"empty right hashes", runOf(4, pairs-8), ErrTooLarge, 16 << 20},
		{"empty entries", runOf(2, pairs-8), ErrMalformed, 220 << 20}, // 24-byte headers: 192 MiB
	} {
		if len(c.data) > MaxBatchBytes {
			t.Fatalf("%s: %d bytes, over MaxBatchBytes", c.name, len(c.data))
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var b Batch
		err := b.UnmarshalBinary(c.data)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if raceEnabled {
			c.maxAlloc *= 2 // 384 MiB for the entries' headers under -race
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > c.maxAlloc {
			t.Errorf("%s: a %d-byte batch allocated %d MiB decoding, want ≤ %d MiB", c.name, len(c.data), got>>20, c.maxAlloc>>20)
		}
	}
}
