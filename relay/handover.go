package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/mycelsync/mycel/auth"
)

// MirrorProtocol is the protocol on which a member hands a relay a space's
// mirror token (FORMAT.md, "Mirror handover").
const MirrorProtocol protocol.ID = "/mycel/mirror/1.0.0"

// handoverVersion is the version byte of a handover request.
const handoverVersion = 1

// maxHandoverSize bounds a request: version, length and the token.
const maxHandoverSize = 1 + 2 + auth.MaxMirrorTokenSize

// HandoverTimeout bounds a whole handover on either side.
const HandoverTimeout = 10 * time.Second

// Reply codes of a handover, one byte (FORMAT.md).
const (
	replyOK          byte = 0
	replyMalformed   byte = 1
	replyFull        byte = 2
	replyBusy        byte = 3
	replyStale       byte = 4
	replyUnavailable byte = 5
	replyInternal    byte = 6
)

// Errors of the mirror handover. A refusal from the relay wraps
// ErrMirrorRefused and one of the others.
var (
	ErrMirrorRefused = errors.New("relay: mirror handover refused")
	// ErrMalformedHandover: the request (or the reply) does not decode.
	ErrMalformedHandover = errors.New("relay: malformed mirror handover")
	// ErrMirrorFull: a limit of the mirror is reached: spaces overall,
	// every one confirmed (an unconfirmed one makes room otherwise), or
	// pending tokens of the space.
	ErrMirrorFull = errors.New("relay: mirror full")
	// ErrMirrorBusy: the peer handed too many tokens lately.
	ErrMirrorBusy = errors.New("relay: too many mirror handovers from this peer")
	// ErrMirrorStale: the token's epoch is older than the ones the relay
	// keeps for the space.
	ErrMirrorStale = errors.New("relay: mirror token of an old epoch")
	// ErrMirrorUnavailable: the relay mirrors nothing (no data directory).
	ErrMirrorUnavailable = errors.New("relay: no mirror")
)

var replyErrs = []struct {
	code byte
	err  error
}{
	{replyMalformed, ErrMalformedHandover},
	{replyFull, ErrMirrorFull},
	{replyBusy, ErrMirrorBusy},
	{replyStale, ErrMirrorStale},
	{replyUnavailable, ErrMirrorUnavailable},
}

var replyNames = map[byte]string{replyOK: "ok", replyMalformed: "malformed", replyFull: "full",
	replyBusy: "busy", replyStale: "stale", replyUnavailable: "unavailable", replyInternal: "internal"}

// replyCode is the one place where errors become wire codes.
func replyCode(err error) byte {
	if err == nil {
		return replyOK
	}
	for _, e := range replyErrs {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return replyInternal
}

// replyError is the error a reply code stands for (nil for OK).
func replyError(code byte) error {
	if code == replyOK {
		return nil
	}
	for _, e := range replyErrs {
		if e.code == code {
			return fmt.Errorf("%w: %w", ErrMirrorRefused, e.err)
		}
	}
	return fmt.Errorf("%w: relay error (code %d)", ErrMirrorRefused, code)
}

// encodeHandover encodes a request: version ‖ uint16 length ‖ token.
func encodeHandover(tok auth.MirrorToken) ([]byte, error) {
	b, err := tok.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if len(b) > auth.MaxMirrorTokenSize {
		return nil, fmt.Errorf("%w: token of %d bytes", ErrMalformedHandover, len(b))
	}
	out := make([]byte, 3, 3+len(b))
	out[0] = handoverVersion
	binary.BigEndian.PutUint16(out[1:], uint16(len(b)))
	return append(out, b...), nil
}

// decodeHandover reads one request from r, reading at most
// maxHandoverSize bytes whatever the length says.
func decodeHandover(r io.Reader) (auth.MirrorToken, error) {
	var tok auth.MirrorToken
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return tok, fmt.Errorf("%w: header: %v", ErrMalformedHandover, err)
	}
	if hdr[0] != handoverVersion {
		return tok, fmt.Errorf("%w: version %d, this relay reads %d", ErrMalformedHandover, hdr[0], handoverVersion)
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > auth.MaxMirrorTokenSize {
		return tok, fmt.Errorf("%w: token of %d bytes, limit %d", ErrMalformedHandover, n, auth.MaxMirrorTokenSize)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return tok, fmt.Errorf("%w: token: %v", ErrMalformedHandover, err)
	}
	if err := tok.UnmarshalBinary(buf); err != nil {
		return tok, fmt.Errorf("%w: %v", ErrMalformedHandover, err)
	}
	return tok, nil
}

// HandMirrorToken hands tok to the relay at relay (a peer h can reach),
// so that the relay mirrors tok's space: it replicates the feeds of the
// space's writers, stores them as they are (ciphertext) and serves them to
// members. The relay takes the token on trust only until a writer of the
// space proves, in a replication session, the capability derived from it
// (FORMAT.md). A refusal wraps ErrMirrorRefused and the reason
// (ErrMirrorFull, ErrMirrorBusy, ErrMirrorStale, ...).
func HandMirrorToken(ctx context.Context, h host.Host, relay peer.ID, tok auth.MirrorToken) error {
	req, err := encodeHandover(tok)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, HandoverTimeout)
	defer cancel()
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "mirror"), relay, MirrorProtocol)
	if err != nil {
		return fmt.Errorf("relay: mirror handover: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if _, err := st.Write(req); err != nil {
		st.Reset()
		return fmt.Errorf("relay: mirror handover: %w", err)
	}
	st.CloseWrite()
	var code [1]byte
	if _, err := io.ReadFull(st, code[:]); err != nil {
		st.Reset()
		return fmt.Errorf("relay: mirror handover: reply: %w", err)
	}
	return replyError(code[0])
}

// handleHandover serves one handover stream: one request, one reply byte.
func (m *Mirror) handleHandover(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(HandoverTimeout))
	p := st.Conn().RemotePeer()
	tok, err := decodeHandover(io.LimitReader(st, maxHandoverSize))
	var ms *mirrorSpace
	if err == nil {
		ms, err = m.hand(p, tok)
	}
	code := replyCode(err)
	m.stats.handovers.WithLabelValues(replyNames[code]).Inc()
	if _, werr := st.Write([]byte{code}); werr != nil {
		st.Reset()
		return
	}
	if ms != nil && err == nil {
		// Replicate with the member now: a session it opened before the
		// relay held this token failed, and nothing else would open one
		// until the next connection.
		ctx, cancel := context.WithTimeout(context.Background(), HandoverTimeout)
		defer cancel()
		m.repl.Sync(ctx, p, ms)
	}
}
