package relay

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/mycelsync/mycel/auth"
)

// LocatorProtocol is the protocol of the relay's directory: invite
// locators that members deposit and joining devices look up by invite ID,
// and aliases (name → space ID) that writers register (FORMAT.md,
// "Locators and aliases").
const LocatorProtocol protocol.ID = "/mycel/locator/1.0.0"

// Sizes and bounds of the directory's wire format (FORMAT.md).
const (
	locatorVersion = 1
	// MaxLocatorBlob bounds the opaque locator a member deposits.
	MaxLocatorBlob = 1024
	// MaxAliasLen bounds an alias (after normalisation, NormaliseAlias).
	MaxAliasLen = 32
	// maxLocatorBody bounds a request's or a reply's body: the largest is
	// a deposit, 194 bytes of fields and a blob of MaxLocatorBlob.
	maxLocatorBody = 194 + MaxLocatorBlob
	// maxLocatorRequest bounds what the relay reads of a stream.
	maxLocatorRequest = 4 + maxLocatorBody
	// LocatorTimeout bounds a whole exchange on either side.
	LocatorTimeout = 10 * time.Second
	// MaxClockSkew is how far the time a writer signed may be from the
	// relay's clock: a signed request is taken within this window only,
	// so that one replayed later is refused.
	MaxClockSkew = 10 * time.Minute
	// MaxLocatorLifetime bounds a locator's expiry from now: an invite
	// works for 30 days at most.
	MaxLocatorLifetime = 31 * 24 * time.Hour

	labelDirectorySig = "mycel/v1/relay-directory"
)

// Operations of a directory request.
const (
	opPutLocator byte = 1
	opGetLocator byte = 2
	opDelLocator byte = 3
	opPutAlias   byte = 4
	opDelAlias   byte = 5
	opGetAlias   byte = 6
)

// Reply codes of the directory (FORMAT.md).
const (
	dirOK          byte = 0
	dirMalformed   byte = 1
	dirFull        byte = 2
	dirBusy        byte = 3
	dirStale       byte = 4
	dirUnavailable byte = 5
	dirInternal    byte = 6
	dirNotFound    byte = 7
	dirForbidden   byte = 8
	dirUnknown     byte = 9
	dirTaken       byte = 10
)

// Errors of the directory. A refusal from the relay wraps
// ErrDirectoryRefused and one of the others.
var (
	ErrDirectoryRefused = errors.New("relay: directory request refused")
	// ErrMalformedDirectory: the request (or reply) does not decode, or a
	// field is out of its bounds (an expiry past MaxLocatorLifetime, a
	// name NormaliseAlias refuses).
	ErrMalformedDirectory = errors.New("relay: malformed directory request")
	// ErrDirectoryFull: a bound of the directory is reached (locators or
	// aliases of the space, or overall).
	ErrDirectoryFull = errors.New("relay: directory full")
	// ErrDirectoryBusy: the peer made too many requests lately.
	ErrDirectoryBusy = errors.New("relay: too many directory requests from this peer")
	// ErrDirectoryStale: the signed time is outside MaxClockSkew of the
	// relay's clock, or not after the time of what the relay holds (a
	// replay).
	ErrDirectoryStale = errors.New("relay: signed time stale (a replay, or a clock off by more than 10 minutes)")
	// ErrNoDirectory: the relay keeps no directory (no data directory).
	ErrNoDirectory = errors.New("relay: no directory")
	// ErrDirectoryNotFound: no live locator of this invite, or no alias of
	// this name.
	ErrDirectoryNotFound = errors.New("relay: not in the directory")
	// ErrDirectoryForbidden: the signer is not a writer of the space as
	// far as the relay follows it, or a removal's secret is wrong.
	ErrDirectoryForbidden = errors.New("relay: not allowed (not a writer of the space, or a wrong removal secret)")
	// ErrUnknownSpace: the relay does not mirror the space, so it cannot
	// check its writers: hand it the mirror token first.
	ErrUnknownSpace = errors.New("relay: the relay does not mirror this space")
	// ErrAliasTaken: another space holds the name.
	ErrAliasTaken = errors.New("relay: the alias is another space's")
)

var dirErrs = []struct {
	code byte
	err  error
}{
	{dirMalformed, ErrMalformedDirectory},
	{dirFull, ErrDirectoryFull},
	{dirBusy, ErrDirectoryBusy},
	{dirStale, ErrDirectoryStale},
	{dirUnavailable, ErrNoDirectory},
	{dirNotFound, ErrDirectoryNotFound},
	{dirForbidden, ErrDirectoryForbidden},
	{dirUnknown, ErrUnknownSpace},
	{dirTaken, ErrAliasTaken},
}

var dirNames = map[byte]string{dirOK: "ok", dirMalformed: "malformed", dirFull: "full", dirBusy: "busy",
	dirStale: "stale", dirUnavailable: "unavailable", dirInternal: "internal", dirNotFound: "not_found",
	dirForbidden: "forbidden", dirUnknown: "unknown_space", dirTaken: "taken"}

var opNames = map[byte]string{opPutLocator: "put_locator", opGetLocator: "get_locator", opDelLocator: "del_locator",
	opPutAlias: "put_alias", opDelAlias: "del_alias", opGetAlias: "get_alias"}

// dirCode is the one place where directory errors become wire codes.
func dirCode(err error) byte {
	if err == nil {
		return dirOK
	}
	for _, e := range dirErrs {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return dirInternal
}

// dirError is the error a reply code stands for (nil for OK).
func dirError(code byte) error {
	if code == dirOK {
		return nil
	}
	for _, e := range dirErrs {
		if e.code == code {
			return fmt.Errorf("%w: %w", ErrDirectoryRefused, e.err)
		}
	}
	return fmt.Errorf("%w: relay error (code %d)", ErrDirectoryRefused, code)
}

// dirRequest is one directory request; which fields it carries depends on
// Op (FORMAT.md gives each layout).
type dirRequest struct {
	Op      byte
	Space   auth.SpaceID
	Signer  [ed25519.PublicKeySize]byte
	Time    int64 // Unix seconds the signer signed at
	ID      auth.InviteID
	Expires int64    // Unix seconds
	Removal [32]byte // the removal hash (put) or secret (delete)
	Blob    []byte
	Name    string
	Sig     [ed25519.SignatureSize]byte
}

// signed reports whether the request carries a signature.
func (q *dirRequest) signed() bool {
	return q.Op == opPutLocator || q.Op == opPutAlias || q.Op == opDelAlias
}

// body encodes the request's body, without the signature.
func (q *dirRequest) body() ([]byte, error) {
	var b []byte
	name := func() error {
		if len(q.Name) == 0 || len(q.Name) > MaxAliasLen {
			return fmt.Errorf("%w: name of %d bytes", ErrMalformedDirectory, len(q.Name))
		}
		b = append(append(b, byte(len(q.Name))), q.Name...)
		return nil
	}
	switch q.Op {
	case opPutLocator:
		if len(q.Blob) == 0 || len(q.Blob) > MaxLocatorBlob {
			return nil, fmt.Errorf("%w: locator of %d bytes", ErrMalformedDirectory, len(q.Blob))
		}
		b = append(b, q.Space[:]...)
		b = append(b, q.Signer[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(q.Time))
		b = append(b, q.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(q.Expires))
		b = append(b, q.Removal[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(q.Blob)))
		b = append(b, q.Blob...)
	case opGetLocator:
		b = append(b, q.ID[:]...)
	case opDelLocator:
		b = append(append(b, q.ID[:]...), q.Removal[:]...)
	case opPutAlias:
		b = append(b, q.Space[:]...)
		b = append(b, q.Signer[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(q.Time))
		if err := name(); err != nil {
			return nil, err
		}
	case opDelAlias:
		b = append(b, q.Signer[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(q.Time))
		if err := name(); err != nil {
			return nil, err
		}
	case opGetAlias:
		if err := name(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: operation %d", ErrMalformedDirectory, q.Op)
	}
	return b, nil
}

// sigMessage is what a signer signs: the label, a zero byte, the relay's
// peer ID (length-prefixed) so that a request made for one relay is
// refused by another, the operation and the body without the signature.
func sigMessage(relay peer.ID, op byte, body []byte) []byte {
	id := []byte(relay)
	m := append([]byte(labelDirectorySig), 0, byte(len(id)))
	m = append(append(m, id...), op)
	return append(m, body...)
}

// sign signs q for relay with key.
func (q *dirRequest) sign(relay peer.ID, key ed25519.PrivateKey) error {
	copy(q.Signer[:], key.Public().(ed25519.PublicKey))
	body, err := q.body()
	if err != nil {
		return err
	}
	copy(q.Sig[:], ed25519.Sign(key, sigMessage(relay, q.Op, body)))
	return nil
}

// verify checks q's signature for relay.
func (q *dirRequest) verify(relay peer.ID) bool {
	body, err := q.body()
	if err != nil {
		return false
	}
	return ed25519.Verify(q.Signer[:], sigMessage(relay, q.Op, body), q.Sig[:])
}

// encode encodes the request: version ‖ op ‖ uint16 length ‖ body
// [‖ signature].
func (q *dirRequest) encode() ([]byte, error) {
	body, err := q.body()
	if err != nil {
		return nil, err
	}
	if q.signed() {
		body = append(body, q.Sig[:]...)
	}
	out := []byte{locatorVersion, q.Op, 0, 0}
	binary.BigEndian.PutUint16(out[2:], uint16(len(body)))
	return append(out, body...), nil
}

// decodeDirRequest reads one request from r, reading at most
// maxLocatorRequest bytes whatever its length says. Each operation's body
// has one exact layout; anything else is malformed.
func decodeDirRequest(r io.Reader) (*dirRequest, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformedDirectory, err)
	}
	if hdr[0] != locatorVersion {
		return nil, fmt.Errorf("%w: version %d, this relay reads %d", ErrMalformedDirectory, hdr[0], locatorVersion)
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n > maxLocatorBody {
		return nil, fmt.Errorf("%w: body of %d bytes, limit %d", ErrMalformedDirectory, n, maxLocatorBody)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrMalformedDirectory, err)
	}
	return parseDirBody(hdr[1], b)
}

func parseDirBody(op byte, b []byte) (*dirRequest, error) {
	q := &dirRequest{Op: op}
	bad := func(what string) (*dirRequest, error) {
		return nil, fmt.Errorf("%w: %s: %s", ErrMalformedDirectory, opNames[op], what)
	}
	take := func(n int) []byte {
		if len(b) < n {
			return nil
		}
		v := b[:n]
		b = b[n:]
		return v
	}
	name := func() bool {
		l := take(1)
		if l == nil || l[0] == 0 || l[0] > MaxAliasLen {
			return false
		}
		v := take(int(l[0]))
		q.Name = string(v)
		return v != nil
	}
	u64 := func(v []byte) int64 { return int64(binary.BigEndian.Uint64(v)) }
	if q.signed() {
		if len(b) < ed25519.SignatureSize {
			return bad("no signature")
		}
		copy(q.Sig[:], b[len(b)-ed25519.SignatureSize:])
		b = b[:len(b)-ed25519.SignatureSize]
	}
	switch op {
	case opPutLocator:
		f := take(32 + 32 + 8 + auth.InviteIDSize + 8 + 32 + 2)
		if f == nil {
			return bad("short")
		}
		copy(q.Space[:], f[0:32])
		copy(q.Signer[:], f[32:64])
		q.Time = u64(f[64:72])
		copy(q.ID[:], f[72:88])
		q.Expires = u64(f[88:96])
		copy(q.Removal[:], f[96:128])
		l := int(binary.BigEndian.Uint16(f[128:130]))
		if l == 0 || l > MaxLocatorBlob || len(b) != l {
			return bad(fmt.Sprintf("locator of %d bytes with %d left", l, len(b)))
		}
		q.Blob = append([]byte(nil), take(l)...)
	case opGetLocator:
		f := take(auth.InviteIDSize)
		if f == nil {
			return bad("short")
		}
		copy(q.ID[:], f)
	case opDelLocator:
		f := take(auth.InviteIDSize + 32)
		if f == nil {
			return bad("short")
		}
		copy(q.ID[:], f[:16])
		copy(q.Removal[:], f[16:])
	case opPutAlias:
		f := take(32 + 32 + 8)
		if f == nil || !name() {
			return bad("short or bad name")
		}
		copy(q.Space[:], f[0:32])
		copy(q.Signer[:], f[32:64])
		q.Time = u64(f[64:72])
	case opDelAlias:
		f := take(32 + 8)
		if f == nil || !name() {
			return bad("short or bad name")
		}
		copy(q.Signer[:], f[0:32])
		q.Time = u64(f[32:40])
	case opGetAlias:
		if !name() {
			return bad("bad name")
		}
	default:
		return bad("unknown operation")
	}
	if len(b) != 0 {
		return bad(fmt.Sprintf("%d bytes left over", len(b)))
	}
	return q, nil
}

// encodeDirReply encodes a reply: code ‖ uint16 length ‖ body.
func encodeDirReply(code byte, body []byte) []byte {
	out := []byte{code, 0, 0}
	binary.BigEndian.PutUint16(out[1:], uint16(len(body)))
	return append(out, body...)
}

// decodeDirReply reads a reply, at most 3 + maxLocatorBody bytes.
func decodeDirReply(r io.Reader) (byte, []byte, error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("%w: reply: %v", ErrMalformedDirectory, err)
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > maxLocatorBody {
		return 0, nil, fmt.Errorf("%w: reply of %d bytes", ErrMalformedDirectory, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, fmt.Errorf("%w: reply: %v", ErrMalformedDirectory, err)
	}
	return hdr[0], b, nil
}
