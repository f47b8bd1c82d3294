package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/ephemeral"
)

// ProtocolID is the direct stream protocol of ephemeral messages.
const ProtocolID = "/mycel/ephemeral/1.0.0"

// Answers of the receiver of a direct stream: one byte.
const (
	statusDelivered byte = 0 // handed to the subscription
	statusDuplicate byte = 1 // already delivered (or the receiver's own)
	statusRejected  byte = 2 // malformed, forged, stale
	statusNotJoined byte = 3 // the receiver has no subscription to the topic
	statusBusy      byte = 4 // seen-set full, store error, nobody read in time
)

// Send sends e to peer p over a direct stream and waits for its answer:
// nil once p delivered it; an error wrapping ephemeral.ErrDuplicate,
// ErrRejected, ErrNotJoined or ErrBusy if p refused; another error if the
// stream failed (p may or may not have it then). e is recorded as this
// node's own first (Filter.Remember). The whole exchange is bounded by
// Config.StreamTimeout and ctx. Relayed (limited) connections are used if
// that is all there is.
func (s *Service) Send(ctx context.Context, p peer.ID, e *ephemeral.Envelope) error {
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	if err := s.filter.Remember(e); err != nil {
		return fmt.Errorf("ephemeral/p2p: send: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StreamTimeout)
	defer cancel()
	st, err := s.h.NewStream(network.WithAllowLimitedConn(ctx, "ephemeral"), p, ProtocolID)
	if err != nil {
		return fmt.Errorf("ephemeral/p2p: send to %s: %w", p, err)
	}
	defer st.Close()
	deadline, _ := ctx.Deadline()
	st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := writeFrame(st, b); err != nil {
		st.Reset()
		return fmt.Errorf("ephemeral/p2p: send to %s: %w", p, err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return fmt.Errorf("ephemeral/p2p: send to %s: %w", p, err)
	}
	var status [1]byte
	if _, err := io.ReadFull(st, status[:]); err != nil {
		st.Reset()
		return fmt.Errorf("ephemeral/p2p: send to %s: answer: %w", p, err)
	}
	switch status[0] {
	case statusDelivered:
		s.stats.sent.Add(1)
		return nil
	case statusDuplicate:
		return fmt.Errorf("ephemeral/p2p: send to %s: %w", p, ephemeral.ErrDuplicate)
	case statusRejected:
		return fmt.Errorf("ephemeral/p2p: send to %s: %w", p, ErrRejected)
	case statusNotJoined:
		return fmt.Errorf("ephemeral/p2p: send to %s: %w", p, ErrNotJoined)
	case statusBusy:
		return fmt.Errorf("ephemeral/p2p: send to %s: %w", p, ErrBusy)
	default:
		return fmt.Errorf("ephemeral/p2p: send to %s: answer %d: %w", p, status[0], ErrRejected)
	}
}

// handleStream receives one envelope over a direct stream, passes it
// through the Filter into the topic's subscription, and answers.
func (s *Service) handleStream(st network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.Reset()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	select {
	case s.inbound <- struct{}{}:
		defer func() { <-s.inbound }()
	default:
		s.log.Debug("ephemeral: too many direct streams", "peer", st.Conn().RemotePeer())
		s.drop(DropStreams)
		st.Reset()
		return
	}
	from := st.Conn().RemotePeer()
	deadline := time.Now().Add(s.cfg.StreamTimeout)
	st.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()

	status := s.receive(ctx, st, from)
	if _, err := st.Write([]byte{status}); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

func (s *Service) receive(ctx context.Context, st network.Stream, from peer.ID) byte {
	b, err := readFrame(bufio.NewReaderSize(st, 512), ephemeral.MaxEnvelopeSize)
	if err != nil {
		s.drop(DropRejected)
		s.log.Debug("ephemeral: direct frame", "peer", from, "err", err)
		return statusRejected
	}
	e, err := ephemeral.Parse(b)
	if err != nil {
		s.drop(DropRejected)
		s.log.Debug("ephemeral: direct envelope", "peer", from, "err", err)
		return statusRejected
	}
	sub := s.subscription(e.Topic)
	if sub == nil {
		return statusNotJoined
	}
	if err := sub.deliver(ctx, Message{Envelope: e, From: from, Direct: true}); err != nil {
		return statusOf(err)
	}
	return statusDelivered
}

func statusOf(err error) byte {
	switch {
	case errors.Is(err, ephemeral.ErrStale):
		return statusRejected
	case errors.Is(err, ephemeral.ErrDuplicate):
		return statusDuplicate
	default:
		return statusBusy
	}
}

// isRejected: the peer's fault, not a matter of time or state.
func isRejected(err error) bool {
	return errors.Is(err, ephemeral.ErrMalformed) || errors.Is(err, ephemeral.ErrTooLarge) ||
		errors.Is(err, ephemeral.ErrSignature) || errors.Is(err, ErrWrongTopic)
}

// writeFrame writes uvarint(len(b)) ‖ b in one Write.
func writeFrame(w io.Writer, b []byte) error {
	buf := make([]byte, 0, binary.MaxVarintLen64+len(b))
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

// errFrameTooLarge: a frame's length beyond the limit, refused before
// anything is allocated.
var errFrameTooLarge = errors.New("ephemeral/p2p: frame too large")

// readFrame reads uvarint length ‖ payload of at most max bytes. The
// length is checked before the payload is allocated.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("ephemeral/p2p: frame length: %w", err)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("ephemeral/p2p: frame: %w", err)
	}
	return b, nil
}
