package node

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
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
	if !n.awaitHolePunching(ctx) {
		n.log.Debug("peer: dialling through a relay without hole punching", "peer", p.ID)
	}
}

// peerLink is how a static peer is connected, as keepConnected sees it.
type peerLink int

const (
	linkNone    peerLink = iota // not connected
	linkRelayed                 // through relays only (network.Limited)
	linkDirect                  // at least one direct connection
)

func linkOf(c network.Connectedness) peerLink {
	switch c {
	case network.Connected:
		return linkDirect
	case network.Limited:
		return linkRelayed
	}
	return linkNone
}

func (l peerLink) String() string {
	return [...]string{"disconnected", "connected (relayed)", "connected"}[l]
}

// staticDialer is keepConnected's state, free of I/O: what the link to a
// static peer was last seen as, and when it is next dialled. A peer not
// connected is dialled (any address, relays too) with an exponential
// backoff after failures; a peer reached through relays only is connected
// (a session runs over the relayed connection), and is dialled at direct
// addresses only, to get off the relay, first minBackoff after the link
// became relayed and then with the same backoff doubling to maxBackoff;
// a directly connected peer is not dialled.
type staticDialer struct {
	min, max time.Duration
	link     peerLink
	backoff  time.Duration // the wait after the next failed dial
	next     time.Time     // no dial before
}

func newStaticDialer(minBackoff, maxBackoff time.Duration) *staticDialer {
	return &staticDialer{min: minBackoff, max: maxBackoff, backoff: minBackoff}
}

// observe records the link seen at now and reports whether it changed.
// Becoming relayed (from either state) schedules a direct dial minBackoff
// later: libp2p's hole punch, tried when the relayed connection opens,
// goes first.
func (d *staticDialer) observe(now time.Time, l peerLink) bool {
	if l == d.link {
		return false
	}
	d.link = l
	d.backoff = d.min
	d.next = now
	if l == linkRelayed {
		d.next = now.Add(d.min)
	}
	return true
}

// due reports whether to dial at now, and whether that dial is to direct
// addresses only.
func (d *staticDialer) due(now time.Time) (dial, direct bool) {
	if d.link == linkDirect || now.Before(d.next) {
		return false, false
	}
	return true, d.link == linkRelayed
}

// dialed records the outcome of a dial that ended at now, and returns the
// wait before the next dial if it failed.
func (d *staticDialer) dialed(now time.Time, err error) time.Duration {
	if err == nil {
		d.backoff = d.min
		d.next = now.Add(d.min)
		return 0
	}
	wait := d.backoff
	d.next = now.Add(wait)
	d.backoff = min(d.backoff*2, d.max)
	return wait
}

// keepConnected keeps a static peer connected: it watches the link every
// minBackoff, logs its changes (connected, connected (relayed),
// disconnected) and dials as staticDialer says.
func (n *Node) keepConnected(ctx context.Context, p peer.AddrInfo) {
	n.readyToPunch(ctx, p)
	d := newStaticDialer(n.limits.Net.MinBackoff, n.limits.Net.MaxBackoff)
	for {
		if d.observe(time.Now(), linkOf(n.host.Network().Connectedness(p.ID))) {
			n.log.Info("peer: "+d.link.String(), "peer", p.ID)
		}
		if dial, direct := d.due(time.Now()); dial {
			dctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
			if direct {
				dctx = network.WithForceDirectDial(dctx, "mycel: a static peer reached through relays only")
			}
			if n.dialHook != nil {
				n.dialHook(p.ID, direct)
			}
			err := n.host.Connect(dctx, p)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if wait := d.dialed(time.Now(), err); err != nil {
				n.log.Debug("peer: connect failed", "peer", p.ID, "direct", direct, "err", err, "retry", wait)
			} else {
				continue // log the new link at once
			}
		}
		if !sleep(ctx, n.limits.Net.MinBackoff) {
			return
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
