package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/space"
)

// The store's layout, under layoutKey. Before layout 2 (no layoutKey) every
// space kept its feeds, keyring and view at the top of the store, and all
// spaces shared one feed.DB: a feed one space named was served in another.
// Since layout 2 each space lives in its own namespace (spacePrefix).
const (
	layoutKey     = "layout"
	layoutSpaces  = "2"         // spaces in namespaces
	layoutCopying = "2-copying" // spaces copied into namespaces; the old keys not all deleted yet
)

// oldFeedPrefixes are the keys of the feeds of layout 1 ("f" and a tag,
// feed/keys.go).
var oldFeedPrefixes = [][]byte{[]byte("fh"), []byte("fe"), []byte("fn"), []byte("fr"), []byte("fx")}

// migrate moves the spaces of a store of layout 1 into namespaces, once:
//
//   - each space's own feed (this device's writes: never lost), its keyring
//     and its view are copied into its namespace;
//   - so is every other feed the space reads (space.Space.Feeds), unless it
//     is another space's: this device's own feed in another space, or a feed
//     whose entries open under another space's keys. That is how a feed one
//     space merely named (an add-writer by a member of that space naming a
//     feed of another) stays out of it. A feed left out is fetched again
//     from the space's peers if it belongs there after all.
//   - then the keys of layout 1 are deleted.
//
// Copying only writes the namespaces and deleting starts once every space
// is copied (layoutCopying), so a crash at any point resumes.
func (n *Node) migrate(ids []auth.SpaceID) error {
	v, err := n.store.Get([]byte(layoutKey))
	switch {
	case err == nil && string(v) == layoutSpaces:
		return nil
	case err == nil && string(v) == layoutCopying:
		return n.dropLayout1(ids)
	case err == nil:
		return fmt.Errorf("node: the store has layout %q, which this version does not know (made by a newer version?)", v)
	case !errors.Is(err, feed.ErrNotFound):
		return fmt.Errorf("node: read the store's layout: %w", err)
	}
	old, err := n.hasLayout1(ids)
	if err != nil {
		return err
	}
	if old {
		if err := n.copyLayout1(ids); err != nil {
			return fmt.Errorf("node: move the spaces of an older store into namespaces: %w", err)
		}
		if err := n.kept.Commit([]feed.Write{{Key: []byte(layoutKey), Value: []byte(layoutCopying)}}); err != nil {
			return err
		}
		return n.dropLayout1(ids)
	}
	return n.kept.Commit([]feed.Write{{Key: []byte(layoutKey), Value: []byte(layoutSpaces)}})
}

func (n *Node) hasLayout1(ids []auth.SpaceID) (bool, error) {
	prefixes := slices.Clone(oldFeedPrefixes)
	for _, id := range ids {
		prefixes = append(prefixes, space.StorePrefixes(id)...)
	}
	for _, p := range prefixes {
		found := false
		err := n.store.Scan(p, feed.PrefixEnd(p), func(_, _ []byte) error {
			found = true
			return feed.ErrStopScan
		})
		if err != nil || found {
			return found, err
		}
	}
	return false, nil
}

func (n *Node) copyLayout1(ids []auth.SpaceID) error {
	db, err := feed.Open(n.kept, feed.WithLogger(n.log))
	if err != nil {
		return err
	}
	held, err := db.Feeds()
	if err != nil {
		db.Close()
		return err
	}
	type old struct {
		own   feed.PublicKey
		feeds []feed.PublicKey
		opens map[feed.PublicKey]bool
	}
	spaces := make(map[auth.SpaceID]*old)
	owns := make(map[feed.PublicKey]bool)
	for _, id := range ids {
		rec, err := n.readRecord(id)
		if err != nil {
			db.Close()
			return err
		}
		cfg := space.Config{Feeds: db, Store: n.kept, // layout 1
			Writer: ed25519.NewKeyFromSeed(rec.Writer), Device: n.device, Logger: n.log}
		sp, err := space.Open(cfg, id)
		if err != nil {
			db.Close()
			return fmt.Errorf("open space %s: %w", id, err)
		}
		o := &old{own: sp.Feed(), feeds: sp.Feeds(), opens: make(map[feed.PublicKey]bool)}
		for _, k := range held {
			o.opens[k] = sp.OpensFeed(k)
		}
		if err := sp.Close(); err != nil {
			db.Close()
			return err
		}
		spaces[id], owns[o.own] = o, true
	}
	// Heads signed at open (entries stored before a crash) are stored now.
	if err := db.Close(); err != nil {
		return err
	}
	for id, o := range spaces {
		ns := feed.Prefixed(n.kept, spacePrefix(id))
		var prefixes [][]byte
		copied := 0
		for _, k := range o.feeds {
			if k != o.own {
				if owns[k] {
					continue // this device's feed in another space
				}
				elsewhere := false
				for other, p := range spaces {
					elsewhere = elsewhere || other != id && p.opens[k]
				}
				if elsewhere {
					continue // another space's entries
				}
			}
			copied++
			for _, p := range oldFeedPrefixes {
				prefixes = append(prefixes, append(slices.Clone(p), k[:]...))
			}
		}
		prefixes = append(prefixes, space.StorePrefixes(id)...)
		for _, p := range prefixes {
			if err := copyPrefix(n.store, ns, p); err != nil {
				return fmt.Errorf("space %s: %w", id, err)
			}
		}
		n.log.Info("store: moved a space into its namespace", "space", id, "feeds", copied)
	}
	return nil
}

// dropLayout1 deletes the keys of layout 1, then records layout 2.
func (n *Node) dropLayout1(ids []auth.SpaceID) error {
	prefixes := slices.Clone(oldFeedPrefixes)
	for _, id := range ids {
		prefixes = append(prefixes, space.StorePrefixes(id)...)
	}
	for _, p := range prefixes {
		if err := n.deletePrefix(p); err != nil {
			return fmt.Errorf("node: delete the keys of the older layout: %w", err)
		}
	}
	return n.kept.Commit([]feed.Write{{Key: []byte(layoutKey), Value: []byte(layoutSpaces)}})
}

// Batches of the copies and deletes: well within feed.MaxCommitBytes and
// feed.MaxCommitWrites, prefixes included.
const (
	batchWrites = 8 << 10
	batchBytes  = 2 << 20
)

// copyPrefix copies every key of src under prefix p to dst, in batches.
func copyPrefix(src, dst feed.Storage, p []byte) error {
	start, end := slices.Clone(p), feed.PrefixEnd(p)
	for {
		var batch []feed.Write
		size := 0
		err := src.Scan(start, end, func(k, v []byte) error {
			batch = append(batch, feed.Write{Key: bytes.Clone(k), Value: bytes.Clone(v)})
			size += len(k) + len(v) + feed.MaxPrefixSize
			if len(batch) == batchWrites || size >= batchBytes {
				return feed.ErrStopScan
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := dst.Commit(batch); err != nil {
			return err
		}
		start = append(batch[len(batch)-1].Key, 0)
	}
}

// deletePrefix deletes every key of the store under prefix p, in batches.
func (n *Node) deletePrefix(p []byte) error {
	for {
		var batch []feed.Write
		err := n.store.Scan(p, feed.PrefixEnd(p), func(k, _ []byte) error {
			batch = append(batch, feed.Write{Key: bytes.Clone(k), Delete: true})
			if len(batch) == batchWrites {
				return feed.ErrStopScan
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := n.kept.Commit(batch); err != nil {
			return err
		}
	}
}
