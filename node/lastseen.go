package node

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
)

// When each device of a space was last heard from (its presence or any
// message) is kept, beside the presence tracker in memory, in the space's
// namespace under "pl" ‖ the device's key: a Unix time in seconds, 8 bytes
// big endian, sealed under this device's local key of the space (as the
// space records are: the store on disk does not say when whose devices
// were online). `mycel devices` then says when a device was last seen
// after the daemon restarts, and however long ago that was. A device's
// time is written at most once per lastSeenEvery, so a restart loses at
// most that much of it; leaving the space deletes the namespace with it.

// lastSeenEvery is how often a device's last-seen time is written.
const lastSeenEvery = 5 * time.Minute

var lastSeenPrefix = []byte("pl")

func lastSeenKey(k ephemeral.PublicKey) []byte {
	return append(append([]byte{}, lastSeenPrefix...), k[:]...)
}

func lastSeenAD(id auth.SpaceID, k ephemeral.PublicKey) []byte {
	ad := append([]byte("mycel node last seen\x00"), id[:]...)
	return append(ad, k[:]...)
}

// loadLastSeen reads the last-seen times kept for the space's devices
// (lastSeen answers with them until the device is heard from again: a
// time from before the restart says when, not that it is online), and
// deletes those of devices no longer in the space.
func (c *channel) loadLastSeen() error {
	m := c.m
	id := m.sp.ID()
	local := m.n.device.LocalKey(id)
	var gone []feed.Write
	err := m.st.Scan(lastSeenPrefix, feed.PrefixEnd(lastSeenPrefix), func(key, sealed []byte) error {
		if len(key) != len(lastSeenPrefix)+len(ephemeral.PublicKey{}) {
			return fmt.Errorf("last seen: key %x", key)
		}
		k := ephemeral.PublicKey(key[len(lastSeenPrefix):])
		if !m.sp.IsDevice(feed.PublicKey(k)) {
			gone = append(gone, feed.Write{Key: key, Delete: true})
			return nil
		}
		b, err := auth.OpenContent(local, sealed, lastSeenAD(id, k))
		if err != nil || len(b) != 8 {
			return fmt.Errorf("last seen of %x: does not open (%v)", k[:4], err)
		}
		t := time.Unix(int64(binary.BigEndian.Uint64(b)), 0)
		c.mu.Lock()
		c.saved[k] = t
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		return m.st.Commit(gone)
	}
	return nil
}

// saveLastSeen keeps that k was heard from at t, unless its time was
// written less than lastSeenEvery before.
func (c *channel) saveLastSeen(k ephemeral.PublicKey, t time.Time) error {
	c.mu.Lock()
	prev, ok := c.saved[k]
	if ok && t.Sub(prev) < lastSeenEvery {
		c.mu.Unlock()
		return nil
	}
	c.saved[k] = t
	c.mu.Unlock()
	id := c.m.sp.ID()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.Unix()))
	sealed, err := auth.SealContent(c.m.n.device.LocalKey(id), b[:], lastSeenAD(id, k), rand.Reader)
	if err != nil {
		return err
	}
	return c.m.st.Commit([]feed.Write{{Key: lastSeenKey(k), Value: sealed}})
}

// lastSeen says when k was last heard from, and whether it is online: the
// presence tracker's if it heard k since the daemon started, else the time
// kept in the store, offline.
func (c *channel) lastSeen(k ephemeral.PublicKey, now time.Time) (t time.Time, online, ok bool) {
	if t, ok := c.presence.LastSeen(k); ok {
		return t, c.presence.IsOnline(k, now), true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok = c.saved[k]
	return t, false, ok
}
