package node

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
)

func testInvite(t testing.TB) *auth.Invite {
	inv, err := auth.NewInvite(auth.SpaceID{7}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestLocatorBlob: the blob a member deposits opens with the code alone
// (space, expiry and hints come back); another invite's code opens
// nothing; a blob whose sealed hints were changed is refused whole.
func TestLocatorBlob(t *testing.T) {
	inv := testInvite(t)
	loc, err := inv.Locator(nil)
	if err != nil {
		t.Fatal(err)
	}
	hints := auth.InviteHints{Peer: []byte("peer-id"), Addrs: [][]byte{[]byte("addr-1"), bytes.Repeat([]byte{9}, auth.MaxInviteHintAddrSize)}}
	blob, err := encodeLocatorBlob(inv.Record(), loc, hints)
	if err != nil {
		t.Fatal(err)
	}
	code, err := auth.ParseInvite(inv.Code(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	found, err := decodeLocatorBlob(code, blob, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if found.Space != inv.Space || !found.Expires.Equal(inv.Expires) || !bytes.Equal(found.Hints.Peer, hints.Peer) || len(found.Hints.Addrs) != 2 ||
		!bytes.Equal(found.Hints.Addrs[1], hints.Addrs[1]) {
		t.Fatalf("opened: %+v", found)
	}
	if _, err := decodeLocatorBlob(testInvite(t), blob, time.Now()); !errors.Is(err, auth.ErrDecrypt) {
		t.Fatalf("another invite's code: %v", err)
	}
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	if _, err := decodeLocatorBlob(code, bad, time.Now()); err == nil {
		t.Fatal("changed hints accepted")
	}
	if _, err := decodeLocatorBlob(code, blob, inv.Expires.Add(time.Second)); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("past the expiry: %v", err)
	}
	// Without hints.
	blob, _ = encodeLocatorBlob(inv.Record(), loc, auth.InviteHints{})
	if found, err := decodeLocatorBlob(code, blob, time.Now()); err != nil || !found.Hints.IsZero() {
		t.Fatalf("without hints: %+v %v", found, err)
	}
	// The removal secret is the same for every member (from the record).
	if removalSecret(inv.Record()) != removalSecret(inv.Record()) || removalSecret(inv.Record()) == removalSecret(testInvite(t).Record()) {
		t.Fatal("removal secret")
	}
}

// FuzzLocatorBlob: whatever a relay answers, decoding it with a code
// never panics, and the hints' decoder accepts only what it re-encodes the
// same, within auth's bounds.
func FuzzLocatorBlob(f *testing.F) {
	inv := testInvite(f)
	loc, _ := inv.Locator(nil)
	blob, _ := encodeLocatorBlob(inv.Record(), loc, auth.InviteHints{Peer: []byte{1}, Addrs: [][]byte{{2}}})
	f.Add(blob)
	f.Add([]byte{1, 1, 1, 1, 2, 1, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		decodeLocatorBlob(inv, in, time.Now())
		h, ok := parseLocatorHints(in)
		if !ok {
			return
		}
		if len(h.Peer) > auth.MaxInviteHintPeerSize || len(h.Addrs) > auth.MaxInviteHintAddrs {
			t.Fatalf("hints out of bounds: %d, %d", len(h.Peer), len(h.Addrs))
		}
		pt := append([]byte{byte(len(h.Peer))}, h.Peer...)
		pt = append(pt, byte(len(h.Addrs)))
		for _, a := range h.Addrs {
			pt = append(append(pt, byte(len(a))), a...)
		}
		if !bytes.Equal(pt, in) {
			t.Fatal("hints re-encode differently")
		}
	})
}
