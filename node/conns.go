package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
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

// holePunchWait bounds how long readyToPunch waits for the host's hole
// punching service: it starts once identify brought an observed public
// address, and polls for one at 0.25 s, 0.75 s, 1.75 s, 3.75 s… after
// the host's start.
const holePunchWait = 5 * time.Second

// readyToPunch prepares the first dial of a static peer given by circuit
// addresses only, through relays at public addresses: it connects to
// those relays and waits, at most holePunchWait, until this host handles
// DCUtR (holepunch.Protocol). libp2p tries a hole punch once, when the
// relayed connection opens: the peer it reaches (the inbound side) opens a
// DCUtR stream on it at once, and a dialer whose hole punching service was
// not up yet (no observed public address yet: the relay's identify answer
// had not come) refuses it, and the connection stays relayed for good.
// A relay at a private address gives no public observed address, so no
// hole punch, and is not waited for.
func (n *Node) readyToPunch(ctx context.Context, p peer.AddrInfo) {
	var relays []peer.AddrInfo
	for _, a := range p.Addrs {
		relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Code() == ma.P_CIRCUIT })
		if len(relay) == len(a) {
			return // a direct address
		}
		if info, err := peer.AddrInfoFromP2pAddr(relay); err == nil && manet.IsPublicAddr(relay) {
			relays = append(relays, *info)
		}
	}
	if len(relays) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, holePunchWait)
	defer cancel()
	for _, info := range relays {
		if n.host.Network().Connectedness(info.ID) == network.Connected {
			continue
		}
		if err := n.host.Connect(ctx, info); err != nil {
			n.log.Debug("peer: connect to its relay failed", "peer", p.ID, "relay", info.ID, "err", err)
		}
	}
	for !slices.Contains(n.host.Mux().Protocols(), holepunch.Protocol) {
		if !sleep(ctx, 50*time.Millisecond) {
			n.log.Debug("peer: dialling through a relay without hole punching", "peer", p.ID)
			return
		}
	}
}

// keepConnected dials a static peer whenever it is not connected, backing
// off exponentially after failures.
func (n *Node) keepConnected(ctx context.Context, p peer.AddrInfo) {
	backoff := n.limits.Net.MinBackoff
	n.readyToPunch(ctx, p)
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
