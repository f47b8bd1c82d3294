package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/node/api"
)

// lockedBuffer is a log sink the test reads while the node writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNodesRemoval: A removes C over real libp2p hosts. C's session with A
// is closed and its new ones are refused; what A writes after the removal
// never reaches C; what C writes after it appears neither on A nor on B;
// A and B go on replicating.
func TestNodesRemoval(t *testing.T) {
	ctx := context.Background()
	logA := new(lockedBuffer)
	a, err := New(loopbackConfig(t), slog.New(slog.NewTextHandler(logA, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	peer := a.Addrs()[0].String()
	b := startNode(t, loopbackConfig(t, peer))
	c := startNode(t, loopbackConfig(t, peer))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	approve(t, a, b, id, "B")
	approve(t, a, c, id, "C")
	has := func(n *Node, key, want string) error {
		e, _ := n.Get(id, key)
		if len(e.Versions) == 0 || string(e.Versions[0].Value) != want {
			return fmt.Errorf("%s: %+v", key, e)
		}
		return nil
	}
	waitWriters(t, id, c)
	if err := c.Put(ctx, id, "c-before", []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error { return has(b, "c-before", "1") })

	ci, _ := c.Space(id)
	if err := a.RemoveMember(ctx, id, ci.Feed); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if !strings.Contains(logA.String(), "no longer authorised") {
			return fmt.Errorf("A did not close C's session")
		}
		return nil
	})
	// C asks again: refused.
	mc, err := c.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	before := strings.Count(logA.String(), "capability proof rejected")
	if err := c.repl.Sync(ctx, a.host.ID(), mc); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if strings.Count(logA.String(), "capability proof rejected") <= before {
			return fmt.Errorf("A did not refuse C's new session:\n%s", logA)
		}
		return nil
	})

	if err := a.Put(ctx, id, "a-after", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, id, "c-after", []byte("late")); err != nil && !strings.Contains(err.Error(), "read-only") {
		t.Fatal(err)
	}
	if err := b.Put(ctx, id, "b-after", []byte("2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if err := has(b, "a-after", "secret"); err != nil {
			return err
		}
		return has(a, "b-after", "2")
	})
	// C, holding its late write, opens a session with A once more and is
	// refused like before: A cannot have taken anything C wrote after its
	// removal, and B could only get it from A or through a session whose
	// proof, of the epoch before the rotation, it refuses too.
	before = strings.Count(logA.String(), "capability proof rejected")
	if err := c.repl.Sync(ctx, a.host.ID(), mc); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if strings.Count(logA.String(), "capability proof rejected") <= before {
			return fmt.Errorf("A did not refuse C's session after its write:\n%s", logA)
		}
		return nil
	})
	for name, n := range map[string]*Node{"A": a, "B": b} {
		if e, _ := n.Get(id, "c-after"); len(e.Versions) != 0 {
			t.Errorf("%s shows C's write after its removal: %+v", name, e)
		}
	}
	if e, _ := c.Get(id, "a-after"); len(e.Versions) != 0 {
		t.Errorf("C reads A's write after its removal: %+v", e)
	}
	if ai, _ := a.Space(id); ai.Feeds != 3 {
		t.Errorf("A's space has %d feeds", ai.Feeds)
	}
}

// syncDone is what `mycel sync --wait` waits for: every session caught up,
// and a session with every peer that serves a space this node serves.
func syncDone(n *Node) error {
	sessions := map[[2]string]bool{}
	for _, p := range n.Progress() {
		sessions[[2]string{p.Peer, p.Space}] = true
		if p.Have < p.Want {
			return fmt.Errorf("behind %s on feed %s: %d/%d", p.Peer, p.Feed, p.Have, p.Want)
		}
	}
	for _, p := range n.Peers() {
		for _, sp := range p.Spaces {
			if !sessions[[2]string{p.ID, sp}] {
				return fmt.Errorf("peer %s serves the space but has no session", p.ID)
			}
		}
	}
	return nil
}

// TestRemovedDeviceLearnsRemoval: C, removed while running, cannot
// replicate its own removal. A member that hears it shows it the signed
// removal; C checks it and stops acting as a writer: it no longer serves
// the space (the members' sync --wait finishes with C online), sees no
// join request made with the password, and cannot approve one — the
// member approves it.
func TestRemovedDeviceLearnsRemoval(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, named(loopbackConfig(t), "A"))
	peer := a.Addrs()[0].String()
	b := startNode(t, named(loopbackConfig(t, peer), "B"))
	c := startNode(t, named(loopbackConfig(t, peer), "C"))
	d := startNode(t, named(loopbackConfig(t, peer), "D"))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	approve(t, a, b, id, "B")
	approve(t, a, c, id, "C")
	const password = "correct horse battery"
	if err := a.SetPassword(ctx, id, password); err != nil {
		t.Fatal(err)
	}
	waitWriters(t, id, b, c)
	eventually(t, 30*time.Second, func() error {
		ci, _ := c.Space(id)
		ai, _ := a.Space(id)
		if ci.Digest != ai.Digest {
			return errors.New("C lacks A's writes")
		}
		return nil
	})
	ci, _ := c.Space(id)
	removedAt := time.Now()
	if err := a.RemoveMember(ctx, id, ci.Feed); err != nil {
		t.Fatal(err)
	}
	eventually(t, 45*time.Second, func() error {
		if ci, _ := c.Space(id); ci.Writer {
			return errors.New("C still believes it is a writer")
		}
		return nil
	})
	t.Logf("C learned of its removal %v after it", time.Since(removedAt).Round(10*time.Millisecond))
	if err := c.Put(ctx, id, "late", []byte("x")); !errors.Is(err, api.ErrReadOnly) {
		t.Fatalf("C writes after learning of its removal: %v", err)
	}
	for name, n := range map[string]*Node{"A": a, "B": b} {
		eventually(t, 30*time.Second, func() error {
			if err := syncDone(n); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			return nil
		})
	}
	st, err := d.Join(ctx, api.JoinWith{Space: id, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRequest(t, a, st.Code)
	if rs := c.Requests(); len(rs) != 0 {
		t.Fatalf("C shows requests: %+v", rs)
	}
	if err := c.Approve(ctx, r.ID, st.Code); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("C approves D: %v", err)
	}
	if err := a.Approve(ctx, r.ID, st.Code); err != nil {
		t.Fatal(err)
	}
	if got := waitJoin(t, d, id); got.State != api.JoinApproved {
		t.Fatalf("D's join: %+v", got)
	}
	waitWriters(t, id, d)
	// C keeps what it read before its removal, and stays removed.
	if ci, _ := c.Space(id); ci.Writer || !ci.Approved {
		t.Fatalf("C: %+v", ci)
	}
}

// TestPasswordRotatesWithRemoval: C, a member, holds the password key; A
// removes C. A, which set the password, derives the key's next generation
// and writes it under the new epoch's secret. D, joining with the
// password, is refused with the generation named, asks with the new key,
// and is approved; C's key opens none of D's requests.
func TestPasswordRotatesWithRemoval(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, named(loopbackConfig(t), "A"))
	peer := a.Addrs()[0].String()
	c := startNode(t, named(loopbackConfig(t, peer), "C"))
	d := startNode(t, named(loopbackConfig(t, peer), "D"))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	const password = "correct horse battery"
	if err := a.SetPassword(ctx, id, password); err != nil {
		t.Fatal(err)
	}
	approve(t, a, c, id, "C")
	mc, err := c.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	var old auth.RequestKey
	eventually(t, 30*time.Second, func() error {
		k, ok := mc.sp.PasswordRequestKey()
		if !ok {
			return errors.New("C lacks the password key")
		}
		old = k
		return nil
	})
	ci, _ := c.Space(id)
	if err := a.RemoveMember(ctx, id, ci.Feed); err != nil {
		t.Fatal(err)
	}
	ma, err := a.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if k, ok := ma.sp.PasswordRequestKey(); !ok || k.ID == old.ID {
			return errors.New("A's password key not renewed")
		}
		return nil
	})
	st, err := d.Join(ctx, api.JoinWith{Space: id, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRequest(t, a, st.Code)
	if err := a.Approve(ctx, r.ID, st.Code); err != nil {
		t.Fatal(err)
	}
	if got := waitJoin(t, d, id); got.State != api.JoinApproved {
		t.Fatalf("D's join: %+v", got)
	}
	md, err := d.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	md.mu.Lock()
	asked := md.join.Key()
	md.mu.Unlock()
	if asked.ID == old.ID || asked.Key == old.Key {
		t.Fatal("D asked with the key the removed device holds")
	}
	if k, ok := mc.sp.PasswordRequestKey(); ok && k.ID == asked.ID {
		t.Fatal("the removed device holds D's key")
	}
}

// TestApprovedByStaleRemoved: A removes D while D is offline. D comes back
// with no member online and, not told, approves J with the password it
// knows: J shows approved. D goes away and A comes online: hearing J
// announce itself approved by D, A shows J D's removal; J shows waiting
// and asks again; A approves it, J writes and A reads it. D comes back and
// learns of its removal too. B, approved by A, shown the same evidence,
// stays approved.
func TestApprovedByStaleRemoved(t *testing.T) {
	ctx := context.Background()
	restartable := func(cfg *Config) (*Node, func()) {
		n, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		closed := false
		stop := func() {
			if !closed {
				closed = true
				n.Close()
			}
		}
		t.Cleanup(stop)
		return n, stop
	}
	cfgA := named(loopbackConfig(t), "A")
	a, stopA := restartable(cfgA)
	peer := a.Addrs()[0].String()
	b, stopB := restartable(named(loopbackConfig(t, peer), "B"))
	cfgD := named(loopbackConfig(t, peer), "D")
	d, stopD := restartable(cfgD)
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	const password = "correct horse battery"
	if err := a.SetPassword(ctx, id, password); err != nil {
		t.Fatal(err)
	}
	approve(t, a, b, id, "B")
	approve(t, a, d, id, "D")
	waitWriters(t, id, b, d)
	eventually(t, 30*time.Second, func() error {
		di, _ := d.Space(id)
		ai, _ := a.Space(id)
		if di.Digest != ai.Digest {
			return errors.New("D lacks A's writes")
		}
		return nil
	})
	di, _ := d.Space(id)
	md, err := d.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	dFeed := md.sp.Feed()
	stopD()
	if err := a.RemoveMember(ctx, id, di.Feed); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		ai, _ := a.Space(id)
		bi, _ := b.Space(id)
		if ai.Digest != bi.Digest {
			return errors.New("B lacks the removal")
		}
		return nil
	})
	mb, err := b.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	ma, err := a.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	ev, ok := ma.sp.RemovalEvidence(dFeed)
	if !ok {
		t.Fatal("A holds no evidence of D's removal")
	}
	stopA()
	stopB()

	d, stopD = restartable(cfgD)
	j := startNode(t, named(loopbackConfig(t, d.Addrs()[0].String()), "J"))
	st, err := j.Join(ctx, api.JoinWith{Space: id, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRequest(t, d, st.Code)
	if err := d.Approve(ctx, r.ID, st.Code); err != nil {
		t.Fatal(err)
	}
	if got := waitJoin(t, j, id); got.State != api.JoinApproved {
		t.Fatalf("J's join: %+v", got)
	}
	waitWriters(t, id, j)

	// A forged "your approver was removed" — genuine evidence of another
	// device's removal — changes nothing for B, approved by A.
	if err := mb.learnRemoval(ev); err != nil || !mb.sp.Approved() || !mb.sp.IsWriter() || mb.sp.Stale() {
		t.Fatalf("B gave up its approval: %v", err)
	}

	stopD()
	cfgA.Peers = []string{j.Addrs()[0].String()}
	a, _ = restartable(cfgA)
	shownAt := time.Now()
	eventually(t, 60*time.Second, func() error {
		ji, _ := j.Space(id)
		if ji.Join == nil || ji.Join.State != api.JoinWaiting || ji.Writer {
			return fmt.Errorf("J: %+v, join %+v", ji, ji.Join)
		}
		return nil
	})
	t.Logf("J learned its approver's removal %v after A came online", time.Since(shownAt).Round(10*time.Millisecond))
	mj, err := j.opened(id)
	if err != nil {
		t.Fatal(err)
	}
	if mj.isServed() {
		t.Fatal("J serves the space while its approval does not count")
	}
	r = waitRequest(t, a, st.Code)
	if err := a.Approve(ctx, r.ID, st.Code); err != nil {
		t.Fatal(err)
	}
	if got := waitJoin(t, j, id); got.State != api.JoinApproved {
		t.Fatalf("J's join: %+v", got)
	}
	waitWriters(t, id, j)
	eventually(t, 30*time.Second, func() error {
		if !mj.isServed() {
			return errors.New("J does not serve the space again")
		}
		return nil
	})
	if err := j.Put(ctx, id, "from-j", []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		e, _ := a.Get(id, "from-j")
		if len(e.Versions) == 0 || string(e.Versions[0].Value) != "1" {
			return fmt.Errorf("A reads %+v", e)
		}
		return nil
	})
	cfgD.Peers = []string{a.Addrs()[0].String()}
	d, _ = restartable(cfgD)
	eventually(t, 45*time.Second, func() error {
		if di, _ := d.Space(id); di.Writer {
			return errors.New("D still believes it is a writer")
		}
		return nil
	})
	if ji, _ := j.Space(id); !ji.Writer || ji.Join.State != api.JoinApproved {
		t.Fatalf("J after D came back: %+v", ji)
	}
}
