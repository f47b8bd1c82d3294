package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/util"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The hop service's bounds that are not settings.
const (
	// hopMaxMessage bounds one hop or stop message (libp2p's bound: a
	// reservation with its addresses and voucher fits).
	hopMaxMessage = 4096
	// hopReadTimeout bounds the wait for a hop request, hopHandshake the
	// stop handshake with the destination, hopConnectTimeout the opening
	// of the stop stream.
	hopReadTimeout    = time.Minute
	hopHandshake      = time.Minute
	hopConnectTimeout = 30 * time.Second
	// circuitBuffer is the copy buffer of each direction of a circuit,
	// reserved with the resource manager before the circuit opens.
	circuitBuffer = 16 << 10
	// hopGC is how often expired reservations are dropped.
	hopGC = time.Minute
	// reservationTag tags a peer holding a slot in the connection manager,
	// so that it is not trimmed.
	reservationTag       = "relay-reservation"
	reservationTagWeight = 10
)

// hop is the relay's circuit relay v2 service: the hop protocol
// (/libp2p/circuit/relay/0.2.0/hop, libp2p's circuit relay v2
// specification, messages from go-libp2p's circuitv2/pb) on the relay's
// own code, so that each circuit gets its own limits: the members' lifted
// ones when the ACL lifts them, libp2p's defaults otherwise. go-libp2p's
// service applies one limit to every circuit.
//
// Reservations: at most Limits.MaxReservations at once, MaxReservationsPerIP
// from one IP address, each for ReservationTTL (a refresh renews it);
// none over a relayed connection. Circuits: to a peer holding a slot, at
// most MaxCircuitsPerPeer to or from one peer, each with two copy buffers
// reserved with the resource manager first (the relay service's scope,
// libp2p's limits for it). A refusal is a hop STATUS with libp2p's codes:
// PERMISSION_DENIED, RESERVATION_REFUSED, NO_RESERVATION,
// RESOURCE_LIMIT_EXCEEDED, MALFORMED_MESSAGE, CONNECTION_FAILED; nothing
// else changes. A circuit over its bytes (either direction) or past its
// duration is reset, both streams.
//
// Goroutines: libp2p runs each hop stream's handler; the hop counts it
// in wg while it runs. Each open circuit has two copy goroutines, and the
// hop has one for reservation expiry; all in wg. Close stops taking
// streams, resets every open circuit and waits for wg.
type hop struct {
	h      host.Host
	lim    Limits
	acl    *ACL
	tracer relayv2.MetricsTracer // nil: none
	scope  network.ResourceScopeSpan
	self   ma.Multiaddr // /p2p/<relay>
	notif  network.Notifiee

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	rsvp     map[peer.ID]reservation
	perIP    map[netip.Addr]int
	circuits map[peer.ID]int
	open     map[*circuit]struct{}
}

type reservation struct {
	expire time.Time
	ip     netip.Addr // zero: not an IP address
}

// circuit is one relayed connection: src's hop stream and dest's stop
// stream.
type circuit struct {
	src, dest network.Stream
	from, to  peer.ID
	lifted    bool // the members' limits
	once      sync.Once
}

func (c *circuit) reset() {
	c.once.Do(func() {
		c.src.Reset()
		c.dest.Reset()
	})
}

// newHop starts the hop service on h.
func newHop(h host.Host, lim Limits, acl *ACL, tracer relayv2.MetricsTracer) (*hop, error) {
	hp := &hop{h: h, lim: lim, acl: acl, tracer: tracer,
		rsvp: make(map[peer.ID]reservation), perIP: make(map[netip.Addr]int),
		circuits: make(map[peer.ID]int), open: make(map[*circuit]struct{})}
	err := h.Network().ResourceManager().ViewService(relayv2.ServiceName, func(s network.ServiceScope) error {
		var err error
		hp.scope, err = s.BeginSpan()
		return err
	})
	if err != nil {
		return nil, err
	}
	self, err := ma.NewMultiaddr("/p2p/" + h.ID().String())
	if err != nil {
		hp.scope.Done()
		return nil, err
	}
	hp.self = self
	hp.ctx, hp.cancel = context.WithCancel(context.Background())
	hp.notif = &network.NotifyBundle{DisconnectedF: hp.disconnected}
	acl.setOnDrop(hp.dropLifted)
	h.Network().Notify(hp.notif)
	h.SetStreamHandler(proto.ProtoIDv2Hop, hp.handle)
	if tracer != nil {
		tracer.RelayStatus(true)
	}
	hp.wg.Add(1)
	go hp.expire()
	return hp, nil
}

// Close stops the service: no new hop stream, every circuit reset, every
// goroutine of the service waited for.
func (hp *hop) Close() error {
	hp.mu.Lock()
	if hp.closed {
		hp.mu.Unlock()
		return nil
	}
	hp.closed = true
	open := make([]*circuit, 0, len(hp.open))
	for c := range hp.open {
		open = append(open, c)
	}
	for p := range hp.rsvp {
		hp.h.ConnManager().UntagPeer(p, reservationTag)
	}
	n := len(hp.rsvp)
	clear(hp.rsvp)
	clear(hp.perIP)
	hp.mu.Unlock()
	hp.h.RemoveStreamHandler(proto.ProtoIDv2Hop)
	hp.h.Network().StopNotify(hp.notif)
	hp.cancel()
	for _, c := range open {
		c.reset()
	}
	hp.wg.Wait()
	hp.scope.Done()
	if hp.tracer != nil {
		hp.tracer.ReservationClosed(n)
		hp.tracer.RelayStatus(false)
	}
	return nil
}

// enter counts a handler in wg unless the service is closed.
func (hp *hop) enter() bool {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if hp.closed {
		return false
	}
	hp.wg.Add(1)
	return true
}

func (hp *hop) handle(s network.Stream) {
	if !hp.enter() {
		s.Reset()
		return
	}
	defer hp.wg.Done()
	if err := s.Scope().SetService(relayv2.ServiceName); err != nil {
		s.Reset()
		return
	}
	if err := s.Scope().ReserveMemory(hopMaxMessage, network.ReservationPriorityAlways); err != nil {
		s.Reset()
		return
	}
	defer s.Scope().ReleaseMemory(hopMaxMessage)
	s.SetReadDeadline(time.Now().Add(hopReadTimeout))
	req, err := readHop(s)
	if err != nil {
		hp.refuse(s, pbv2.Status_MALFORMED_MESSAGE)
		return
	}
	s.SetReadDeadline(time.Time{})
	if req.kind == pbv2.HopMessage_RESERVE {
		status := hp.reserve(s)
		if hp.tracer != nil {
			hp.tracer.ReservationRequestHandled(status)
		}
		return
	}
	status := hp.connect(s, req.dest)
	if hp.tracer != nil {
		hp.tracer.ConnectionRequestHandled(status)
	}
}

// errMalformed is a hop or stop message that is not what the protocol
// allows there.
var errMalformed = errors.New("relay: malformed circuit relay message")

// hopRequest is a decoded hop request: RESERVE, or CONNECT to dest.
type hopRequest struct {
	kind pbv2.HopMessage_Type
	dest peer.ID
}

// readHop reads one hop request from r: a uvarint length of at most
// hopMaxMessage (refused before anything is read further) and a
// HopMessage of that length, of type RESERVE, or CONNECT with a valid
// destination peer ID; anything else, a message without a type included,
// is errMalformed. It reads nothing past the
// message.
func readHop(r io.Reader) (hopRequest, error) {
	rd := util.NewDelimitedReader(r, hopMaxMessage)
	defer rd.Close()
	var msg pbv2.HopMessage
	if err := rd.ReadMsg(&msg); err != nil {
		return hopRequest{}, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if msg.Type == nil { // GetType would read a missing type as RESERVE
		return hopRequest{}, errMalformed
	}
	switch msg.GetType() {
	case pbv2.HopMessage_RESERVE:
		return hopRequest{kind: pbv2.HopMessage_RESERVE}, nil
	case pbv2.HopMessage_CONNECT:
		info, err := util.PeerToPeerInfoV2(msg.GetPeer())
		if err != nil {
			return hopRequest{}, fmt.Errorf("%w: %w", errMalformed, err)
		}
		return hopRequest{kind: pbv2.HopMessage_CONNECT, dest: info.ID}, nil
	}
	return hopRequest{}, errMalformed
}

// readStopStatus reads the destination's answer to a STOP CONNECT from r
// (at most hopMaxMessage bytes): nil if it is a STATUS OK.
func readStopStatus(r io.Reader) error {
	rd := util.NewDelimitedReader(r, hopMaxMessage)
	defer rd.Close()
	var msg pbv2.StopMessage
	if err := rd.ReadMsg(&msg); err != nil {
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	if msg.Type == nil || msg.GetType() != pbv2.StopMessage_STATUS {
		return errMalformed
	}
	if msg.GetStatus() != pbv2.Status_OK {
		return errors.New("relay: the destination refused the circuit: " + msg.GetStatus().String())
	}
	return nil
}

// limit returns the limits of a circuit from src to dest.
func (hp *hop) limit(src, dest peer.ID) (time.Duration, int64) {
	if hp.acl.Lifted(src, dest) {
		return hp.lim.MemberCircuitDuration, hp.lim.MemberCircuitBytes
	}
	return hp.lim.CircuitDuration, hp.lim.CircuitBytes
}

func limitMsg(d time.Duration, n int64) *pbv2.Limit {
	secs := uint32(min(d/time.Second, 1<<32-1))
	data := uint64(n)
	return &pbv2.Limit{Duration: &secs, Data: &data}
}

// remoteIP returns the IP address of a connection's remote end, the zero
// Addr if it has none.
func remoteIP(a ma.Multiaddr) netip.Addr {
	ip, err := manet.ToIP(a)
	if err != nil {
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// reserve grants or renews p's slot.
func (hp *hop) reserve(s network.Stream) pbv2.Status {
	defer s.Close()
	p, a := s.Conn().RemotePeer(), s.Conn().RemoteMultiaddr()
	if isRelayed(a) || !hp.acl.AllowReserve(p, a) {
		return hp.refuse(s, pbv2.Status_PERMISSION_DENIED)
	}
	ip := remoteIP(a)
	now := time.Now()
	expire := now.Add(hp.lim.ReservationTTL)
	hp.mu.Lock()
	if hp.closed {
		hp.mu.Unlock()
		return hp.refuse(s, pbv2.Status_PERMISSION_DENIED)
	}
	old, renewal := hp.rsvp[p]
	if renewal && !old.expire.After(now) {
		hp.dropLocked(p)
		renewal = false
	}
	if !renewal && (len(hp.rsvp) >= hp.lim.MaxReservations || (ip.IsValid() && hp.perIP[ip] >= hp.lim.MaxReservationsPerIP)) {
		hp.mu.Unlock()
		return hp.refuse(s, pbv2.Status_RESERVATION_REFUSED)
	}
	if renewal && old.ip != ip {
		hp.dropLocked(p)
		renewal = false
		if ip.IsValid() && hp.perIP[ip] >= hp.lim.MaxReservationsPerIP {
			hp.mu.Unlock()
			return hp.refuse(s, pbv2.Status_RESERVATION_REFUSED)
		}
	}
	if !renewal && ip.IsValid() {
		hp.perIP[ip]++
	}
	hp.rsvp[p] = reservation{expire: expire, ip: ip}
	hp.h.ConnManager().TagPeer(p, reservationTag, reservationTagWeight)
	hp.mu.Unlock()
	if hp.tracer != nil {
		hp.tracer.ReservationAllowed(renewal)
	}
	d, n := hp.lim.CircuitDuration, hp.lim.CircuitBytes
	if hp.acl.Member(p) {
		d, n = hp.lim.MemberCircuitDuration, hp.lim.MemberCircuitBytes
	}
	rsvp, err := hp.voucher(p, expire)
	if err != nil {
		s.Reset()
		return pbv2.Status_CONNECTION_FAILED
	}
	if err := hp.reply(s, pbv2.Status_OK, rsvp, limitMsg(d, n)); err != nil {
		// The slot stays until it expires or p leaves.
		s.Reset()
		return pbv2.Status_CONNECTION_FAILED
	}
	return pbv2.Status_OK
}

// dropLocked forgets p's reservation.
func (hp *hop) dropLocked(p peer.ID) {
	r, ok := hp.rsvp[p]
	if !ok {
		return
	}
	delete(hp.rsvp, p)
	if r.ip.IsValid() {
		if hp.perIP[r.ip]--; hp.perIP[r.ip] <= 0 {
			delete(hp.perIP, r.ip)
		}
	}
	hp.h.ConnManager().UntagPeer(p, reservationTag)
}

// voucher returns the reservation message for p: the relay's public
// addresses and its signed voucher (libp2p's reservation voucher record).
func (hp *hop) voucher(p peer.ID, expire time.Time) (*pbv2.Reservation, error) {
	exp := uint64(expire.Unix())
	rsvp := &pbv2.Reservation{Expire: &exp}
	for _, a := range hp.h.Addrs() {
		if !manet.IsPublicAddr(a) {
			continue
		}
		if id, err := peer.IDFromP2PAddr(a); err == nil && id != hp.h.ID() {
			continue
		} else if err != nil {
			a = a.Encapsulate(hp.self)
		}
		rsvp.Addrs = append(rsvp.Addrs, a.Bytes())
	}
	env, err := record.Seal(&proto.ReservationVoucher{Relay: hp.h.ID(), Peer: p, Expiration: expire},
		hp.h.Peerstore().PrivKey(hp.h.ID()))
	if err != nil {
		return nil, err
	}
	if rsvp.Voucher, err = env.Marshal(); err != nil {
		return nil, err
	}
	return rsvp, nil
}

// connect opens a circuit from s's peer to dest.
func (hp *hop) connect(s network.Stream, dest peer.ID) pbv2.Status {
	src, a := s.Conn().RemotePeer(), s.Conn().RemoteMultiaddr()
	span, err := hp.scope.BeginSpan()
	if err != nil {
		return hp.refuse(s, pbv2.Status_RESOURCE_LIMIT_EXCEEDED)
	}
	if err := span.ReserveMemory(2*circuitBuffer, network.ReservationPriorityHigh); err != nil {
		span.Done()
		return hp.refuse(s, pbv2.Status_RESOURCE_LIMIT_EXCEEDED)
	}
	if isRelayed(a) {
		span.Done()
		return hp.refuse(s, pbv2.Status_PERMISSION_DENIED)
	}
	if !hp.acl.AllowConnect(src, a, dest) {
		span.Done()
		return hp.refuse(s, pbv2.Status_PERMISSION_DENIED)
	}
	d, n := hp.limit(src, dest)

	hp.mu.Lock()
	r, ok := hp.rsvp[dest]
	switch {
	case hp.closed || !ok || !r.expire.After(time.Now()):
		hp.mu.Unlock()
		span.Done()
		return hp.refuse(s, pbv2.Status_NO_RESERVATION)
	case hp.circuits[src] >= hp.lim.MaxCircuitsPerPeer, hp.circuits[dest] >= hp.lim.MaxCircuitsPerPeer:
		hp.mu.Unlock()
		span.Done()
		return hp.refuse(s, pbv2.Status_RESOURCE_LIMIT_EXCEEDED)
	}
	hp.circuits[src]++
	hp.circuits[dest]++
	hp.mu.Unlock()
	if hp.tracer != nil {
		hp.tracer.ConnectionOpened()
	}
	opened := time.Now()
	release := func() {
		hp.mu.Lock()
		for _, p := range []peer.ID{src, dest} {
			if hp.circuits[p]--; hp.circuits[p] <= 0 {
				delete(hp.circuits, p)
			}
		}
		hp.mu.Unlock()
		span.Done()
		if hp.tracer != nil {
			hp.tracer.ConnectionClosed(time.Since(opened))
		}
	}

	bs, err := hp.stop(src, dest, d, n)
	if err != nil {
		release()
		return hp.refuse(s, pbv2.Status_CONNECTION_FAILED)
	}
	if err := hp.reply(s, pbv2.Status_OK, nil, limitMsg(d, n)); err != nil {
		bs.Reset()
		s.Reset()
		release()
		return pbv2.Status_CONNECTION_FAILED
	}
	c := &circuit{src: s, dest: bs, from: src, to: dest, lifted: d > hp.lim.CircuitDuration || n > hp.lim.CircuitBytes}
	hp.mu.Lock()
	if hp.closed {
		hp.mu.Unlock()
		c.reset()
		release()
		return pbv2.Status_CONNECTION_FAILED
	}
	hp.open[c] = struct{}{}
	hp.wg.Add(3)
	hp.mu.Unlock()
	deadline := time.Now().Add(d)
	s.SetDeadline(deadline)
	bs.SetDeadline(deadline)
	var pending sync.WaitGroup
	pending.Add(2)
	go hp.pipe(c, s, bs, n, &pending)
	go hp.pipe(c, bs, s, n, &pending)
	go func() {
		defer hp.wg.Done()
		pending.Wait()
		hp.mu.Lock()
		delete(hp.open, c)
		hp.mu.Unlock()
		release()
	}()
	return pbv2.Status_OK
}

// dropLifted resets the open circuits with the members' limits to or
// from p: the ACL dropped p (a removed writer, a rotation it is not part
// of). A circuit it opens next gets the default limits.
func (hp *hop) dropLifted(p peer.ID) {
	hp.mu.Lock()
	var drop []*circuit
	for c := range hp.open {
		if c.lifted && (c.from == p || c.to == p) {
			drop = append(drop, c)
		}
	}
	hp.mu.Unlock()
	for _, c := range drop {
		c.reset()
	}
}

// stop opens the stop stream to dest and makes the handshake: dest is
// told who connects and the circuit's limits, and accepts.
func (hp *hop) stop(src, dest peer.ID, d time.Duration, n int64) (network.Stream, error) {
	ctx, cancel := context.WithTimeout(hp.ctx, hopConnectTimeout)
	defer cancel()
	bs, err := hp.h.NewStream(network.WithNoDial(ctx, "relay connect"), dest, proto.ProtoIDv2Stop)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (network.Stream, error) {
		bs.Reset()
		return nil, err
	}
	if err := bs.Scope().SetService(relayv2.ServiceName); err != nil {
		return fail(err)
	}
	if err := bs.Scope().ReserveMemory(hopMaxMessage, network.ReservationPriorityAlways); err != nil {
		return fail(err)
	}
	defer bs.Scope().ReleaseMemory(hopMaxMessage)
	bs.SetDeadline(time.Now().Add(hopHandshake))
	req := pbv2.StopMessage{Type: pbv2.StopMessage_CONNECT.Enum(),
		Peer: util.PeerInfoToPeerV2(peer.AddrInfo{ID: src}), Limit: limitMsg(d, n)}
	if err := util.NewDelimitedWriter(bs).WriteMsg(&req); err != nil {
		return fail(err)
	}
	if err := readStopStatus(bs); err != nil {
		return fail(err)
	}
	bs.SetDeadline(time.Time{})
	return bs, nil
}

// pipe copies from into to, at most n bytes. At EOF it closes to's write
// side; on an error, or once n bytes are through, it resets the circuit.
func (hp *hop) pipe(c *circuit, from, to network.Stream, n int64, pending *sync.WaitGroup) {
	defer hp.wg.Done()
	defer pending.Done()
	buf := make([]byte, circuitBuffer)
	var total int64
	for {
		want := int64(len(buf))
		if left := n - total; left < want {
			want = left
		}
		if want == 0 {
			// Over the limit: the circuit is cut, both ways.
			c.reset()
			return
		}
		k, err := from.Read(buf[:want])
		if k > 0 {
			if _, werr := to.Write(buf[:k]); werr != nil {
				c.reset()
				return
			}
			total += int64(k)
			if hp.tracer != nil {
				hp.tracer.BytesTransferred(k)
			}
		}
		if err == io.EOF {
			to.CloseWrite()
			return
		}
		if err != nil {
			c.reset()
			return
		}
	}
}

// refuse answers s with status and closes it.
func (hp *hop) refuse(s network.Stream, status pbv2.Status) pbv2.Status {
	if err := hp.reply(s, status, nil, nil); err != nil {
		s.Reset()
	} else {
		s.Close()
	}
	return status
}

func (hp *hop) reply(s network.Stream, status pbv2.Status, rsvp *pbv2.Reservation, limit *pbv2.Limit) error {
	s.SetWriteDeadline(time.Now().Add(hopReadTimeout))
	defer s.SetWriteDeadline(time.Time{})
	msg := pbv2.HopMessage{Type: pbv2.HopMessage_STATUS.Enum(), Status: status.Enum(), Reservation: rsvp, Limit: limit}
	return util.NewDelimitedWriter(s).WriteMsg(&msg)
}

// expire drops expired reservations every hopGC until Close.
func (hp *hop) expire() {
	defer hp.wg.Done()
	t := time.NewTicker(hopGC)
	defer t.Stop()
	for {
		select {
		case <-hp.ctx.Done():
			return
		case now := <-t.C:
			hp.mu.Lock()
			n := 0
			for p, r := range hp.rsvp {
				if !r.expire.After(now) {
					hp.dropLocked(p)
					n++
				}
			}
			hp.mu.Unlock()
			if n > 0 && hp.tracer != nil {
				hp.tracer.ReservationClosed(n)
			}
		}
	}
}

// disconnected drops the slot of a peer that has no connection left.
func (hp *hop) disconnected(n network.Network, c network.Conn) {
	p := c.RemotePeer()
	if n.Connectedness(p) == network.Connected {
		return
	}
	hp.mu.Lock()
	_, ok := hp.rsvp[p]
	hp.dropLocked(p)
	hp.mu.Unlock()
	if ok && hp.tracer != nil {
		hp.tracer.ReservationClosed(1)
	}
}
