package space

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// nextHLC returns a hybrid logical clock after every op this device has
// seen and written: (Unix ms << 16) | counter.
func (s *Space) nextHLC() uint64 {
	phys := uint64(s.cfg.Now().UnixMilli()) << 16
	s.hlc = max(s.hlc+1, phys)
	return s.hlc
}

// write appends ops to this device's feed and applies them. The caller
// must not hold s.mu.
func (s *Space) write(ctx context.Context, ops ...*Op) ([]Change, error) {
	return s.writeWith(ctx, nil, ops...)
}

// writeWith writes ops sealed under secret, or under writeKey when nil.
func (s *Space) writeWith(ctx context.Context, secret *auth.EpochSecret, ops ...*Op) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	if secret == nil {
		es, err := s.writeKey()
		if err != nil {
			return nil, err
		}
		secret = &es
	}
	var err error
	index := s.w.Length()
	entries := make([][]byte, len(ops))
	for i, op := range ops {
		op.Seen = s.delta()
		op.HLC = s.nextHLC()
		entries[i], err = SealEntry(s.id, s.own, index+uint64(i), *secret, op, s.cfg.Rand)
		if err != nil {
			return nil, err
		}
	}
	first, err := s.w.Append(ctx, entries...)
	if err != nil {
		return nil, err
	}
	if first != index {
		return nil, fmt.Errorf("space: feed appended at %d, expected %d", first, index)
	}
	var changes []Change
	for i, op := range ops {
		c, err := s.view.Apply(s.own, index+uint64(i), op)
		if err != nil {
			return nil, fmt.Errorf("space: %w to the feed, but %w", errAppended, err)
		}
		changes = append(changes, c...)
	}
	s.notify(changes)
	return changes, nil
}

// delta returns the feeds whose applied length grew since this device's
// last op, and records them as told.
func (s *Space) delta() []Seen {
	var out []Seen
	for k, st := range s.view.feeds {
		if k != s.own && st.applied > s.told[k] {
			out = append(out, Seen{Feed: k, Length: st.applied})
			s.told[k] = st.applied
		}
	}
	slices.SortFunc(out, func(a, b Seen) int { return OpID{Feed: a.Feed}.compare(OpID{Feed: b.Feed}) })
	return out
}

// Put sets key to value.
func (s *Space) Put(ctx context.Context, key string, value []byte) error {
	if err := appKeys(key); err != nil {
		return err
	}
	return s.writeData(ctx, &Op{Kind: OpPut, Key: key, Value: value})
}

// KV is a key and a value, for PutMany.
type KV struct {
	Key   string
	Value []byte
}

// PutMany sets several keys in one append: one storage commit, one sync
// and one signature for all of them (at most feed.MaxAppendEntries keys
// and feed.MaxAppendBytes in all).
func (s *Space) PutMany(ctx context.Context, kvs []KV) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	ops := make([]*Op, len(kvs))
	for i, kv := range kvs {
		if err := appKeys(kv.Key); err != nil {
			return err
		}
		ops[i] = &Op{Kind: OpPut, Key: kv.Key, Value: kv.Value}
	}
	_, err := s.write(ctx, ops...)
	return err
}

// Delete deletes key (a delete is an op in the key's register too).
func (s *Space) Delete(ctx context.Context, key string) error {
	if err := appKeys(key); err != nil {
		return err
	}
	return s.writeData(ctx, &Op{Kind: OpDelete, Key: key})
}

func (s *Space) writeData(ctx context.Context, op *Op) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	_, err := s.write(ctx, op)
	return err
}

// IsWriter reports whether this device's new ops count: it is a writer
// in the view, and no member showed it its removal (LearnRemoval).
func (s *Space) IsWriter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.removed && !s.staleLocked() && s.view.WriterSet().IsWriter(s.own)
}

// AddWriter approves a device: an add-writer op naming it, with the
// keyring sealed to its device key.
func (s *Space) AddWriter(ctx context.Context, target feed.PublicKey, name string, device *auth.DevicePublicKey) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	s.mu.Lock()
	kr := s.keyring
	s.mu.Unlock()
	if kr == nil {
		return ErrNoKeys
	}
	sealed, err := auth.SealKeyring(device, kr, auth.Binding{Space: s.id, Feed: target})
	if err != nil {
		return err
	}
	_, err = s.write(ctx, &Op{Kind: OpAddWriter, Target: target, Name: name, DevicePublic: device.Bytes(), SealedKeyring: sealed})
	return err
}

// RemoveWriter removes a device and starts a new epoch: a fresh secret
// sealed to every remaining writer, so the removed device reads nothing
// written after.
func (s *Space) RemoveWriter(ctx context.Context, target feed.PublicKey) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	rot, es, err := s.rotation(target)
	if err != nil {
		return err
	}
	_, err = s.write(ctx, &Op{Kind: OpRemoveWriter, Target: target, Rotation: rot})
	if err != nil && !errors.Is(err, errAppended) {
		return err
	}
	// The op is in the feed: its secret is the newest.
	s.mu.Lock()
	defer s.mu.Unlock()
	return cmp.Or(err, s.learnSecret(es))
}

// Rotate starts a new epoch without removing anyone.
func (s *Space) Rotate(ctx context.Context) error {
	if !s.IsWriter() {
		return ErrReadOnly
	}
	rot, es, err := s.rotation(feed.PublicKey{})
	if err != nil {
		return err
	}
	_, err = s.write(ctx, &Op{Kind: OpRotate, Rotation: rot})
	if err != nil && !errors.Is(err, errAppended) {
		return err
	}
	// The op is in the feed: its secret is the newest.
	s.mu.Lock()
	defer s.mu.Unlock()
	return cmp.Or(err, s.learnSecret(es))
}
