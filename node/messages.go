package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/badgerseen"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/messages"
	"github.com/mycelsync/mycel/node/signin"
)

// Members' ephemeral messages (EPHEMERAL.md) are sealed with the
// ephemeral key of the epoch this device writes with and signed with its
// feed key; their bodies are node/messages'.

// startEphemeralService makes the host's gossipsub router and the
// ephemeral Service, whose Filter's seen-set is in the node's store.
func (n *Node) startEphemeralService() error {
	seen, err := badgerseen.New(n.store.DB(), badgerseen.DefaultPrefix)
	if err != nil {
		return fmt.Errorf("node: ephemeral seen-set: %w", err)
	}
	fcfg := n.limits.Ephemeral.Seen
	fcfg.Now, fcfg.Trusted = n.clock.Now, n.trustedSender
	fcfg.Kept = isKeptEnvelope
	filter, err := ephemeral.NewFilter(seen, fcfg)
	if err != nil {
		return fmt.Errorf("node: ephemeral filter: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := n.limits.Ephemeral.PubSubQueue
	opts := append(p2p.PubSubOptions(), pubsub.WithPeerOutboundQueueSize(q), pubsub.WithValidateQueueSize(q))
	ps, err := pubsub.NewGossipSub(ctx, n.host, opts...)
	if err != nil {
		cancel()
		return fmt.Errorf("node: gossipsub: %w", err)
	}
	svc, err := p2p.New(n.host, filter, n.limits.Ephemeral.Service, p2p.WithLogger(n.log), p2p.WithPubSub(ps),
		p2p.WithClock(n.clock), p2p.WithTracer(n.ephMetrics))
	if err != nil {
		cancel()
		return fmt.Errorf("node: ephemeral: %w", err)
	}
	n.ps, n.psCancel, n.eph = ps, cancel, svc
	return nil
}

// trustedSender reports whether sender is a device of the served space
// whose topic t is: the Filter bounds the seen IDs of everyone else
// together, so that envelopes signed by throwaway keys cannot fill the
// seen-set and silence members.
func (n *Node) trustedSender(t ephemeral.Topic, sender ephemeral.PublicKey) bool {
	for _, m := range n.openSpaces() {
		if c := m.channel(); c != nil && c.topic == t {
			return m.sp.IsDevice(feed.PublicKey(sender))
		}
	}
	return false
}

// isKeptEnvelope reports whether e is a members' kept app message (key kind 4),
// which the relays' mailboxes may hand over until ephemeral.KeptFor after
// its time: the Filter holds its ID that long.
func isKeptEnvelope(e *ephemeral.Envelope) bool { return e.KeyKind == messages.KeyKindKept }

// closeEphemeral ends the Service (its subscriptions and streams), then
// the gossipsub router. The node's goroutines must have ended.
func (n *Node) closeEphemeral() error {
	var err error
	if n.eph != nil {
		err = n.eph.Close()
	}
	if n.psCancel != nil {
		n.psCancel()
	}
	return err
}

// channel is a served space's ephemeral side: its subscription, who was
// heard from, and the API's listeners.
type channel struct {
	m        *openSpace
	topic    ephemeral.Topic
	sub      *p2p.Subscription
	presence *ephemeral.Presence

	mu        sync.Mutex
	names     map[ephemeral.PublicKey]string // announced device names
	listeners map[*listener]struct{}
	told      map[ephemeral.PublicKey]time.Time // removed devices shown their removal, when (spaces_removed.go)
	saved     map[ephemeral.PublicKey]time.Time // last-seen times written to the store (lastseen.go)
	// held are messages a relay's mailbox handed over while no listener
	// of their topic was there (the daemon fetches on connecting to a
	// relay, before the app is back): the next listener of their topic
	// gets them. At most Limits.Ephemeral.ListenBuffer, each for
	// heldFor; the oldest goes first.
	held []heldMessage
	// waiting are kept messages from a mailbox whose sender or epoch key
	// this device does not know yet (takeStored, relays_mailbox.go).
	waiting []*ephemeral.Envelope
}

type heldMessage struct {
	msg api.Message
	at  time.Time
}

// heldFor is how long a message from a mailbox waits for a listener.
const heldFor = time.Hour

type listener struct {
	topic string // "" for every topic
	ch    chan api.Message
	err   error // why it ended, once ch is closed
}

// startEphemeral subscribes to the space's topic and starts the reader and
// the announcer. Called once, when the space is opened (before approval
// the topic carries this device's sign-in); m.mu is held.
func (m *openSpace) startEphemeral() {
	n := m.n
	if n.eph == nil || m.life.isClosed() {
		return
	}
	topic := ephemeral.Topic(auth.DiscoveryKey(m.sp.ID()))
	sub, err := n.eph.Subscribe(topic)
	if err != nil {
		n.log.Error("ephemeral: subscribe", "space", m.sp.ID(), "err", err)
		return
	}
	c := &channel{m: m, topic: topic, sub: sub, presence: ephemeral.NewPresence(n.limits.Ephemeral.OnlineFor, n.limits.Ephemeral.MaxPresences),
		names: map[ephemeral.PublicKey]string{}, listeners: map[*listener]struct{}{},
		told: map[ephemeral.PublicKey]time.Time{}, saved: map[ephemeral.PublicKey]time.Time{}}
	if err := c.loadLastSeen(); err != nil {
		n.log.Warn("ephemeral: the devices' last-seen times", "space", m.sp.ID(), "err", err)
	}
	m.eph = c
	// Refused only when the space or the node closes meanwhile; the
	// subscription is closed then with the space (dropSpace) or the
	// Service (closeEphemeral).
	m.life.start(c.read)
	m.life.start(c.announce)
}

// channel returns the space's ephemeral channel, nil until it is served.
func (m *openSpace) channel() *channel {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.eph
}

// selfName is this device's name in the space: its add-writer op's.
func (m *openSpace) selfName() string {
	own := m.sp.Feed()
	for _, d := range m.sp.Devices() {
		if d.Feed == own {
			return d.Name
		}
	}
	return m.name
}

// publish seals b and publishes it on the space's topic.
func (c *channel) publish(ctx context.Context, b messages.Body) error {
	_, err := c.publishKind(ctx, b, messages.KeyKindEpoch)
	return err
}

// publishKind seals b under the epoch's key with key kind kind
// (messages.KeyKindEpoch or KeyKindKept), publishes it on the space's
// topic and returns the envelope.
func (c *channel) publishKind(ctx context.Context, b messages.Body, kind uint32) (*ephemeral.Envelope, error) {
	plain, err := b.Encode()
	if err != nil {
		return nil, err
	}
	kid, key, err := c.m.sp.EphemeralKey()
	if err != nil {
		return nil, err
	}
	e, err := ephemeral.Seal(key, c.m.sp.WriterKey(), ephemeral.Header{Topic: c.topic, KeyKind: kind, KeyID: kid[:]}, plain, c.m.n.eph.Filter().Now(), nil)
	if err != nil {
		return nil, err
	}
	return e, c.sub.Publish(ctx, e)
}

// announce publishes presence at once and every
// Limits.Ephemeral.AnnounceInterval.
func (c *channel) announce(ctx context.Context) {
	t := c.m.n.clock.NewTicker(c.m.n.limits.Ephemeral.AnnounceInterval)
	defer t.Stop()
	for {
		if !c.m.sp.Approved() || c.m.sp.Removed() {
			// Not a member (yet, or any more): nothing to announce.
		} else if err := c.publish(ctx, c.presenceBody()); err != nil && ctx.Err() == nil {
			c.m.n.log.Debug("ephemeral: announce", "space", c.m.sp.ID(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		// The tracker holds the space's devices only (receive checks the
		// sender), with no age limit: `mycel devices` says when each was
		// last seen, however long ago. A removed device is forgotten.
		c.presence.Retain(func(k ephemeral.PublicKey) bool { return c.m.sp.IsDevice(feed.PublicKey(k)) })
	}
}

// read takes what the Service delivered and keeps what a writer of the
// space sealed under a key of the space: presence feeds the tracker, app
// messages go to the listeners. It ends every listener when it returns.
func (c *channel) read(ctx context.Context) {
	defer c.endListeners(api.ErrClosed)
	for {
		msg, err := c.sub.Next(ctx)
		if err != nil {
			return
		}
		if err := c.receive(msg.Envelope, msg.From, c.m.n.clock.Now()); err != nil {
			c.m.n.log.Debug("ephemeral: dropped", "space", c.m.sp.ID(), "sender", msg.Envelope.Sender, "peer", msg.From, "err", err)
		}
	}
}

var errNotMember = errors.New("not a writer of the space")

// receive handles an envelope the Filter let through; from is the peer
// that handed it over (for gossip, the neighbour that forwarded it).
func (c *channel) receive(e *ephemeral.Envelope, from peer.ID, now time.Time) error {
	return c.receiveFrom(e, from, now, false)
}

// receiveFrom is receive; stored says that a relay's mailbox handed e
// over (Filter.DeliverStored): it may be up to ephemeral.KeptFor old, so
// it says nothing of its sender being online now, and the app sees it
// with Stored set.
func (c *channel) receiveFrom(e *ephemeral.Envelope, from peer.ID, now time.Time, stored bool) error {
	if e.KeyKind == signin.KeyKindInvite || e.KeyKind == signin.KeyKindPassword {
		return c.receiveSignin(e, from)
	}
	kept := e.KeyKind == messages.KeyKindKept
	if (e.KeyKind != messages.KeyKindEpoch && !kept) || len(e.KeyID) != auth.KeyIDSize {
		return fmt.Errorf("key kind %d, key ID of %d bytes", e.KeyKind, len(e.KeyID))
	}
	if !c.m.sp.IsDevice(feed.PublicKey(e.Sender)) {
		if stored {
			// Not necessarily online: nobody to tell.
		} else if c.m.sp.WasRemoved(feed.PublicKey(e.Sender)) {
			c.tellRemoved(e, now)
		} else {
			c.tellApproverRemoved(e, now)
		}
		return errNotMember
	}
	key, ok := c.m.sp.EphemeralKeyFor([auth.KeyIDSize]byte(e.KeyID))
	if !ok {
		return fmt.Errorf("no key %x", e.KeyID)
	}
	plain, err := e.Open(key)
	if err != nil {
		return err
	}
	b, err := messages.Decode(plain)
	if err != nil {
		return err
	}
	if kept && b.Kind != messages.KindApp {
		// Only app messages are kept; a kept presence of days ago would
		// be false.
		return fmt.Errorf("a body of kind %q under the kept key kind", b.Kind)
	}
	if !stored {
		c.presence.Seen(e.Sender, now)
		if err := c.saveLastSeen(e.Sender, now); err != nil {
			c.m.n.log.Debug("ephemeral: last seen", "space", c.m.sp.ID(), "err", err)
		}
	}
	switch b.Kind {
	case messages.KindPresence:
		if err := messages.CheckPresence(b); err != nil {
			return err
		}
		c.mu.Lock()
		c.names[e.Sender] = b.Name
		c.mu.Unlock()
	case messages.KindRemoved:
		return c.m.learnRemoval(b.Evidence)
	case messages.KindApp:
		if err := checkMessage(b.Topic, b.Data); err != nil {
			return err
		}
		c.deliver(api.Message{Sender: hex.EncodeToString(e.Sender[:]), Name: c.name(e.Sender),
			Time: e.Timestamp().UTC(), Topic: b.Topic, Data: b.Data, Kept: kept, Stored: stored})
	default:
		// A kind of a later version: the sender is online, nothing else.
	}
	return nil
}

// name is the sender's device name: its add-writer op's, else the one it
// announced.
func (c *channel) name(k ephemeral.PublicKey) string {
	for _, d := range c.m.sp.Devices() {
		if d.Feed == feed.PublicKey(k) && d.Name != "" {
			return d.Name
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.names[k]
}

// deliver hands an app message to every listener of its topic; one whose
// buffer is full is ended with api.ErrBehind. One from a mailbox that no
// listener took is held for the next.
func (c *channel) deliver(msg api.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	took := false
	for l := range c.listeners {
		if l.topic != "" && l.topic != msg.Topic {
			continue
		}
		select {
		case l.ch <- msg:
			took = true
		default:
			c.endLocked(l, fmt.Errorf("%w: more than %d messages unread", api.ErrBehind, cap(l.ch)))
		}
	}
	if !took && msg.Stored && c.listeners != nil {
		if lim := c.m.n.limits.Ephemeral.ListenBuffer; len(c.held) >= lim {
			c.held = c.held[len(c.held)-lim+1:]
		}
		c.held = append(c.held, heldMessage{msg: msg, at: c.m.n.clock.Now()})
	}
}

// handHeldLocked hands new listener l the held messages of its topic
// (not older than heldFor), in order, as many as its buffer takes.
func (c *channel) handHeldLocked(l *listener) {
	now := c.m.n.clock.Now()
	kept := c.held[:0]
	for _, h := range c.held {
		if now.Sub(h.at) > heldFor {
			continue
		}
		if (l.topic == "" || l.topic == h.msg.Topic) && len(l.ch) < cap(l.ch) {
			l.ch <- h.msg
			continue
		}
		kept = append(kept, h)
	}
	clear(c.held[len(kept):])
	c.held = kept
}

func (c *channel) endLocked(l *listener, err error) {
	if _, ok := c.listeners[l]; !ok {
		return
	}
	delete(c.listeners, l)
	l.err = err
	close(l.ch)
}

func (c *channel) endListeners(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for l := range c.listeners {
		c.endLocked(l, err)
	}
	c.listeners = nil // no more
}
