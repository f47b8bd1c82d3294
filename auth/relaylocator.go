package auth

import (
	"errors"
	"fmt"
	"time"
)

// The blob a daemon deposits at a relay's directory for one of its
// invites (relay/FORMAT.md, "The daemon's locator"), and its opening by a
// device that holds only the invite's short code: the daemon
// (node/relays_locators.go) and the browser node's wasm core
// (webui/wasm/core/locate.go) both use these, so that the page opens
// exactly what the daemon opens.
//
//	version (1) = 1 ‖ locator (InviteLocatorSize: space ID and expiry
//	sealed under the invite's request key) [‖ sealed hints]
//	sealed hints = SealContent(request key, hints, "mycel/v1/relay-locator-hints" ‖ 0x00 ‖ invite ID)
//	hints = peer length (1) ‖ peer ID ‖ count (1, 1 to 8) ‖ count × (length (1, ≤ 128) ‖ binary multiaddr)

const (
	relayLocatorVersion     = 1
	labelRelayLocatorHints  = "mycel/v1/relay-locator-hints"
	MaxRelayLocatorBlobSize = 1024 // relay.MaxLocatorBlob
)

func relayLocatorHintsAD(id InviteID) []byte {
	return append(append([]byte(labelRelayLocatorHints), 0), id[:]...)
}

// SealRelayLocator builds the blob deposited at a relay for the invite
// of rec: its locator loc (Invite.Locator) and, unless h is zero, the
// inviting device's hints sealed under the request key.
func SealRelayLocator(rec InviteRecord, loc []byte, h InviteHints) ([]byte, error) {
	b := append([]byte{relayLocatorVersion}, loc...)
	if h.IsZero() {
		return b, nil
	}
	pt := append([]byte{byte(len(h.Peer))}, h.Peer...)
	pt = append(pt, byte(len(h.Addrs)))
	for _, a := range h.Addrs {
		pt = append(append(pt, byte(len(a))), a...)
	}
	sealed, err := SealContent(rec.Key, pt, relayLocatorHintsAD(rec.ID), nil)
	if err != nil {
		return nil, err
	}
	b = append(b, sealed...)
	if len(b) > MaxRelayLocatorBlobSize {
		return nil, fmt.Errorf("auth: invite locator of %d bytes", len(b))
	}
	return b, nil
}

// OpenRelayLocator opens a blob a relay returned for inv: the invite with
// its space and expiry, and its hints when the blob has them and they
// open. A blob of another invite, a damaged one or one whose invite has
// expired (ErrExpired) is refused.
func OpenRelayLocator(inv *Invite, blob []byte, now time.Time) (*Invite, error) {
	if len(blob) < 1+InviteLocatorSize || blob[0] != relayLocatorVersion || len(blob) > MaxRelayLocatorBlobSize {
		return nil, fmt.Errorf("%w: relay's locator of %d bytes", ErrMalformed, len(blob))
	}
	found, err := inv.Locate(blob[1:1+InviteLocatorSize], now)
	if err != nil {
		return nil, err
	}
	rest := blob[1+InviteLocatorSize:]
	if len(rest) == 0 {
		return found, nil
	}
	rk := inv.RequestKey()
	pt, err := OpenContent(rk.Key, rest, relayLocatorHintsAD(rk.ID))
	if err != nil {
		return nil, fmt.Errorf("auth: relay's locator hints: %w", err)
	}
	h, ok := ParseRelayLocatorHints(pt)
	if !ok {
		return nil, errors.New("auth: relay's locator hints do not parse")
	}
	found.Hints = h
	return found, nil
}

// ParseRelayLocatorHints decodes the opened hints of a relay's locator
// within the bounds of InviteHints.
func ParseRelayLocatorHints(b []byte) (InviteHints, bool) {
	var h InviteHints
	take := func(limit int) ([]byte, bool) {
		if len(b) < 1 || b[0] == 0 || int(b[0]) > limit || len(b) < 1+int(b[0]) {
			return nil, false
		}
		v := append([]byte(nil), b[1:1+int(b[0])]...)
		b = b[1+int(b[0]):]
		return v, true
	}
	var ok bool
	if h.Peer, ok = take(MaxInviteHintPeerSize); !ok || len(b) < 1 || b[0] == 0 || b[0] > MaxInviteHintAddrs {
		return InviteHints{}, false
	}
	n := int(b[0])
	b = b[1:]
	for range n {
		a, ok := take(MaxInviteHintAddrSize)
		if !ok {
			return InviteHints{}, false
		}
		h.Addrs = append(h.Addrs, a)
	}
	return h, len(b) == 0
}
