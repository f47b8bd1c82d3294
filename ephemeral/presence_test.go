package ephemeral

import (
	"testing"
	"time"
)

func TestPresence(t *testing.T) {
	p := NewPresence(0, 0)
	a, b := PublicKey{1}, PublicKey{2}
	p.Seen(a, t0)
	p.Seen(b, t0.Add(5*time.Second))
	p.Seen(a, t0.Add(-time.Minute)) // out of order: ignored
	if got, _ := p.LastSeen(a); !got.Equal(t0) {
		t.Fatalf("last seen went back: %v", got)
	}
	if !p.IsOnline(a, t0.Add(OnlineFor)) {
		t.Error("a offline at exactly OnlineFor")
	}
	if p.IsOnline(a, t0.Add(OnlineFor+time.Millisecond)) {
		t.Error("a online after OnlineFor")
	}
	online := p.Online(t0.Add(OnlineFor + time.Second))
	if len(online) != 1 || online[0].Key != b {
		t.Fatalf("online: %v", online)
	}
	online = p.Online(t0.Add(time.Second))
	if len(online) != 2 || online[0].Key != b || online[1].Key != a {
		t.Fatalf("online, most recent first: %v", online)
	}
	p.Forget(b)
	if p.IsOnline(b, t0.Add(5*time.Second)) {
		t.Error("forgotten b online")
	}
	p.Prune(t0.Add(time.Hour), time.Minute)
	if _, ok := p.LastSeen(a); ok {
		t.Error("Prune kept a")
	}
}

func TestPresenceBounded(t *testing.T) {
	p := NewPresence(time.Minute, 3)
	for i := range 5 {
		p.Seen(PublicKey{byte(i)}, t0.Add(time.Duration(i)*time.Second))
	}
	if n := len(p.Online(t0.Add(5 * time.Second))); n != 3 {
		t.Fatalf("tracked %d, want 3", n)
	}
	if _, ok := p.LastSeen(PublicKey{0}); ok {
		t.Error("the oldest was kept")
	}
	if _, ok := p.LastSeen(PublicKey{4}); !ok {
		t.Error("the newest was dropped")
	}
}

func TestPresenceRetain(t *testing.T) {
	p := NewPresence(time.Minute, 0)
	a, b := PublicKey{1}, PublicKey{2}
	p.Seen(a, t0)
	p.Seen(b, t0)
	p.Retain(func(k PublicKey) bool { return k == a })
	if _, ok := p.LastSeen(a); !ok {
		t.Error("Retain dropped a, which it keeps")
	}
	if _, ok := p.LastSeen(b); ok {
		t.Error("Retain kept b")
	}
}
