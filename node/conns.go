package node

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/mycelsync/mycel/node/syncnet"
)

// MDNSService is the service name mycel nodes announce on the LAN.
const MDNSService = "mycel"

func addrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%q: %w (a peer address ends in /p2p/<peer ID>)", s, err)
		}
		out = append(out, *info)
	}
	return out, nil
}

// HandlePeerFound connects to a peer mDNS found (mdns.Notifee). mDNS calls
// it from its own goroutines, which may still run while (and after) the
// node closes: the dial is started by the node's owner, which refuses it
// then.
func (n *Node) HandlePeerFound(p peer.AddrInfo) {
	if p.ID == n.host.ID() {
		return
	}
	n.life.start(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
		defer cancel()
		if err := n.host.Connect(ctx, p); err != nil {
			n.log.Debug("mdns: connect failed", "peer", p.ID, "err", err)
			return
		}
		n.log.Info("mdns: connected", "peer", p.ID)
	})
}

// keepConnected dials a static peer whenever it is not connected, backing
// off exponentially after failures.
func (n *Node) keepConnected(ctx context.Context, p peer.AddrInfo) {
	backoff := n.limits.Net.MinBackoff
	for {
		if n.host.Network().Connectedness(p.ID) != network.Connected {
			dctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
			err := n.host.Connect(dctx, p)
			cancel()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				n.log.Debug("peer: connect failed", "peer", p.ID, "err", err, "retry", backoff)
			default:
				n.log.Info("peer: connected", "peer", p.ID)
				backoff = n.limits.Net.MinBackoff
			}
			if err != nil {
				backoff = min(backoff*2, n.limits.Net.MaxBackoff)
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// resync reopens, every Limits.Net.ResyncInterval, the sessions this node opens (with
// peers of a greater ID) that are not running, for every served space the
// peer serves too. A running session is left alone; a banned peer is not
// reopened.
func (n *Node) resync(ctx context.Context) {
	t := time.NewTicker(n.limits.Net.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, m := range n.openSpaces() {
			if !m.isServed() {
				continue
			}
			proto := syncnet.ProtocolFor(m.sp.ID())
			for _, p := range n.host.Network().Peers() {
				if n.host.ID() > p {
					continue
				}
				if ok, _ := n.host.Peerstore().SupportsProtocols(p, proto); len(ok) == 0 {
					continue
				}
				sctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
				if err := n.repl.Sync(sctx, p, m); err != nil {
					n.log.Debug("sync: reopen", "peer", p, "space", m.sp.ID(), "err", err)
				}
				cancel()
			}
		}
	}
}
