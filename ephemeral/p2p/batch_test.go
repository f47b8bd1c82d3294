package p2p

import (
	"context"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/mycelsync/mycel/ephemeral"
)

// slowStore is a seen-set whose writes take a while, as a synced disk's
// do, and that counts them.
type slowStore struct {
	*ephemeral.MemSeenStore
	mu      sync.Mutex
	writes  int
	durable map[ephemeral.SeenKey]bool
}

func (s *slowStore) Add(k ephemeral.SeenKey, exp time.Time) error {
	return s.AddMany([]ephemeral.Seen{{Key: k, Expires: exp}})
}

func (s *slowStore) AddMany(entries []ephemeral.Seen) error {
	time.Sleep(5 * time.Millisecond)
	if err := s.MemSeenStore.AddMany(entries); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for _, e := range entries {
		s.durable[e.Key] = true
	}
	return nil
}

func (s *slowStore) has(k ephemeral.SeenKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable[k]
}

// TestBurstBatched: a burst of gossip is recorded in batches, each
// message is handed over only once its ID is stored, and each once.
func TestBurstBatched(t *testing.T) {
	t.Parallel()
	store := &slowStore{MemSeenStore: ephemeral.NewMemSeenStore(), durable: make(map[ephemeral.SeenKey]bool)}
	// Queues that hold the burst: gossipsub's defaults drop past 32.
	a, _, _, sub := line(t, nil, store, pubsub.WithPeerOutboundQueueSize(256), pubsub.WithValidateQueueSize(256))
	var p probes
	waitRoute(t, &p, time.Now, func(e *ephemeral.Envelope) { a.publish(t, encode(t, e)) }, sub)

	store.mu.Lock()
	before := store.writes
	store.mu.Unlock()
	const n = 200
	var want []ephemeral.ID
	for i := range n {
		e := seal(t, string(rune('a'+i%26)), time.Now())
		want = append(want, e.ID)
		a.publish(t, encode(t, e))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	var got []Message
	for len(got) < n {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("%d of %d: %v", len(got), n, err)
		}
		if p.has(m.Envelope.ID) {
			continue
		}
		if !store.has(m.Envelope.SeenKey()) {
			t.Fatalf("%s handed over before it was stored", m.Envelope.ID)
		}
		got = append(got, m)
	}
	exactly(t, "C", got, want...)
	store.mu.Lock()
	writes := store.writes - before
	store.mu.Unlock()
	if writes >= n {
		t.Errorf("%d writes for %d messages: no batching", writes, n)
	}
	t.Logf("%d messages, %d writes", n, writes)
}

// TestDeliverManyOrder: a batch reaches the inbox in its order, without
// what the Filter refused, and nothing more once nobody reads.
func TestDeliverManyOrder(t *testing.T) {
	t.Parallel()
	n := newNode(t, newHost(t), ephemeral.NewMemSeenStore(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := &Subscription{svc: n.svc, inbox: make(chan Message, 8), ctx: ctx, cancel: cancel}
	var ms []Message
	for i := range 5 {
		ms = append(ms, Message{Envelope: seal(t, string(rune('a'+i)), time.Now())})
	}
	stale := Message{Envelope: seal(t, "stale", time.Now().Add(-time.Hour))}
	batch := []Message{ms[0], ms[1], stale, ms[1], ms[2], ms[3], ms[0], ms[4]}
	sub.deliverMany(ctx, batch)
	close(sub.inbox)
	var got []ephemeral.ID
	for m := range sub.inbox {
		got = append(got, m.Envelope.ID)
	}
	want := ids(ms)
	if len(got) != len(want) {
		t.Fatalf("inbox %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("inbox %v, want %v", got, want)
		}
	}

	// Inbox full and the Subscription closed: the rest is dropped.
	sub.inbox = make(chan Message, 1)
	more := []Message{
		{Envelope: seal(t, "x", time.Now())},
		{Envelope: seal(t, "y", time.Now())},
		{Envelope: seal(t, "z", time.Now())},
	}
	cancel()
	dropped := n.svc.stats.dropped.Load()
	sub.deliverMany(ctx, more)
	if d := n.svc.stats.dropped.Load() - dropped; len(sub.inbox)+int(d) != len(more) {
		t.Fatalf("%d in the inbox, %d dropped, of %d", len(sub.inbox), d, len(more))
	}
}
