package core

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mycelsync/mycel/auth"
)

// The page's side of the relay's directory (relay/FORMAT.md, "Locators and
// aliases", /mycel/locator/1.0.0): the page holding only an invite's short
// code asks the relay that served it for the invite's locator, and one
// holding "name@relay" and a password asks it for the space the alias
// names. The page (src/node/locate.ts) only moves bytes: it writes the
// request this file encodes on a stream, closes its side and hands back
// the reply, at most MaxDirectoryReply bytes, which this file decodes and,
// for a locator, opens with the code (auth.OpenRelayLocator, the daemon's
// own opening).

// Directory wire constants (relay/locators_wire.go).
const (
	dirVersion     = 1
	dirGetLocator  = 2
	dirGetAlias    = 6
	dirOK          = 0
	dirMalformed   = 1
	dirBusy        = 3
	dirUnavailable = 5
	dirNotFound    = 7
	maxDirBody     = 194 + auth.MaxRelayLocatorBlobSize
	maxAliasLen    = 32
	// MaxDirectoryReply bounds what the page reads of a reply stream.
	MaxDirectoryReply = 3 + maxDirBody
)

// Errors of a directory exchange, by what the page tells the person.
var (
	ErrNoLocator    = errors.New("the relay knows no open invite of this code (it was used, it expired, or its member never reached this relay)")
	ErrUnknownAlias = errors.New("the relay knows no space of this name")
	ErrDirectory    = errors.New("the relay's directory refused")
	ErrBadReply     = errors.New("the relay's reply is malformed")
)

// LocatorRequest is the directory request for the locator of the invite
// code (op 2: version ‖ op ‖ length ‖ invite ID).
func LocatorRequest(code string, nowMs int64) ([]byte, error) {
	inv, err := auth.ParseInvite(code, time.UnixMilli(nowMs))
	if err != nil {
		return nil, fmt.Errorf("invite: %w", err)
	}
	id := inv.ID()
	return append([]byte{dirVersion, dirGetLocator, 0, byte(len(id))}, id[:]...), nil
}

// NormaliseAlias is relay.NormaliseAlias: trimmed, ASCII folded to lower
// case, 1 to 32 of a-z, 0-9 and single hyphens not first or last.
func NormaliseAlias(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	bad := len(s) == 0 || len(s) > maxAliasLen || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--")
	for i := 0; i < len(s) && !bad; i++ {
		c := s[i]
		bad = !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-')
	}
	if bad {
		return "", fmt.Errorf("space name %q: 1 to 32 letters, digits and single hyphens", s)
	}
	return s, nil
}

// AliasRequest is the directory request resolving the alias name (op 6).
func AliasRequest(name string) ([]byte, error) {
	name, err := NormaliseAlias(name)
	if err != nil {
		return nil, err
	}
	return append([]byte{dirVersion, dirGetAlias, 0, byte(1 + len(name)), byte(len(name))}, name...), nil
}

// decodeDirReply splits a reply: code (1) ‖ n (uint16) ‖ body (n), exactly.
func decodeDirReply(b []byte) (byte, []byte, error) {
	if len(b) < 3 {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrBadReply, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if n > maxDirBody || len(b) != 3+n {
		return 0, nil, fmt.Errorf("%w: body of %d bytes in %d", ErrBadReply, n, len(b))
	}
	if b[0] != dirOK {
		return b[0], nil, nil
	}
	return dirOK, b[3:], nil
}

func dirRefusal(code byte, notFound error) error {
	switch code {
	case dirNotFound:
		return notFound
	case dirMalformed:
		return fmt.Errorf("%w: malformed request", ErrDirectory)
	case dirBusy:
		return fmt.Errorf("%w: too many requests from this page lately; try again in a few minutes", ErrDirectory)
	case dirUnavailable:
		return fmt.Errorf("%w: this relay keeps no directory", ErrDirectory)
	}
	return fmt.Errorf("%w (code %d)", ErrDirectory, code)
}

// Located is an invite code opened with the relay's locator: its space
// and expiry, and where the inviting device is (its peer ID, binary, and
// binary multiaddrs), when the member deposited them.
type Located struct {
	Space   string // hex
	Expires int64  // Unix ms
	Peer    []byte
	Addrs   [][]byte
}

// OpenLocatorReply opens the relay's reply to LocatorRequest(code): the
// reply must be well formed (expiry (8) ‖ blob), and the blob must open
// under the code's request key (auth.OpenRelayLocator): a blob of another
// invite, a forged or damaged one, or an expired invite is refused.
func OpenLocatorReply(code string, reply []byte, nowMs int64) (Located, error) {
	now := time.UnixMilli(nowMs)
	inv, err := auth.ParseInvite(code, now)
	if err != nil {
		return Located{}, fmt.Errorf("invite: %w", err)
	}
	c, body, err := decodeDirReply(reply)
	if err != nil {
		return Located{}, err
	}
	if c != dirOK {
		return Located{}, dirRefusal(c, ErrNoLocator)
	}
	if len(body) < 8+1 {
		return Located{}, fmt.Errorf("%w: locator of %d bytes", ErrBadReply, len(body))
	}
	found, err := auth.OpenRelayLocator(inv, body[8:], now)
	if errors.Is(err, auth.ErrExpired) {
		return Located{}, errors.New("this invite has expired: ask a member for a new one")
	} else if err != nil {
		return Located{}, fmt.Errorf("the relay's locator does not open with this code: %w", err)
	}
	return Located{Space: hex.EncodeToString(found.Space[:]), Expires: found.Expires.UnixMilli(), Peer: found.Hints.Peer, Addrs: found.Hints.Addrs}, nil
}

// AliasReply reads the relay's reply to AliasRequest: the space ID (hex).
func AliasReply(reply []byte) (string, error) {
	c, body, err := decodeDirReply(reply)
	if err != nil {
		return "", err
	}
	if c != dirOK {
		return "", dirRefusal(c, ErrUnknownAlias)
	}
	if len(body) != len(auth.SpaceID{}) {
		return "", fmt.Errorf("%w: space ID of %d bytes", ErrBadReply, len(body))
	}
	return hex.EncodeToString(body), nil
}
