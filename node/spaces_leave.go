package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/space"
)

// LeaveSpace implements api.Backend. A writer first removes itself (an
// ordinary removal with a new epoch, sealed to the other writers) and
// waits, up to Limits.Net.LeaveWait or until ctx ends, for a session to serve that
// removal to a peer: once the copy is deleted, this device cannot tell
// anyone any more. What sessions serve is noted from before the removal
// is written: one may serve it before RemoveWriter returns. Then the space is closed and its namespace, record and
// view are deleted. A space this device only asked to join is dropped the
// same way: the request is no longer asked, and an answer that comes later
// finds no space.
func (n *Node) LeaveSpace(ctx context.Context, id string) (api.Left, error) {
	// Counted as a call: Close waits for the leave (its wait for a peer
	// ends with the node) instead of closing the store under it.
	ctx, m, done, err := n.callOn(ctx, id)
	if err != nil {
		return api.Left{}, err
	}
	defer done()
	sid := m.sp.ID()
	left := api.Left{Space: sid.String()}
	if m.sp.IsWriter() {
		own := m.sp.Feed()
		// Noted from before the removal is written: a session may serve
		// it before RemoveWriter returns (and leaveAt is known).
		m.mu.Lock()
		m.leaving = make(map[*sessionModel]uint64)
		m.mu.Unlock()
		err := m.sp.RemoveWriter(ctx, own)
		if err != nil {
			m.mu.Lock()
			m.leaving = nil
			m.mu.Unlock()
		}
		switch {
		case errors.Is(err, space.ErrNoKeys):
			// It cannot write now (a secret it needs has not reached it):
			// leaving must not depend on that.
			left.Warning = fmt.Sprintf("this device could not write its removal (%v): the other devices go on "+
				"listing it as a writer until one of them removes it (mycel members remove)", err)
		case err != nil:
			return api.Left{}, spaceError(err)
		default:
			left.Removed = true
			if m.leaveHook != nil {
				m.leaveHook()
			}
			m.mu.Lock()
			m.leaveAt = m.sp.Held(own)
			for sm, end := range m.leaving {
				sm.reach(end)
			}
			m.mu.Unlock()
			m.wrote()
			wctx, cancel := context.WithTimeout(ctx, n.limits.Net.LeaveWait)
			left.Reached = m.waitServed(wctx)
			cancel()
			if left.Reached == 0 {
				left.Warning = "no peer was reachable: the other devices did not learn that this device left, " +
					"and go on listing it as a writer until one of them removes it (mycel members remove)"
			}
		}
	}
	if err := n.dropSpace(m); err != nil {
		return left, err
	}
	n.log.Info("space: left", "space", sid, "removed", left.Removed, "peers", left.Reached)
	return left, nil
}

// waitServed waits until a replication session has served this device's
// feed up to m.leaveAt to its peer, which asked for it, and returns how
// many sessions did (0 when ctx ended first).
func (m *openSpace) waitServed(ctx context.Context) int {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		m.mu.Lock()
		n := m.reached
		m.mu.Unlock()
		if n > 0 {
			return n
		}
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
	}
}

// sessionModel is the Model of one session: the space's feeds, noting
// when the session serves this device's feed as far as m.leaveAt.
type sessionModel struct {
	replication.Model
	m    *openSpace
	own  feed.PublicKey
	told bool // counted in m.reached; under m.mu
}

func (s *sessionModel) Batch(k feed.PublicKey, req feed.BatchRequest) (*feed.Batch, error) {
	b, err := s.Model.Batch(k, req)
	if err != nil || k != s.own {
		return b, err
	}
	var end uint64
	for i := range b.Runs {
		end = max(end, b.Runs[i].End())
	}
	s.m.mu.Lock()
	if s.m.leaving != nil {
		s.m.leaving[s] = max(s.m.leaving[s], end)
	}
	s.reach(end)
	s.m.mu.Unlock()
	return b, nil
}

// reach counts the session in m.reached once it served this device's
// feed as far as m.leaveAt. Under m.mu.
func (s *sessionModel) reach(end uint64) {
	if s.m.leaveAt > 0 && end >= s.m.leaveAt && !s.told {
		s.told = true
		s.m.reached++
	}
}

func (m *openSpace) hasLeft() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.left
}

// dropSpace stops serving a space, ends its goroutines, closes it and
// deletes this device's copy. The record is marked first, so that a crash
// midway ends the deletion at the next open (loadSpaces) instead of
// opening half a space; when the node is closing, the deletion is left to
// the next open likewise.
func (n *Node) dropSpace(m *openSpace) error {
	id := m.sp.ID()
	n.mu.Lock()
	if n.spaces[id] != m {
		n.mu.Unlock()
		return fmt.Errorf("%w: space %s is being left already", api.ErrNotFound, id)
	}
	delete(n.spaces, id)
	n.mu.Unlock()
	m.mu.Lock()
	m.left = true
	m.mu.Unlock()
	// The open sessions check the peer's proof again, which now fails:
	// they end, and so do new ones at their opening.
	n.repl.Recheck(id)
	m.life.close()
	m.life.wait(context.Background())
	if c := m.channel(); c != nil {
		if err := c.sub.Close(); err != nil {
			n.log.Debug("ephemeral: unsubscribe", "space", id, "err", err)
		}
	}
	rec, err := n.readRecord(id)
	if err != nil {
		return err
	}
	rec.Leaving = true
	if err := n.writeRecord(id, rec); err != nil {
		return err
	}
	if err := m.sp.Close(); err != nil {
		n.log.Warn("space: close a space left", "space", id, "err", err)
	}
	if err := m.db.Close(); err != nil {
		n.log.Warn("space: close the feeds of a space left", "space", id, "err", err)
	}
	m.st.Close()
	if n.life.isClosed() {
		n.log.Info("space: left; the node is closing, its copy is deleted at the next start", "space", id)
		return nil
	}
	return n.deleteSpace(id)
}

// deleteSpace deletes a space's namespace, then its record.
func (n *Node) deleteSpace(id auth.SpaceID) error {
	if err := n.deletePrefix(spacePrefix(id)); err != nil {
		return err
	}
	return n.kept.Commit([]feed.Write{{Key: recordKey(id), Delete: true}})
}
