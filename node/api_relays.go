package node

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/relay"
)

var _ api.RelayHander = (*Node)(nil)

// HandToRelay implements api.RelayHander: it connects to the relay at addr
// (within Limits.Net.DialTimeout) and hands it the newest mirror token of
// space id, once. The relays of Config.Relays get every token, and the new
// one after each rotation, by themselves (relays_mirror.go); a relay named
// here gets the next epoch's token only if it is named again, or listed
// there.
func (n *Node) HandToRelay(ctx context.Context, id, addr string) error {
	info, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("%w: relay address %q: %v (want a multiaddr ending in /p2p/<peer ID>)", api.ErrBadRequest, addr, err)
	}
	m, err := n.opened(id)
	if err != nil {
		return err
	}
	if !m.sp.IsWriter() {
		return fmt.Errorf("%w: the relay believes only a writer's token", api.ErrReadOnly)
	}
	tok, err := n.MirrorToken(id)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrNoKeys, err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
	defer cancel()
	if n.host.Network().Connectedness(info.ID) != network.Connected {
		if err := n.host.Connect(ctx, *info); err != nil {
			return fmt.Errorf("%w: connect to the relay: %v", api.ErrConflict, err)
		}
	}
	if err := relay.HandMirrorToken(ctx, n.host, info.ID, tok); err != nil {
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	n.log.Info("relay: handed the mirror token", "relay", info.ID, "space", tok.Space, "epoch", tok.Epoch)
	return nil
}
