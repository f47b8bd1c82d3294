package core

import (
	"bytes"
	"fmt"
	"testing"
)

// TestSessionPump replicates a feed of n entries from one node to another
// by passing frames as the page does, and checks every entry arrived.
func TestSessionPump(t *testing.T) {
	const n = 300
	sp := bytes.Repeat([]byte{0x51}, 32)
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	key, _ := PublicKey(seed(9))
	a, err := NewNode([][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	for i := range n {
		entries = append(entries, fmt.Appendf(nil, "entry %d", i))
	}
	if _, err := a.Append(seed(9), entries); err != nil {
		t.Fatal(err)
	}
	b, _ := NewNode([][]byte{key})
	sa, err := a.NewSession(SessionConfig{LocalID: []byte("a"), RemoteID: []byte("b"), Nonce: seed(1), Space: sp, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := b.NewSession(SessionConfig{LocalID: []byte("b"), RemoteID: []byte("a"), Nonce: seed(2), Space: sp, Secrets: secrets})
	if errA, errB := pump(t, sa, sb); errA != nil || errB != nil {
		t.Fatalf("session errors: %v, %v", errA, errB)
	}
	if l, _ := b.Length(key); l != n {
		t.Fatalf("b holds %d entries of %d", l, n)
	}
	if e, err := b.Get(key, n-1); err != nil || !bytes.Equal(e, entries[n-1]) {
		t.Fatalf("b's last entry: %q, %v", e, err)
	}
	// A session with another space's secret is refused by the peer.
	c, _ := NewNode([][]byte{key})
	sc, _ := c.NewSession(SessionConfig{LocalID: []byte("c"), RemoteID: []byte("a"), Nonce: seed(3), Space: sp, Secrets: []Secret{{Secret: seed(0x66)}}})
	sa2, _ := a.NewSession(SessionConfig{LocalID: []byte("a"), RemoteID: []byte("c"), Nonce: seed(4), Space: sp, Secrets: secrets})
	if errA, _ := pump(t, sa2, sc); errA == nil {
		t.Fatal("a session proving another secret was not refused")
	}
	if l, _ := c.Length(key); l != 0 {
		t.Fatalf("the refused peer got %d entries", l)
	}
}

// pump passes frames between two sessions until both are quiet or one
// fails, and returns their errors.
func pump(t testing.TB, sa, sb *Session) (errA, errB error) {
	toB, errA := sa.Start()
	toA, errB := sb.Start()
	return pumpFrom(t, sa, sb, toB, toA, errA, errB)
}

// pumpFrom is pump with the frames each side has to send already.
func pumpFrom(t testing.TB, sa, sb *Session, toB, toA [][]byte, errA, errB error) (error, error) {
	for i := 0; errA == nil && errB == nil && len(toA)+len(toB) > 0; i++ {
		if i > 10000 {
			t.Fatal("the sessions do not settle")
		}
		var nextA, nextB [][]byte
		for _, f := range toB {
			out, err := sb.Step(f)
			if err != nil {
				errB = err
				break
			}
			nextA = append(nextA, out...)
		}
		for _, f := range toA {
			out, err := sa.Step(f)
			if err != nil {
				errA = err
				break
			}
			nextB = append(nextB, out...)
		}
		toA, toB = nextA, nextB
	}
	return errA, errB
}

// TestViewKeptUpToDate: a node whose view was started before a sync keeps
// it as the session ingests batches, and ends with the digest of a view
// built from scratch over the same entries.
func TestViewKeptUpToDate(t *testing.T) {
	sp, _ := PublicKey(seed(9))
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	a, _ := NewNode([][]byte{sp})
	const n = 500
	var entries [][]byte
	for i := range n {
		e, err := SealEntry(sp, sp, uint64(i), secrets[0], Op{Kind: "put", Key: fmt.Sprintf("k%d", i%97), Value: fmt.Appendf(nil, "v%d", i), HLC: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	if _, err := a.Append(seed(9), entries); err != nil {
		t.Fatal(err)
	}
	b, _ := NewNode([][]byte{sp})
	if v, err := b.View(sp, secrets); err != nil || len(v.KVs) != 0 {
		t.Fatalf("the empty view: %+v, %v", v, err)
	}
	sa, _ := a.NewSession(SessionConfig{LocalID: []byte("a"), RemoteID: []byte("b"), Nonce: seed(1), Space: sp, Secrets: secrets})
	sb, _ := b.NewSession(SessionConfig{LocalID: []byte("b"), RemoteID: []byte("a"), Nonce: seed(2), Space: sp, Secrets: secrets})
	if errA, errB := pump(t, sa, sb); errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	kept, _ := b.View(sp, secrets)
	fresh, _ := a.View(sp, secrets)
	if !bytes.Equal(kept.Digest, fresh.Digest) || len(kept.KVs) != 97 || kept.Invalid != 0 || kept.Waiting != 0 {
		t.Fatalf("the kept view (%x, %d keys, %d invalid, %d waiting) is not the one built from scratch (%x, %d keys)",
			kept.Digest, len(kept.KVs), kept.Invalid, kept.Waiting, fresh.Digest, len(fresh.KVs))
	}
	if sum, err := b.ViewSummary(sp, secrets); err != nil || !bytes.Equal(sum.Digest, kept.Digest) || sum.Keys != 97 || len(sum.KVs) != 0 {
		t.Fatalf("the summary: %x, %d keys, %d listed, %v", sum.Digest, sum.Keys, len(sum.KVs), err)
	}
}

// TestSessionFlushPassesOn: a node in the middle (a page) replicates from
// a source in one session while another session with a sink is open and
// quiet; what the first session ingests, the second announces through
// Flush, and the sink gets every entry without frames of its own.
func TestSessionFlushPassesOn(t *testing.T) {
	const n = 100
	sp := bytes.Repeat([]byte{0x51}, 32)
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	key, _ := PublicKey(seed(9))
	src, _ := NewNode([][]byte{key})
	mid, _ := NewNode([][]byte{key})
	sink, _ := NewNode([][]byte{key})
	var entries [][]byte
	for i := range n {
		entries = append(entries, fmt.Appendf(nil, "entry %d", i))
	}
	if _, err := src.Append(seed(9), entries); err != nil {
		t.Fatal(err)
	}
	cfg := func(l, r string, nonce byte) SessionConfig {
		return SessionConfig{LocalID: []byte(l), RemoteID: []byte(r), Nonce: seed(nonce), Space: sp, Secrets: secrets}
	}
	toSink, _ := mid.NewSession(cfg("m", "s", 1))
	atSink, _ := sink.NewSession(cfg("s", "m", 2))
	if errA, errB := pump(t, toSink, atSink); errA != nil || errB != nil {
		t.Fatalf("session errors: %v, %v", errA, errB)
	}
	fromSrc, _ := mid.NewSession(cfg("m", "x", 3))
	atSrc, _ := src.NewSession(cfg("x", "m", 4))
	if errA, errB := pump(t, fromSrc, atSrc); errA != nil || errB != nil {
		t.Fatalf("session errors: %v, %v", errA, errB)
	}
	if l, _ := mid.Length(key); l != n {
		t.Fatalf("the middle holds %d entries of %d", l, n)
	}
	out, err := toSink.Flush()
	if err != nil || len(out) == 0 {
		t.Fatalf("the quiet session has %d frames to send after the other ingested (%v)", len(out), err)
	}
	if errA, errB := pumpFrom(t, toSink, atSink, out, nil, nil, nil); errA != nil || errB != nil {
		t.Fatalf("session errors: %v, %v", errA, errB)
	}
	if l, _ := sink.Length(key); l != n {
		t.Fatalf("the sink holds %d entries of %d", l, n)
	}
	if e, err := sink.Get(key, n-1); err != nil || !bytes.Equal(e, entries[n-1]) {
		t.Fatalf("the sink's last entry: %q, %v", e, err)
	}
	// A closed session is told nothing more.
	toSink.Close()
	if _, ok := mid.sessions[toSink]; ok {
		t.Fatal("a closed session is still the node's")
	}
}
