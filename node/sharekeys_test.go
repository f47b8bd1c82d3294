package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNodesShareKeysAfterConcurrentRemoval plays the race over real hosts
// on loopback: A approves C at the moment B removes D (B is cut off from A
// meanwhile, so neither op sees the other). B's removal seals the new
// epoch's secret to A and B only; C's keyring, from A, predates it. Once B
// is back, a holder shares the secret with C (the daemons drive
// space.Space.ShareKeys): C reads B's write of the newest epoch and writes
// in it itself, A and B read C's write, and D opens nothing of it.
func TestNodesShareKeysAfterConcurrentRemoval(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, named(loopbackConfig(t), "A"))
	peer := a.Addrs()[0].String()
	cfgB := named(loopbackConfig(t, peer), "B")
	b := startNode(t, cfgB)
	c := startNode(t, named(loopbackConfig(t, peer), "C"))
	d := startNode(t, named(loopbackConfig(t, peer), "D"))
	info, err := a.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	approve(t, a, b, id, "B")
	approve(t, a, d, id, "D")
	waitWriters(t, id, b, d)
	eventually(t, 30*time.Second, func() error {
		ia, _ := a.Space(id)
		for _, n := range []*Node{b, d} {
			if in, _ := n.Space(id); in.Digest != ia.Digest {
				return errors.New("B or D lacks A's ops")
			}
		}
		return nil
	})
	value := func(n *Node, key string) string {
		e, _ := n.Get(id, key)
		if len(e.Versions) == 0 {
			return ""
		}
		return string(e.Versions[0].Value)
	}

	// B restarts with no peer: what it writes now, A cannot see.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	cfgB.Peers = nil
	b = startNode(t, cfgB)
	di, _ := d.Space(id)
	if err := b.RemoveMember(ctx, id, di.Feed); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, id, "b-new", []byte("newest epoch")); err != nil {
		t.Fatal(err)
	}
	approve(t, a, c, id, "C") // concurrent with D's removal
	waitWriters(t, id, c)

	// own is the length of n's feed in the space.
	own := func(n *Node) uint64 {
		m, err := n.opened(id)
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.db.Feed(m.sp.Feed())
		if err != nil {
			t.Fatal(err)
		}
		return f.Length()
	}
	before := own(a) + own(b)

	// B is back.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	cfgB.Peers = []string{peer}
	b = startNode(t, cfgB)
	back := time.Now()
	eventually(t, 60*time.Second, func() error {
		if got := value(c, "b-new"); got != "newest epoch" {
			return fmt.Errorf("C reads %q of B's write in the newest epoch\n%s", got, feedLengths(c, id))
		}
		return nil
	})
	t.Logf("C reads the newest epoch %v after B is back", time.Since(back))
	eventually(t, 30*time.Second, func() error {
		return c.Put(ctx, id, "c-new", []byte("from C"))
	})
	for name, n := range map[string]*Node{"A": a, "B": b} {
		eventually(t, 30*time.Second, func() error {
			if got := value(n, "c-new"); got != "from C" {
				return fmt.Errorf("%s reads %q of C's write", name, got)
			}
			return nil
		})
	}
	// One holder shared, once: the other saw the share before its turn,
	// and no holder is left due to share.
	if got := own(a) + own(b) - before; got != 1 {
		t.Fatalf("A and B wrote %d ops after B came back, want the one share", got)
	}
	for name, n := range map[string]*Node{"A": a, "B": b} {
		m, err := n.opened(id)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			if _, due := m.sp.ShareDue(); due {
				return fmt.Errorf("%s still due to share", name)
			}
			return nil
		})
	}

	// D holds no secret of the newest epoch: it opens none of B's or C's
	// writes in it, whatever entries of theirs it holds.
	caps := func(n *Node) int {
		m, err := n.opened(id)
		if err != nil {
			t.Fatal(err)
		}
		cs, _ := m.sp.Capabilities()
		return len(cs)
	}
	if ca, cc, cd := caps(a), caps(c), caps(d); cc != ca || cd != ca-1 {
		t.Fatalf("epochs held: A %d, C %d, D %d", ca, cc, cd)
	}
	for _, key := range []string{"b-new", "c-new"} {
		if got := value(d, key); got != "" {
			t.Fatalf("D reads %s: %q", key, got)
		}
	}
}

// TestNodesShareKeysFallback: the holder whose turn comes first is
// offline. R, the writer with the lowest feed key, removes D while cut off
// from X, which approves C meanwhile; H, a third writer, gets the removal
// and the new secret from R alone, then R goes away for good. When H meets
// X, both see that C lacks the secret but neither is first in line: the
// one ranked next shares it when its turn comes, and C reads R's write of
// the newest epoch and writes in it.
func TestNodesShareKeysFallback(t *testing.T) {
	turn := shareKeysTurn
	shareKeysTurn = 2 * time.Second
	t.Cleanup(func() { shareKeysTurn = turn })
	ctx := context.Background()
	cfgO := named(loopbackConfig(t), "O")
	o := startNode(t, cfgO)
	peer := o.Addrs()[0].String()
	cfgB, cfgE := named(loopbackConfig(t, peer), "B"), named(loopbackConfig(t, peer), "E")
	b, e := startNode(t, cfgB), startNode(t, cfgE)
	d := startNode(t, named(loopbackConfig(t, peer), "D"))
	info, err := o.CreateSpace(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	approve(t, o, b, id, "B")
	approve(t, o, e, id, "E")
	approve(t, o, d, id, "D")
	waitWriters(t, id, b, e, d)
	eventually(t, 30*time.Second, func() error {
		io, _ := o.Space(id)
		for _, n := range []*Node{b, e, d} {
			if in, _ := n.Space(id); in.Digest != io.Digest {
				return errors.New("a member lacks O's ops")
			}
		}
		return nil
	})
	// Roles by feed key: R first in line, then H and X.
	type role struct {
		n   *Node
		cfg *Config
		key string
	}
	roles := []role{{o, cfgO, ""}, {b, cfgB, ""}, {e, cfgE, ""}}
	for i := range roles {
		in, _ := roles[i].n.Space(id)
		roles[i].key = in.Feed
	}
	slices.SortFunc(roles, func(x, y role) int { return strings.Compare(x.key, y.key) })
	r, h, x := roles[0], roles[1], roles[2]

	// R and H restart apart from X (new ports, that X does not know).
	restart := func(ro *role, peers ...string) {
		if err := ro.n.Close(); err != nil {
			t.Fatal(err)
		}
		ro.cfg.Peers = peers
		ro.n = startNode(t, ro.cfg)
	}
	restart(&r)
	restart(&h, r.n.Addrs()[0].String())
	di, _ := d.Space(id)
	if err := r.n.RemoveMember(ctx, id, di.Feed); err != nil {
		t.Fatal(err)
	}
	if err := r.n.Put(ctx, id, "r-new", []byte("newest epoch")); err != nil {
		t.Fatal(err)
	}
	c := startNode(t, named(loopbackConfig(t, x.n.Addrs()[0].String()), "C"))
	approve(t, x.n, c, id, "C") // concurrent with D's removal
	waitWriters(t, id, c)
	eventually(t, 30*time.Second, func() error {
		e, _ := h.n.Get(id, "r-new")
		if len(e.Versions) == 0 {
			return errors.New("H lacks R's write")
		}
		return nil
	})
	// R goes away; H meets X.
	if err := r.n.Close(); err != nil {
		t.Fatal(err)
	}
	restart(&h, x.n.Addrs()[0].String())
	met := time.Now()
	eventually(t, 60*time.Second, func() error {
		e, _ := c.Get(id, "r-new")
		if len(e.Versions) == 0 || string(e.Versions[0].Value) != "newest epoch" {
			return fmt.Errorf("C reads %+v of R's write in the newest epoch", e)
		}
		return nil
	})
	t.Logf("C reads the newest epoch %v after H meets X (turn %v)", time.Since(met), shareKeysTurn)
	eventually(t, 30*time.Second, func() error {
		return c.Put(ctx, id, "c-new", []byte("from C"))
	})
	for _, n := range []*Node{h.n, x.n} {
		eventually(t, 30*time.Second, func() error {
			e, _ := n.Get(id, "c-new")
			if len(e.Versions) == 0 {
				return errors.New("a holder lacks C's write")
			}
			return nil
		})
	}
	for _, key := range []string{"r-new", "c-new"} {
		if e, _ := d.Get(id, key); len(e.Versions) != 0 {
			t.Fatalf("D reads %s: %+v", key, e)
		}
	}
}
