package relay

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// Aliases name a space at one relay: `family@<relay>` instead of 64 hex
// digits. A writer of the space registers one with its feed key's
// signature; the first space to register a name holds it at this relay; a
// writer of that space may point it elsewhere (to a space it also
// writes) or drop it. FORMAT.md, "Locators and aliases".

// aliasEntry is an alias the directory holds, or its tombstone.
type aliasEntry struct {
	space  auth.SpaceID
	at     int64     // the signed time of the last registration or drop
	gone   bool      // dropped: kept until forget, so that a replay is refused
	forget time.Time // of a tombstone
}

// NormaliseAlias returns the canonical form of an alias, or
// ErrMalformedDirectory: ASCII letters (folded to lower case), digits and
// single hyphens inside, 1 to MaxAliasLen characters, starting and ending
// with a letter or digit. Nothing else is accepted — no Unicode, so no two
// names that look alike.
func NormaliseAlias(name string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(name))
	if len(s) == 0 || len(s) > MaxAliasLen {
		return "", fmt.Errorf("%w: an alias has 1 to %d characters", ErrMalformedDirectory, MaxAliasLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1 && s[i-1] != '-':
		default:
			return "", fmt.Errorf("%w: alias %q: letters a-z, digits and single hyphens inside", ErrMalformedDirectory, name)
		}
	}
	return s, nil
}

func (d *Directory) addAlias(name string, a *aliasEntry) {
	if old := d.aliases[name]; old != nil && !old.gone {
		if d.aliasesOf[old.space]--; d.aliasesOf[old.space] <= 0 {
			delete(d.aliasesOf, old.space)
		}
	}
	d.aliases[name] = a
	if !a.gone {
		d.aliasesOf[a.space]++
	}
}

func (d *Directory) liveAliasesLocked() int {
	n := 0
	for _, c := range d.aliasesOf {
		n += c
	}
	return n
}

// putAlias registers (or moves) an alias (opPutAlias).
func (d *Directory) putAlias(p peer.ID, q *dirRequest) error {
	name, err := NormaliseAlias(q.Name)
	if err != nil || name != q.Name {
		return fmt.Errorf("%w: alias %q is not in its normal form", ErrMalformedDirectory, q.Name)
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.admitWriteLocked(p, now); err != nil {
		return err
	}
	if err := d.checkSigned(q, q.Space, now); err != nil {
		return err
	}
	old := d.aliases[name]
	if old != nil && !old.gone && old.space != q.Space {
		// Moving a name to another space takes a writer of the space that
		// holds it.
		if err := d.writerOf(old.space, q.Signer); errors.Is(err, ErrDirectoryForbidden) {
			return ErrAliasTaken
		} else if err != nil {
			return err
		}
	}
	if old != nil && q.Time <= old.at {
		return ErrDirectoryStale
	}
	if (old == nil || old.gone || old.space != q.Space) &&
		(d.aliasesOf[q.Space] >= d.lim.AliasesPerSpace || d.liveAliasesLocked() >= d.lim.MaxAliases) {
		return ErrDirectoryFull
	}
	a := &aliasEntry{space: q.Space, at: q.Time}
	if err := d.st.Commit([]feed.Write{{Key: aliasKey(name), Value: encodeAlias(a)}}); err != nil {
		return err
	}
	d.addAlias(name, a)
	return nil
}

// delAlias drops an alias (opDelAlias), keeping a tombstone for twice
// MaxClockSkew so that the registration replayed meanwhile is refused.
func (d *Directory) delAlias(p peer.ID, q *dirRequest) error {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.admitWriteLocked(p, now); err != nil {
		return err
	}
	old := d.aliases[q.Name]
	if old == nil || old.gone {
		return ErrDirectoryNotFound
	}
	if err := d.checkSigned(q, old.space, now); err != nil {
		return err
	}
	if q.Time <= old.at {
		return ErrDirectoryStale
	}
	a := &aliasEntry{space: old.space, at: q.Time, gone: true, forget: now.Add(2 * MaxClockSkew)}
	if err := d.st.Commit([]feed.Write{{Key: aliasKey(q.Name), Value: encodeAlias(a)}}); err != nil {
		return err
	}
	d.addAlias(q.Name, a)
	return nil
}

// getAlias answers a lookup (opGetAlias): the space ID.
func (d *Directory) getAlias(p peer.ID, name string) ([]byte, error) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrNoDirectory
	}
	d.sweepLocked(now)
	if err := d.allowLocked(d.lookups, p, d.lim.LookupsPerPeer, now); err != nil {
		return nil, err
	}
	a := d.aliases[name]
	if a == nil || a.gone {
		return nil, ErrDirectoryNotFound
	}
	return a.space[:], nil
}

// encodeAlias encodes an alias record (FORMAT.md):
//
//	version (1) = 1 ‖ gone (1) ‖ space (32) ‖ at (int64) ‖ forget (int64, Unix s; 0 if live)
func encodeAlias(a *aliasEntry) []byte {
	b := []byte{1, 0}
	var forget int64
	if a.gone {
		b[1], forget = 1, a.forget.Unix()
	}
	b = append(b, a.space[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(a.at))
	return binary.BigEndian.AppendUint64(b, uint64(forget))
}

func decodeAlias(b []byte) (*aliasEntry, error) {
	if len(b) != 2+32+8+8 || b[0] != 1 || b[1] > 1 {
		return nil, errors.New("relay: directory: bad alias record")
	}
	a := &aliasEntry{gone: b[1] == 1, space: auth.SpaceID(b[2:34]), at: int64(binary.BigEndian.Uint64(b[34:42]))}
	if a.gone {
		a.forget = time.Unix(int64(binary.BigEndian.Uint64(b[42:50])), 0)
	}
	return a, nil
}

// RegisterAlias registers name (NormaliseAlias) for space at relay,
// signed by signer (a writer's feed key in space) at now. ErrAliasTaken
// (wrapped) when another space holds it.
func RegisterAlias(ctx context.Context, h host.Host, relay peer.ID, name string, space auth.SpaceID, signer ed25519.PrivateKey, now time.Time) error {
	n, err := NormaliseAlias(name)
	if err != nil {
		return err
	}
	q := &dirRequest{Op: opPutAlias, Space: space, Time: now.Unix(), Name: n}
	if err := q.sign(relay, signer); err != nil {
		return err
	}
	_, err = exchange(ctx, h, relay, q)
	return err
}

// DropAlias drops name at relay, signed by signer (a writer of the space
// that holds it) at now.
func DropAlias(ctx context.Context, h host.Host, relay peer.ID, name string, signer ed25519.PrivateKey, now time.Time) error {
	n, err := NormaliseAlias(name)
	if err != nil {
		return err
	}
	q := &dirRequest{Op: opDelAlias, Time: now.Unix(), Name: n}
	if err := q.sign(relay, signer); err != nil {
		return err
	}
	_, err = exchange(ctx, h, relay, q)
	return err
}

// ResolveAlias asks relay which space name names there.
// ErrDirectoryNotFound (wrapped) when none.
func ResolveAlias(ctx context.Context, h host.Host, relay peer.ID, name string) (auth.SpaceID, error) {
	n, err := NormaliseAlias(name)
	if err != nil {
		return auth.SpaceID{}, err
	}
	body, err := exchange(ctx, h, relay, &dirRequest{Op: opGetAlias, Name: n})
	if err != nil {
		return auth.SpaceID{}, err
	}
	if len(body) != auth.SpaceIDSize {
		return auth.SpaceID{}, fmt.Errorf("%w: alias reply of %d bytes", ErrMalformedDirectory, len(body))
	}
	return auth.SpaceID(body), nil
}

// isWriter implements writerChecker: a feed the mirror follows for the
// space and has seen no removal of.
func (m *Mirror) isWriter(id auth.SpaceID, k feed.PublicKey) (known, ok bool) {
	m.mu.Lock()
	ms := m.spaces[id]
	m.mu.Unlock()
	if ms == nil {
		return false, false
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return true, ms.follow[k] && !ms.removed[k]
}
