package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/replication"
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
// HandoversPerPeer are refused as busy; a new space beyond
// MaxUnconfirmedSpaces takes the place of the unconfirmed one handed least
// recently (TestMirrorUnconfirmedFlood); pending tokens of one space
// beyond MaxPendingPerSpace are refused as full; other peers are still
// served. Garbage gets a malformed reply and changes nothing.
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
	var last auth.MirrorToken
	for i := range 5 {
		last = randomToken(0)
		if err := hand(c1, last); err != nil {
			t.Fatalf("space %d: %v", i, err)
		}
	}
	if err := hand(c1, randomToken(0)); !errors.Is(err, ErrMirrorRefused) || !errors.Is(err, ErrMirrorBusy) {
		t.Fatalf("6th handover of one peer: %v", err)
	}
	if n := len(m.Spaces()); n != 3 {
		t.Fatalf("%d spaces", n)
	}

	// Another peer is served; pending tokens of one space are bounded.
	c2 := client()
	second, third := last, last
	rand.Read(second.Token[:])
	rand.Read(third.Token[:])
	if err := hand(c2, second); err != nil {
		t.Fatalf("a 2nd pending token of a space: %v", err)
	}
	if err := hand(c2, third); !errors.Is(err, ErrMirrorRefused) || !errors.Is(err, ErrMirrorFull) {
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

// TestMirrorUnconfirmedFlood: an outsider's peers fill every unconfirmed
// slot with spaces of their own making, and keep handing more. A member
// who then hands the token of a new space is not refused: the unconfirmed
// space handed least recently makes room, the member's proof confirms the
// new one, and a confirmed space is never the one dropped — not even once
// the mirror holds MaxSpaces, which still refuses when every space is
// confirmed.
func TestMirrorUnconfirmedFlood(t *testing.T) {
	ctx := context.Background()
	m := newMirror(t, MirrorLimits{MaxUnconfirmedSpaces: 3, MaxSpaces: 6, HandoversPerPeer: 16})
	binding := []byte("binding")
	confirm := func(w *writer) auth.MirrorToken {
		t.Helper()
		id := auth.SpaceID(w.key())
		kr, _ := auth.NewKeyring(id, nil)
		tok := kr.Epochs[0].MirrorToken(id)
		if err := m.Hand("member", tok); err != nil {
			t.Fatalf("a member's new space: %v", err)
		}
		pr := tok.ReplicationCapability().Proof(binding)
		k := w.key()
		if !m.spaces[id].Verify(binding, replication.Proof{Epochs: []replication.EpochProof{{Epoch: 0, Proof: pr[:]}}, Writer: &k}) {
			t.Fatal("the origin's proof did not confirm its token")
		}
		return tok
	}
	kept := confirm(newWriter(t))

	attacker, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { attacker.Close() })
	if err := attacker.Connect(ctx, peer.AddrInfo{ID: m.h.ID(), Addrs: m.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var bogus []auth.MirrorToken
	for i := range 10 {
		tok := randomToken(0)
		bogus = append(bogus, tok)
		if err := HandMirrorToken(ctx, attacker, m.h.ID(), tok); err != nil {
			t.Fatalf("bogus space %d: %v", i, err)
		}
	}
	if n := len(m.Spaces()); n != 4 {
		t.Fatalf("%d spaces, want the confirmed one and 3 unconfirmed", n)
	}
	if !slices.Contains(m.Spaces(), bogus[9].Space) || slices.Contains(m.Spaces(), bogus[6].Space) {
		t.Fatal("not the least recently handed unconfirmed space made room")
	}

	// The member's new space is taken and confirmed; the first stays.
	second := confirm(newWriter(t))
	spaces := m.Spaces()
	if !slices.Contains(spaces, kept.Space) || !slices.Contains(spaces, second.Space) || len(spaces) != 4 {
		t.Fatalf("after the member's handover: %d spaces, the first %v, the new %v",
			len(spaces), slices.Contains(spaces, kept.Space), slices.Contains(spaces, second.Space))
	}
	if c := m.Counts(); c.Confirmed != 2 || c.Evicted != 8 {
		t.Fatalf("counts %+v, want 2 confirmed and 8 evicted", c)
	}

	// MaxSpaces (6): confirmed spaces fill it; an unconfirmed one makes
	// room while there is one, then a new space is refused.
	for range 4 {
		confirm(newWriter(t))
	}
	if err := HandMirrorToken(ctx, attacker, m.h.ID(), randomToken(0)); !errors.Is(err, ErrMirrorFull) {
		t.Fatalf("a new space with every slot confirmed: %v", err)
	}
	if n := len(m.Spaces()); n != 6 || !slices.Contains(m.Spaces(), kept.Space) {
		t.Fatalf("%d spaces, the first kept: %v", n, slices.Contains(m.Spaces(), kept.Space))
	}
}
