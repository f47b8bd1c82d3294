package node

import (
	"errors"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/messages"
	"github.com/mycelsync/mycel/node/space"
	"github.com/mycelsync/mycel/node/syncnet"
)

// A removed device learns of its removal (EPHEMERAL.md, "Removal"): its
// replication is refused, so a member that hears it on the space's topic
// sends it the signed remove-writer entry with its proof, sealed under the
// epoch key the removed device spoke with. The device checks it against
// its own view (space.LearnRemoval) and stops acting as a writer: it stops
// serving the space's replication (so members do not wait for a session
// it can no longer have), answering join requests and announcing itself.

// tellRemoved shows a removed device that spoke on the topic its removal,
// at most once per Limits.Ephemeral.TellInterval (it announces itself
// every AnnounceInterval until it believes it), if this device is a writer and holds the
// removal's entry and the key the device spoke with.
func (c *channel) tellRemoved(e *ephemeral.Envelope, now time.Time) {
	m := c.m
	if !m.sp.IsWriter() || len(e.KeyID) != auth.KeyIDSize {
		return
	}
	kid := [auth.KeyIDSize]byte(e.KeyID)
	key, ok := m.sp.EphemeralKeyFor(kid)
	if !ok {
		return
	}
	if !c.mayTell(e.Sender, now) {
		return
	}
	ev, ok := m.sp.RemovalEvidence(feed.PublicKey(e.Sender))
	if !ok || !c.sendEvidence(key, kid, ev) {
		return
	}
	m.n.log.Info("space: showed a removed device its removal", "space", m.sp.ID(), "device", feed.PublicKey(e.Sender))
}

// learnRemoval takes evidence a member sent; if it proves this device's
// removal, the device stops acting as a writer. Evidence of another
// device's removal (every member on the topic receives it) is ignored.
func (m *openSpace) learnRemoval(ev []byte) error {
	if m.sp.Removed() || len(ev) == 0 {
		return nil
	}
	err := m.sp.LearnRemoval(ev)
	if errors.Is(err, space.ErrNotRemoval) {
		// Not this device's: perhaps its approver's.
		if err := m.sp.LearnApproverRemoval(ev); err != nil {
			if errors.Is(err, space.ErrNotRemoval) {
				return nil
			}
			return err
		}
		m.approverRemoved()
		return nil
	}
	if err != nil {
		return err
	}
	m.removed()
	return nil
}

// mayTell reports whether sender may be told now (once per
// Limits.Ephemeral.TellInterval), and notes it. Limits.Ephemeral.MaxTold
// bounds the devices remembered (tellRemoved, tellApproverRemoved); at
// it, one is forgotten for each new one.
func (c *channel) mayTell(sender ephemeral.PublicKey, now time.Time) bool {
	tellInterval, maxTold := c.m.n.limits.Ephemeral.TellInterval, c.m.n.limits.Ephemeral.MaxTold
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.told[sender]; ok && now.Sub(t) < tellInterval {
		return false
	}
	for k, t := range c.told {
		if now.Sub(t) >= tellInterval || len(c.told) >= maxTold {
			delete(c.told, k)
		}
	}
	c.told[sender] = now
	return true
}

// tellApproverRemoved shows a device that announced itself as a writer
// approved by a writer whose removal this device knows — approved by a
// removed device that did not know yet — that removal, at most once per
// Limits.Ephemeral.TellInterval. The device is no writer here (the caller checked), so its
// announcement is opened only to read whom it names.
func (c *channel) tellApproverRemoved(e *ephemeral.Envelope, now time.Time) {
	m := c.m
	if !m.sp.IsWriter() || len(e.KeyID) != auth.KeyIDSize {
		return
	}
	kid := [auth.KeyIDSize]byte(e.KeyID)
	key, ok := m.sp.EphemeralKeyFor(kid)
	if !ok {
		return
	}
	plain, err := e.Open(key)
	if err != nil {
		return
	}
	b, err := messages.Decode(plain)
	if err != nil || b.Kind != messages.KindPresence || len(b.By) == 0 {
		return
	}
	approver := feed.PublicKey(b.By)
	if !m.sp.WasRemoved(approver) || !c.mayTell(e.Sender, now) {
		return
	}
	ev, ok := m.sp.RemovalEvidence(approver)
	if !ok {
		return
	}
	c.sendEvidence(key, kid, ev)
	m.n.log.Info("space: showed a device its approver's removal", "space", m.sp.ID(), "device", feed.PublicKey(e.Sender), "approver", approver)
}

// sendEvidence publishes a removal's evidence sealed under key.
func (c *channel) sendEvidence(key [auth.KeySize]byte, kid [auth.KeyIDSize]byte, ev []byte) bool {
	m := c.m
	plain, err := messages.Body{Kind: messages.KindRemoved, Evidence: ev}.Encode()
	if err != nil {
		return false
	}
	env, err := ephemeral.Seal(key, m.sp.WriterKey(), ephemeral.Header{Topic: c.topic, KeyKind: messages.KeyKindEpoch, KeyID: kid[:]}, plain, m.n.eph.Filter().Now(), nil)
	if err != nil {
		return false
	}
	if err := c.sub.Publish(m.life.ctx, env); err != nil {
		m.n.log.Debug("space: send a removal's evidence", "space", m.sp.ID(), "err", err)
		return false
	}
	return true
}

// presenceBody is this device's announcement: its name, and the writer
// that approved it.
func (c *channel) presenceBody() messages.Body {
	b := messages.Body{Kind: messages.KindPresence, Name: c.m.selfName()}
	if by, ok := c.m.sp.Approver(); ok {
		b.By = by[:]
	}
	return b
}

// approverRemoved puts this device, approved by a writer removed before
// it approved it, back to waiting: it asks again with its request, so
// that a member approves it (space.LearnApproverRemoval).
func (m *openSpace) approverRemoved() {
	id := m.sp.ID()
	// Not served until approved again (changed serves it then): members
	// refuse its proofs, and the resync would prove them every 10 s. The
	// approval it gets is tried over sessions it opens (tryKeyring).
	m.n.host.RemoveStreamHandler(syncnet.ProtocolFor(id))
	m.mu.Lock()
	m.served = false
	m.mu.Unlock()
	m.n.repl.Recheck(id)
	m.n.currentRequests()
	m.mu.Lock()
	j := m.join
	if j == nil {
		m.mu.Unlock()
		m.n.log.Warn("space: the device that approved this one had been removed; ask to join again", "space", id)
		return
	}
	j.Reopen()
	rec := j.Record()
	m.mu.Unlock()
	if err := m.saveJoin(rec); err != nil {
		m.n.log.Error("sign-in: record the request again", "space", id, "err", err)
		return
	}
	m.n.log.Warn("sign-in: the device that approved this one had been removed; asking again", "space", id)
	m.askSoon()
}

// removed stops what a removed device must not do any more: serve the
// space's replication (peers would wait for a session that they refuse)
// and keep join requests for a person.
func (m *openSpace) removed() {
	id := m.sp.ID()
	m.n.host.RemoveStreamHandler(syncnet.ProtocolFor(id))
	m.n.repl.Recheck(id) // its sessions' peers are admitted no more
	m.n.currentRequests()
	m.n.log.Warn("space: this device was removed from the space; it reads what was written before, and writes nothing", "space", id)
}
