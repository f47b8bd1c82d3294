package space

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/mycelsync/mycel/auth"
)

// SystemPrefix starts the keys the space keeps for itself, in its own
// registers: the invites members made, the password key and the relays
// the space lists. They are ops
// like any other — sealed under the epoch's key, replicated, converging —
// but apps can neither write them (ErrSystemKey) nor see them in List or
// Watch unless they ask for this prefix.
const SystemPrefix = "\x00mycel/"

const (
	invitePrefix = SystemPrefix + "invite/"
	passwordKey  = SystemPrefix + "password"
	relayPrefix  = SystemPrefix + "relay/"
)

// ErrSystemKey: an app tried to write a key starting with SystemPrefix.
var ErrSystemKey = errors.New("space: keys starting with NUL \"mycel/\" are the space's own")

func isSystem(key string) bool { return strings.HasPrefix(key, SystemPrefix) }

// appKeys checks that none of keys is a system key.
func appKeys(keys ...string) error {
	for _, k := range keys {
		if isSystem(k) {
			return fmt.Errorf("%w: %q", ErrSystemKey, k)
		}
	}
	return nil
}

// hidden reports whether key is kept from a List or Watch of prefix.
func hidden(key, prefix string) bool { return isSystem(key) && !isSystem(prefix) }

// RecordInvite writes an invite this device made into its feed, with its
// locator (auth.Invite.Locator), so that every member can open the
// requests made with it, answer a device that holds only its code, and
// know once it is used.
func (s *Space) RecordInvite(ctx context.Context, rec auth.InviteRecord, locator []byte) error {
	b, err := rec.MarshalBinary()
	if err != nil {
		return err
	}
	v := binary.AppendUvarint(nil, uint64(len(b)))
	v = append(append(v, b...), locator...)
	return s.writeData(ctx, &Op{Kind: OpPut, Key: invitePrefix + rec.ID.String(), Value: v})
}

// Invite returns the record of an invite made in the space, and its
// locator. Concurrent updates (two members answering at once) merge: the
// invite is used if any version says so — and a used record stays a
// version after later writes to the key (final), so a spent invite cannot
// be un-spent by writing a fresh record after it.
func (s *Space) Invite(id auth.InviteID) (rec auth.InviteRecord, locator []byte, ok bool) {
	for _, v := range s.Get(invitePrefix + id.String()) {
		if v.Deleted {
			continue
		}
		r, loc, err := decodeInvite(v.Value)
		if err != nil || r.ID != id {
			continue
		}
		if !ok {
			rec, locator, ok = r, loc, true
		} else if r.Used && !rec.Used {
			rec.Used, rec.UsedBy = true, r.UsedBy
		}
	}
	return rec, locator, ok
}

// final reports whether a version stays one even when later ops on its
// key follow it: an invite record that says "used". A spent invite stays
// spent whatever a member writes after (a fresh record under the same key
// would otherwise replace it and un-spend the invite). The rule depends on
// the op alone, so every view that holds the same ops keeps the same
// versions, whatever order they came in.
func final(op *Op) bool {
	if op == nil || op.Kind != OpPut || !strings.HasPrefix(op.Key, invitePrefix) {
		return false
	}
	rec, _, err := decodeInvite(op.Value)
	return err == nil && rec.Used
}

func decodeInvite(v []byte) (auth.InviteRecord, []byte, error) {
	var rec auth.InviteRecord
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return rec, nil, errors.New("space: malformed invite record")
	}
	if err := rec.UnmarshalBinary(v[k : k+int(n)]); err != nil {
		return rec, nil, err
	}
	return rec, v[k+int(n):], nil
}

// UseInvite marks an invite used by the request of the device whose feed
// is by (an approval or a denial spends it). auth.ErrUsed if another
// device's request spent it already.
func (s *Space) UseInvite(ctx context.Context, id auth.InviteID, by [32]byte) error {
	rec, loc, ok := s.Invite(id)
	if !ok {
		return fmt.Errorf("space: no invite %s", id)
	}
	if rec.Used && rec.UsedBy == by {
		return nil
	}
	if err := rec.MarkUsed(by); err != nil {
		return err
	}
	return s.RecordInvite(ctx, rec, loc)
}

// SetPasswordKey keeps the key derived from the space's password
// (auth.PasswordKeyAt of generation gen) in the feeds, so that every member
// can open the join requests made with the password. The password itself
// is never kept in the feeds.
//
// The value is the key (32 bytes) for generation 0, as before generations
// existed, else gen (uint32 BE) ‖ key (36 bytes).
func (s *Space) SetPasswordKey(ctx context.Context, gen uint32, key [auth.KeySize]byte) error {
	v := key[:]
	if gen > 0 {
		v = append(binary.BigEndian.AppendUint32(nil, gen), key[:]...)
	}
	return s.writeData(ctx, &Op{Kind: OpPut, Key: passwordKey, Value: v})
}

// PasswordGeneration is the generation the space's password key must be
// of: the newest epoch that a standing removal started (0 without one). A
// removed device read every password key written before its removal; one
// of this generation is written after it, sealed under a secret it lacks.
func (s *Space) PasswordGeneration() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.passwordGeneration()
}

func (s *Space) passwordGeneration() uint32 {
	var gen uint32
	for _, r := range s.view.special {
		if r.count && r.op.Kind == OpRemoveWriter && r.op.Rotation != nil {
			gen = max(gen, r.op.Rotation.Epoch)
		}
	}
	return gen
}

// PasswordKey returns the space's password key and its generation, if one
// was set (the winner of concurrent settings), whether or not it is of the
// current generation.
func (s *Space) PasswordKey() (gen uint32, key [auth.KeySize]byte, ok bool) {
	vs := s.Get(passwordKey)
	if len(vs) == 0 || vs[0].Deleted {
		return 0, key, false
	}
	switch v := vs[0].Value; len(v) {
	case auth.KeySize:
		return 0, [auth.KeySize]byte(v), true
	case 4 + auth.KeySize:
		return binary.BigEndian.Uint32(v), [auth.KeySize]byte(v[4:]), true
	}
	return 0, key, false
}

// PasswordRequestKey returns the request key of the space's password, if
// one was set and is of the current generation (PasswordGeneration): a key
// set before a removal opens no request after it, until a member that
// knows the password derives the next generation's.
func (s *Space) PasswordRequestKey() (auth.RequestKey, bool) {
	gen, key, ok := s.PasswordKey()
	if !ok || gen < s.PasswordGeneration() {
		return auth.RequestKey{}, false
	}
	return auth.PasswordRequestKey(key, s.id), true
}

// SetRelay lists a relay in the space (FORMAT.md, "The space's relays"):
// key relayPrefix + id (the relay's peer ID, as text), value entry (its
// addresses; the node encodes and checks it, this package keeps it as
// bytes). Only a writer's op counts, like every op: a device that is not
// a writer, or no longer one, cannot list a relay.
func (s *Space) SetRelay(ctx context.Context, id string, entry []byte) error {
	if id == "" {
		return errors.New("space: a relay needs its peer ID")
	}
	return s.writeData(ctx, &Op{Kind: OpPut, Key: relayPrefix + id, Value: entry})
}

// DropRelay takes relay id off the space's list (a delete op).
func (s *Space) DropRelay(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("space: a relay needs its peer ID")
	}
	return s.writeData(ctx, &Op{Kind: OpDelete, Key: relayPrefix + id})
}

// RelayEntry is one relay the space lists: its peer ID (as the key names
// it) and the winning value written for it.
type RelayEntry struct {
	ID    string
	Entry []byte
}

// Relays returns at most limit entries of the space's relay list, in key
// order (the winner of each key whose winner is not a delete). A writer
// may write any number of keys: the caller bounds what it reads here.
func (s *Space) Relays(limit int) []RelayEntry {
	var out []RelayEntry
	for _, k := range s.List(relayPrefix, "", limit) {
		vs := s.Get(k)
		if len(vs) == 0 || vs[0].Deleted {
			continue
		}
		out = append(out, RelayEntry{ID: strings.TrimPrefix(k, relayPrefix), Entry: vs[0].Value})
	}
	return out
}
