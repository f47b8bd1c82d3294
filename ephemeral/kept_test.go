package ephemeral

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

// keptKind marks the tests' kept envelopes, as a node's key kind 4 does.
const keptKind = 4

func sealKind(t testing.TB, signer byte, kind uint32, plaintext string, at time.Time) *Envelope {
	t.Helper()
	h := testHeader()
	h.KeyKind = kind
	e, err := Seal(testKey, testSigner(signer), h, []byte(plaintext), at, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func keptConfig(c *clock) Config {
	return Config{Now: c.Now, Kept: func(e *Envelope) bool { return e.KeyKind == keptKind }}
}

// A kept envelope an hour old is delivered from a mailbox, once; the same
// from gossip (Deliver) is stale; an ordinary envelope an hour old is
// stale from a mailbox too; one older than KeptFor + Window is stale.
func TestDeliverStoredWindow(t *testing.T) {
	c := newClock(t0)
	f, err := NewFilter(NewMemSeenStore(), keptConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	kept := sealKind(t, 1, keptKind, "kept", t0)
	plain := sealKind(t, 1, 1, "plain", t0)
	old := sealKind(t, 1, keptKind, "old", t0.Add(-KeptFor-Window-time.Millisecond))
	edge := sealKind(t, 1, keptKind, "edge", t0.Add(-KeptFor-Window))
	c.Set(t0.Add(time.Hour))
	if err := f.Deliver(kept); !errors.Is(err, ErrStale) {
		t.Fatalf("kept envelope an hour old over gossip: %v, want ErrStale", err)
	}
	errs := f.DeliverStored([]*Envelope{kept, plain, kept})
	if errs[0] != nil || !errors.Is(errs[1], ErrStale) || !errors.Is(errs[2], ErrDuplicate) {
		t.Fatalf("from a mailbox: %v", errs)
	}
	c.Set(t0)
	errs = f.DeliverStored([]*Envelope{old, edge})
	if !errors.Is(errs[0], ErrStale) || errs[1] != nil {
		t.Fatalf("at the mailbox's expiry: %v, want stale then delivered", errs)
	}
}

// An envelope delivered live is not delivered again when a mailbox hands
// it a day later, also after a restart over the same store; an ordinary
// envelope's ID is forgotten after Retention as before.
func TestKeptRememberedUntilMailboxExpiry(t *testing.T) {
	c := newClock(t0)
	store := NewMemSeenStore()
	f, err := NewFilter(store, keptConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	kept := sealKind(t, 1, keptKind, "kept", t0)
	if err := f.Deliver(kept); err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(24 * time.Hour))
	if err := f.Prune(); err != nil {
		t.Fatal(err)
	}
	if err := f.DeliverStored([]*Envelope{kept})[0]; !errors.Is(err, ErrDuplicate) {
		t.Fatalf("a day later from a mailbox: %v, want ErrDuplicate", err)
	}
	f2, err := NewFilter(store, keptConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	if err := f2.DeliverStored([]*Envelope{kept})[0]; !errors.Is(err, ErrDuplicate) {
		t.Fatalf("after a restart: %v, want ErrDuplicate", err)
	}
	c.Set(t0.Add(KeptFor + Window + Retention + time.Millisecond))
	if err := f2.Prune(); err != nil {
		t.Fatal(err)
	}
	if f2.Len() != 0 || store.Len() != 0 {
		t.Fatalf("after expiry: %d IDs held, %d stored", f2.Len(), store.Len())
	}
}

// Untrusted senders' kept envelopes get no week-long IDs: from a mailbox
// they are held to Window, live their IDs expire after Retention.
func TestKeptUntrustedNotKept(t *testing.T) {
	c := newClock(t0)
	cfg := keptConfig(c)
	cfg.Trusted = func(_ Topic, s PublicKey) bool { return s == PublicKey(testSigner(1).Public().(ed25519.PublicKey)) }
	f, err := NewFilter(NewMemSeenStore(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := sealKind(t, 2, keptKind, "outsider", t0)
	c.Set(t0.Add(time.Hour))
	if err := f.DeliverStored([]*Envelope{e})[0]; !errors.Is(err, ErrStale) {
		t.Fatalf("an outsider's kept envelope an hour old: %v, want ErrStale", err)
	}
	c.Set(t0)
	if err := f.Deliver(e); err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(Retention + time.Millisecond))
	if err := f.Prune(); err != nil {
		t.Fatal(err)
	}
	if f.Len() != 0 {
		t.Fatalf("outsider's ID held beyond Retention: %d", f.Len())
	}
}

// One sender's kept IDs are bounded apart from its live ones: with its
// kept budget spent, its presence is still delivered, and another
// sender's kept envelopes too.
func TestKeptBudget(t *testing.T) {
	c := newClock(t0)
	cfg := keptConfig(c)
	cfg.MaxSeen, cfg.MaxKeptPerSender, cfg.MaxPerSender = 64, 4, 8
	f, err := NewFilter(NewMemSeenStore(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := f.Deliver(sealKind(t, 1, keptKind, "k", t0.Add(time.Duration(i)))); err != nil {
			t.Fatalf("kept %d: %v", i, err)
		}
	}
	if err := f.Deliver(sealKind(t, 1, keptKind, "k", t0)); !errors.Is(err, ErrSeenFull) {
		t.Fatalf("fifth kept envelope of one sender: %v, want ErrSeenFull", err)
	}
	if err := f.Deliver(sealKind(t, 1, 1, "presence", t0)); err != nil {
		t.Fatalf("the sender's live envelope: %v", err)
	}
	if err := f.Deliver(sealKind(t, 3, keptKind, "k", t0)); err != nil {
		t.Fatalf("another sender's kept envelope: %v", err)
	}
}

// FuzzDeliverStored: whatever an envelope's time and key kind (a mailbox
// hands over what its depositors signed), the mailbox path delivers it
// only within its window — KeptFor + Window back for a trusted sender's
// kept envelope, Window otherwise — and at most once, whichever path
// brings it again.
func FuzzDeliverStored(f *testing.F) {
	f.Add(int64(0), uint32(keptKind), true)
	f.Add(-int64((KeptFor + Window).Milliseconds()), uint32(keptKind), true)
	f.Add(-int64(time.Hour.Milliseconds()), uint32(1), true)
	f.Add(int64(-1<<62), uint32(keptKind), false)
	f.Fuzz(func(t *testing.T, offset int64, kind uint32, trusted bool) {
		c := newClock(t0)
		cfg := keptConfig(c)
		cfg.Trusted = func(Topic, PublicKey) bool { return trusted }
		fl, err := NewFilter(NewMemSeenStore(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		h := testHeader()
		h.KeyKind = kind
		e, err := Seal(testKey, testSigner(1), h, []byte("x"), t0, newDetRand("fuzz"))
		if err != nil {
			t.Fatal(err)
		}
		e.Time = t0.UnixMilli() + offset // the Filter does not check signatures
		back := Window.Milliseconds()
		if trusted && kind == keptKind {
			back += KeptFor.Milliseconds()
		}
		want := offset >= -back && offset <= Window.Milliseconds()
		err = fl.DeliverStored([]*Envelope{e})[0]
		if (err == nil) != want {
			t.Fatalf("offset %d ms, kind %d, trusted %v: %v, want delivered %v", offset, kind, trusted, err, want)
		}
		if err != nil && !errors.Is(err, ErrStale) {
			t.Fatalf("refused with %v", err)
		}
		if err == nil {
			if err := fl.DeliverStored([]*Envelope{e})[0]; !errors.Is(err, ErrDuplicate) {
				t.Fatalf("from a mailbox again: %v", err)
			}
			if err := fl.Deliver(e); err == nil {
				t.Fatal("delivered again live")
			}
		}
	})
}
