package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
)

// TestSpaceInfoShowsForks: a second history of this device's own feed,
// signed with its key elsewhere (the key copied to another device) and
// offered to the node, freezes the feed, and the space's info names it
// (api.SpaceInfo.Forked: the CLI and the web UI warn from it).
func TestSpaceInfoShowsForks(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, loopbackConfig(t))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := a.Put(ctx, info.ID, fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := a.Space(info.ID); len(got.Forked) != 0 {
		t.Fatalf("a new space shows forks: %v", got.Forked)
	}
	m, err := a.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	own := m.sp.Feed()
	length := m.sp.Held(own)

	// The copied key writes as many entries, other ones.
	db, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clone, err := db.Writer(m.sp.WriterKey())
	if err != nil {
		t.Fatal(err)
	}
	for range length {
		if _, err := clone.Append(ctx, []byte("another history")); err != nil {
			t.Fatal(err)
		}
	}
	b, err := clone.Feed.Batch(feed.BatchRequest{Base: length})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ingest(own, b); !errors.Is(err, feed.ErrFork) {
		t.Fatalf("the other history's head: %v, want a fork", err)
	}
	got, err := a.Space(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x", own[:]); !slices.Equal(got.Forked, []string{want}) {
		t.Fatalf("Forked %v, want [%s]", got.Forked, want)
	}
}
