package node

import (
	"time"
)

// shareKeysTurn is how long a holder of the newest epoch's secret waits,
// per holder ranked before it (space.Space.ShareDue), before it shares the
// secret with a writer that lacks it in their place: they may be offline.
// shareKeysMaxTurns bounds the wait.
var shareKeysTurn = 10 * time.Second

const shareKeysMaxTurns = 12

// sharer drives space.Space.ShareKeys for a member: a device approved
// concurrently with a rotation (typically a removal's) lacks the new
// epoch's secret, and cannot read or write that epoch until a holder seals
// it a box. The refresher calls check at start (so a gap left before a
// restart is closed) and after each refresh; the holder ranked first
// shares at once, the others when their turn comes and the gap is still
// there. Only the refresher goroutine touches it.
type sharer struct {
	at    time.Time   // when this device's turn comes; zero when none is due
	timer *time.Timer // kicks the refresher at that time
}

// checkShare shares the newest secret when this device's turn has come,
// and otherwise arms a timer to look again then.
func (m *openSpace) checkShare(now time.Time) {
	rank, due := m.sp.ShareDue()
	if !due {
		m.share.stop()
		return
	}
	if rank > 0 {
		if m.share.at.IsZero() {
			wait := time.Duration(min(rank, shareKeysMaxTurns)) * shareKeysTurn
			m.share.at = now.Add(wait)
			m.share.timer = time.AfterFunc(wait, m.refreshSoon)
			return
		}
		if now.Before(m.share.at) {
			return
		}
	}
	m.share.stop()
	n, err := m.sp.ShareKeys(m.life.ctx)
	if err != nil {
		m.n.log.Warn("space: share the newest secret", "space", m.sp.ID(), "err", err)
	}
	if n == 0 {
		return
	}
	m.n.log.Info("space: shared the newest secret with writers that lacked it", "space", m.sp.ID(), "ops", n, "rank", rank)
	m.n.stats.written.Add(float64(n - 1))
	m.wrote()
}

// stop forgets a turn that is no longer due.
func (s *sharer) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
	*s = sharer{}
}
