package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/space"
	"github.com/mycelsync/mycel/node/syncnet"
)

// Version is reported by Status; the binary sets it.
var Version = "dev"

var _ api.Backend = (*Node)(nil)

// Status implements api.Backend.
func (n *Node) Status() api.Status {
	fp := sha256.Sum256(n.device.Public().Bytes())
	st := api.Status{
		Version: Version,
		PeerID:  n.host.ID().String(),
		Device:  hex.EncodeToString(fp[:16]),
		DataDir: n.cfg.DataDir,
		Started: n.started,
		Spaces:  len(n.openSpaces()),
		Peers:   len(n.host.Network().Peers()),
	}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	if peers, err := addrInfos(n.cfg.Peers); err == nil { // New checked them
		for _, p := range peers {
			st.StaticPeers = append(st.StaticPeers, p.ID.String())
		}
	}
	st.Relays = n.relayStatus()
	return st
}

// CreateSpace implements api.Backend.
func (n *Node) CreateSpace(ctx context.Context, name string) (api.SpaceInfo, error) {
	if err := checkName(name); err != nil {
		return api.SpaceInfo{}, err
	}
	m, err := n.newSpace(ctx, name, nil) // counted as a call
	if err != nil {
		return api.SpaceInfo{}, spaceError(err)
	}
	n.log.Info("space: created", "space", m.sp.ID(), "name", name)
	return m.info(), nil
}

func checkName(name string) error {
	if name == "" || len(name) > space.MaxNameSize || !utf8.ValidString(name) {
		return fmt.Errorf("%w: a name is 1 to %d bytes of UTF-8", api.ErrBadRequest, space.MaxNameSize)
	}
	return nil
}

// Spaces implements api.Backend.
func (n *Node) Spaces() []api.SpaceInfo {
	var out []api.SpaceInfo
	for _, m := range n.openSpaces() {
		out = append(out, m.info())
	}
	return out
}

// Space implements api.Backend.
func (n *Node) Space(id string) (api.SpaceInfo, error) {
	m, err := n.opened(id)
	if err != nil {
		return api.SpaceInfo{}, err
	}
	return m.info(), nil
}

func (m *openSpace) info() api.SpaceInfo {
	sp := m.sp
	id, own := sp.ID(), sp.Feed()
	digest := sp.Digest()
	feeds := sp.Feeds()
	diag := sp.Diagnostics()
	info := api.SpaceInfo{
		ID:       id.String(),
		Name:     m.name,
		Feed:     hex.EncodeToString(own[:]),
		Approved: sp.Approved(),
		Writer:   sp.IsWriter(),
		Feeds:    len(feeds),
		Digest:   hex.EncodeToString(digest[:]),
		Keys:     userKeys(sp),
		Invalid:  diag.InvalidTotal,
		Waiting:  diag.Waiting,
	}
	for _, k := range feeds {
		info.Entries += sp.Held(k)
	}
	info.Forked = m.forked()
	if js := m.joinState(); js.Space != "" {
		info.Join = &js
	}
	return info
}

// forked lists the space's feeds that fork evidence froze.
func (m *openSpace) forked() []string {
	var out []string
	for _, k := range m.sp.Feeds() {
		if f, err := m.db.Feed(k); err == nil && f.Evidence() != nil {
			out = append(out, hex.EncodeToString(k[:]))
		}
	}
	return out
}

// userKeys counts the keys a listing shows: the live keys but the
// space's own (invite records, the password's key), which List hides.
func userKeys(sp *space.Space) int {
	// Two reads, each under the space's lock: a write between them may
	// make the count one off for a moment, never negative.
	return max(0, sp.Keys()-len(sp.List(space.SystemPrefix, "", math.MaxInt)))
}

// Get implements api.Backend.
func (n *Node) Get(id, key string) (api.Entry, error) {
	_, done, err := n.call(context.Background())
	if err != nil {
		return api.Entry{}, err
	}
	defer done()
	m, err := n.opened(id)
	if err != nil {
		return api.Entry{}, err
	}
	if err := checkKey(key); err != nil {
		return api.Entry{}, err
	}
	vs := m.sp.Get(key)
	if err := m.sp.Err(); err != nil {
		return api.Entry{}, err // never a subset as if it were whole
	}
	return api.Entry{Key: key, Versions: versions(vs)}, nil
}

func versions(vs []space.Version) []api.Version {
	out := make([]api.Version, 0, len(vs))
	for _, v := range vs {
		out = append(out, api.Version{Value: v.Value, Deleted: v.Deleted, HLC: v.HLC,
			Feed: hex.EncodeToString(v.ID.Feed[:]), Index: v.ID.Index})
	}
	return out
}

func checkKey(key string) error {
	if key == "" || len(key) > space.MaxKeySize || !utf8.ValidString(key) {
		return fmt.Errorf("%w: a key is 1 to %d bytes of UTF-8", api.ErrBadRequest, space.MaxKeySize)
	}
	return nil
}

// Put implements api.Backend. It returns once the entry is durable.
func (n *Node) Put(ctx context.Context, id, key string, value []byte) error {
	ctx, m, done, err := n.callOn(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > space.MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes: a value is at most %d KiB (%d bytes)", api.ErrTooLarge, len(value), space.MaxValueSize>>10, space.MaxValueSize)
	}
	if err := m.sp.Put(ctx, key, value); err != nil {
		return spaceError(err)
	}
	m.wrote()
	return nil
}

// PutMany sets several keys in one durable append (space.Space.PutMany):
// for importing data in bulk from Go.
func (n *Node) PutMany(ctx context.Context, id string, kvs []space.KV) error {
	ctx, m, done, err := n.callOn(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	for _, kv := range kvs {
		if err := checkKey(kv.Key); err != nil {
			return err
		}
	}
	if err := m.sp.PutMany(ctx, kvs); err != nil {
		return spaceError(err)
	}
	m.wrote()
	return nil
}

// Delete implements api.Backend.
func (n *Node) Delete(ctx context.Context, id, key string) error {
	ctx, m, done, err := n.callOn(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	if err := checkKey(key); err != nil {
		return err
	}
	if err := m.sp.Delete(ctx, key); err != nil {
		return spaceError(err)
	}
	m.wrote()
	return nil
}

// List implements api.Backend.
func (n *Node) List(id, prefix, after string, limit int) (api.Page, error) {
	_, done, err := n.call(context.Background())
	if err != nil {
		return api.Page{}, err
	}
	defer done()
	m, err := n.opened(id)
	if err != nil {
		return api.Page{}, err
	}
	if limit <= 0 {
		return api.Page{}, fmt.Errorf("%w: limit %d", api.ErrBadRequest, limit)
	}
	keys := m.sp.List(prefix, after, limit+1)
	page := api.Page{Entries: []api.Entry{}}
	if len(keys) > limit {
		keys = keys[:limit]
		page.Next = keys[limit-1]
	}
	for _, k := range keys {
		page.Entries = append(page.Entries, api.Entry{Key: k, Versions: versions(m.sp.Get(k))})
	}
	if err := m.sp.Err(); err != nil {
		return api.Page{}, err // never a subset as if it were whole
	}
	return page, nil
}

// Watch implements api.Backend.
func (n *Node) Watch(ctx context.Context, id, prefix string) (<-chan api.Entry, func() error, error) {
	m, err := n.opened(id)
	if err != nil {
		return nil, nil, err
	}
	w := m.sp.Watch(prefix)
	out := make(chan api.Entry, 64)
	done := make(chan struct{})
	var werr error
	// The stream ends with the caller's context, or with api.ErrClosed when
	// the node shuts down (n.streams), even while nobody reads out.
	ok := n.streams.start(func(sctx context.Context) {
		defer close(out)
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				m.sp.Unwatch(w)
				return
			case <-sctx.Done():
				m.sp.Unwatch(w)
				werr = api.ErrClosed
				return
			case c, ok := <-w.C:
				if !ok {
					if werr = w.Err(); errors.Is(werr, space.ErrWatchOverflow) {
						werr = fmt.Errorf("%w: %v", api.ErrBehind, werr)
					}
					return
				}
				select {
				case out <- api.Entry{Key: c.Key, Versions: versions(c.Versions)}:
				case <-ctx.Done():
					m.sp.Unwatch(w)
					return
				case <-sctx.Done():
					m.sp.Unwatch(w)
					werr = api.ErrClosed
					return
				}
			}
		}
	})
	if !ok {
		m.sp.Unwatch(w)
		return nil, nil, api.ErrClosed
	}
	return out, func() error {
		select {
		case <-done:
			return werr
		default:
			return nil
		}
	}, nil
}

// Members implements api.Backend.
func (n *Node) Members(id string) ([]api.Member, error) {
	m, err := n.opened(id)
	if err != nil {
		return nil, err
	}
	own := m.sp.Feed()
	var out []api.Member
	for _, d := range m.sp.Devices() {
		out = append(out, api.Member{Feed: hex.EncodeToString(d.Feed[:]), Name: d.Name,
			Self: d.Feed == own, Length: m.sp.Held(d.Feed)})
	}
	return out, nil
}

// RemoveMember implements api.Backend.
func (n *Node) RemoveMember(ctx context.Context, id, feedHex string) error {
	ctx, m, done, err := n.callOn(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	target, err := parseFeed(feedHex)
	if err != nil {
		return err
	}
	// Removing a device that is not a writer would still write a removal
	// and start a new epoch: a typo'd feed key must not do that quietly.
	if !slices.ContainsFunc(m.sp.Devices(), func(d space.Device) bool { return d.Feed == target }) {
		return fmt.Errorf("%w: %s is not a member of the space (mycel members lists them)", api.ErrNotFound, feedHex)
	}
	if err := m.sp.RemoveWriter(ctx, target); err != nil {
		return spaceError(err)
	}
	m.wrote()
	m.refreshSoon() // the refresher renews the password key (signin_password.go)
	n.log.Info("space: removed a writer", "space", m.sp.ID(), "feed", target)
	return nil
}

// Peers implements api.Backend.
func (n *Node) Peers() []api.Peer {
	var out []api.Peer
	members := n.openSpaces()
	for _, p := range n.host.Network().Peers() {
		ap := api.Peer{ID: p.String(), Relay: n.relayIndex(p) >= 0}
		for _, m := range members {
			if !m.isServed() {
				continue
			}
			if ok, _ := n.host.Peerstore().SupportsProtocols(p, syncnet.ProtocolFor(m.sp.ID())); len(ok) > 0 {
				ap.Spaces = append(ap.Spaces, m.sp.ID().String())
			}
		}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			st := c.Stat()
			dir := "outbound"
			if st.Direction == network.DirInbound {
				dir = "inbound"
			}
			ap.Conns = append(ap.Conns, api.Conn{Addr: c.RemoteMultiaddr().String(),
				Transport: transport(c.RemoteMultiaddr()), Direction: dir, Limited: st.Limited})
		}
		out = append(out, ap)
	}
	return out
}

// transport names the transport of a connection's remote address.
func transport(a ma.Multiaddr) string {
	has := func(code int) bool {
		_, err := a.ValueForProtocol(code)
		return err == nil
	}
	switch {
	case has(ma.P_CIRCUIT):
		return "relayed"
	case has(ma.P_WEBRTC_DIRECT):
		return "webrtc-direct"
	case has(ma.P_WEBRTC):
		return "webrtc"
	case has(ma.P_WEBTRANSPORT):
		return "webtransport"
	case has(ma.P_WS), has(ma.P_WSS):
		return "websocket"
	case has(ma.P_QUIC_V1):
		return "quic"
	case has(ma.P_TCP):
		return "tcp"
	}
	return "other"
}

// Progress implements api.Backend: per peer, space and feed, with an ETA
// from the recent rate and the bytes per entry seen so far.
func (n *Node) Progress() []api.Progress {
	var out []api.Progress
	for _, p := range n.repl.Progress() {
		ap := api.Progress{Space: p.Space.String(), Peer: p.Peer.String(), Feed: hex.EncodeToString(p.Feed[:]),
			Have: p.Have, Want: p.Want, BytesIn: p.BytesIn, Rate: p.Rate}
		ap.ETA = eta(p.Have, p.Want, p.BytesIn, p.Rate)
		out = append(out, ap)
	}
	return out
}

// eta estimates the seconds until have reaches want: the entries left
// times the mean entry size received, at rate bytes/s. 0 when caught up or
// when nothing says yet how fast it goes.
func eta(have, want, bytesIn uint64, rate float64) float64 {
	if have >= want || rate <= 0 || bytesIn == 0 || have == 0 {
		return 0
	}
	// Entries received from this peer are at most have; the mean size of
	// those held is a fair guess for those to come.
	perEntry := float64(bytesIn) / float64(have)
	return float64(want-have) * perEntry / rate
}

func parseSpaceID(s string) (auth.SpaceID, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != auth.SpaceIDSize {
		return auth.SpaceID{}, fmt.Errorf("%w: space ID %q: want %d hex digits", api.ErrBadRequest, s, 2*auth.SpaceIDSize)
	}
	id, _ := auth.SpaceIDFromBytes(b)
	return id, nil
}

func parseFeed(s string) (feed.PublicKey, error) {
	var k feed.PublicKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("%w: feed key %q: want %d hex digits", api.ErrBadRequest, s, 2*len(k))
	}
	copy(k[:], b)
	return k, nil
}

// spaceError maps the space's errors to the API's.
func spaceError(err error) error {
	switch {
	case errors.Is(err, space.ErrReadOnly):
		return fmt.Errorf("%w: %v", api.ErrReadOnly, err)
	case errors.Is(err, space.ErrNoKeys):
		return fmt.Errorf("%w: %v", api.ErrNoKeys, err)
	case errors.Is(err, space.ErrClosed), errors.Is(err, feed.ErrClosed):
		return fmt.Errorf("%w: %v", api.ErrClosed, err)
	case errors.Is(err, space.ErrSystemKey):
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	return err
}

// Hints a daemon puts into its invite links (auth.InviteHints).
const (
	maxHintDirect  = 4
	maxHintCircuit = 2
)

var _ api.InviteHinter = (*Node)(nil)
var _ api.HintDialer = (*Node)(nil)

// InviteHints implements api.InviteHinter: this device's peer ID and the
// addresses another device may dial it at — up to 4 TCP or QUIC ones
// (those a device elsewhere can reach first; loopback only when there is
// nothing else, as in tests on one machine), and up to 2 circuit
// addresses through its relays, from its reservations or, until it holds
// one, its configured relays.
func (n *Node) InviteHints() auth.InviteHints {
	var direct, local, circuit [][]byte
	add := func(a ma.Multiaddr) {
		b := a.Bytes()
		if len(b) > auth.MaxInviteHintAddrSize {
			return
		}
		switch {
		case hasProto(a, ma.P_CIRCUIT):
			circuit = append(circuit, b)
		case hasProto(a, ma.P_WS), hasProto(a, ma.P_WSS), hasProto(a, ma.P_WEBTRANSPORT),
			hasProto(a, ma.P_WEBRTC_DIRECT), hasProto(a, ma.P_WEBRTC):
			// for browsers; a daemon dials TCP or QUIC
		case !hasProto(a, ma.P_TCP) && !hasProto(a, ma.P_QUIC_V1):
		case manet.IsIPLoopback(a):
			local = append(local, b)
		default:
			direct = append(direct, b)
		}
	}
	for _, a := range n.host.Addrs() {
		add(a)
	}
	if len(circuit) == 0 {
		for _, s := range n.cfg.Relays {
			if a, err := ma.NewMultiaddr(s + "/p2p-circuit"); err == nil {
				add(a)
			}
		}
	}
	if len(direct) == 0 {
		direct = local
	}
	h := auth.InviteHints{Peer: []byte(n.host.ID())}
	h.Addrs = append(h.Addrs, direct[:min(len(direct), maxHintDirect)]...)
	h.Addrs = append(h.Addrs, circuit[:min(len(circuit), maxHintCircuit)]...)
	if len(h.Addrs) == 0 {
		return auth.InviteHints{}
	}
	return h
}

func hasProto(a ma.Multiaddr, code int) bool {
	_, err := a.ValueForProtocol(code)
	return err == nil
}

// DialHints implements api.HintDialer: it connects to the device an invite
// link names, at the addresses it gives. Hints for this device itself, or
// that do not parse, are refused with ErrBadRequest; the dial is bounded by
// ctx and Limits.Net.DialTimeout.
func (n *Node) DialHints(ctx context.Context, h auth.InviteHints) error {
	id, err := peer.IDFromBytes(h.Peer)
	if err != nil {
		return fmt.Errorf("%w: invite hints: peer ID: %v", api.ErrBadRequest, err)
	}
	if id == n.host.ID() {
		return fmt.Errorf("%w: the invite was made by this device", api.ErrBadRequest)
	}
	ai := peer.AddrInfo{ID: id}
	for _, b := range h.Addrs {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			continue
		}
		ai.Addrs = append(ai.Addrs, a)
	}
	if len(ai.Addrs) == 0 {
		return fmt.Errorf("%w: invite hints: no address parses", api.ErrBadRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, n.limits.Net.DialTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("node: dial the invite's hints (%s): %w", id, err)
	}
	n.log.Info("sign-in: connected to the inviting device", "peer", id)
	return nil
}
