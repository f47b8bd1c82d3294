package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/space"
)

// ViewCheck is what checkViews found of one space.
type ViewCheck struct {
	Space         auth.SpaceID
	Stored, Built [32]byte // digests of the stored view and of one rebuilt from the feeds
	Keys          int      // live keys in the rebuilt view
	Differ        []string // keys whose versions differ (at most maxDiffer)
}

const maxDiffer = 10

// diffViews lists the keys whose versions differ between a and b.
func diffViews(a, b *space.Space) []string {
	var out []string
	seen := make(map[string]bool)
	for _, sp := range []*space.Space{a, b} {
		for after := ""; len(out) < maxDiffer; {
			keys := sp.List("", after, 1000)
			if len(keys) == 0 {
				break
			}
			for _, k := range keys {
				if seen[k] {
					continue
				}
				seen[k] = true
				if !sameVersions(a.Get(k), b.Get(k)) && len(out) < maxDiffer {
					out = append(out, k)
				}
			}
			after = keys[len(keys)-1]
		}
	}
	return out
}

func sameVersions(x, y []space.Version) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i].ID != y[i].ID || x[i].HLC != y[i].HLC || x[i].Deleted != y[i].Deleted || !bytes.Equal(x[i].Value, y[i].Value) {
			return false
		}
	}
	return true
}

// checkView rebuilds the view of space id from its feeds (db, in its
// namespace ns) in memory and compares it with the stored view. ns is only
// read: what opening the stored view writes (the entries it had not
// applied yet) goes to an overlay in memory.
func (n *Node) checkView(id auth.SpaceID, ns feed.Storage, db *feed.DB) (ViewCheck, error) {
	vc := ViewCheck{Space: id}
	rec, err := n.readRecord(id)
	if err != nil {
		return vc, err
	}
	cfg := space.Config{Feeds: db, Writer: ed25519.NewKeyFromSeed(rec.Writer), Device: n.device}
	cfg.Store = &overlay{base: ns, top: memstore.New(), deleted: make(map[string]bool)}
	stored, err := space.Open(cfg, id)
	if err != nil {
		return vc, fmt.Errorf("open the stored view: %w", err)
	}
	vc.Stored = stored.Digest()
	fresh := memstore.New()
	kk := append([]byte("sk"), id[:]...) // the keyring (space.keyringKey)
	if kr, err := ns.Get(kk); err == nil {
		if err := fresh.Commit([]feed.Write{{Key: kk, Value: kr}}); err != nil {
			return vc, err
		}
	} else if !errors.Is(err, feed.ErrNotFound) {
		return vc, err
	}
	cfg.Store = fresh
	built, err := space.Open(cfg, id)
	if err != nil {
		return vc, fmt.Errorf("rebuild the view: %w", err)
	}
	vc.Built, vc.Keys = built.Digest(), built.Keys()
	// The digest is kept with the view; the registers are read when
	// asked for. Compare every key's versions.
	vc.Differ = diffViews(stored, built)
	return vc, nil
}

// overlay is a Storage that reads base under top and writes only top.
type overlay struct {
	base    feed.Storage
	top     *memstore.Store
	deleted map[string]bool
}

func (o *overlay) Get(key []byte) ([]byte, error) {
	if v, err := o.top.Get(key); err == nil || !errors.Is(err, feed.ErrNotFound) {
		return v, err
	}
	if o.deleted[string(key)] {
		return nil, feed.ErrNotFound
	}
	return o.base.Get(key)
}

func (o *overlay) Scan(start, end []byte, fn func(key, value []byte) error) error {
	type kv struct{ k, v []byte }
	var tops []kv
	if err := o.top.Scan(start, end, func(k, v []byte) error {
		tops = append(tops, kv{bytes.Clone(k), bytes.Clone(v)})
		return nil
	}); err != nil {
		return err
	}
	i := 0
	stopped := false
	call := func(k, v []byte) error {
		err := fn(k, v)
		if errors.Is(err, feed.ErrStopScan) {
			stopped = true
		}
		return err
	}
	err := o.base.Scan(start, end, func(k, v []byte) error {
		for i < len(tops) && bytes.Compare(tops[i].k, k) < 0 {
			if err := call(tops[i].k, tops[i].v); err != nil {
				return err
			}
			i++
		}
		if i < len(tops) && bytes.Equal(tops[i].k, k) {
			i++
			return call(tops[i-1].k, tops[i-1].v)
		}
		if o.deleted[string(k)] {
			return nil
		}
		return call(k, v)
	})
	if err != nil || stopped {
		return err
	}
	for ; i < len(tops); i++ {
		if err := fn(tops[i].k, tops[i].v); err != nil {
			if errors.Is(err, feed.ErrStopScan) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (o *overlay) Commit(writes []feed.Write) error {
	for _, w := range writes {
		if w.Delete {
			o.deleted[string(w.Key)] = true
		} else {
			delete(o.deleted, string(w.Key))
		}
	}
	return o.top.Commit(writes)
}

func (o *overlay) Close() error { return nil }
