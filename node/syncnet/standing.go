package syncnet

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The standing table: strikes, failed proofs and bans per peer, bounded by
// Config.MaxTracked, and forgotten Config.ForgetAfter after the peer left
// (bans when they end). Every function here is called with r.mu held but
// strike, failedProof, connectedness and Banned, which take it.

func (r *Replicator) now() time.Time { return r.clock.Now() }

// isBanned reports whether p is banned; r.mu is held.
func (r *Replicator) isBanned(p peer.ID) bool {
	st := r.standing[p]
	if st == nil || st.banned.IsZero() {
		return false
	}
	if r.now().Before(st.banned) {
		return true
	}
	st.banned = time.Time{}
	r.sweep(r.now())
	return false
}

// Banned reports whether p is currently refused.
func (r *Replicator) Banned(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.isBanned(p)
}

// Tracked returns how many peers' standing is remembered.
func (r *Replicator) Tracked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.standing)
}

// strike lowers p's standing after a session it spoiled.
func (r *Replicator) strike(p peer.ID) { r.mark(p, false) }

// failedProof counts a session of p whose opening proof failed.
func (r *Replicator) failedProof(p peer.ID) { r.mark(p, true) }

// mark adds a strike (or a failed proof) for p; enough of them within
// StrikeWindow ban p.
func (r *Replicator) mark(p peer.ID, proof bool) {
	now := r.now()
	connected := reachable(r.h.Network().Connectedness(p))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tracer.Strike(proof)
	st := r.standing[p]
	if st == nil {
		r.sweep(now)
		if len(r.standing) >= r.cfg.MaxTracked {
			r.evict(now)
		}
		st = &standing{}
		r.standing[p] = st
	}
	if !connected && st.left.IsZero() {
		// The session ended with the connection: the disconnection may
		// have been seen before this mark.
		st.left = now
	}
	marks, max, what := &st.strikes, r.cfg.MaxStrikes, "strikes"
	if proof {
		marks, max, what = &st.failed, r.cfg.MaxFailedProofs, "failed proofs"
	}
	*marks = append(recent(*marks, now, r.cfg.StrikeWindow), now)
	if n := len(*marks); n >= max {
		st.strikes, st.failed = nil, nil
		st.banned = now.Add(r.cfg.BanDuration)
		r.tracer.Ban()
		r.log.Info("sync: peer banned", "peer", p, what, n, "for", r.cfg.BanDuration)
		for key, s := range r.sessions {
			if key.peer == p {
				s.cancel()
			}
		}
	}
	r.tracer.Tracked(len(r.standing))
}

// connectedness records that p connected or disconnected: its standing is
// forgotten ForgetAfter after it left, unless it comes back. The host's
// state is asked rather than the event's: events arrive late, and not
// always in order.
func (r *Replicator) connectedness(p peer.ID) {
	now := r.now()
	connected := r.h.Network().Connectedness(p) == network.Connected
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.standing[p]; st != nil {
		if connected {
			st.left = time.Time{}
		} else if st.left.IsZero() {
			st.left = now
		}
	}
	if len(r.standing) > 0 {
		r.sweep(now)
		r.tracer.Tracked(len(r.standing))
	}
}

// sweep forgets the standing that ran out: bans that ended with no recent
// marks, and peers that left ForgetAfter ago or whose marks all expired.
func (r *Replicator) sweep(now time.Time) {
	for p, st := range r.standing {
		if !st.banned.IsZero() {
			if now.Before(st.banned) {
				continue
			}
			st.banned = time.Time{}
		}
		st.strikes = recent(st.strikes, now, r.cfg.StrikeWindow)
		st.failed = recent(st.failed, now, r.cfg.StrikeWindow)
		gone := !st.left.IsZero() && now.Sub(st.left) >= r.cfg.ForgetAfter
		if gone || len(st.strikes)+len(st.failed) == 0 {
			delete(r.standing, p)
		}
	}
}

// evict forgets one peer to make room (Config.MaxTracked's order).
func (r *Replicator) evict(now time.Time) {
	var victim peer.ID
	best := -1
	var bestAt time.Time
	for p, st := range r.standing {
		class, at := 2, st.banned // a ban: the one that ends soonest
		switch {
		case !st.banned.IsZero() && now.Before(st.banned):
		case !st.left.IsZero():
			class, at = 0, st.left
		default:
			class, at = 1, latest(st)
		}
		if best < 0 || class < best || (class == best && at.Before(bestAt)) {
			victim, best, bestAt = p, class, at
		}
	}
	if best >= 0 {
		delete(r.standing, victim)
	}
}

// latest returns the time of st's newest mark.
func latest(st *standing) time.Time {
	var t time.Time
	for _, m := range [][]time.Time{st.strikes, st.failed} {
		if len(m) > 0 && m[len(m)-1].After(t) {
			t = m[len(m)-1]
		}
	}
	return t
}

// recent returns the marks within window of now, in place.
func recent(marks []time.Time, now time.Time, window time.Duration) []time.Time {
	out := marks[:0]
	for _, t := range marks {
		if now.Sub(t) < window {
			out = append(out, t)
		}
	}
	return out
}
