package core

import (
	"bytes"
	"testing"

	"github.com/mycelsync/mycel/feed"
)

// TestPersistCompactRoundTrip: the records Compact returns replace a
// page's records: a node started from them alone holds every entry and has
// the same view digest, and they are fewer than the records they replace.
func TestPersistCompactRoundTrip(t *testing.T) {
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	sp, key, b, recs := replicated(t, 40, secrets)
	want, err := b.ViewSummary(sp, secrets)
	if err != nil {
		t.Fatal(err)
	}
	// The node a page restarted from its records compacts them.
	c, _ := NewNode([][]byte{key})
	for _, r := range recs {
		if err := c.Import(r); err != nil {
			t.Fatal(err)
		}
	}
	comp, err := c.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if len(comp) != 1 || len(recs) < 2 {
		t.Fatalf("%d records compacted into %d, want 1", len(recs), len(comp))
	}
	d, _ := NewNode([][]byte{key})
	for _, r := range comp {
		if err := d.Import(r); err != nil {
			t.Fatalf("compacted record refused: %v", err)
		}
	}
	if l, _ := d.Held(key); l != 40 {
		t.Fatalf("node restored from the compacted record holds %d entries, want 40", l)
	}
	got, err := d.ViewSummary(sp, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Digest, want.Digest) || got.Keys != want.Keys {
		t.Fatalf("compacted view %x/%d keys, want %x/%d", got.Digest, got.Keys, want.Digest, want.Keys)
	}
	// Records the page appended before the compaction committed (the old
	// ones, still queued) import after it too: the store may hold both.
	for i, r := range recs {
		if err := d.Import(r); err != nil {
			t.Fatalf("old record %d after the compacted one: %v", i, err)
		}
	}
}

// TestPersistCompactedDamagedRefused: a compacted record with any byte
// changed or cut short is refused and stores nothing.
func TestPersistCompactedDamagedRefused(t *testing.T) {
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	_, key, b, _ := replicated(t, 10, secrets)
	comp, err := b.Compact()
	if err != nil || len(comp) != 1 {
		t.Fatalf("compact: %d records, %v", len(comp), err)
	}
	rec := comp[0]
	for i := range rec {
		bad := bytes.Clone(rec)
		bad[i] ^= 0x01
		c, _ := NewNode([][]byte{key})
		if err := c.Import(bad); err == nil {
			t.Errorf("compacted record with byte %d flipped was imported", i)
		}
		if l, _ := c.Held(key); l != 0 {
			t.Fatalf("compacted record with byte %d flipped stored %d entries", i, l)
		}
	}
	c, _ := NewNode([][]byte{key})
	if err := c.Import(rec[:len(rec)-1]); err == nil {
		t.Error("a compacted record cut short was imported")
	}
	if l, _ := c.Held(key); l != 0 {
		t.Fatalf("refused records stored %d entries", l)
	}
}

// TestPersistCompactSparse: a node holding only parts of a feed compacts
// them into one record whose runs are exactly those parts.
func TestPersistCompactSparse(t *testing.T) {
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	_, key, b, _ := replicated(t, 40, secrets)
	c, _ := NewNode([][]byte{key})
	var k feed.PublicKey
	copy(k[:], key)
	for _, r := range [][2]uint64{{0, 10}, {20, 30}} {
		if err := c.Import(recordOf(t, b.db, k, r[0], r[1])); err != nil {
			t.Fatal(err)
		}
	}
	comp, err := c.Compact()
	if err != nil || len(comp) != 1 {
		t.Fatalf("compact: %d records, %v", len(comp), err)
	}
	d, _ := NewNode([][]byte{key})
	if err := d.Import(comp[0]); err != nil {
		t.Fatal(err)
	}
	f, _ := d.db.Feed(k)
	if got := f.Ranges(); len(got) != 2 || got[0] != (feed.Range{Start: 0, End: 10}) || got[1] != (feed.Range{Start: 20, End: 30}) {
		t.Fatalf("restored from the compacted record: %v, want [0,10) [20,30)", got)
	}
}

func TestAfter(t *testing.T) {
	rs := []feed.Range{{Start: 0, End: 10}, {Start: 20, End: 30}}
	for _, c := range []struct {
		i    uint64
		want []feed.Range
	}{
		{0, rs},
		{5, []feed.Range{{Start: 5, End: 10}, {Start: 20, End: 30}}},
		{10, []feed.Range{{Start: 20, End: 30}}},
		{25, []feed.Range{{Start: 25, End: 30}}},
		{30, nil},
	} {
		got := after(rs, c.i)
		if len(got) != len(c.want) {
			t.Fatalf("after(%d) = %v, want %v", c.i, got, c.want)
		}
		for j := range got {
			if got[j] != c.want[j] {
				t.Fatalf("after(%d) = %v, want %v", c.i, got, c.want)
			}
		}
	}
}
