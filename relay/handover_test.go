package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
)

func randomToken(epoch uint32) auth.MirrorToken {
	t := auth.MirrorToken{Epoch: epoch}
	rand.Read(t.Space[:])
	rand.Read(t.Token[:])
	return t
}

func TestHandoverCodec(t *testing.T) {
	tok := randomToken(3)
	b, err := encodeHandover(tok)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeHandover(bytes.NewReader(b))
	if err != nil || got != tok {
		t.Fatalf("round trip: %v %v", got, err)
	}
	bad := map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{2}, b[1:]...),
		"too long":  {1, 0xff, 0xff},
		"truncated": b[:len(b)-1],
		"garbage":   {1, 0, 3, 0xff, 0xff, 0xff},
	}
	for name, in := range bad {
		if _, err := decodeHandover(bytes.NewReader(in)); !errors.Is(err, ErrMalformedHandover) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for code := byte(0); code < 10; code++ {
		err := replyError(code)
		want := min(code, replyInternal) // unknown codes read as internal errors
		if got := replyCode(err); got != want || (code == replyOK) != (err == nil) || code != replyOK && !errors.Is(err, ErrMirrorRefused) {
			t.Errorf("code %d: %v reads back as %d", code, err, got)
		}
	}
}

// FuzzHandoverDecode: whatever a peer sends, the decoder reads at most
// maxHandoverSize bytes, and what it accepts encodes back to the same
// token.
func FuzzHandoverDecode(f *testing.F) {
	b, _ := encodeHandover(randomToken(1))
	f.Add(b)
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		tok, err := decodeHandover(r)
		if read := len(in) - r.Len(); read > maxHandoverSize {
			t.Fatalf("read %d bytes", read)
		}
		if err != nil {
			return
		}
		again, err := encodeHandover(tok)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeHandover(bytes.NewReader(again))
		if err != nil || back != tok {
			t.Fatalf("re-encoded: %v %v", back, err)
		}
	})
}

// TestHandoverLimits: over real hosts, a peer's handovers beyond
// HandoversPerPeer are refused as busy; new unconfirmed spaces beyond
// MaxUnconfirmedSpaces as full, pending tokens of one space beyond
// MaxPendingPerSpace too; other peers are still served. Garbage gets a
// malformed reply and changes nothing.
func TestHandoverLimits(t *testing.T) {
	ctx := context.Background()
	m := newMirror(t, MirrorLimits{HandoversPerPeer: 5, MaxUnconfirmedSpaces: 3, MaxPendingPerSpace: 2})
	client := func() host.Host {
		c, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Connect(ctx, peer.AddrInfo{ID: m.h.ID(), Addrs: m.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1 := client()
	hand := func(c host.Host, tok auth.MirrorToken) error { return HandMirrorToken(ctx, c, m.h.ID(), tok) }
	first := randomToken(0)
	for i := range 3 {
		tok := randomToken(0)
		if i == 0 {
			tok = first
		}
		if err := hand(c1, tok); err != nil {
			t.Fatalf("space %d: %v", i, err)
		}
	}
	if err := hand(c1, randomToken(0)); !errors.Is(err, ErrMirrorRefused) || !errors.Is(err, ErrMirrorFull) {
		t.Fatalf("a 4th unconfirmed space: %v", err)
	}
	if err := hand(c1, randomToken(0)); !errors.Is(err, ErrMirrorFull) {
		t.Fatalf("5th: %v", err)
	}
	if err := hand(c1, randomToken(0)); !errors.Is(err, ErrMirrorBusy) {
		t.Fatalf("6th handover of one peer: %v", err)
	}
	if n := len(m.Spaces()); n != 3 {
		t.Fatalf("%d spaces", n)
	}

	// Another peer is served; pending tokens of one space are bounded.
	c2 := client()
	second, third := first, first
	rand.Read(second.Token[:])
	rand.Read(third.Token[:])
	if err := hand(c2, second); err != nil {
		t.Fatalf("a 2nd pending token of a space: %v", err)
	}
	if err := hand(c2, third); !errors.Is(err, ErrMirrorFull) {
		t.Fatalf("a 3rd pending token of a space (limit 2): %v", err)
	}

	// Garbage: a malformed reply.
	st, err := client().NewStream(ctx, m.h.ID(), MirrorProtocol)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	st.Write([]byte{9, 9, 9, 9})
	st.CloseWrite()
	reply, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(reply, []byte{replyMalformed}) {
		t.Fatalf("reply to garbage: %v %v", reply, err)
	}
	if n := len(m.Spaces()); n != 3 {
		t.Fatalf("%d spaces", n)
	}
}
