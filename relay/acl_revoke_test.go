package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// TestRevokedMemberCircuitReset: a member holds a grant per space it
// proved in; revoking one of two keeps it a member, revoking the last
// drops it at once (not at its expiry): its open circuit with the members'
// limits is reset, and its next circuit gets the default limits.
func TestRevokedMemberCircuitReset(t *testing.T) {
	r := newTestRelay(t, func(l *Limits) {
		l.CircuitDuration, l.CircuitBytes = time.Minute, 32<<10
		l.MemberCircuitDuration, l.MemberCircuitBytes = time.Hour, 8<<20
	})
	a, b := newPeer(t), newPeer(t)
	s1, s2 := auth.SpaceID{1}, auth.SpaceID{2}
	wa, wb := feed.PublicKey{0xa}, feed.PublicKey{0xb}
	acl := r.ACL()
	acl.AdmitGrant(a.ID(), Grant{Space: s1, Epoch: 1, Writer: wa})
	acl.AdmitGrant(b.ID(), Grant{Space: s1, Epoch: 1, Writer: wb})
	acl.AdmitGrant(b.ID(), Grant{Space: s2, Epoch: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := reserve(ctx, t, a, r); err != nil {
		t.Fatal(err)
	}
	if err := circuitEcho(ctx, b, a, r, 64<<10); err != nil {
		t.Fatalf("member to member, 64 KiB: %v", err)
	}
	if d, _, err := limitsOf(b, a.ID()); err != nil || d != time.Hour {
		t.Fatalf("limits of the members' circuit: %v %v", d, err)
	}

	// B removed as a writer of s1: still a member through s2.
	if n := acl.Revoke(func(g Grant) bool { return g.Space == s1 && g.Writer == wb }); n != 0 || !acl.Member(b.ID()) {
		t.Fatalf("dropped %d; B a member: %v", n, acl.Member(b.ID()))
	}
	if err := circuitEchoOn(ctx, b, a, 64<<10); err != nil {
		t.Fatalf("B's circuit after one of its two grants went: %v", err)
	}
	// s2 rotated past epoch 3 without B: B is no member any more.
	if n := acl.Revoke(func(g Grant) bool { return g.Space == s2 && g.Epoch < 4 && g.Writer == (feed.PublicKey{}) }); n != 1 {
		t.Fatalf("dropped %d, want B", n)
	}
	if acl.Member(b.ID()) || !acl.Member(a.ID()) || acl.Lifted(b.ID(), a.ID()) {
		t.Fatalf("after the revocation: B member %v, A member %v", acl.Member(b.ID()), acl.Member(a.ID()))
	}
	pollUntil(t, 10*time.Second, func() error {
		if err := circuitEchoOn(ctx, b, a, 100); err == nil {
			return errors.New("B's lifted circuit still carries data")
		}
		return nil
	})
	if err := circuitEcho(ctx, b, a, r, 1<<10); err != nil {
		t.Fatalf("B's new circuit: %v", err)
	}
	if d, n, err := limitsOf(b, a.ID()); err != nil || d != time.Minute || n != 32<<10 {
		t.Fatalf("limits of B's new circuit: %v %d %v, want the defaults", d, n, err)
	}
	if err := circuitEchoOn(ctx, b, a, 64<<10); err == nil {
		t.Fatal("64 KiB crossed B's new circuit limited to 32 KiB")
	}
}
