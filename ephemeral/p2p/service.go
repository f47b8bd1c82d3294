package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/internal/clock"
)

// Config holds the Service's limits. Zero fields take the documented
// defaults.
type Config struct {
	// StreamTimeout bounds a direct stream, each way: opening, writing the
	// envelope, reading the answer (Send); reading the envelope, handing
	// it to the subscription and answering (receipt). Default 10 s.
	StreamTimeout time.Duration
	// MaxInboundStreams bounds the direct streams handled at once; more are
	// reset unread. Default 64.
	MaxInboundStreams int
	// Buffer is how many delivered messages wait for Subscription.Next,
	// and how many gossipsub holds for the subscription before it (it drops
	// beyond). Default 256.
	Buffer int
	// PruneInterval is how often the Service calls Filter.Prune. Default 1
	// minute.
	PruneInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.StreamTimeout <= 0 {
		c.StreamTimeout = 10 * time.Second
	}
	if c.MaxInboundStreams <= 0 {
		c.MaxInboundStreams = 64
	}
	if c.Buffer <= 0 {
		c.Buffer = 256
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = time.Minute
	}
}

// Option sets an optional collaborator of New.
type Option func(*Service)

// WithLogger logs to l (discarded by default). Refusals of peers' input
// are logged at Debug only: peers control their rate.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock of the Service's timers (the seen-set's
// pruning; not stream deadlines, which the network stack measures).
// Default the system clock. The Filter has its own (ephemeral.Config.Now).
func WithClock(c clock.Clock) Option { return func(s *Service) { s.clock = clock.OrReal(c) } }

// WithTracer reports what the Service drops, and the seen-set's size, to
// t (for metrics). Default: nothing is reported.
func WithTracer(t Tracer) Option {
	return func(s *Service) {
		if t != nil {
			s.tracer = t
		}
	}
}

// Tracer is told what the Service refuses and how full its seen-set is.
// Its methods are called from the Service's goroutines and libp2p's: they
// must be safe for concurrent use, quick, and must not call back into the
// Service.
type Tracer interface {
	// Drop: an envelope or a direct stream was not delivered, for reason
	// (Drop* constants).
	Drop(reason string)
	// SeenSize: the Filter's seen-set holds n IDs (after deliveries and
	// after each prune).
	SeenSize(n int)
}

// Reasons given to Tracer.Drop.
const (
	// DropRejected: malformed, forged or of the wrong topic.
	DropRejected = "rejected"
	// DropStale: outside the time window.
	DropStale = "stale"
	// DropDuplicate: already delivered.
	DropDuplicate = "duplicate"
	// DropSeenFull: valid, but the seen-set (or the sender's budget in
	// it) is full.
	DropSeenFull = "seen_full"
	// DropBusy: valid, but the seen-set's store failed or the
	// application did not read in time.
	DropBusy = "busy"
	// DropStreams: a direct stream reset unread, Config.MaxInboundStreams
	// being handled.
	DropStreams = "streams_full"
)

type nopTracer struct{}

func (nopTracer) Drop(string)  {}
func (nopTracer) SeenSize(int) {}

// WithPubSub uses ps instead of a gossipsub router of the Service's own.
// It should be made with PubSubOptions (tests add a short
// WithSeenMessagesTTL; the benchmark compares gossipsub's signing). The
// caller owns ps and stops it after Close.
func WithPubSub(ps *pubsub.PubSub) Option { return func(s *Service) { s.ps = ps } }

// Stats counts what the Service did since New.
type Stats struct {
	Delivered uint64 // handed to a Subscription
	Published uint64 // published on a topic
	Sent      uint64 // sent directly and accepted by the peer
	Rejected  uint64 // malformed, forged or of the wrong topic (not forwarded)
	Stale     uint64 // outside the time window (not forwarded, not delivered)
	Duplicate uint64 // already delivered (not forwarded, not delivered)
	Dropped   uint64 // valid but not delivered: seen-set full, store error, no reader in time
}

type stats struct {
	delivered, published, sent, rejected, stale, duplicate, dropped atomic.Uint64
}

// Service delivers a node's ephemeral messages over libp2p: gossipsub
// topics per space and direct streams. See the package documentation.
type Service struct {
	h      host.Host
	filter *ephemeral.Filter
	cfg    Config
	log    *slog.Logger
	clock  clock.Clock
	tracer Tracer

	ps       *pubsub.PubSub
	psCancel context.CancelFunc // set when the Service made ps

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	inbound chan struct{} // one token per direct stream being handled

	mu     sync.Mutex
	closed bool
	topics map[ephemeral.Topic]*topicState

	stats stats
}

// New starts a Service on h whose Filter decides delivery. Unless
// WithPubSub is given, it starts a gossipsub router with PubSubOptions,
// which Close stops. It handles ProtocolID until Close.
func New(h host.Host, filter *ephemeral.Filter, cfg Config, opts ...Option) (*Service, error) {
	cfg.setDefaults()
	s := &Service{
		h:       h,
		filter:  filter,
		cfg:     cfg,
		inbound: make(chan struct{}, cfg.MaxInboundStreams),
		topics:  make(map[ephemeral.Topic]*topicState),
		clock:   clock.Real(),
		tracer:  nopTracer{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.ps == nil {
		ctx, cancel := context.WithCancel(context.Background())
		ps, err := pubsub.NewGossipSub(ctx, h, PubSubOptions()...)
		if err != nil {
			cancel()
			s.cancel()
			return nil, fmt.Errorf("ephemeral/p2p: gossipsub: %w", err)
		}
		s.ps, s.psCancel = ps, cancel
	}
	h.SetStreamHandler(ProtocolID, s.handleStream)
	s.wg.Go(s.pruneLoop)
	return s, nil
}

// Filter returns the Service's Filter.
func (s *Service) Filter() *ephemeral.Filter { return s.filter }

// PubSub returns the gossipsub router the Service uses.
func (s *Service) PubSub() *pubsub.PubSub { return s.ps }

// Stats returns the counters so far.
func (s *Service) Stats() Stats {
	return Stats{
		Delivered: s.stats.delivered.Load(),
		Published: s.stats.published.Load(),
		Sent:      s.stats.sent.Load(),
		Rejected:  s.stats.rejected.Load(),
		Stale:     s.stats.stale.Load(),
		Duplicate: s.stats.duplicate.Load(),
		Dropped:   s.stats.dropped.Load(),
	}
}

// Close stops handling direct streams, ends every Subscription and relay,
// and returns when every goroutine of the Service has ended. Messages not
// yet read from a Subscription are lost.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var subs []*Subscription
	for _, ts := range s.topics {
		if ts.sub != nil {
			subs = append(subs, ts.sub)
		}
		for _, r := range ts.relays {
			r.cancel()
		}
		ts.relays = nil
	}
	s.mu.Unlock()
	s.h.RemoveStreamHandler(ProtocolID)
	for _, sub := range subs {
		sub.Close()
	}
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	for t, ts := range s.topics {
		s.leaveLocked(t, ts)
	}
	s.mu.Unlock()
	if s.psCancel != nil {
		s.psCancel()
	}
	return nil
}

func (s *Service) pruneLoop() {
	t := s.clock.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C():
			if err := s.filter.Prune(); err != nil {
				s.log.Warn("ephemeral: prune seen-set", "err", err)
			}
			s.tracer.SeenSize(s.filter.Len())
		}
	}
}

// count records why the Filter refused an envelope.
func (s *Service) count(err error) {
	switch {
	case err == nil:
	case isRejected(err):
		s.drop(DropRejected)
	case errors.Is(err, ephemeral.ErrStale):
		s.drop(DropStale)
	case errors.Is(err, ephemeral.ErrDuplicate):
		s.drop(DropDuplicate)
	case errors.Is(err, ephemeral.ErrSeenFull):
		s.drop(DropSeenFull)
	default:
		s.drop(DropBusy)
	}
}

// drop counts an envelope or stream not delivered, in Stats and to the
// tracer.
func (s *Service) drop(reason string) {
	switch reason {
	case DropRejected:
		s.stats.rejected.Add(1)
	case DropStale:
		s.stats.stale.Add(1)
	case DropDuplicate:
		s.stats.duplicate.Add(1)
	case DropSeenFull, DropBusy:
		s.stats.dropped.Add(1)
	}
	s.tracer.Drop(reason)
}
