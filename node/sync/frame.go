package sync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/sync/syncpb"
	"google.golang.org/protobuf/proto"
)

// ProtocolID is the libp2p protocol of replication.
const ProtocolID = "/mycel/sync/1.0.0"

// Version is the protocol version sent in Hello.
const Version = 1

// MaxFrameSize is the largest frame payload either side accepts: a Data
// message carrying the largest batch, plus room for its envelope.
const MaxFrameSize = feed.MaxBatchBytes + 64<<10

// WriteFrame writes m as one frame: uvarint length ‖ protobuf Message, in a
// single Write.
func WriteFrame(w io.Writer, m *syncpb.Message) error {
	size := proto.Size(m)
	if size > MaxFrameSize {
		return errorf(ErrFrameTooLarge, "write: frame of %d bytes, limit %d", size, MaxFrameSize)
	}
	buf := make([]byte, 0, binary.MaxVarintLen64+size)
	buf = binary.AppendUvarint(buf, uint64(size))
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return fmt.Errorf("sync: write frame: %w", err)
	}
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame of at most max bytes (max ≤ 0 or above
// MaxFrameSize means MaxFrameSize). The length is checked before the
// payload is allocated. A stream that ends cleanly before a frame returns
// io.EOF; one that ends inside a frame returns io.ErrUnexpectedEOF.
// ReadFrame checks only the encoding; Session.Step checks the content.
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
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("sync: read frame: %w", err)
	}
	m := new(syncpb.Message)
	if err := proto.Unmarshal(buf, m); err != nil {
		return nil, errorf(ErrMalformed, "frame: %v", err)
	}
	return m, nil
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
