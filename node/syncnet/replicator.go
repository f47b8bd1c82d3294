package syncnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/internal/clock"
	"github.com/mycelsync/mycel/node/replication"
)

// ErrClosed is returned by Sync once the Replicator is closed.
var ErrClosed = errors.New("syncnet: closed")

// ErrBanned is returned by Sync for a peer whose standing is too low.
var ErrBanned = errors.New("syncnet: peer banned")

// Config holds the driver's limits. Zero fields take their defaults.
type Config struct {
	// IdleTimeout bounds the wait for the peer's next frame while this
	// side expects one: during the opening and while wants are
	// outstanding. Refreshed by every frame. A caught-up session waits for
	// the start of a push without a deadline (the muxer's keepalive
	// notices a dead connection); FrameTimeout bounds the rest of it.
	// Default 2 minutes.
	IdleTimeout time.Duration
	// FrameTimeout bounds the arrival of one frame once its first byte
	// arrived, whatever the session's state: a peer that starts a frame
	// and stalls is dropped. Default 2 minutes (a full 16 MiB frame at
	// 140 KB/s).
	FrameTimeout time.Duration
	// WriteTimeout bounds the writing of the frames of one Ready. Default
	// 30 seconds.
	WriteTimeout time.Duration
	// OpenTimeout bounds opening a stream (negotiation included) when no
	// caller context does. Default 15 seconds.
	OpenTimeout time.Duration
	// MaxStrikes bad sessions (the peer's fault: malformed, oversized or
	// out-of-order frames, a failed proof, data that does not verify)
	// within StrikeWindow ban the peer for BanDuration: its streams are
	// reset unread and none is opened to it. Defaults 3, 1 hour, 1 hour.
	MaxStrikes   int
	StrikeWindow time.Duration
	BanDuration  time.Duration
	// MaxFailedProofs sessions whose opening proof fails within
	// StrikeWindow ban the peer too. They are counted apart from strikes:
	// a proof can fail through no fault of an honest device (a joining
	// device trying an approval's keyring that someone forged, a member
	// behind on rotations), and three would lock such a device out for
	// BanDuration; an outsider guessing gains nothing from more tries.
	// Default 30.
	MaxFailedProofs int
	// ForgetAfter is how long the standing (strikes, failed proofs) of a
	// peer that disconnected is kept: a peer that reconnects within it
	// finds its marks; after it they are forgotten, so peers that struck
	// once and left do not pile up. A ban lasts BanDuration whatever
	// ForgetAfter is. Default 10 minutes.
	ForgetAfter time.Duration
	// MaxTracked bounds the peers whose standing is remembered (marks or
	// a ban). When it is full, a new peer's first mark forgets, in this
	// order, the peer that left longest ago, then the connected peer with
	// the oldest mark, then the ban that ends soonest. Default 4096.
	MaxTracked int
	// RateWindow is the window over which Progress measures the receive
	// rate. Default 5 seconds.
	RateWindow time.Duration
	// Session tweaks every replication.Config (limits); identities, nonce,
	// capability and model are filled in by the driver.
	Session replication.Config
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.IdleTimeout, 2*time.Minute)
	def(&c.FrameTimeout, 2*time.Minute)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.OpenTimeout, 15*time.Second)
	def(&c.StrikeWindow, time.Hour)
	def(&c.BanDuration, time.Hour)
	def(&c.RateWindow, 5*time.Second)
	def(&c.ForgetAfter, 10*time.Minute)
	if c.MaxTracked <= 0 {
		c.MaxTracked = 4096
	}
	if c.MaxStrikes <= 0 {
		c.MaxStrikes = 3
	}
	if c.MaxFailedProofs <= 0 {
		c.MaxFailedProofs = 30
	}
}

// Option configures a Replicator.
type Option func(*Replicator)

// WithConfig sets the limits.
func WithConfig(c Config) Option { return func(r *Replicator) { r.cfg = c } }

// WithClock sets the clock of standing and rates (not of stream
// deadlines, which the network stack measures). Default the system clock.
func WithClock(c clock.Clock) Option { return func(r *Replicator) { r.clock = clock.OrReal(c) } }

// WithTracer reports strikes, bans, drops and the size of the standing
// table to t (for metrics). Default: nothing is reported.
func WithTracer(t Tracer) Option {
	return func(r *Replicator) {
		if t != nil {
			r.tracer = t
		}
	}
}

// Tracer is told what the Replicator does to peers. Its methods are called
// with the Replicator's lock held: they must be quick and must not call
// back into the Replicator.
type Tracer interface {
	// Strike: a session ended through the peer's fault. proof is set for
	// a failed opening proof, counted apart (Config.MaxFailedProofs).
	Strike(proof bool)
	// Ban: a peer was banned for Config.BanDuration.
	Ban()
	// Drop: a stream or session was ended for reason (Drop* constants).
	Drop(reason string)
	// Tracked: the standing table now remembers n peers.
	Tracked(n int)
}

// Reasons given to Tracer.Drop.
const (
	// DropBanned: a banned peer's stream was reset unread.
	DropBanned = "banned"
	// DropDuplicate: the peer's stream met this side's own for the same
	// space and was reset.
	DropDuplicate = "duplicate"
	// DropStalled: the peer did not send within IdleTimeout or
	// FrameTimeout.
	DropStalled = "stalled"
)

type nopTracer struct{}

func (nopTracer) Strike(bool) {}
func (nopTracer) Ban()        {}
func (nopTracer) Drop(string) {}
func (nopTracer) Tracked(int) {}

// Progress is the replication of one feed of one space with one peer.
type Progress struct {
	Peer  peer.ID
	Space auth.SpaceID
	Feed  feed.PublicKey
	replication.FeedProgress
	// Rate is the entry bytes per second received from the peer over the
	// last Config.RateWindow.
	Rate float64
}

// Replicator runs sync sessions over libp2p streams: one per peer and
// space. See the package documentation.
type Replicator struct {
	h      host.Host
	log    *slog.Logger
	cfg    Config
	clock  clock.Clock
	tracer Tracer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	watching bool
	spaces   map[auth.SpaceID]Space
	sessions map[sessionKey]*session
	standing map[peer.ID]*standing // at most Config.MaxTracked
	moved    int                   // sessions moved off a relay (Moved)
}

// SessionInfo is one running session: its peer and space, who opened it
// and whether its connection is relayed.
type SessionInfo struct {
	Peer     peer.ID
	Space    auth.SpaceID
	Outbound bool
	Relayed  bool
	// Running is false while the stream is being opened or the session
	// waits for the one it replaces to stop.
	Running bool
	// Established: the peer's proof verified.
	Established bool
	ConnID      string // the connection's ID in libp2p's swarm
}

// Sessions returns the sessions running now.
func (r *Replicator) Sessions() []SessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SessionInfo, 0, len(r.sessions))
	for key, s := range r.sessions {
		info := SessionInfo{Peer: key.peer, Space: key.space, Outbound: s.outbound, Established: s.established.Load() != 0}
		s.mu.Lock()
		if c := s.conn; c != nil {
			info.Running, info.Relayed, info.ConnID = true, relayedConn(c), c.ID()
		}
		s.mu.Unlock()
		out = append(out, info)
	}
	return out
}

// Moved returns how many sessions this side moved from a relayed
// connection onto a direct one.
func (r *Replicator) Moved() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved
}

// standing is what the Replicator remembers of a peer that misbehaved.
type standing struct {
	strikes []time.Time // within StrikeWindow
	failed  []time.Time // failed proofs within StrikeWindow
	banned  time.Time   // banned until then; zero: not banned
	left    time.Time   // when it disconnected; zero while connected
}

type sessionKey struct {
	peer  peer.ID
	space auth.SpaceID
}

// New returns a Replicator on h. It serves nothing until Serve.
func New(h host.Host, log *slog.Logger, opts ...Option) *Replicator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Replicator{
		h:        h,
		log:      log,
		clock:    clock.Real(),
		tracer:   nopTracer{},
		spaces:   make(map[auth.SpaceID]Space),
		sessions: make(map[sessionKey]*session),
		standing: make(map[peer.ID]*standing),
	}
	for _, o := range opts {
		o(r)
	}
	r.cfg.setDefaults()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Serve replicates sp: it handles the space's protocol and opens a session
// with every connected peer (and every peer that connects later) whose ID
// is greater than this host's.
func (r *Replicator) Serve(sp Space) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if !r.watching {
		sub, err := r.h.EventBus().Subscribe([]any{new(event.EvtPeerConnectednessChanged), new(event.EvtPeerProtocolsUpdated)})
		if err != nil {
			r.mu.Unlock()
			return fmt.Errorf("syncnet: subscribe: %w", err)
		}
		r.watching = true
		r.wg.Add(1) // under r.mu, so never after Close's Wait began
		go r.watch(sub)
	}
	r.spaces[sp.ID()] = sp
	// Under r.mu, so that Close removes it.
	r.h.SetStreamHandler(ProtocolFor(sp.ID()), func(st network.Stream) { r.handle(sp, st) })
	r.mu.Unlock()
	for _, p := range r.h.Network().Peers() {
		if r.opens(p) {
			r.startOutbound(p, sp)
		}
	}
	return nil
}

// reachable reports whether a peer of connectedness c can be synced with:
// connected, or through a relay only (Limited: sessions' streams allow
// limited connections).
func reachable(c network.Connectedness) bool {
	return c == network.Connected || c == network.Limited
}

// opens reports whether this side opens the session with p: the lower
// peer ID does.
func (r *Replicator) opens(p peer.ID) bool { return r.h.ID() < p }

// watch starts sessions with peers as they connect, and as connected peers
// start serving a space this node serves (identify tells of a peer's new
// protocols): an open made before the peer served the space was refused,
// and the peer, with the higher ID, never opens.
func (r *Replicator) watch(sub event.Subscription) {
	defer r.wg.Done()
	defer sub.Close()
	for {
		select {
		case <-r.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			var p peer.ID
			var added map[protocol.ID]bool // nil: every space
			switch ev := e.(type) {
			case event.EvtPeerConnectednessChanged:
				r.connectedness(ev.Peer)
				if !reachable(ev.Connectedness) {
					continue
				}
				p = ev.Peer
				if ev.Connectedness == network.Connected {
					// A direct connection appeared (hole punching, a
					// dial): sessions over a relay move onto it.
					r.moveDirect(p)
				}
			case event.EvtPeerProtocolsUpdated:
				if len(ev.Added) == 0 || !reachable(r.h.Network().Connectedness(ev.Peer)) {
					continue
				}
				p, added = ev.Peer, make(map[protocol.ID]bool)
				for _, id := range ev.Added {
					added[id] = true
				}
			default:
				continue
			}
			if !r.opens(p) {
				continue
			}
			r.mu.Lock()
			spaces := make([]Space, 0, len(r.spaces))
			for _, sp := range r.spaces {
				if added == nil || added[ProtocolFor(sp.ID())] {
					spaces = append(spaces, sp)
				}
			}
			r.mu.Unlock()
			for _, sp := range spaces {
				r.startOutbound(p, sp)
			}
		}
	}
}

// register adds a new session for (p, sp) unless one runs, the peer is
// banned or the Replicator is closed. It counts the session in r.wg.
func (r *Replicator) register(p peer.ID, sp Space, outbound bool) (*session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if r.isBanned(p) {
		return nil, ErrBanned
	}
	key := sessionKey{p, sp.ID()}
	if r.sessions[key] != nil {
		return nil, nil
	}
	s := r.newSession(key, sp, outbound)
	r.sessions[key] = s
	r.wg.Add(1)
	return s, nil
}

// forget removes s from the sessions, if it is still there.
func (r *Replicator) forget(s *session) {
	r.mu.Lock()
	if r.sessions[s.key] == s {
		delete(r.sessions, s.key)
	}
	r.mu.Unlock()
}

// remove forgets s and releases its context: the session's goroutine
// is done with it (its stream and ingester stopped).
func (r *Replicator) remove(s *session) {
	r.forget(s)
	s.cancel()
	s.stop.Do(func() { close(s.stopped) })
}

// moveDirect moves the sessions with p that run over a relayed connection
// onto a direct one, if this side opens (the peer's side takes the new
// stream as superseding its session, in handle): it opens a stream that
// libp2p puts on a connection that is not limited, and replaces the
// session with one over it.
func (r *Replicator) moveDirect(p peer.ID) {
	if !r.opens(p) {
		return
	}
	r.mu.Lock()
	var moving []*session
	for key, s := range r.sessions {
		if key.peer != p {
			continue
		}
		if relayed, running := s.relayed(); relayed && running {
			moving = append(moving, s)
		}
	}
	if r.closed {
		moving = nil
	}
	r.wg.Add(len(moving)) // under r.mu, so never after Close's Wait began
	r.mu.Unlock()
	for _, old := range moving {
		go r.move(old)
	}
}

// move replaces old, a session over a relayed connection, by one over a
// direct connection to the same peer. The new session starts once the
// session it replaces stopped (its running Ingest finished), so that it
// asks only for what is not stored yet: nothing is received twice. The
// new stream wins at both ends whatever ran meanwhile: here it replaces
// the space's session with the peer, whichever it is; there, handle takes
// a stream from the lower peer ID as superseding.
func (r *Replicator) move(old *session) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.OpenTimeout)
	// Not network.WithAllowLimitedConn: only a connection that is not
	// limited takes the stream.
	st, err := r.h.NewStream(ctx, old.key.peer, ProtocolFor(old.key.space))
	cancel()
	if err != nil {
		r.log.Debug("sync: no stream on the direct connection; the session stays relayed", "peer", old.key.peer, "err", err)
		return
	}
	if relayedConn(st.Conn()) {
		st.Reset()
		return
	}
	r.mu.Lock()
	if r.closed || r.isBanned(old.key.peer) {
		r.mu.Unlock()
		st.Reset()
		return
	}
	cur := r.sessions[old.key]
	if cur != nil {
		cur.cancel()
	}
	s := r.newSession(old.key, old.sp, true)
	r.sessions[old.key] = s
	r.moved++
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer r.remove(s)
		old.cancel()
		for _, o := range []*session{old, cur} {
			if o != nil {
				<-o.stopped
			}
		}
		if s.ctx.Err() != nil {
			st.Reset()
			return
		}
		s.run(st)
	}()
}

func (r *Replicator) startOutbound(p peer.ID, sp Space) {
	s, err := r.register(p, sp, true)
	if s == nil {
		if err != nil && !errors.Is(err, ErrClosed) {
			r.log.Debug("sync: not opening", "peer", p, "err", err)
		}
		return
	}
	go func() {
		defer r.wg.Done()
		defer r.remove(s)
		ctx, cancel := context.WithTimeout(s.ctx, r.cfg.OpenTimeout)
		st, err := r.open(ctx, p, sp)
		cancel()
		if err != nil {
			// Typically a peer that does not serve the space.
			r.log.Debug("sync: open failed", "peer", p, "err", err)
			return
		}
		s.run(st)
	}()
}

// Sync opens a session with p for sp now, unless one runs. It returns once
// the stream is open; the session goes on in the background.
func (r *Replicator) Sync(ctx context.Context, p peer.ID, sp Space) error {
	s, err := r.register(p, sp, true)
	if s == nil {
		return err
	}
	stop := context.AfterFunc(ctx, s.cancel)
	st, err := r.open(s.ctx, p, sp)
	stop()
	if err != nil {
		r.remove(s)
		r.wg.Done()
		if ctx.Err() != nil {
			return fmt.Errorf("syncnet: open: %w", ctx.Err())
		}
		return fmt.Errorf("syncnet: open: %w", err)
	}
	go func() {
		defer r.wg.Done()
		defer r.remove(s)
		s.run(st)
	}()
	return nil
}

func (r *Replicator) open(ctx context.Context, p peer.ID, sp Space) (network.Stream, error) {
	ctx = network.WithAllowLimitedConn(ctx, "mycel-sync")
	return r.h.NewStream(ctx, p, ProtocolFor(sp.ID()))
}

// handle runs an inbound session in libp2p's handler goroutine, counted in
// r.wg so that Close waits for it.
func (r *Replicator) handle(sp Space, st network.Stream) {
	p := st.Conn().RemotePeer()
	key := sessionKey{p, sp.ID()}
	r.mu.Lock()
	if r.closed || r.isBanned(p) {
		if !r.closed {
			r.tracer.Drop(DropBanned)
		}
		r.mu.Unlock()
		st.Reset()
		return
	}
	old := r.sessions[key]
	if old != nil {
		if old.outbound && r.opens(p) && !replacedBy(old, st) {
			// Both opened at once: the lower peer ID's stream wins.
			r.tracer.Drop(DropDuplicate)
			r.mu.Unlock()
			st.Reset()
			return
		}
		// Superseded: the peer opened anew — it moved the session to
		// another connection, or its side of the session ended (the peer
		// verified this side's opening, and opens only when it has no
		// session with this node).
		old.cancel()
	}
	s := r.newSession(key, sp, false)
	r.sessions[key] = s
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	defer r.remove(s)
	if old != nil {
		// Its running Ingest finishes first: the new session asks only
		// for what is not stored.
		select {
		case <-old.stopped:
		case <-s.ctx.Done(): // superseded in turn, or closing
			st.Reset()
			return
		}
	}
	s.run(st)
}

// simultaneousOpenWindow is how long after its opening verified the peer
// an outbound session still takes a stream the peer opens for one opened
// at the same time (handle): the peer's stream may arrive that late under
// load, after the peer already took this side's.
const simultaneousOpenWindow = 2 * time.Second

// replacedBy reports whether st, a stream the peer opened while this
// side's outbound session old runs, replaces old rather than being a
// duplicate of a simultaneous open: it moves the session off a relayed
// connection, or old verified the peer long enough ago that the peer,
// which opens only when it has no session with this node, has lost its
// side of old (a browser whose connection died and came back).
func replacedBy(old *session, st network.Stream) bool {
	if relayed, running := old.relayed(); running && relayed && !relayedConn(st.Conn()) {
		return true
	}
	at := old.established.Load()
	return at != 0 && time.Since(time.Unix(0, at)) >= simultaneousOpenWindow
}

// Appended tells the sessions of space that its feed k grew locally.
func (r *Replicator) Appended(space auth.SpaceID, k feed.PublicKey) {
	r.each(space, nil, func(s *session) { s.appended(k) })
}

// Refresh tells the sessions of space that its list of feeds changed (a
// writer was added): they announce the new feeds and fetch what peers
// showed of them.
func (r *Replicator) Refresh(space auth.SpaceID) {
	r.each(space, nil, (*session).refreshFeeds)
}

// Recheck tells the sessions of space to verify their peer's proof again
// (Space.Verify) and to end if it no longer passes: after a removal.
func (r *Replicator) Recheck(space auth.SpaceID) {
	r.each(space, nil, (*session).recheckProof)
}

// each calls fn, which must not block, with every session of space but
// skip.
func (r *Replicator) each(space auth.SpaceID, skip *session, fn func(*session)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, s := range r.sessions {
		if key.space == space && s != skip {
			fn(s)
		}
	}
}

// Progress returns the progress of every running session, per feed.
func (r *Replicator) Progress() []Progress {
	r.mu.Lock()
	sessions := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		sessions = append(sessions, s)
	}
	r.mu.Unlock()
	var out []Progress
	for _, s := range sessions {
		out = append(out, s.progressNow()...)
	}
	return out
}

// Close stops serving, ends every session and waits for all of the
// package's goroutines.
func (r *Replicator) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for id := range r.spaces {
		r.h.RemoveStreamHandler(ProtocolFor(id))
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}

// peerFault reports whether err is the peer's fault.
func peerFault(err error) bool {
	for _, e := range []error{replication.ErrMalformed, replication.ErrProtocol, replication.ErrUnauthorized, replication.ErrVersion, replication.ErrFrameTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func newNonce() [replication.NonceSize]byte {
	var n [replication.NonceSize]byte
	rand.Read(n[:]) // never fails (crypto/rand)
	return n
}
