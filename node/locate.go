package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mycelsync/mycel/auth"
)

// LocateProtocol lets a device that holds only an invite's short code find
// its space: it sends the invite ID (16 bytes) to the peers it is
// connected to, and a member of the space that recorded the invite answers
// with the invite's locator (auth.Invite.Locator: the space ID and expiry
// sealed under the invite's request key), or closes the stream without a
// word. Anyone may ask: an invite ID and its locator reveal nothing to
// whoever lacks the code.
const LocateProtocol = protocol.ID("/mycel/locate/1.0.0")

// serveLocate answers a locate request.
func (n *Node) serveLocate(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(n.limits.Net.LocateTimeout))
	var id auth.InviteID
	if _, err := io.ReadFull(st, id[:]); err != nil {
		st.Reset()
		return
	}
	for _, m := range n.openSpaces() {
		if !m.sp.IsWriter() {
			continue
		}
		if _, loc, ok := m.sp.Invite(id); ok && len(loc) == auth.InviteLocatorSize {
			st.Write(loc)
			return
		}
	}
}

// locate asks the connected peers, in turn, for the locator of inv and
// returns inv with its space and expiry; when none knows it, it asks this
// device's relays (Config.Relays), where members deposit the locators of
// their invites (relays_locators.go), so that a code works while no
// member is online. A relay's locator may also carry the hints of the
// inviting device (returned in the invite's Hints).
func (n *Node) locate(ctx context.Context, inv *auth.Invite) (*auth.Invite, error) {
	id := inv.ID()
	asked := 0
	for _, p := range n.host.Network().Peers() {
		if n.relayIndex(p) >= 0 {
			continue // a relay answers on its own protocol, below
		}
		asked++
		found, err := n.locateAt(ctx, p, id, inv)
		if err == nil {
			return found, nil
		}
		if errors.Is(err, auth.ErrExpired) {
			return nil, err
		}
	}
	if n.relays.count() > 0 {
		found, err := n.locateAtRelays(ctx, inv)
		if err == nil || errors.Is(err, auth.ErrExpired) {
			return found, err
		}
		return nil, fmt.Errorf("no connected peer and no relay knows the code's space (give the space ID, or the link): %w", err)
	}
	if asked == 0 {
		return nil, errors.New("no peer is connected to ask which space the code is for, and no relay is configured")
	}
	return nil, fmt.Errorf("no connected peer knows the code's space (give the space ID, or the link)")
}

func (n *Node) locateAt(ctx context.Context, p peer.ID, id auth.InviteID, inv *auth.Invite) (*auth.Invite, error) {
	ctx, cancel := context.WithTimeout(ctx, n.limits.Net.LocateTimeout)
	defer cancel()
	st, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "mycel-locate"), p, LocateProtocol)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(n.limits.Net.LocateTimeout))
	if _, err := st.Write(id[:]); err != nil {
		st.Reset()
		return nil, err
	}
	st.CloseWrite()
	loc := make([]byte, auth.InviteLocatorSize)
	if _, err := io.ReadFull(st, loc); err != nil {
		return nil, err
	}
	return inv.Locate(loc, time.Now())
}
