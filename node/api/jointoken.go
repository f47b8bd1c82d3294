package api

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A join request token carries a JoinRequest in one string that survives
// copying between devices (chat, mail, a terminal):
//
//	base64url, no padding, of
//	  version    1 byte   = 1
//	  space     32 bytes  the space ID
//	  feed      32 bytes  the joining device's feed in the space
//	  name_len  uvarint   ≤ MaxJoinName
//	  name      name_len bytes of UTF-8
//	  device    the rest: the device public key, 1 to MaxJoinDevice bytes
//
// Whitespace anywhere in a token is ignored when decoding (a token wrapped
// over lines still decodes). A later version changes the first byte;
// decoders refuse versions they do not know.
const (
	joinTokenVersion = 1
	joinIDSize       = 32
	// MaxJoinName bounds the device name in a token.
	MaxJoinName = 1024
	// MaxJoinDevice bounds the device key in a token (today's keys are
	// 1217 bytes).
	MaxJoinDevice = 4096
	// MaxJoinToken bounds the length of a token as decoded.
	MaxJoinToken = 8 << 10
)

// EncodeJoinRequest returns req as a token (req.Token is ignored). It
// returns "" when req does not fit the format: Space and Feed must be 64
// hex digits, Name and Device within their bounds, Device non-empty.
func EncodeJoinRequest(req JoinRequest) string {
	space, err1 := hex.DecodeString(req.Space)
	feed, err2 := hex.DecodeString(req.Feed)
	if err1 != nil || err2 != nil || len(space) != joinIDSize || len(feed) != joinIDSize ||
		len(req.Name) > MaxJoinName || !utf8.ValidString(req.Name) ||
		len(req.Device) == 0 || len(req.Device) > MaxJoinDevice {
		return ""
	}
	b := make([]byte, 0, 1+2*joinIDSize+binary.MaxVarintLen64+len(req.Name)+len(req.Device))
	b = append(b, joinTokenVersion)
	b = append(b, space...)
	b = append(b, feed...)
	b = binary.AppendUvarint(b, uint64(len(req.Name)))
	b = append(b, req.Name...)
	b = append(b, req.Device...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeJoinRequest parses a token made by EncodeJoinRequest. The result's
// Space and Feed are lowercase hex and its Token is the token without
// whitespace. Errors wrap ErrTooLarge or ErrBadRequest.
func DecodeJoinRequest(token string) (JoinRequest, error) {
	if len(token) > MaxJoinToken {
		return JoinRequest{}, fmt.Errorf("%w: join request token of %d bytes, limit %d", ErrTooLarge, len(token), MaxJoinToken)
	}
	token = strings.Join(strings.Fields(token), "")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return JoinRequest{}, fmt.Errorf("%w: not a join request token: %v", ErrBadRequest, err)
	}
	bad := func(what string) (JoinRequest, error) {
		return JoinRequest{}, fmt.Errorf("%w: join request token: %s", ErrBadRequest, what)
	}
	if len(b) == 0 || b[0] != joinTokenVersion {
		return bad("unknown version")
	}
	b = b[1:]
	if len(b) < 2*joinIDSize {
		return bad("truncated")
	}
	req := JoinRequest{
		Space: hex.EncodeToString(b[:joinIDSize]),
		Feed:  hex.EncodeToString(b[joinIDSize : 2*joinIDSize]),
		Token: token,
	}
	b = b[2*joinIDSize:]
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return bad("truncated name length")
	}
	b = b[k:]
	if n > MaxJoinName || n > uint64(len(b)) {
		return bad("name too long")
	}
	req.Name, b = string(b[:n]), b[n:]
	if !utf8.ValidString(req.Name) {
		return bad("name is not UTF-8")
	}
	if len(b) == 0 || len(b) > MaxJoinDevice {
		return bad(fmt.Sprintf("device key of %d bytes", len(b)))
	}
	req.Device = append([]byte(nil), b...)
	return req, nil
}
