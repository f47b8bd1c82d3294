package relay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/relay"
)

// TestDirectoryAgainstMirror: with a real relay whose mirror follows a
// daemon's space, the daemon (a writer) registers an alias through its
// API, and an outsider — any key, or a writer of a space of its own — can
// neither register a name for that space nor take the name over nor drop
// it, nor deposit a locator for the space.
func TestDirectoryAgainstMirror(t *testing.T) {
	ctx := context.Background()
	r, a, tok := mirrored(t)
	raddr := r.Host().Addrs()[0].String() + "/p2p/" + r.Host().ID().String()
	st, err := a.SetAlias(ctx, tok.Space.String(), "Notes", raddr)
	if err != nil || len(st.Relays) != 1 || st.Relays[0].Error != "" || st.Name != "notes" {
		t.Fatalf("the member's alias: %+v %v", st, err)
	}
	outsider := newBare(t, r)
	if err := outsider.h.Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	if err := relay.RegisterAlias(ctx, outsider.h, r.Host().ID(), "mine", tok.Space, key, now); !errors.Is(err, relay.ErrDirectoryForbidden) {
		t.Fatalf("an outsider naming the member's space: %v", err)
	}
	if err := relay.DropAlias(ctx, outsider.h, r.Host().ID(), "notes", key, now); !errors.Is(err, relay.ErrDirectoryForbidden) {
		t.Fatalf("an outsider dropping the member's alias: %v", err)
	}
	var loc relay.Locator
	loc.Space, loc.Expires, loc.Blob = tok.Space, now.Add(time.Hour), []byte{1}
	rand.Read(loc.ID[:])
	if err := relay.DepositLocator(ctx, outsider.h, r.Host().ID(), loc, key, now); !errors.Is(err, relay.ErrDirectoryForbidden) {
		t.Fatalf("an outsider's locator for the member's space: %v", err)
	}
	// A space of the outsider's own, mirrored too: it cannot take the name.
	var own auth.MirrorToken
	own.Space = auth.SpaceID(key.Public().(ed25519.PublicKey))
	rand.Read(own.Token[:])
	if err := relay.HandMirrorToken(ctx, outsider.h, r.Host().ID(), own); err != nil {
		t.Fatal(err)
	}
	if err := relay.RegisterAlias(ctx, outsider.h, r.Host().ID(), "notes", own.Space, key, now); !errors.Is(err, relay.ErrAliasTaken) {
		t.Fatalf("taking over the member's name: %v", err)
	}
	got, err := relay.ResolveAlias(ctx, outsider.h, r.Host().ID(), "NOTES")
	if err != nil || got != tok.Space {
		t.Fatalf("the name resolves to %v %v", got, err)
	}
	if n := r.Directory().Counts(); n.Aliases != 1 || n.Locators != 0 {
		t.Fatalf("directory: %+v", n)
	}
}
