package core

import (
	"bytes"
	"fmt"
	"testing"
)

// replicated returns a node b that replicated n entries of seed(9)'s feed
// from a node a in the space sp, in several batches, and the records b
// handed out.
func replicated(t testing.TB, n int, secrets []Secret) (sp, key []byte, b *Node, recs [][]byte) {
	t.Helper()
	key, _ = PublicKey(seed(9))
	sp = key // the origin feed is the space's ID: seed(9) writes
	a, _ := NewNode([][]byte{key})
	b, _ = NewNode([][]byte{key})
	for round := range 2 {
		var entries [][]byte
		for i := range n / 2 {
			op := Op{Kind: "put", Key: fmt.Sprintf("k%d-%d", round, i), Value: []byte("v"), HLC: uint64(round*n + i + 1)}
			l, _ := a.Length(key)
			e, err := SealEntry(sp, key, l+uint64(len(entries)), secrets[0], op)
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, e)
		}
		if _, err := a.Append(seed(9), entries); err != nil {
			t.Fatal(err)
		}
		sa, _ := a.NewSession(SessionConfig{LocalID: []byte("a"), RemoteID: []byte("b"), Nonce: seed(1), Space: sp, Secrets: secrets})
		sb, _ := b.NewSession(SessionConfig{LocalID: []byte("b"), RemoteID: []byte("a"), Nonce: seed(2), Space: sp, Secrets: secrets})
		if errA, errB := pump(t, sa, sb); errA != nil || errB != nil {
			t.Fatalf("session errors: %v, %v", errA, errB)
		}
		rs, dropped := b.TakeRecords()
		if dropped != 0 || len(rs) == 0 {
			t.Fatalf("round %d: %d records, %d dropped", round, len(rs), dropped)
		}
		recs = append(recs, rs...)
	}
	return sp, key, b, recs
}

// TestPersistRoundTrip: a node started from the records another node
// handed out holds every entry and has the same view digest.
func TestPersistRoundTrip(t *testing.T) {
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	sp, key, b, recs := replicated(t, 40, secrets)
	want, err := b.ViewSummary(sp, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if want.Keys != 40 {
		t.Fatalf("source view has %d keys, want 40", want.Keys)
	}
	c, _ := NewNode([][]byte{key})
	for i, r := range recs {
		if err := c.Import(r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if rs, _ := c.TakeRecords(); len(rs) != 0 {
		t.Fatalf("imported records handed back: %d", len(rs))
	}
	if l, _ := c.Held(key); l != 40 {
		t.Fatalf("restored node holds %d entries, want 40", l)
	}
	got, err := c.ViewSummary(sp, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Digest, want.Digest) || got.Keys != want.Keys {
		t.Fatalf("restored view %x/%d keys, want %x/%d", got.Digest, got.Keys, want.Digest, want.Keys)
	}
}

// TestPersistDamagedRefused: a record with any byte changed, cut short,
// of another version or of a feed the node does not replicate is refused
// and stores nothing.
func TestPersistDamagedRefused(t *testing.T) {
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	_, key, _, recs := replicated(t, 10, secrets)
	rec := recs[0]
	for i := range rec {
		bad := bytes.Clone(rec)
		bad[i] ^= 0x01
		c, _ := NewNode([][]byte{key})
		if err := c.Import(bad); err == nil {
			t.Errorf("record with byte %d flipped was imported", i)
		}
		if l, _ := c.Held(key); l != 0 {
			t.Fatalf("record with byte %d flipped stored %d entries", i, l)
		}
	}
	c, _ := NewNode([][]byte{key})
	if err := c.Import(rec[:len(rec)-1]); err == nil {
		t.Error("a record cut short was imported")
	}
	if err := c.Import(append([]byte{0x02}, rec[1:]...)); err == nil {
		t.Error("a record of version 2 was imported")
	}
	other, _ := PublicKey(seed(8))
	d, _ := NewNode([][]byte{other})
	if err := d.Import(rec); err == nil {
		t.Error("a record of a feed not replicated was imported")
	}
	if l, _ := c.Held(key); l != 0 {
		t.Fatalf("refused records stored %d entries", l)
	}
}

// FuzzImport feeds a node one record: whatever the bytes, Import stores
// entries only from a record whose batch verifies (signature and proofs)
// under the feed's key.
func FuzzImport(f *testing.F) {
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	_, key, b, recs := replicated(f, 10, secrets)
	for _, r := range recs {
		f.Add(r)
	}
	if comp, err := b.Compact(); err == nil {
		for _, r := range comp {
			f.Add(r) // compacted records are version 1 records too
		}
	}
	f.Add([]byte{recordV1})
	f.Fuzz(func(t *testing.T, rec []byte) {
		n, _ := NewNode([][]byte{key})
		err := n.Import(rec)
		l, _ := n.Held(key)
		if err != nil || l == 0 {
			if l != 0 {
				t.Fatalf("a refused record stored %d entries", l)
			}
			return
		}
		b, verr := VerifyBatch(rec[1:])
		if verr != nil || !bytes.Equal(b.Head.Key, key) {
			t.Fatalf("a record whose batch does not verify (%v) stored %d entries", verr, l)
		}
	})
}
