package node

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
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

// tellInterval is the least time between two showings of its removal to
// one removed device (it announces itself every ephemeral.AnnounceInterval
// until it believes it).
const tellInterval = 10 * time.Second

// tellRemoved shows a removed device that spoke on the topic its removal,
// at most once per tellInterval, if this device is a writer and holds the
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
	c.mu.Lock()
	if t, ok := c.told[e.Sender]; ok && now.Sub(t) < tellInterval {
		c.mu.Unlock()
		return
	}
	c.told[e.Sender] = now
	for k, t := range c.told {
		if now.Sub(t) >= tellInterval {
			delete(c.told, k)
		}
	}
	c.mu.Unlock()
	ev, ok := m.sp.RemovalEvidence(feed.PublicKey(e.Sender))
	if !ok {
		return
	}
	plain, err := json.Marshal(body{Kind: bodyRemoved, Evidence: ev})
	if err != nil {
		return
	}
	env, err := ephemeral.Seal(key, m.sp.WriterKey(), ephemeral.Header{Topic: c.topic, KeyKind: keyKindEpoch, KeyID: kid[:]}, plain, m.n.eph.Filter().Now(), nil)
	if err != nil {
		return
	}
	if err := c.sub.Publish(m.n.ctx, env); err != nil {
		m.n.log.Debug("space: tell a removed device", "space", m.sp.ID(), "err", err)
		return
	}
	m.n.log.Info("space: showed a removed device its removal", "space", m.sp.ID(), "device", feed.PublicKey(e.Sender))
}

// learnRemoval takes evidence a member sent; if it proves this device's
// removal, the device stops acting as a writer. Evidence of another
// device's removal (every member on the topic receives it) is ignored.
func (m *member) learnRemoval(ev []byte) error {
	if m.sp.Removed() || len(ev) == 0 {
		return nil
	}
	if err := m.sp.LearnRemoval(ev); err != nil {
		if errors.Is(err, space.ErrNotRemoval) {
			return nil
		}
		return err
	}
	m.removed()
	return nil
}

// removed stops what a removed device must not do any more: serve the
// space's replication (peers would wait for a session that they refuse)
// and keep join requests for a person.
func (m *member) removed() {
	id := m.sp.ID()
	m.n.host.RemoveStreamHandler(syncnet.ProtocolFor(id))
	m.n.repl.Recheck(id) // its sessions' peers are admitted no more
	m.n.signins.current()
	m.n.log.Warn("space: this device was removed from the space; it reads what was written before, and writes nothing", "space", id)
}
