package node

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/relay"
)

// The node hands each of its relays (Config.Relays) the mirror token of
// every space it is a writer of, and each relay a space lists
// (relays_space.go) that space's, and the new one after each rotation, so
// that the relay mirrors the space's encrypted feeds for the devices that
// are offline (relay/FORMAT.md, "Mirror handover"). The relay learns the
// space's ID and replicates ciphertext; the token opens replication and
// decrypts nothing.

// mirrorRetry is how long a handover that failed waits before it is tried
// again: a relay takes at most 16 handovers an hour from one peer.
const mirrorRetry = 5 * time.Minute

// mirrorHanded is what a relay was handed: per space, the epoch of the
// token it took, or when a handover last failed.
type mirrorHanded struct {
	epoch  map[auth.SpaceID]uint32
	failed map[auth.SpaceID]time.Time
	err    map[auth.SpaceID]string // why the last handover failed
}

// handMirrorTokens hands relay id the newest token of each space this
// device writes to that it was not handed yet. keepRelay calls it every
// Limits.Net.MinBackoff while it holds a reservation on the relay; what
// it does then is in memory (a keyring's newest epoch against the one
// handed), and a handover goes over the network only for a space not
// handed yet, an epoch newer than the one handed (a rotation), or after a
// failure once mirrorRetry passed. A new reservation (relaySet.reserved:
// the first, or one after the relay went away) forgets what was handed,
// so that a relay that came back without its store gets every token
// again; renewals do not.
func (n *Node) handMirrorTokens(ctx context.Context, i int, id peer.ID) {
	n.relays.mu.Lock()
	h := &n.relays.relays[i].mirror
	if h.epoch == nil {
		h.epoch, h.failed, h.err = map[auth.SpaceID]uint32{}, map[auth.SpaceID]time.Time{}, map[auth.SpaceID]string{}
	}
	n.relays.mu.Unlock()
	for _, m := range n.openSpaces() {
		if !m.isServed() || !m.sp.IsWriter() {
			continue
		}
		kr, err := m.sp.Keyring()
		if err != nil || len(kr.Epochs) == 0 {
			continue
		}
		sid := m.sp.ID()
		tok := kr.Epochs[len(kr.Epochs)-1].MirrorToken(sid)
		n.relays.mu.Lock()
		if !n.relays.relays[i].serves(sid) {
			// A listed relay gets the tokens of the spaces that list it
			// only; once off the list, it gets no next epoch's.
			n.relays.mu.Unlock()
			continue
		}
		handed, ok := h.epoch[sid]
		failedAt := h.failed[sid]
		n.relays.mu.Unlock()
		if (ok && handed >= tok.Epoch) || time.Since(failedAt) < mirrorRetry {
			continue
		}
		err = relay.HandMirrorToken(ctx, n.host, id, tok)
		n.relays.mu.Lock()
		switch {
		case err == nil, errors.Is(err, relay.ErrMirrorStale):
			h.epoch[sid] = tok.Epoch
			delete(h.failed, sid)
			delete(h.err, sid)
		default:
			h.failed[sid], h.err[sid] = time.Now(), err.Error()
		}
		n.relays.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			n.log.Debug("relay: hand the mirror token", "relay", id, "space", sid, "err", err)
		} else if err == nil {
			n.log.Info("relay: handed the mirror token", "relay", id, "space", sid, "epoch", tok.Epoch)
		}
	}
}
