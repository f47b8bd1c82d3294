package core

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
)

func locatorReply(t testing.TB, inv *auth.Invite, h auth.InviteHints) []byte {
	loc, err := inv.Locator(nil)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := auth.SealRelayLocator(inv.Record(), loc, h)
	if err != nil {
		t.Fatal(err)
	}
	body := binary.BigEndian.AppendUint64(nil, uint64(inv.Expires.Unix()))
	body = append(body, blob...)
	out := []byte{dirOK, 0, 0}
	binary.BigEndian.PutUint16(out[1:], uint16(len(body)))
	return append(out, body...)
}

// TestOpenLocatorReply: the relay's reply opens with the code (space and
// the inviter's hints back); another invite's locator, a forged or
// garbled reply, an expired invite and a "not found" are refused with
// their own errors.
func TestOpenLocatorReply(t *testing.T) {
	now := time.Now()
	inv, err := auth.NewInvite(auth.SpaceID{7}, now.Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := auth.InviteHints{Peer: []byte("peer-id"), Addrs: [][]byte{[]byte("addr-1")}}
	reply := locatorReply(t, inv, h)
	req, err := LocatorRequest(inv.Code(), now.UnixMilli())
	id := inv.ID()
	if err != nil || !bytes.Equal(req, append([]byte{1, 2, 0, 16}, id[:]...)) {
		t.Fatalf("request %x, %v", req, err)
	}
	got, err := OpenLocatorReply(inv.Code(), reply, now.UnixMilli())
	if err != nil || got.Space != hex.EncodeToString(inv.Space[:]) || !bytes.Equal(got.Peer, h.Peer) || len(got.Addrs) != 1 {
		t.Fatalf("opened %+v, %v", got, err)
	}
	other, _ := auth.NewInvite(auth.SpaceID{8}, now.Add(time.Hour), nil)
	if _, err := OpenLocatorReply(inv.Code(), locatorReply(t, other, h), now.UnixMilli()); err == nil {
		t.Fatal("another invite's locator opened")
	}
	for i := 3 + 8; i < len(reply); i += 7 { // a flipped byte of the blob
		bad := bytes.Clone(reply)
		bad[i] ^= 1
		if _, err := OpenLocatorReply(inv.Code(), bad, now.UnixMilli()); err == nil {
			t.Fatalf("reply with byte %d flipped opened", i)
		}
	}
	for _, bad := range [][]byte{nil, reply[:2], reply[:len(reply)-1], append(bytes.Clone(reply), 0), {0, 0, 0}, {0, 0xff, 0xff}} {
		if _, err := OpenLocatorReply(inv.Code(), bad, now.UnixMilli()); err == nil {
			t.Fatalf("garbled reply %x opened", bad)
		}
	}
	if _, err := OpenLocatorReply(inv.Code(), []byte{dirNotFound, 0, 0}, now.UnixMilli()); !errors.Is(err, ErrNoLocator) {
		t.Fatalf("not found: %v", err)
	}
	if _, err := OpenLocatorReply(inv.Code(), reply, now.Add(2*time.Hour).UnixMilli()); err == nil {
		t.Fatal("expired invite opened")
	}
}

// TestAliasReply: the alias request is the relay's op 6 with the name in
// normal form; the reply gives the space, a "not found" ErrUnknownAlias,
// a garbled reply an error.
func TestAliasReply(t *testing.T) {
	req, err := AliasRequest("  Family ")
	if err != nil || !bytes.Equal(req, []byte{1, 6, 0, 7, 6, 'f', 'a', 'm', 'i', 'l', 'y'}) {
		t.Fatalf("request %x, %v", req, err)
	}
	for _, bad := range []string{"", "-a", "a-", "a--b", "été", "a b", string(bytes.Repeat([]byte{'a'}, 33))} {
		if _, err := AliasRequest(bad); err == nil {
			t.Fatalf("alias %q accepted", bad)
		}
	}
	sp := bytes.Repeat([]byte{5}, 32)
	if s, err := AliasReply(append([]byte{0, 0, 32}, sp...)); err != nil || s != hex.EncodeToString(sp) {
		t.Fatalf("space %s, %v", s, err)
	}
	if _, err := AliasReply([]byte{dirNotFound, 0, 0}); !errors.Is(err, ErrUnknownAlias) {
		t.Fatalf("not found: %v", err)
	}
	for _, bad := range [][]byte{nil, {0, 0, 31}, append([]byte{0, 0, 31}, sp[:31]...), append([]byte{0, 0, 33}, append(sp, 1)...)} {
		if _, err := AliasReply(bad); err == nil {
			t.Fatalf("garbled reply %x read", bad)
		}
	}
}

// FuzzDirectoryReply: no reply of the relay panics the page's decoding,
// and none opens under a code whose locator it is not.
func FuzzDirectoryReply(f *testing.F) {
	inv, err := auth.NewInvite(auth.SpaceID{7}, time.Now().Add(24*time.Hour), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(locatorReply(f, inv, auth.InviteHints{Peer: []byte("p"), Addrs: [][]byte{{1}}}))
	f.Add([]byte{0, 0, 32, 1, 2, 3})
	f.Add([]byte{dirNotFound, 0, 0})
	other, _ := auth.NewInvite(auth.SpaceID{8}, time.Now().Add(24*time.Hour), nil)
	code := other.Code()
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := OpenLocatorReply(code, b, time.Now().UnixMilli()); err == nil {
			t.Fatal("a reply made for another invite opened")
		}
		AliasReply(b)
	})
}
