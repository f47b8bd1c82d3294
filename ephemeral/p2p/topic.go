package p2p

import (
	"context"
	"errors"
	"fmt"
	"slices"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/ephemeral"
)

// topicState is the Service's hold on one gossipsub topic: joined (and its
// validator registered) while it has a Subscription or relays.
type topicState struct {
	pt     *pubsub.Topic
	sub    *Subscription
	relays []*relayHold
}

type relayHold struct{ cancel pubsub.RelayCancelFunc }

// Message is an envelope the Filter delivered to a Subscription.
type Message struct {
	Envelope *ephemeral.Envelope
	// From is the peer that handed it over: for gossip the neighbour that
	// forwarded it, not necessarily the sender (whose key is
	// Envelope.Sender; gossipsub messages carry no origin peer ID).
	From peer.ID
	// Direct: it came over a direct stream, not the topic.
	Direct bool
}

// joinLocked joins t's gossipsub topic if the Service has not yet: it
// registers the validator and the message ID function.
func (s *Service) joinLocked(t ephemeral.Topic) (*topicState, error) {
	if ts, ok := s.topics[t]; ok {
		return ts, nil
	}
	name := TopicName(t)
	if err := s.ps.RegisterTopicValidator(name, s.validator(t), pubsub.WithValidatorInline(true)); err != nil {
		return nil, fmt.Errorf("ephemeral/p2p: validator of %s: %w", name, err)
	}
	pt, err := s.ps.Join(name, pubsub.WithTopicMessageIdFn(MessageID))
	if err != nil {
		s.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("ephemeral/p2p: join %s: %w", name, err)
	}
	ts := &topicState{pt: pt}
	s.topics[t] = ts
	return ts, nil
}

// leaveLocked leaves t's topic once nothing holds it.
func (s *Service) leaveLocked(t ephemeral.Topic, ts *topicState) {
	if ts.sub != nil || len(ts.relays) > 0 {
		return
	}
	delete(s.topics, t)
	if err := ts.pt.Close(); err != nil {
		s.log.Debug("ephemeral: close topic", "topic", t, "err", err)
	}
	s.ps.UnregisterTopicValidator(TopicName(t))
}

// validator decides, for every message on t's topic, whether gossipsub
// delivers and forwards it. It needs no key, so a relay runs it too:
// malformed, forged or other topics' envelopes are rejected (the
// forwarder is at fault), stale or already delivered ones ignored (an
// honest router may pass them on); either way they go no further. It
// records nothing: only delivery to a Subscription does. The parsed
// envelope rides along as ValidatorData.
func (s *Service) validator(t ephemeral.Topic) pubsub.ValidatorEx {
	self := s.h.ID()
	return func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == self {
			// Our own publication: Publish holds the envelope it came from
			// (made by Seal or Parse) and has recorded it.
			return pubsub.ValidationAccept
		}
		e, err := ephemeral.Parse(m.Data)
		if err == nil && e.Topic != t {
			err = fmt.Errorf("%w: envelope of topic %s", ErrWrongTopic, e.Topic)
		}
		if err != nil {
			s.drop(DropRejected)
			s.log.Debug("ephemeral: rejected gossip", "peer", from, "err", err)
			return pubsub.ValidationReject
		}
		if err := s.filter.Check(e); err != nil {
			s.count(err)
			return pubsub.ValidationIgnore
		}
		m.ValidatorData = e
		return pubsub.ValidationAccept
	}
}

// Subscribe joins the topic of a space (its discovery key) and delivers
// its messages — from the topic and from direct streams — to the returned
// Subscription, each once (Filter.Deliver). One Subscription per topic.
func (s *Service) Subscribe(t ephemeral.Topic) (*Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if ts, ok := s.topics[t]; ok && ts.sub != nil {
		return nil, fmt.Errorf("%w: %s", ErrJoined, t)
	}
	ts, err := s.joinLocked(t)
	if err != nil {
		return nil, err
	}
	ps, err := ts.pt.Subscribe(pubsub.WithBufferSize(s.cfg.Buffer))
	if err != nil {
		s.leaveLocked(t, ts)
		return nil, fmt.Errorf("ephemeral/p2p: subscribe %s: %w", t, err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	sub := &Subscription{
		svc:    s,
		topic:  t,
		pt:     ts.pt,
		ps:     ps,
		inbox:  make(chan Message, s.cfg.Buffer),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	ts.sub = sub
	s.wg.Go(sub.run)
	return sub, nil
}

// Relay makes this node a router of t's topic without subscribing to it:
// it validates (without the key) and forwards, and delivers nothing. This
// is what a relay does for the spaces it serves. Call the returned
// function to stop.
func (s *Service) Relay(t ephemeral.Topic) (stop func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	ts, err := s.joinLocked(t)
	if err != nil {
		return nil, err
	}
	c, err := ts.pt.Relay()
	if err != nil {
		s.leaveLocked(t, ts)
		return nil, fmt.Errorf("ephemeral/p2p: relay %s: %w", t, err)
	}
	hold := &relayHold{cancel: c}
	ts.relays = append(ts.relays, hold)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		i := slices.Index(ts.relays, hold)
		if i < 0 || s.closed {
			return
		}
		hold.cancel()
		ts.relays = slices.Delete(ts.relays, i, i+1)
		s.leaveLocked(t, ts)
	}, nil
}

// subscription returns t's Subscription, if any.
func (s *Service) subscription(t ephemeral.Topic) *Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts, ok := s.topics[t]; ok {
		return ts.sub
	}
	return nil
}

// Subscription is a joined topic: Publish sends on it, Next returns what
// was delivered. Close leaves.
type Subscription struct {
	svc   *Service
	topic ephemeral.Topic
	pt    *pubsub.Topic
	ps    *pubsub.Subscription
	inbox chan Message

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// Topic returns the subscribed topic.
func (sub *Subscription) Topic() ephemeral.Topic { return sub.topic }

// Publish records e as this node's own (Filter.Remember: it will not be
// delivered back here) and publishes it on the topic. It does not wait for
// peers: with none in the topic yet, the message reaches nobody.
func (sub *Subscription) Publish(ctx context.Context, e *ephemeral.Envelope) error {
	if e.Topic != sub.topic {
		return fmt.Errorf("%w: %s on %s", ErrWrongTopic, e.Topic, sub.topic)
	}
	if sub.ctx.Err() != nil {
		return ErrClosed
	}
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	if err := sub.svc.filter.Remember(e); err != nil {
		return fmt.Errorf("ephemeral/p2p: publish: %w", err)
	}
	if err := sub.pt.Publish(ctx, b); err != nil {
		return fmt.Errorf("ephemeral/p2p: publish: %w", err)
	}
	sub.svc.stats.published.Add(1)
	return nil
}

// Next returns the next delivered message, waiting until there is one, ctx
// ends (ctx's error) or the Subscription is closed (ErrClosed).
func (sub *Subscription) Next(ctx context.Context) (Message, error) {
	select {
	case m := <-sub.inbox:
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-sub.ctx.Done():
		// Drain what was delivered before the close.
		select {
		case m := <-sub.inbox:
			return m, nil
		default:
			return Message{}, ErrClosed
		}
	}
}

// Peers returns the peers known to be in the topic.
func (sub *Subscription) Peers() []peer.ID { return sub.pt.ListPeers() }

// Close leaves the topic (unless this node also relays it) and waits for
// the Subscription's goroutine. Messages not yet read are lost.
func (sub *Subscription) Close() error {
	sub.cancel()
	sub.ps.Cancel()
	<-sub.done
	s := sub.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts, ok := s.topics[sub.topic]; ok && ts.sub == sub {
		ts.sub = nil
		if !s.closed {
			s.leaveLocked(sub.topic, ts)
		}
	}
	return nil
}

// maxBatch bounds the messages that run delivers with one
// Filter.DeliverMany, hence one write to the seen-set.
const maxBatch = 128

// run hands what gossipsub delivers through the Filter to the inbox. A
// reader goroutine takes messages from gossipsub into ready; run takes the
// next one, and with it whatever else is ready, up to maxBatch, so that a
// burst is recorded with one write (one fsync with badger) instead of one
// per message.
func (sub *Subscription) run() {
	defer close(sub.done)
	ready := make(chan Message, maxBatch)
	go sub.read(ready)
	// On the way out, wait for the reader: it ends with sub.ctx, or first
	// if gossipsub ends the subscription, and closes ready.
	defer func() {
		for range ready {
		}
	}()
	batch := make([]Message, 0, maxBatch)
	for sub.ctx.Err() == nil {
		var (
			m  Message
			ok bool
		)
		select {
		case m, ok = <-ready:
		case <-sub.ctx.Done():
		}
		if !ok {
			return
		}
		batch = append(batch[:0], m)
	drain:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-ready:
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		sub.deliverMany(sub.ctx, batch)
		clear(batch) // let the envelopes go
	}
}

// read passes gossipsub's messages into ready until the Subscription is
// closed or gossipsub ends it, then closes ready.
func (sub *Subscription) read(ready chan<- Message) {
	defer close(ready)
	self := sub.svc.h.ID()
	for {
		m, err := sub.ps.Next(sub.ctx)
		if err != nil {
			return
		}
		if m.ReceivedFrom == self {
			continue // our own publication, recorded by Publish
		}
		e, ok := m.ValidatorData.(*ephemeral.Envelope)
		if !ok {
			continue // cannot happen: the validator accepts only with it
		}
		select {
		case ready <- Message{Envelope: e, From: m.ReceivedFrom}:
		case <-sub.ctx.Done():
			return
		}
	}
}

// deliverMany passes ms through the Filter with one DeliverMany and puts
// the new ones into the inbox, in order, waiting for room until ctx ends;
// those it cannot hand over then are lost (recorded as delivered: at most
// once is the rule).
func (sub *Subscription) deliverMany(ctx context.Context, ms []Message) {
	s := sub.svc
	envs := make([]*ephemeral.Envelope, len(ms))
	for i, m := range ms {
		envs[i] = m.Envelope
	}
	errs := s.filter.DeliverMany(envs)
	s.tracer.SeenSize(s.filter.Len())
	gone := false // nobody reads any more: drop the rest
	for i, m := range ms {
		switch {
		case errs[i] != nil:
			s.refused(m, errs[i])
		case gone:
			s.drop(DropBusy)
		default:
			gone = sub.handOver(ctx, m) != nil
		}
	}
}

// errNoReader: the subscription did not take a delivered message in time.
var errNoReader = errors.New("ephemeral/p2p: subscription did not read in time")

// deliver passes m through the Filter and, if it is new, into the inbox,
// waiting for room until ctx ends. It returns nil once m was handed over,
// the Filter's refusal, or errNoReader (m is then lost: it was recorded
// as delivered, and at most once is the rule).
func (sub *Subscription) deliver(ctx context.Context, m Message) error {
	err := sub.svc.filter.Deliver(m.Envelope)
	sub.svc.tracer.SeenSize(sub.svc.filter.Len())
	if err != nil {
		sub.svc.refused(m, err)
		return err
	}
	return sub.handOver(ctx, m)
}

// refused counts, and logs, a message the Filter did not deliver.
func (s *Service) refused(m Message, err error) {
	s.count(err)
	if !errors.Is(err, ephemeral.ErrDuplicate) {
		s.log.Debug("ephemeral: not delivered", "peer", m.From, "err", err)
	}
}

// handOver puts m, which the Filter delivered, into the inbox, waiting for
// room until ctx ends or the Subscription is closed (errNoReader).
func (sub *Subscription) handOver(ctx context.Context, m Message) error {
	s := sub.svc
	select {
	case sub.inbox <- m:
		s.stats.delivered.Add(1)
		return nil
	case <-ctx.Done():
	case <-sub.ctx.Done():
	}
	s.drop(DropBusy)
	return errNoReader
}
