package relay

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
)

// MailboxProtocol is the protocol on which devices deposit envelopes in
// the relay's mailbox and fetch what it kept for them (FORMAT.md,
// "Mailbox").
const MailboxProtocol protocol.ID = "/mycel/mailbox/1.0.0"

// mailboxVersion is the version byte of the relay's hello and of a
// request.
const mailboxVersion = 1

// Operations of a mailbox request.
const (
	opDeposit byte = 1
	opFetch   byte = 2
)

// Bounds of the mailbox's wire format (FORMAT.md).
const (
	// ChallengeSize is the size of the relay's per-stream challenge.
	ChallengeSize = 32
	// MaxDepositCount bounds the envelopes of one deposit request.
	MaxDepositCount = 16
	// MaxFetchCount and MaxFetchBytes bound the envelopes of one fetch
	// reply; a reply that stops short says there is more.
	MaxFetchCount = 256
	MaxFetchBytes = 1 << 20
	// maxMailboxRequest bounds a request: version, op, space, count and
	// MaxDepositCount envelopes with their lengths.
	maxMailboxRequest = 2 + auth.SpaceIDSize + 1 + MaxDepositCount*(4+ephemeral.MaxEnvelopeSize)
	// maxFetchReply bounds a fetch reply as a client reads it.
	maxFetchReply = 1 + 1 + 2 + MaxFetchCount*4 + MaxFetchBytes + ephemeral.MaxEnvelopeSize
)

// mailboxLabel starts the bytes a fetching device signs.
const mailboxLabel = "mycel/mailbox/1\x00"

// Reply codes of the mailbox, one byte: the reply's, and a deposit's per
// envelope. A client reads an unknown one as codeInternal.
const (
	codeOK          byte = 0
	codeMalformed   byte = 1 // the request or the envelope does not decode, or its signature fails
	codeUnknown     byte = 2 // the relay mirrors no such space (or the envelope's topic is not the space's)
	codeForbidden   byte = 3 // fetch: not a writer nor a waiting device; deposit: a non-writer's envelope of a members' key kind
	codeBusy        byte = 4 // too many requests from this peer lately
	codeFull        byte = 5 // the space's mailbox, or its share for non-writers, is full
	codeStale       byte = 6 // the envelope's time is outside the window of the relay's clock
	codeUnavailable byte = 7 // the relay has no mailbox
	codeInternal    byte = 8 // the relay failed (storage)
	codeDuplicate   byte = 9 // deposit: the envelope is kept already
)

// Errors of the mailbox. A refusal from the relay wraps ErrMailboxRefused
// and one of the others.
var (
	ErrMailboxRefused = errors.New("relay: mailbox refused")
	// ErrMailboxMalformed: a request, a reply or an envelope does not decode.
	ErrMailboxMalformed = errors.New("relay: malformed mailbox message")
	// ErrMailboxUnknownSpace: the relay mirrors no such space, so it knows
	// no writer of it.
	ErrMailboxUnknownSpace = errors.New("relay: mailbox: space not served")
	// ErrMailboxForbidden: not a writer of the space nor a device waiting
	// to sign in to it; or a non-writer's envelope of a members' key kind.
	ErrMailboxForbidden = errors.New("relay: mailbox: forbidden")
	// ErrMailboxBusy: this peer made too many requests lately.
	ErrMailboxBusy = errors.New("relay: mailbox: too many requests")
	// ErrMailboxFull: the space's quota is reached.
	ErrMailboxFull = errors.New("relay: mailbox of the space full")
	// ErrMailboxStale: the envelope's time is outside ephemeral.Window of
	// the relay's clock.
	ErrMailboxStale = errors.New("relay: mailbox: envelope outside the time window")
	// ErrMailboxUnavailable: the relay has no mailbox.
	ErrMailboxUnavailable = errors.New("relay: no mailbox")
	// ErrMailboxDuplicate: the envelope is kept already.
	ErrMailboxDuplicate = errors.New("relay: mailbox: envelope kept already")
)

var mailboxErrs = []struct {
	code byte
	err  error
}{
	{codeMalformed, ErrMailboxMalformed},
	{codeMalformed, ephemeral.ErrMalformed},
	{codeMalformed, ephemeral.ErrTooLarge},
	{codeMalformed, ephemeral.ErrSignature},
	{codeUnknown, ErrMailboxUnknownSpace},
	{codeForbidden, ErrMailboxForbidden},
	{codeBusy, ErrMailboxBusy},
	{codeFull, ErrMailboxFull},
	{codeStale, ErrMailboxStale},
	{codeUnavailable, ErrMailboxUnavailable},
	{codeDuplicate, ErrMailboxDuplicate},
}

var mailboxCodeNames = map[byte]string{codeOK: "ok", codeMalformed: "malformed", codeUnknown: "unknown",
	codeForbidden: "forbidden", codeBusy: "busy", codeFull: "full", codeStale: "stale",
	codeUnavailable: "unavailable", codeInternal: "internal", codeDuplicate: "duplicate"}

// mailboxCode is the one place where the mailbox's errors become wire
// codes.
func mailboxCode(err error) byte {
	if err == nil {
		return codeOK
	}
	for _, e := range mailboxErrs {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return codeInternal
}

// mailboxError is the error a code stands for (nil for OK).
func mailboxError(code byte) error {
	if code == codeOK {
		return nil
	}
	for _, e := range mailboxErrs {
		if e.code == code {
			return fmt.Errorf("%w: %w", ErrMailboxRefused, e.err)
		}
	}
	return fmt.Errorf("%w: relay error (code %d)", ErrMailboxRefused, code)
}

// mailboxRequest is a decoded request.
type mailboxRequest struct {
	op    byte
	space auth.SpaceID
	envs  [][]byte // deposit
	key   [32]byte // fetch: the device's key
	sig   [64]byte // fetch: its signature of fetchSigned
}

// encodeDeposit encodes: version ‖ op 1 ‖ space ‖ count ‖ count × (uint32 length ‖ envelope).
func encodeDeposit(id auth.SpaceID, envs [][]byte) ([]byte, error) {
	if len(envs) == 0 || len(envs) > MaxDepositCount {
		return nil, fmt.Errorf("%w: %d envelopes in a deposit (1 to %d)", ErrMailboxMalformed, len(envs), MaxDepositCount)
	}
	out := append([]byte{mailboxVersion, opDeposit}, id[:]...)
	out = append(out, byte(len(envs)))
	for _, e := range envs {
		if len(e) > ephemeral.MaxEnvelopeSize {
			return nil, fmt.Errorf("%w: envelope of %d bytes", ErrMailboxMalformed, len(e))
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out, nil
}

// encodeFetch encodes: version ‖ op 2 ‖ space ‖ device key (32) ‖ signature (64).
func encodeFetch(id auth.SpaceID, key ed25519.PrivateKey, relay, self peer.ID, challenge [ChallengeSize]byte) []byte {
	out := append([]byte{mailboxVersion, opFetch}, id[:]...)
	out = append(out, key.Public().(ed25519.PublicKey)...)
	return append(out, ed25519.Sign(key, fetchSigned(id, relay, self, challenge))...)
}

// fetchSigned is what a fetching device signs: the label, the space, the
// relay's and the device's peer IDs (each after its length) and the
// relay's challenge of this stream. It binds the proof to one stream of
// one connection: it cannot be replayed, nor relayed to another relay.
func fetchSigned(id auth.SpaceID, relay, self peer.ID, challenge [ChallengeSize]byte) []byte {
	b := append([]byte(mailboxLabel), id[:]...)
	b = append(b, byte(len(relay)))
	b = append(b, relay...)
	b = append(b, byte(len(self)))
	b = append(b, self...)
	return append(b, challenge[:]...)
}

// decodeMailboxRequest reads one request from r, at most
// maxMailboxRequest bytes whatever its counts and lengths say. A
// deposit's envelopes are returned as they are; Parse checks them.
func decodeMailboxRequest(r io.Reader) (*mailboxRequest, error) {
	r = io.LimitReader(r, maxMailboxRequest)
	var hdr [2 + auth.SpaceIDSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMailboxMalformed, err)
	}
	if hdr[0] != mailboxVersion {
		return nil, fmt.Errorf("%w: version %d, this relay reads %d", ErrMailboxMalformed, hdr[0], mailboxVersion)
	}
	req := &mailboxRequest{op: hdr[1], space: auth.SpaceID(hdr[2:])}
	switch req.op {
	case opDeposit:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return nil, fmt.Errorf("%w: count: %v", ErrMailboxMalformed, err)
		}
		if n[0] == 0 || n[0] > MaxDepositCount {
			return nil, fmt.Errorf("%w: %d envelopes (1 to %d)", ErrMailboxMalformed, n[0], MaxDepositCount)
		}
		for range int(n[0]) {
			e, err := readEnvelope(r)
			if err != nil {
				return nil, err
			}
			req.envs = append(req.envs, e)
		}
	case opFetch:
		var b [32 + 64]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("%w: fetch: %v", ErrMailboxMalformed, err)
		}
		req.key, req.sig = [32]byte(b[:32]), [64]byte(b[32:])
	default:
		return nil, fmt.Errorf("%w: operation %d", ErrMailboxMalformed, req.op)
	}
	return req, nil
}

// readEnvelope reads uint32 length ‖ bytes, the length at most
// ephemeral.MaxEnvelopeSize (checked before anything is allocated).
func readEnvelope(r io.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, fmt.Errorf("%w: envelope length: %v", ErrMailboxMalformed, err)
	}
	n := binary.BigEndian.Uint32(l[:])
	if n == 0 || n > ephemeral.MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: envelope of %d bytes (1 to %d)", ErrMailboxMalformed, n, ephemeral.MaxEnvelopeSize)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMailboxMalformed, err)
	}
	return b, nil
}

// encodeDepositReply: code ‖ count ‖ count × code.
func encodeDepositReply(codes []byte) []byte {
	return append([]byte{codeOK, byte(len(codes))}, codes...)
}

// decodeDepositReply reads a deposit's reply for n envelopes: nil errors
// for those kept (or kept already), the refusal of the others.
func decodeDepositReply(r io.Reader, n int) ([]error, error) {
	r = io.LimitReader(r, 2+MaxDepositCount)
	var hdr [1]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: reply: %v", ErrMailboxMalformed, err)
	}
	if hdr[0] != codeOK {
		return nil, mailboxError(hdr[0])
	}
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: reply: %v", ErrMailboxMalformed, err)
	}
	if int(hdr[0]) != n {
		return nil, fmt.Errorf("%w: %d codes for %d envelopes", ErrMailboxMalformed, hdr[0], n)
	}
	codes := make([]byte, n)
	if _, err := io.ReadFull(r, codes); err != nil {
		return nil, fmt.Errorf("%w: reply: %v", ErrMailboxMalformed, err)
	}
	out := make([]error, n)
	for i, c := range codes {
		if c != codeDuplicate {
			out[i] = mailboxError(c)
		}
	}
	return out, nil
}

// encodeFetchReply: code 0 ‖ more (0/1) ‖ count (uint16) ‖ count × (uint32 length ‖ envelope).
func encodeFetchReply(envs [][]byte, more bool) []byte {
	size := 4
	for _, e := range envs {
		size += 4 + len(e)
	}
	out := make([]byte, 0, size)
	m := byte(0)
	if more {
		m = 1
	}
	out = append(out, codeOK, m)
	out = binary.BigEndian.AppendUint16(out, uint16(len(envs)))
	for _, e := range envs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out
}

// decodeFetchReply reads a fetch reply: the envelopes' bytes (not yet
// parsed) and whether the relay holds more. At most MaxFetchCount
// envelopes and MaxFetchBytes of them (plus one envelope's worth, since
// the relay stops after the envelope that passes the bound).
func decodeFetchReply(r io.Reader) ([][]byte, bool, error) {
	r = io.LimitReader(r, maxFetchReply)
	var code [1]byte
	if _, err := io.ReadFull(r, code[:]); err != nil {
		return nil, false, fmt.Errorf("%w: reply: %v", ErrMailboxMalformed, err)
	}
	if code[0] != codeOK {
		return nil, false, mailboxError(code[0])
	}
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, false, fmt.Errorf("%w: reply: %v", ErrMailboxMalformed, err)
	}
	if hdr[0] > 1 {
		return nil, false, fmt.Errorf("%w: more flag %d", ErrMailboxMalformed, hdr[0])
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > MaxFetchCount {
		return nil, false, fmt.Errorf("%w: %d envelopes, limit %d", ErrMailboxMalformed, n, MaxFetchCount)
	}
	var out [][]byte
	for range n {
		e, err := readEnvelope(r)
		if err != nil {
			return nil, false, err
		}
		out = append(out, e)
	}
	return out, hdr[0] == 1, nil
}
