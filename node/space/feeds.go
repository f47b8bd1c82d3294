package space

import (
	"slices"

	"github.com/mycelsync/mycel/feed"
)

type feedsState struct {
	gen   uint64 // View.gen
	keyed bool   // s.keyring != nil
	named int    // len(s.named)
}

// OpensFeed reports whether the first entry this device holds of feed k
// opens under the space's keys, bound to the space and the feed: it is an
// entry of this space, not of another one that used the same feed key.
func (s *Space) OpensFeed(k feed.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.cfg.Feeds.Feed(k)
	if err != nil {
		return false
	}
	held := f.Ranges()
	if len(held) == 0 {
		return false
	}
	data, err := f.Get(held[0].Start)
	if err != nil {
		return false
	}
	_, err = OpenEntry(s.id, k, held[0].Start, data, s.keys)
	return err == nil
}

// Feeds returns the feeds of the space: the ones this device reads into
// the view and replicates — serves to peers, fetches from them and accepts
// from them. They are
//
//   - the origin feed and this device's own;
//   - the feed of every writer whose add counts (removed writers too:
//     their ops before the removal still count);
//   - the causal past of those: every feed an op of theirs has seen (to
//     decide whether an op counts, and to apply it, its causal past must
//     be held), including the feed an op waits for;
//   - before this device holds a key, the feeds the clear headers of
//     add-writer ops name, followed from the origin (findKeyring): it
//     cannot yet tell which adds count, and needs the writers' feeds to
//     find its approval and build the view.
//
// The target of an add-writer op that does not count is not a feed of the
// space, unless an op that counts has it in its causal past.
func (s *Space) Feeds() []feed.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.feedsLocked()
}

// HasFeed reports whether k is one of Feeds.
func (s *Space) HasFeed(k feed.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feedsLocked()
	_, ok := slices.BinarySearchFunc(s.feeds, k, func(a, b feed.PublicKey) int { return OpID{Feed: a}.compare(OpID{Feed: b}) })
	return ok
}

func (s *Space) feedsLocked() []feed.PublicKey {
	at := feedsState{gen: s.view.gen, keyed: s.keyring != nil, named: len(s.named)}
	if s.feeds == nil || s.feedsAt != at {
		s.feeds, s.feedsAt = s.computeFeeds(), at
	}
	return slices.Clone(s.feeds)
}

func (s *Space) computeFeeds() []feed.PublicKey {
	set := map[feed.PublicKey]bool{s.origin: true, s.own: true}
	for k := range s.view.ws.adds {
		set[k] = true
	}
	if s.keyring == nil {
		for k := range s.named {
			set[k] = true
		}
	}
	// What an op waits for, by the feed of the op.
	waits := make(map[feed.PublicKey][]feed.PublicKey)
	for dep, ids := range s.view.blocked {
		for _, id := range ids {
			waits[id.Feed] = append(waits[id.Feed], dep)
		}
	}
	queue := make([]feed.PublicKey, 0, len(set))
	for k := range set {
		queue = append(queue, k)
	}
	for len(queue) > 0 {
		k := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		var past []feed.PublicKey
		if st := s.view.feeds[k]; st != nil {
			for f := range st.clock {
				past = append(past, f)
			}
		}
		past = append(past, waits[k]...)
		for _, f := range past {
			if !set[f] {
				set[f] = true
				queue = append(queue, f)
			}
		}
	}
	out := make([]feed.PublicKey, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b feed.PublicKey) int { return OpID{Feed: a}.compare(OpID{Feed: b}) })
	return out
}
