package node

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/relay"
)

// The relays' mailboxes (relay/FORMAT.md, "Mailbox") keep envelopes of a
// space for its devices that are offline. The node uses them for
// sign-in, the one conversation that must go on while no member is
// online, and for the app messages sent with keep (EPHEMERAL.md, "Kept
// messages"):
//
//   - it deposits every sign-in envelope it publishes — a waiting device's
//     requests, a member's answers — and every kept app message (key kind
//     4) with each relay it holds a reservation on (queued, at most
//     mailboxQueue per relay, handed over by the relay's keeper within
//     Limits.Net.MinBackoff);
//   - it fetches the mailbox of each space it serves as a writer when it
//     (re)connects to a relay and every mailboxFetchEvery after, and the
//     mailbox of a space it is signing in to every mailboxWaitEvery while
//     its request waits (a request lives at most as long as its invite or
//     signin.Limits.PasswordLifetime);
//   - what it fetches is sorted by time and goes through the ephemeral
//     Filter's mailbox path (DeliverStored) and then the channel's
//     receive: the Filter drops what gossipsub, another relay or an
//     earlier fetch delivered already, kept app messages older than
//     ephemeral.KeptFor + Window, and other envelopes older than
//     ephemeral.Window (a request a device stopped repeating).
//
// Presence and app messages sent without keep are not deposited:
// presence is stale once Window passed, and such messages are for the
// devices online at the time (EPHEMERAL.md).

// Bounds of the node's use of the relays' mailboxes.
const (
	mailboxQueue      = 64               // envelopes waiting to be deposited, per relay
	mailboxFetchEvery = 30 * time.Second // served spaces, after the fetch on connecting
	mailboxWaitEvery  = 2 * time.Second  // a space this device is signing in to
	mailboxRounds     = 8                // fetches in a row while the relay says there is more
	maxWaitingStored  = 256              // kept messages from a mailbox waiting for their sender or key, per space
)

// mailboxState is what the node keeps per relay: envelopes to deposit,
// and when each space's mailbox was last fetched (reset when the relay
// goes away, so that reconnecting fetches at once).
type mailboxState struct {
	queue   []queuedEnvelope
	fetched map[auth.SpaceID]time.Time
}

type queuedEnvelope struct {
	space auth.SpaceID
	env   []byte
}

// depositSignin queues a sign-in envelope this node published on space
// id's topic for every relay it holds a reservation on.
func (n *Node) depositSignin(id auth.SpaceID, e *ephemeral.Envelope) { n.depositMailbox(id, e) }

// depositMailbox queues an envelope this node published on space id's
// topic — sign-in's, or a kept app message — for every relay it holds a
// reservation on. The oldest is dropped from a full queue.
func (n *Node) depositMailbox(id auth.SpaceID, e *ephemeral.Envelope) {
	b, err := e.Marshal()
	if err != nil {
		return
	}
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	now := time.Now()
	for _, r := range n.relays.relays {
		if !r.until.After(now) || !r.serves(id) {
			continue
		}
		q := &r.mailbox.queue
		if len(*q) >= mailboxQueue {
			*q = (*q)[1:]
		}
		*q = append(*q, queuedEnvelope{space: id, env: b})
	}
}

// mailboxRelays counts the relays this node holds a reservation on and is
// connected to: a waiting device's request reaches their mailboxes even
// while no peer is on the space's topic.
func (n *Node) mailboxRelays() int {
	n.relays.mu.Lock()
	now := time.Now()
	var ids []peer.ID
	for _, r := range n.relays.relays {
		if r.until.After(now) {
			ids = append(ids, r.info.ID)
		}
	}
	n.relays.mu.Unlock()
	k := 0
	for _, id := range ids {
		if n.host.Network().Connectedness(id) == network.Connected {
			k++
		}
	}
	return k
}

// syncMailbox deposits what is queued for relay i and fetches the
// mailboxes that are due. keepRelay calls it while it holds a
// reservation on the relay.
func (n *Node) syncMailbox(ctx context.Context, i int, id peer.ID) {
	n.relays.mu.Lock()
	st := &n.relays.relays[i].mailbox
	queue := st.queue
	st.queue = nil
	if st.fetched == nil {
		st.fetched = map[auth.SpaceID]time.Time{}
	}
	n.relays.mu.Unlock()
	for len(queue) > 0 {
		sid := queue[0].space
		var envs [][]byte
		rest := queue[:0:0]
		for _, q := range queue {
			if q.space == sid && len(envs) < relay.MaxDepositCount {
				envs = append(envs, q.env)
			} else {
				rest = append(rest, q)
			}
		}
		queue = rest
		if _, err := relay.DepositMailbox(ctx, n.host, id, sid, envs); err != nil && ctx.Err() == nil {
			n.log.Debug("relay: mailbox deposit", "relay", id, "space", sid, "err", err)
		}
	}
	now := time.Now()
	for _, m := range n.openSpaces() {
		m.mu.Lock()
		waiting := m.join != nil && m.join.Waiting()
		m.mu.Unlock()
		member := m.isServed() && m.sp.IsWriter()
		every := mailboxFetchEvery
		switch {
		case waiting:
			every = mailboxWaitEvery
		case !member:
			continue
		}
		sid := m.sp.ID()
		n.relays.mu.Lock()
		last := st.fetched[sid]
		serves := n.relays.relays[i].serves(sid) // a relay another space lists learns nothing of this one
		n.relays.mu.Unlock()
		if !serves || (!last.IsZero() && now.Sub(last) < every) {
			continue
		}
		n.relays.mu.Lock()
		st.fetched[sid] = now
		n.relays.mu.Unlock()
		n.fetchMailbox(ctx, m, id)
	}
}

// fetchMailbox fetches space m's mailbox from relay id and feeds what it
// gets through the Filter into the space's channel.
func (n *Node) fetchMailbox(ctx context.Context, m *openSpace, id peer.ID) {
	c := m.channel()
	if c == nil || n.eph == nil {
		return
	}
	for range mailboxRounds {
		envs, more, err := relay.FetchMailbox(ctx, n.host, id, m.sp.ID(), m.sp.WriterKey())
		if err != nil {
			if ctx.Err() == nil {
				n.log.Debug("relay: mailbox fetch", "relay", id, "space", m.sp.ID(), "err", err)
			}
			return
		}
		parsed := make([]*ephemeral.Envelope, 0, len(envs))
		for _, b := range envs {
			e, err := ephemeral.Parse(b)
			if err != nil || e.Topic != c.topic {
				continue
			}
			parsed = append(parsed, e)
		}
		n.takeStored(c, id, parsed)
		if !more {
			return
		}
	}
}

// takeStored hands envelopes a mailbox gave over to the space's channel,
// with those that waited since an earlier fetch (c.waiting). A kept app
// message whose sender this device does not know as a member yet, or
// whose epoch key it does not hold yet (a device added, or keys rotated,
// while it was offline: the fetch on connecting to a relay may come
// before the sync that tells it), waits — the relay will not hand it
// again — until the sync brings them: at most maxWaitingStored per space,
// the oldest dropped first, and none older than a mailbox keeps it or
// from a sender seen removed.
func (n *Node) takeStored(c *channel, from peer.ID, envs []*ephemeral.Envelope) {
	now := n.clock.Now()
	c.mu.Lock()
	envs = append(c.waiting, envs...)
	c.waiting = nil
	c.mu.Unlock()
	// In the senders' order: a relay keeps envelopes in the order they
	// reached it, by its router or by deposits, which may differ.
	slices.SortStableFunc(envs, func(x, y *ephemeral.Envelope) int { return cmp.Compare(x.Time, y.Time) })
	ready := envs[:0:0]
	var waiting []*ephemeral.Envelope
	for _, e := range envs {
		sender := feed.PublicKey(e.Sender)
		switch {
		case !isKeptEnvelope(e) || len(e.KeyID) != auth.KeyIDSize:
		case now.Sub(e.Timestamp()) > ephemeral.KeptFor+ephemeral.Window || c.m.sp.WasRemoved(sender):
			continue
		case !c.m.sp.IsDevice(sender):
			waiting = append(waiting, e)
			continue
		default:
			if _, ok := c.m.sp.EphemeralKeyFor([auth.KeyIDSize]byte(e.KeyID)); !ok {
				waiting = append(waiting, e)
				continue
			}
		}
		ready = append(ready, e)
	}
	if len(waiting) > maxWaitingStored {
		waiting = waiting[len(waiting)-maxWaitingStored:]
	}
	c.mu.Lock()
	c.waiting = waiting
	c.mu.Unlock()
	// One fsync for the batch; kept app messages up to
	// ephemeral.KeptFor + Window old, the rest within the live window.
	for i, err := range n.eph.Filter().DeliverStored(ready) {
		if err != nil {
			continue // seen (gossipsub or another relay brought it), or stale
		}
		e := ready[i]
		n.stats.mailboxDelivered.Inc()
		if err := c.receiveFrom(e, from, now, true); err != nil {
			n.log.Debug("ephemeral: dropped from a mailbox", "space", c.m.sp.ID(), "relay", from, "err", err)
		}
	}
}

// forgetMailbox makes the next connection to relay i fetch at once.
func (s *relaySet) forgetMailbox(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.relays[i].mailbox.fetched = nil
}
