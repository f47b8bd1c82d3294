package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/replication/syncpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// ProtocolID is the libp2p protocol of replication.
const ProtocolID = "/mycel/sync/2.0.0"

// Version is the protocol version sent in Hello. Version 1 sent the
// prover's writer key in the clear (FORMAT.md, "Versions").
const Version = 2

// MaxFrameSize is the largest frame payload either side accepts: a Data
// message carrying the largest batch, plus room for its envelope.
const MaxFrameSize = feed.MaxBatchBytes + 64<<10

// WriteFrame writes m as one frame: uvarint length ‖ protobuf Message, in a
// single Write — except a Data message with a large batch, written as its
// envelope and then the batch as it is, without copying it into the frame
// (wrap the stream in a bufio.Writer).
func WriteFrame(w io.Writer, m *syncpb.Message) error {
	if d := m.GetData(); d != nil && len(d.Batch) >= dataFastPath {
		return writeData(w, d)
	}
	size := m.Size()
	if size > MaxFrameSize {
		return errorf(ErrFrameTooLarge, "write: frame of %d bytes, limit %d", size, MaxFrameSize)
	}
	buf := make([]byte, 0, binary.MaxVarintLen64+size)
	buf = binary.AppendUvarint(buf, uint64(size))
	buf, err := m.MarshalAppend(buf)
	if err != nil {
		return fmt.Errorf("sync: write frame: %w", err)
	}
	_, err = w.Write(buf)
	return err
}

// MaxOpeningFrameSize is the largest frame read before the peer's proof
// verified: Hello and Prove are far smaller. A peer that proved nothing
// cannot make this side hold more than this per stream.
const MaxOpeningFrameSize = 4 << 10

// frameChunk is the payload buffer ReadFrame starts with; it grows by
// frameGrowth only once full, that is as the frame's bytes arrive. (A
// factor of 4 rather than 2 halves the bytes allocated and copied for a
// large frame.)
const (
	frameChunk  = 64 << 10
	frameGrowth = 4
)

// ReadFrame reads one frame of at most max bytes (max ≤ 0 or above
// MaxFrameSize means MaxFrameSize). The length is checked before the
// payload is allocated, and the payload's buffer grows only as its bytes
// arrive (to at most four times what arrived): a peer that sends a length
// and stalls holds at most frameChunk (64 KiB). A stream that ends cleanly before a
// frame returns io.EOF; one that ends inside a frame returns
// io.ErrUnexpectedEOF. ReadFrame checks only the encoding; Session.Step
// checks the content.
func ReadFrame(r io.Reader, max int) (*syncpb.Message, error) {
	if max <= 0 || max > MaxFrameSize {
		max = MaxFrameSize
	}
	n, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, errorf(ErrFrameTooLarge, "read: frame of %d bytes, limit %d", n, max)
	}
	buf, err := readPayload(r, int(n))
	if err != nil {
		return nil, err
	}
	if m := readData(buf, dataFastPath); m != nil {
		return m, nil
	}
	m := new(syncpb.Message)
	if err := m.UnmarshalWithin(buf, frameLimits); err != nil {
		return nil, errorf(ErrMalformed, "frame: %v", err)
	}
	return m, nil
}

// frameLimits refuse a frame with more heads, ranges or proofs than a
// session accepts while it is decoded, before its elements are allocated.
var frameLimits = syncpb.Limits{Heads: MaxHeadsPerMessage, Ranges: MaxRangesPerWant, Proofs: MaxProofs}

// readPayload reads n bytes into a buffer that grows as they arrive.
func readPayload(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, frameChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n, frameGrowth*cap(buf))-len(buf))
		}
		m, err := io.ReadFull(r, buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("sync: read frame: %w", err)
		}
	}
	return buf[:n:n], nil
}

// dataFastPath is the batch size from which Data frames take the paths
// below: batches are most of the bytes replication moves, and each copy of
// them costs CPU that storage needs.
const dataFastPath = 16 << 10

// Field numbers of syncpb.Message.data and syncpb.Data's fields.
const (
	fieldMessageData = 5
	fieldDataID      = 1
	fieldDataBatch   = 2
)

// writeData writes Message{data: d} as Message.Marshal encodes it (fields in
// number order, id omitted when 0), in two Writes: the envelope, then the
// batch itself.
func writeData(w io.Writer, d *syncpb.Data) error {
	inner := protowire.SizeTag(fieldDataBatch) + protowire.SizeBytes(len(d.Batch))
	if d.Id != 0 {
		inner += protowire.SizeTag(fieldDataID) + protowire.SizeVarint(uint64(d.Id))
	}
	size := protowire.SizeTag(fieldMessageData) + protowire.SizeBytes(inner)
	if size > MaxFrameSize {
		return errorf(ErrFrameTooLarge, "write: frame of %d bytes, limit %d", size, MaxFrameSize)
	}
	hdr := make([]byte, 0, 64)
	hdr = binary.AppendUvarint(hdr, uint64(size))
	hdr = protowire.AppendTag(hdr, fieldMessageData, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(inner))
	if d.Id != 0 {
		hdr = protowire.AppendTag(hdr, fieldDataID, protowire.VarintType)
		hdr = protowire.AppendVarint(hdr, uint64(d.Id))
	}
	hdr = protowire.AppendTag(hdr, fieldDataBatch, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(len(d.Batch)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(d.Batch)
	return err
}

// readData decodes a frame that is exactly a Data message — one data field
// holding only id and batch fields, as writeData and Message.Marshal
// write it — with the batch aliasing buf instead of copied out of it. Anything
// else, well-formed or not, and frames under min bytes return nil for
// Message.Unmarshal to decode.
func readData(buf []byte, min int) *syncpb.Message {
	if len(buf) < min {
		return nil
	}
	num, typ, n := protowire.ConsumeTag(buf)
	if n < 0 || num != fieldMessageData || typ != protowire.BytesType {
		return nil
	}
	inner, m := protowire.ConsumeBytes(buf[n:])
	if m < 0 || n+m != len(buf) {
		return nil
	}
	d := new(syncpb.Data)
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 {
			return nil
		}
		inner = inner[n:]
		switch {
		case num == fieldDataID && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(inner)
			if n < 0 {
				return nil
			}
			d.Id = uint32(v) // as proto does: the low 32 bits
			inner = inner[n:]
		case num == fieldDataBatch && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(inner)
			if n < 0 {
				return nil
			}
			d.Batch = v[:len(v):len(v)]
			inner = inner[n:]
		default:
			return nil
		}
	}
	return &syncpb.Message{Body: &syncpb.Message_Data{Data: d}}
}

// readUvarint reads the length prefix one byte at a time, so that it never
// reads past the frame (wrap the stream in a bufio.Reader for speed).
func readUvarint(r io.Reader) (uint64, error) {
	var x uint64
	var b [1]byte
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("sync: read frame length: %w", err)
		}
		if b[0] < 0x80 {
			if i == binary.MaxVarintLen64-1 && b[0] > 1 {
				break
			}
			return x | uint64(b[0])<<(7*i), nil
		}
		x |= uint64(b[0]&0x7f) << (7 * i)
	}
	return 0, errorf(ErrMalformed, "frame length overflows 64 bits")
}
