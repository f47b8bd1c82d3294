package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelsync/mycel/auth"
)

// Many relays per space. Relays find each other, and the spaces each one
// mirrors, with libp2p's own machinery: a Kademlia DHT
// (go-libp2p-kad-dht) run by the relays alone, in server mode, under the
// private protocol prefix DHTPrefix (its protocol is
// /mycel/relay/kad/1.0.0, not the public IPFS DHT's), bootstrapped from
// the peer relays of Config.Peers (--peer). A relay provides, under
// ProviderCID(space), every space whose mirror token a writer confirmed,
// looks the same key up, connects to the other providers and opens a
// replication session of the space with each (the mirror's own protocol:
// both hold the token, so each proves to the other what a member proves).
// Their mirrors thus converge, and a device that lists several relays
// loses nothing when one goes away. FORMAT.md, "Relay peers", gives the
// rules and what they reveal.

// DHTPrefix is the protocol prefix of the relays' DHT.
const DHTPrefix = "/mycel/relay"

// Bounds of the peering.
const (
	// DefaultPeerInterval is how often a relay provides its spaces and
	// looks up their other providers (Config.PeerInterval).
	DefaultPeerInterval = time.Minute
	// maxProvidersPerSpace bounds the providers of one space a relay
	// takes from a lookup, dials and syncs with, per round.
	maxProvidersPerSpace = 8
	// maxProviderRecords bounds the provider records the relay's DHT
	// stores for others (each a key of some 100 bytes and a time); past
	// it, new ones are refused. Records expire after 48 h (kad-dht's).
	maxProviderRecords = 1 << 16
	// reprovideEvery is how often a space is provided again.
	reprovideEvery = time.Hour
	// peerOpTimeout bounds one dial, provide or lookup.
	peerOpTimeout = 20 * time.Second
)

// ProviderCID is the DHT key under which relays provide space id: a CIDv1
// (raw) of SHA-256 over "mycel/v1/relay-provider" ‖ auth.DiscoveryKey(id),
// so that the key names the space without revealing its ID.
func ProviderCID(id auth.SpaceID) cid.Cid {
	dk := auth.DiscoveryKey(id)
	h, err := multihash.Sum(append([]byte("mycel/v1/relay-provider"), dk[:]...), multihash.SHA2_256, -1)
	if err != nil {
		panic("relay: multihash: " + err.Error()) // SHA-256 is always there
	}
	return cid.NewCidV1(cid.Raw, h)
}

// peering runs the relay's DHT and keeps the mirrors of the spaces it
// shares with other relays in step. Its goroutine (run) is owned by the
// Relay: close stops it and waits, then closes the DHT.
type peering struct {
	h     host.Host
	m     *Mirror
	dht   *kaddht.IpfsDHT
	boot  []peer.AddrInfo
	every time.Duration

	provided map[auth.SpaceID]time.Time // run's own

	found, synced prometheus.Counter

	cancel context.CancelFunc
	done   chan struct{}
}

// startPeering starts the DHT on h in server mode and, with a mirror,
// the rounds that provide its spaces and sync them with other providers.
func startPeering(cfg *Config, h host.Host, m *Mirror, reg prometheus.Registerer) (*peering, error) {
	boot, err := peerInfos(cfg.Peers)
	if err != nil {
		return nil, err
	}
	d, err := kaddht.New(h,
		kaddht.Mode(kaddht.ModeServer),
		kaddht.ProtocolPrefix(DHTPrefix),
		kaddht.DisableValues(),
		kaddht.ProviderDatastore(newBoundedDatastore(maxProviderRecords)),
		kaddht.BootstrapPeers(boot...),
	)
	if err != nil {
		return nil, fmt.Errorf("relay: DHT: %w", err)
	}
	every := cfg.PeerInterval
	if every <= 0 {
		every = DefaultPeerInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &peering{h: h, m: m, dht: d, boot: boot, every: every, provided: map[auth.SpaceID]time.Time{},
		found: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_relay_peers_found_total",
			Help: "Other relays found providing a space this relay mirrors."}),
		synced: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_relay_peers_synced_total",
			Help: "Replication sessions opened with other relays that mirror the same space."}),
		cancel: cancel, done: make(chan struct{})}
	if reg != nil {
		reg.MustRegister(p.found, p.synced)
	}
	go p.run(ctx)
	return p, nil
}

// peerInfos parses the peer relays' multiaddrs (with /p2p/ID).
func peerInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		info, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("relay: peer %q: %w (want a multiaddr ending in /p2p/<peer ID>)", a, err)
		}
		if i := slices.IndexFunc(out, func(o peer.AddrInfo) bool { return o.ID == info.ID }); i >= 0 {
			out[i].Addrs = append(out[i].Addrs, info.Addrs...)
			continue
		}
		out = append(out, *info)
	}
	return out, nil
}

func (p *peering) close() error {
	p.cancel()
	<-p.done
	return p.dht.Close()
}

// run does a round every p.every, and reopens the sessions of newly
// confirmed spaces every reopenEvery.
func (p *peering) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTimer(0)
	defer t.Stop()
	tick := time.NewTicker(reopenEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if p.m != nil {
				p.m.reopen(ctx)
			}
		case <-t.C:
			p.round(ctx)
			t.Reset(p.every)
		}
	}
}

// round connects to the peer relays not connected, then, for each space
// the mirror confirmed, provides it if it is due and syncs it with the
// other providers a lookup finds (at most maxProvidersPerSpace).
func (p *peering) round(ctx context.Context) {
	for _, info := range p.boot {
		if info.ID == p.h.ID() || p.h.Network().Connectedness(info.ID) == network.Connected {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, peerOpTimeout)
		if err := p.h.Connect(cctx, info); err == nil {
			// Identify tells the DHT the peer speaks its protocol; a
			// refresh then fills the table through it.
			p.dht.RefreshRoutingTable()
		}
		cancel()
	}
	if p.m == nil {
		return
	}
	spaces := p.m.confirmedSpaces()
	for _, id := range spaces {
		if ctx.Err() != nil {
			return
		}
		key := ProviderCID(id)
		if now := time.Now(); now.Sub(p.provided[id]) >= reprovideEvery {
			cctx, cancel := context.WithTimeout(ctx, peerOpTimeout)
			// With no other relay in the table, Provide fails after
			// recording this relay locally: it is tried again next round.
			if err := p.dht.Provide(cctx, key, true); err == nil {
				p.provided[id] = now
			}
			cancel()
		}
		cctx, cancel := context.WithTimeout(ctx, peerOpTimeout)
		for info := range p.dht.FindProvidersAsync(cctx, key, maxProvidersPerSpace) {
			if info.ID == p.h.ID() {
				continue
			}
			p.found.Inc()
			if p.h.Network().Connectedness(info.ID) != network.Connected {
				if err := p.h.Connect(cctx, info); err != nil {
					continue
				}
			}
			if ok, err := p.m.syncWith(cctx, info.ID, id); ok && err == nil {
				p.synced.Inc()
			}
		}
		cancel()
	}
	for id := range p.provided {
		if !slices.Contains(spaces, id) {
			delete(p.provided, id)
		}
	}
}

// confirmedSpaces returns the IDs of the spaces of which a writer
// confirmed a token: those the relay provides and syncs with other
// relays.
func (m *Mirror) confirmedSpaces() []auth.SpaceID {
	m.mu.Lock()
	spaces := make([]*mirrorSpace, 0, len(m.spaces))
	for _, ms := range m.spaces {
		spaces = append(spaces, ms)
	}
	m.mu.Unlock()
	var out []auth.SpaceID
	for _, ms := range spaces {
		if ms.confirmed() {
			out = append(out, ms.id)
		}
	}
	slices.SortFunc(out, func(a, b auth.SpaceID) int { return slices.Compare(a[:], b[:]) })
	return out
}

// syncWith opens a replication session of space id with peer p unless
// one runs; it reports whether the space is mirrored.
func (m *Mirror) syncWith(ctx context.Context, p peer.ID, id auth.SpaceID) (bool, error) {
	m.mu.Lock()
	ms := m.spaces[id]
	closed := m.closed
	m.mu.Unlock()
	if ms == nil || closed {
		return false, nil
	}
	return true, m.repl.Sync(ctx, p, ms)
}

// boundedDatastore is an in-memory datastore holding at most max keys: a
// Put of a new key beyond them fails (the DHT then refuses the provider
// record). Peers fill it with provider records.
type boundedDatastore struct {
	*dssync.MutexDatastore
	mu  sync.Mutex
	n   int
	max int
}

var errDatastoreFull = errors.New("relay: DHT record store full")

func newBoundedDatastore(max int) *boundedDatastore {
	return &boundedDatastore{MutexDatastore: dssync.MutexWrap(ds.NewMapDatastore()), max: max}
}

func (b *boundedDatastore) Put(ctx context.Context, k ds.Key, v []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	has, err := b.MutexDatastore.Has(ctx, k)
	if err != nil {
		return err
	}
	if !has && b.n >= b.max {
		return errDatastoreFull
	}
	if err := b.MutexDatastore.Put(ctx, k, v); err != nil {
		return err
	}
	if !has {
		b.n++
	}
	return nil
}

func (b *boundedDatastore) Delete(ctx context.Context, k ds.Key) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	has, err := b.MutexDatastore.Has(ctx, k)
	if err != nil || !has {
		return err
	}
	if err := b.MutexDatastore.Delete(ctx, k); err != nil {
		return err
	}
	b.n--
	return nil
}

// Batch applies its writes through Put and Delete, so that they count.
func (b *boundedDatastore) Batch(context.Context) (ds.Batch, error) {
	return ds.NewBasicBatch(b), nil
}

// FindRelays looks up the other relays that provide space id in the
// relays' DHT (at most maxProvidersPerSpace), within ctx.
func (r *Relay) FindRelays(ctx context.Context, id auth.SpaceID) []peer.ID {
	var out []peer.ID
	for info := range r.peers.dht.FindProvidersAsync(ctx, ProviderCID(id), maxProvidersPerSpace) {
		if info.ID != r.host.ID() {
			out = append(out, info.ID)
		}
	}
	return out
}

// reopenFor is how long after a space's first confirmation the relay
// keeps opening sessions with the peers that handed its token (their
// bootstrap sessions ended), and reopenEvery how often it tries.
const (
	reopenFor   = 15 * time.Second
	reopenEvery = time.Second
)

// handedBy remembers that p handed a token of the space.
func (ms *mirrorSpace) handedBy(p peer.ID) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.handers = slices.DeleteFunc(ms.handers, func(q peer.ID) bool { return q == p })
	if len(ms.handers) == maxHanders {
		ms.handers = ms.handers[1:]
	}
	ms.handers = append(ms.handers, p)
}

// reopen opens a session with each connected peer that handed the token
// of a space confirmed less than reopenFor ago (Sync does nothing while
// one runs): their sessions from before the confirmation ended.
func (m *Mirror) reopen(ctx context.Context) {
	type job struct {
		ms    *mirrorSpace
		peers []peer.ID
	}
	var jobs []job
	m.mu.Lock()
	now := m.now()
	for _, ms := range m.spaces {
		ms.mu.Lock()
		if now.Before(ms.reopenUntil) {
			jobs = append(jobs, job{ms, slices.Clone(ms.handers)})
		}
		ms.mu.Unlock()
	}
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return
	}
	for _, j := range jobs {
		for _, p := range j.peers {
			if m.h.Network().Connectedness(p) != network.Connected {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, HandoverTimeout)
			m.repl.Sync(cctx, p, j.ms)
			cancel()
		}
	}
}
