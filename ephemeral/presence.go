package ephemeral

import (
	"slices"
	"sync"
	"time"
)

// Presence defaults: a node announces itself every AnnounceInterval and
// counts as online for OnlineFor after its last announcement, so that two
// lost announcements in a row do not make it flap.
const (
	AnnounceInterval    = 10 * time.Second
	OnlineFor           = 3 * AnnounceInterval
	DefaultMaxPresences = 4096
)

// Presence tracks when each sender was last heard from, to tell who is
// online. It is fed by the caller — with the receipt time of each
// presence announcement it delivered and could open, or of any other
// message from the sender — and reads no clock. Safe for concurrent use.
type Presence struct {
	online time.Duration
	max    int

	mu   sync.Mutex
	last map[PublicKey]time.Time
}

// Peer is one sender and when it was last heard from.
type Peer struct {
	Key      PublicKey
	LastSeen time.Time
}

// NewPresence returns a tracker that counts a sender as online for online
// after it was last seen (OnlineFor when ≤ 0), tracking at most max
// senders (DefaultMaxPresences when ≤ 0; beyond it, the one heard from
// longest ago is forgotten — unlike the seen-set, forgetting here only
// makes a silent device look offline).
func NewPresence(online time.Duration, max int) *Presence {
	if online <= 0 {
		online = OnlineFor
	}
	if max <= 0 {
		max = DefaultMaxPresences
	}
	return &Presence{online: online, max: max, last: make(map[PublicKey]time.Time)}
}

// Seen records that sender was heard from at t. An earlier t than the one
// recorded changes nothing (announcements may arrive out of order).
func (p *Presence) Seen(sender PublicKey, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.last[sender]; ok {
		if t.After(prev) {
			p.last[sender] = t
		}
		return
	}
	if len(p.last) >= p.max {
		var oldest PublicKey
		var first time.Time
		for k, at := range p.last {
			if first.IsZero() || at.Before(first) {
				oldest, first = k, at
			}
		}
		delete(p.last, oldest)
	}
	p.last[sender] = t
}

// Forget drops a sender, e.g. one removed from the space or one that said
// goodbye.
func (p *Presence) Forget(sender PublicKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.last, sender)
}

// LastSeen returns when sender was last heard from.
func (p *Presence) LastSeen(sender PublicKey) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.last[sender]
	return t, ok
}

// IsOnline reports whether sender was heard from within the online
// interval before now: now − last ≤ online.
func (p *Presence) IsOnline(sender PublicKey, now time.Time) bool {
	t, ok := p.LastSeen(sender)
	return ok && now.Sub(t) <= p.online
}

// Online returns the senders online at now, most recently seen first.
func (p *Presence) Online(now time.Time) []Peer {
	p.mu.Lock()
	var out []Peer
	for k, t := range p.last {
		if now.Sub(t) <= p.online {
			out = append(out, Peer{Key: k, LastSeen: t})
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Peer) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return slices.Compare(a.Key[:], b.Key[:])
	})
	return out
}

// Retain forgets the senders for which keep is false (devices no longer in
// the space).
func (p *Presence) Retain(keep func(PublicKey) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.last {
		if !keep(k) {
			delete(p.last, k)
		}
	}
}

// Prune forgets the senders not heard from for longer than keep before now.
func (p *Presence) Prune(now time.Time, keep time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, t := range p.last {
		if now.Sub(t) > keep {
			delete(p.last, k)
		}
	}
}
