package relay

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/feed"
)

// Envelope key kinds the router knows (node/EPHEMERAL.md,
// node/signin/FORMAT.md). Any other is not forwarded.
const (
	kindMembers  = 1 // members' messages: an epoch's key
	kindInvite   = 2 // sign-in under an invite's request key
	kindPassword = 3 // sign-in under the password's request key
	kindKept     = 4 // members' app messages kept in mailboxes: an epoch's key
)

// RouterLimits bound the message router. Zero fields take their defaults
// (DefaultRouterLimits).
type RouterLimits struct {
	// MeshPeers is the relay's gossipsub mesh degree per topic (D, Dlo and
	// Dhi): devices that reach each other only through the relay get every
	// message from it directly, not by gossip a heartbeat later, up to
	// this many per space. Default 256.
	MeshPeers int
	// MaxSeen bounds the envelope IDs the router remembers, in memory
	// (ephemeral.Config.MaxSeen). Default ephemeral.DefaultMaxSeen.
	MaxSeen int
	// SigninPerPeer and SigninPerPeerBurst: sign-in envelopes (key kinds 2
	// and 3) forwarded per second from one neighbour in one space, and the
	// burst. Defaults 1 per second, burst 8.
	SigninPerPeer      float64
	SigninPerPeerBurst int
	// SigninPerSpace and SigninPerSpaceBurst: sign-in envelopes forwarded
	// per second in one space, from every neighbour together. Defaults 8
	// per second, burst 64.
	SigninPerSpace      float64
	SigninPerSpaceBurst int
	// MaxSigninPeers bounds the neighbours whose sign-in rate is tracked,
	// over all spaces; while it is reached, sign-in envelopes from a
	// neighbour not tracked are dropped. It bounds the neighbours whose
	// rejected envelopes are counted (MaxRejects) too. Default 4096.
	MaxSigninPeers int
	// MaxRejects: a neighbour that hands over this many rejected
	// envelopes (too large, malformed, forged, another topic's) within a
	// minute is banned for BanFor: gossipsub drops what it sends unread
	// (each check of a signature costs the relay) and the router forgets
	// it. Defaults 16, 10 minutes.
	MaxRejects int
	BanFor     time.Duration
}

// DefaultRouterLimits returns the documented defaults.
func DefaultRouterLimits() RouterLimits {
	return RouterLimits{MeshPeers: 256, MaxSeen: ephemeral.DefaultMaxSeen,
		SigninPerPeer: 1, SigninPerPeerBurst: 8, SigninPerSpace: 8, SigninPerSpaceBurst: 64,
		MaxSigninPeers: 4096, MaxRejects: 16, BanFor: 10 * time.Minute}
}

func (l *RouterLimits) setDefaults() {
	d := DefaultRouterLimits()
	if l.MeshPeers <= 0 {
		l.MeshPeers = d.MeshPeers
	}
	if l.MaxSeen <= 0 {
		l.MaxSeen = d.MaxSeen
	}
	if l.SigninPerPeer <= 0 {
		l.SigninPerPeer = d.SigninPerPeer
	}
	if l.SigninPerPeerBurst <= 0 {
		l.SigninPerPeerBurst = d.SigninPerPeerBurst
	}
	if l.SigninPerSpace <= 0 {
		l.SigninPerSpace = d.SigninPerSpace
	}
	if l.SigninPerSpaceBurst <= 0 {
		l.SigninPerSpaceBurst = d.SigninPerSpaceBurst
	}
	if l.MaxSigninPeers <= 0 {
		l.MaxSigninPeers = d.MaxSigninPeers
	}
	if l.MaxRejects <= 0 {
		l.MaxRejects = d.MaxRejects
	}
	if l.BanFor <= 0 {
		l.BanFor = d.BanFor
	}
}

// validateQueue is the gossipsub validation queue of the router.
const validateQueue = 512

// peerQueue is the router's gossipsub queue of RPCs to each neighbour,
// beyond what the neighbour's stream window holds (yamux: 256 KiB);
// gossipsub drops what does not fit. Gossipsub's default, 32, lost most of
// a burst of large envelopes to a device that stopped reading for a moment
// (TestRouterKeepsBurstForSlowNeighbour). The envelopes queued are shared
// between the neighbours they go to: a neighbour that stops reading holds
// at most 128 × 64 KiB = 8 MiB of distinct ones, for at most gossipsub's
// 30 s write deadline, after which its stream is reset.
const peerQueue = 128

// RouterSource is what the router asks of the blind mirror (Mirror
// implements it): the spaces to route, whether a feed key is a writer of
// one, and a way to hear that the spaces changed.
type RouterSource interface {
	// ServedSpaces returns the spaces the relay serves: those it holds a
	// confirmed mirror token of.
	ServedSpaces() []auth.SpaceID
	// IsWriter reports whether k is the feed key of a writer of space id
	// that the relay follows and has seen no removal of.
	IsWriter(id auth.SpaceID, k feed.PublicKey) bool
	// OnChange sets fn, called (quickly, without blocking) whenever the
	// spaces served may have changed.
	OnChange(fn func())
}

// Accepted is an envelope the router accepted and forwards: the mailbox's
// input (Router.OnEnvelope).
type Accepted struct {
	Space    auth.SpaceID
	Envelope *ephemeral.Envelope
	// Data is the envelope's encoding as it arrived; gossipsub's, to be
	// copied if kept.
	Data []byte
	// From is the neighbour that handed it over (not necessarily the
	// sender).
	From peer.ID
}

// Router is the relay's message router: it routes the gossipsub topic of
// every space the relay serves (ephemeral/p2p.TopicName of the space's
// discovery key) without subscribing, and forwards only envelopes that
// pass the checks it can make without a key. FORMAT.md, "Message
// routing", gives the rules and what the relay learns.
type Router struct {
	h      host.Host
	src    RouterSource
	lim    RouterLimits
	ps     *pubsub.PubSub
	filter *ephemeral.Filter
	now    func() time.Time
	stats  routerStats

	onEnvelope atomic.Pointer[func(Accepted)]

	ctx      context.Context // the router's goroutine's
	cancel   context.CancelFunc
	psCancel context.CancelFunc // gossipsub's
	done     chan struct{}
	kick     chan struct{}

	mu      sync.Mutex // guards topics and the rate state
	topics  map[auth.SpaceID]*routedTopic
	byTopic map[ephemeral.Topic]auth.SpaceID
	peers   map[rateKey]*bucket

	banMu   sync.Mutex // guards strikes and banned
	strikes map[peer.ID]*strike
	banned  map[peer.ID]time.Time // until

	// checkLocks serialise the checks of one neighbour's envelopes (a
	// neighbour's lock is checkLocks[hash of its ID]), so that none starts
	// before the previous one's strike is counted: gossipsub validates on
	// several goroutines, and a forger's envelopes would otherwise be
	// checked while the one that bans it is, one more per goroutine
	// (TestRouterBanHoldsUnderParallelChecks). Different neighbours are
	// checked in parallel but for a shared lock.
	checkSeed  maphash.Seed
	checkLocks [64]sync.Mutex
}

// strike counts a neighbour's rejected envelopes since a time.
type strike struct {
	n     int
	since time.Time
}

type routedTopic struct {
	topic ephemeral.Topic
	pt    *pubsub.Topic
	stop  pubsub.RelayCancelFunc
	rate  bucket // sign-in, every neighbour together
}

type rateKey struct {
	space auth.SpaceID
	peer  peer.ID
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b at rate per second up to burst, then takes one token if
// it has one.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether b would be full again at now (it can be forgotten).
func (b *bucket) full(now time.Time, rate float64, burst int) bool {
	return b.tokens+now.Sub(b.last).Seconds()*rate >= float64(burst)
}

// routerOption sets a collaborator of newRouter (tests: the clock, extra
// gossipsub options).
type routerOption func(*routerOpts)

type routerOpts struct {
	now  func() time.Time
	psOp []pubsub.Option
}

// NewRouter starts a router on h for the spaces src serves, with its own
// gossipsub router (p2p.PubSubOptions, a mesh of lim.MeshPeers) and an
// in-memory seen-set. Its aggregate metrics go to reg if it is not nil.
// Close stops it.
func NewRouter(h host.Host, src RouterSource, lim RouterLimits, reg prometheus.Registerer) (*Router, error) {
	return newRouter(h, src, lim, reg)
}

func newRouter(h host.Host, src RouterSource, lim RouterLimits, reg prometheus.Registerer, opts ...routerOption) (*Router, error) {
	lim.setDefaults()
	var o routerOpts
	for _, f := range opts {
		f(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	r := &Router{h: h, src: src, lim: lim, now: o.now, stats: newRouterStats(reg), checkSeed: maphash.MakeSeed(),
		done: make(chan struct{}), kick: make(chan struct{}, 1),
		topics: make(map[auth.SpaceID]*routedTopic), byTopic: make(map[ephemeral.Topic]auth.SpaceID),
		peers: make(map[rateKey]*bucket), strikes: make(map[peer.ID]*strike), banned: make(map[peer.ID]time.Time)}
	var err error
	r.filter, err = ephemeral.NewFilter(noSeenStore{}, ephemeral.Config{
		Now: o.now, MaxSeen: lim.MaxSeen, Trusted: r.trusted,
	})
	if err != nil {
		return nil, err
	}
	psCtx, psCancel := context.WithCancel(context.Background())
	params := pubsub.DefaultGossipSubParams()
	params.D, params.Dlo, params.Dhi = lim.MeshPeers, lim.MeshPeers, lim.MeshPeers
	params.Dscore = min(params.Dscore, params.Dhi)
	params.Dout = min(params.Dout, lim.MeshPeers/2-1)
	if params.Dout < 0 {
		params.Dout = 0
	}
	// No IDONTWANT: gossipsub sends it to every mesh peer for each message
	// of 1 KiB or more as it arrives, before the validator: one RPC per
	// neighbour for an envelope not yet checked (a forger's too), naming
	// it to them all, and for a genuine one as many RPCs again as the
	// envelope's copies, in a star where no neighbour has another copy to
	// spare. No message reaches this size.
	params.IDontWantMessageThreshold = math.MaxInt
	// The validation queue is the router's only queue: a burst beyond it
	// is dropped by gossipsub before any check (512 × 64 KiB at most).
	psOpts := append(p2p.PubSubOptions(), pubsub.WithGossipSubParams(params), pubsub.WithValidateQueueSize(validateQueue), pubsub.WithPeerOutboundQueueSize(peerQueue),
		pubsub.WithBlacklist(banList{r}))
	psOpts = append(psOpts, o.psOp...)
	if r.ps, err = pubsub.NewGossipSub(psCtx, h, psOpts...); err != nil {
		psCancel()
		return nil, fmt.Errorf("relay: router: gossipsub: %w", err)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.psCancel = psCancel
	src.OnChange(r.Refresh)
	go r.run()
	r.Refresh()
	return r, nil
}

// OnEnvelope sets fn, called with every envelope the router accepts
// (before gossipsub forwards it): the mailbox's feed. fn runs on
// gossipsub's validation goroutines, at most once per envelope (the
// seen-set), and must be quick, must not block and must not call back into
// the router. nil stops the calls.
func (r *Router) OnEnvelope(fn func(Accepted)) {
	if fn == nil {
		r.onEnvelope.Store(nil)
		return
	}
	r.onEnvelope.Store(&fn)
}

// Refresh makes the router join the topics of the spaces its source
// serves and leave the others, soon (on the router's goroutine).
func (r *Router) Refresh() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// PubSub returns the router's gossipsub router.
func (r *Router) PubSub() *pubsub.PubSub { return r.ps }

// Routed returns the spaces whose topic the router routes.
func (r *Router) Routed() []auth.SpaceID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]auth.SpaceID, 0, len(r.topics))
	for id := range r.topics {
		out = append(out, id)
	}
	return out
}

// Close leaves every topic, waits for the router's goroutine and stops
// gossipsub.
func (r *Router) Close() error {
	r.cancel()
	<-r.done
	r.psCancel()
	return nil
}

// run owns the joins and leaves of topics, and prunes the seen-set and
// the rate state every minute.
func (r *Router) run() {
	defer close(r.done)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			r.mu.Lock()
			for id := range r.topics {
				r.leaveLocked(id)
			}
			r.mu.Unlock()
			return
		case <-r.kick:
			r.reconcile()
		case <-t.C:
			r.filter.Prune()
			r.sweepRates(r.now())
			r.sweepBans(r.now())
		}
	}
}

// reconcile joins the topics of the served spaces and leaves the others.
func (r *Router) reconcile() {
	want := r.src.ServedSpaces()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.topics {
		if !slices.Contains(want, id) {
			r.leaveLocked(id)
		}
	}
	for _, id := range want {
		if _, ok := r.topics[id]; ok {
			continue
		}
		if err := r.joinLocked(id); err != nil {
			r.stats.joinErrors.Inc()
		}
	}
	r.stats.topics.Set(float64(len(r.topics)))
}

func (r *Router) joinLocked(id auth.SpaceID) error {
	t := ephemeral.Topic(auth.DiscoveryKey(id))
	name := p2p.TopicName(t)
	if err := r.ps.RegisterTopicValidator(name, r.validator(id, t), pubsub.WithValidatorInline(true)); err != nil {
		return err
	}
	pt, err := r.ps.Join(name, pubsub.WithTopicMessageIdFn(p2p.MessageID))
	if err != nil {
		r.ps.UnregisterTopicValidator(name)
		return err
	}
	stop, err := pt.Relay()
	if err != nil {
		pt.Close()
		r.ps.UnregisterTopicValidator(name)
		return err
	}
	r.topics[id] = &routedTopic{topic: t, pt: pt, stop: stop}
	r.byTopic[t] = id
	return nil
}

func (r *Router) leaveLocked(id auth.SpaceID) {
	rt := r.topics[id]
	delete(r.topics, id)
	delete(r.byTopic, rt.topic)
	rt.stop()
	rt.pt.Close()
	r.ps.UnregisterTopicValidator(p2p.TopicName(rt.topic))
	for k := range r.peers {
		if k.space == id {
			delete(r.peers, k)
		}
	}
}

// noSeenStore keeps nothing: the Filter's own map is the router's
// seen-set, which need not outlive the process (FORMAT.md, "Message
// routing"); a store in memory beside it would double its size.
type noSeenStore struct{}

func (noSeenStore) Load(time.Time, func(ephemeral.SeenKey, time.Time) error) error { return nil }
func (noSeenStore) Add(ephemeral.SeenKey, time.Time) error                         { return nil }
func (noSeenStore) AddMany([]ephemeral.Seen) error                                 { return nil }
func (noSeenStore) Prune(time.Time) error                                          { return nil }

// trusted is the seen-set's budget rule: members' senders are trusted,
// sign-in's (not writers yet) share the untrusted budget.
func (r *Router) trusted(t ephemeral.Topic, k ephemeral.PublicKey) bool {
	r.mu.Lock()
	id, ok := r.byTopic[t]
	r.mu.Unlock()
	return ok && r.src.IsWriter(id, feed.PublicKey(k))
}

// Results of the router's checks, as counted (RouterCounts, the
// mycel_relay_router_envelopes_total label).
const (
	RouteForwarded   = "forwarded"
	RouteTooLarge    = "too_large"
	RouteMalformed   = "malformed"
	RouteForged      = "forged"
	RouteWrongTopic  = "wrong_topic"
	RouteStale       = "stale"
	RouteDuplicate   = "duplicate"
	RouteSeenFull    = "seen_full"
	RouteNotWriter   = "not_writer"
	RouteSigninRate  = "signin_rate"
	RouteUnknownKind = "unknown_kind"
	// RouteBanned: from a neighbour banned (MaxRejects) while it waited in
	// gossipsub's queue; later ones are dropped by gossipsub uncounted.
	RouteBanned = "banned"
)

var routeResults = []string{RouteForwarded, RouteTooLarge, RouteMalformed, RouteForged, RouteWrongTopic,
	RouteStale, RouteDuplicate, RouteSeenFull, RouteNotWriter, RouteSigninRate, RouteUnknownKind, RouteBanned}

// validator decides, for every message on a routed topic, whether
// gossipsub forwards it. Malformed, forged, oversized and other topics'
// envelopes are rejected (the neighbour is at fault); the others it does
// not forward are ignored (an honest neighbour may pass them on). An
// envelope forwarded is recorded in the seen-set first, so that no copy
// of it — re-encoded, or sent again after gossipsub's own seen cache
// forgot it — is forwarded again within the window.
func (r *Router) validator(id auth.SpaceID, t ephemeral.Topic) pubsub.ValidatorEx {
	self := r.h.ID()
	return func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == self {
			return pubsub.ValidationAccept // the router publishes nothing; cannot happen
		}
		mu := r.checkLock(from)
		mu.Lock()
		defer mu.Unlock()
		if r.isBanned(from) {
			// Queued before the ban: not even parsed.
			r.stats.count(RouteBanned)
			return pubsub.ValidationReject
		}
		res, e := r.check(id, t, from, m.Data)
		r.stats.count(res)
		switch res {
		case RouteForwarded:
		case RouteTooLarge, RouteMalformed, RouteForged, RouteWrongTopic:
			r.strike(from)
			return pubsub.ValidationReject
		default:
			return pubsub.ValidationIgnore
		}
		if fn := r.onEnvelope.Load(); fn != nil {
			(*fn)(Accepted{Space: id, Envelope: e, Data: m.Data, From: from})
		}
		return pubsub.ValidationAccept
	}
}

// check applies the router's rules to b, handed over by from on space
// id's topic t, and returns the result (a Route* constant) and the
// envelope when it is forwarded.
func (r *Router) check(id auth.SpaceID, t ephemeral.Topic, from peer.ID, b []byte) (string, *ephemeral.Envelope) {
	if len(b) > ephemeral.MaxEnvelopeSize {
		return RouteTooLarge, nil
	}
	e, err := ephemeral.Parse(b)
	switch {
	case errors.Is(err, ephemeral.ErrSignature):
		return RouteForged, nil
	case errors.Is(err, ephemeral.ErrTooLarge):
		return RouteTooLarge, nil
	case err != nil:
		return RouteMalformed, nil
	case e.Topic != t:
		return RouteWrongTopic, nil
	}
	if res := filterResult(r.filter.Check(e)); res != "" {
		return res, nil
	}
	switch e.KeyKind {
	case kindMembers, kindKept:
		if !r.src.IsWriter(id, feed.PublicKey(e.Sender)) {
			return RouteNotWriter, nil
		}
	case kindInvite, kindPassword:
		if !r.signinAllowed(id, from) {
			return RouteSigninRate, nil
		}
	default:
		return RouteUnknownKind, nil
	}
	if res := filterResult(r.filter.Deliver(e)); res != "" {
		return res, nil
	}
	return RouteForwarded, e
}

func filterResult(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ephemeral.ErrStale):
		return RouteStale
	case errors.Is(err, ephemeral.ErrDuplicate):
		return RouteDuplicate
	default: // ErrSeenFull; the in-memory store does not fail
		return RouteSeenFull
	}
}

// signinAllowed takes a token of the space's sign-in bucket and of the
// neighbour's in the space.
func (r *Router) signinAllowed(id auth.SpaceID, from peer.ID) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.topics[id]
	if rt == nil {
		return false
	}
	k := rateKey{id, from}
	b := r.peers[k]
	if b == nil {
		if len(r.peers) >= r.lim.MaxSigninPeers {
			r.sweepRatesLocked(now)
			if len(r.peers) >= r.lim.MaxSigninPeers {
				return false
			}
		}
		b = &bucket{}
		r.peers[k] = b
	}
	// The neighbour's first: a neighbour over its rate spends nothing of
	// the space's.
	if !b.take(now, r.lim.SigninPerPeer, r.lim.SigninPerPeerBurst) {
		return false
	}
	return rt.rate.take(now, r.lim.SigninPerSpace, r.lim.SigninPerSpaceBurst)
}

func (r *Router) sweepRates(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepRatesLocked(now)
}

// sweepRatesLocked forgets the neighbours whose bucket is full again.
func (r *Router) sweepRatesLocked(now time.Time) {
	for k, b := range r.peers {
		if b.full(now, r.lim.SigninPerPeer, r.lim.SigninPerPeerBurst) {
			delete(r.peers, k)
		}
	}
}

// strike counts a rejected envelope of neighbour p, and bans p at
// MaxRejects within a minute.
func (r *Router) strike(p peer.ID) {
	now := r.now()
	r.banMu.Lock()
	s := r.strikes[p]
	if s == nil || now.Sub(s.since) >= time.Minute {
		if s == nil && len(r.strikes) >= r.lim.MaxSigninPeers {
			r.sweepBansLocked(now)
			if len(r.strikes) >= r.lim.MaxSigninPeers {
				r.banMu.Unlock()
				return
			}
		}
		s = &strike{since: now}
		r.strikes[p] = s
	}
	s.n++
	ban := s.n >= r.lim.MaxRejects
	if ban {
		delete(r.strikes, p)
		r.banned[p] = now.Add(r.lim.BanFor)
	}
	r.banMu.Unlock()
	if ban {
		r.stats.bans.Inc()
		r.stats.banN.Add(1)
		r.ps.BlacklistPeer(p) // drops its streams; banList keeps it out
	}
}

// checkLock returns the lock of neighbour p's checks (checkLocks).
func (r *Router) checkLock(p peer.ID) *sync.Mutex {
	return &r.checkLocks[maphash.String(r.checkSeed, string(p))%uint64(len(r.checkLocks))]
}

func (r *Router) isBanned(p peer.ID) bool {
	r.banMu.Lock()
	defer r.banMu.Unlock()
	until, ok := r.banned[p]
	return ok && r.now().Before(until)
}

func (r *Router) sweepBans(now time.Time) {
	r.banMu.Lock()
	defer r.banMu.Unlock()
	r.sweepBansLocked(now)
}

// sweepBansLocked forgets the bans that ended and the strikes of past
// minutes.
func (r *Router) sweepBansLocked(now time.Time) {
	for p, until := range r.banned {
		if !now.Before(until) {
			delete(r.banned, p)
		}
	}
	for p, s := range r.strikes {
		if now.Sub(s.since) >= time.Minute {
			delete(r.strikes, p)
		}
	}
}

// banList is gossipsub's blacklist: the router's bans. Gossipsub asks it
// of every message and every new stream.
type banList struct{ r *Router }

func (b banList) Add(peer.ID) bool        { return true } // the router records its bans itself
func (b banList) Contains(p peer.ID) bool { return b.r.isBanned(p) }

// routerStats are the router's aggregate metrics: none names a peer, a
// sender or a space.
type routerStats struct {
	envelopes  *prometheus.CounterVec
	topics     prometheus.Gauge
	joinErrors prometheus.Counter
	bans       prometheus.Counter
	banN       *atomic.Uint64
	n          map[string]*atomic.Uint64
}

func newRouterStats(reg prometheus.Registerer) routerStats {
	s := routerStats{
		envelopes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_relay_router_envelopes_total",
			Help: "Envelopes on the routed topics, by result (forwarded, or why not: too_large, malformed, forged, wrong_topic, stale, duplicate, seen_full, not_writer, signin_rate, unknown_kind, banned)."},
			[]string{"result"}),
		topics:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "mycel_relay_router_topics", Help: "Space topics the relay routes."}),
		joinErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_relay_router_join_errors_total", Help: "Topics the router failed to join."}),
		bans:       prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_relay_router_bans_total", Help: "Neighbours banned for handing over too many rejected envelopes."}),
		banN:       new(atomic.Uint64),
		n:          make(map[string]*atomic.Uint64, len(routeResults)),
	}
	for _, res := range routeResults {
		s.n[res] = new(atomic.Uint64)
		s.envelopes.WithLabelValues(res)
	}
	if reg != nil {
		reg.MustRegister(s.envelopes, s.topics, s.joinErrors, s.bans)
	}
	return s
}

func (s *routerStats) count(res string) {
	s.n[res].Add(1)
	s.envelopes.WithLabelValues(res).Inc()
}

// RouterCounts returns, for each result (Route* constants), the envelopes
// the router counted with it since it started (as its metrics).
func (r *Router) RouterCounts() map[string]uint64 {
	out := make(map[string]uint64, len(r.stats.n))
	for k, v := range r.stats.n {
		out[k] = v.Load()
	}
	return out
}

// Bans returns how many neighbours the router banned since it started
// (RouterLimits.MaxRejects).
func (r *Router) Bans() uint64 { return r.stats.banN.Load() }
