package core

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// FuzzSessionStep feeds a session, after a real opening, one frame from the
// peer: whatever the bytes, Step returns frames or an error, and the node
// stores nothing that does not verify (its feed stays empty or grows only
// by verified batches, which a random frame cannot carry).
func FuzzSessionStep(f *testing.F) {
	sp := bytes.Repeat([]byte{0x51}, 32)
	secrets := []Secret{{Epoch: 0, Secret: seed(0x5e)}}
	key, _ := PublicKey(seed(9))
	// Seeds: every frame of a real session.
	a, _ := NewNode([][]byte{key})
	a.Append(seed(9), [][]byte{[]byte("x"), []byte("y")})
	b, _ := NewNode([][]byte{key})
	sa, _ := a.NewSession(SessionConfig{LocalID: []byte("a"), RemoteID: []byte("b"), Nonce: seed(1), Space: sp, Secrets: secrets})
	sb, _ := b.NewSession(SessionConfig{LocalID: []byte("b"), RemoteID: []byte("a"), Nonce: seed(2), Space: sp, Secrets: secrets})
	toB, _ := sa.Start()
	toA, _ := sb.Start()
	for i := 0; i < 100 && len(toA)+len(toB) > 0; i++ {
		var nextA, nextB [][]byte
		for _, fr := range toB {
			f.Add(fr)
			out, _ := sb.Step(fr)
			nextA = append(nextA, out...)
		}
		for _, fr := range toA {
			out, _ := sa.Step(fr)
			nextB = append(nextB, out...)
		}
		toA, toB = nextA, nextB
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, _ := NewNode([][]byte{key})
		s, err := n.NewSession(SessionConfig{LocalID: []byte("b"), RemoteID: []byte("a"), Nonce: seed(2), Space: sp, Secrets: secrets})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(); err != nil {
			t.Fatal(err)
		}
		s.Step(frame)
		if l, _ := n.Length(key); l != 0 {
			t.Fatalf("one frame before any opening stored %d entries", l)
		}
	})
}

// TestImportsStayCore checks the wasm core imports the protocol core and
// the standard library only: no sockets, no badger, no libp2p.
func TestImportsStayCore(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/dgraph-io/badger", "github.com/libp2p/", "github.com/pion/", "net/http", "net"} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(dep, bad)) {
				t.Errorf("the wasm core depends on %s", dep)
			}
		}
	}
}

// FuzzSigninReceive hands a member's sign-in side one envelope from the
// topic: whatever the bytes, it shows no request and writes nothing unless
// the envelope verifies and opens as a request under a key of the space, signed by the feed it names (which random bytes cannot be). (An
// invite's key: a password's would cost an Argon2id per worker.)
func FuzzSigninReceive(f *testing.F) {
	_, n, inv := inviteSpace(f)
	link, _ := inv.Link()
	now := time.Now()
	a, _ := NewAsker(AskWith{Invite: link, Name: "laptop"}, now.UnixMilli())
	st, _ := a.Step(now.UnixMilli(), 1)
	f.Add(st.Publish)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := n.SigninReceive(b, now.UnixMilli(), "fuzz")
		if r.Shown != nil && !bytes.Equal(b, st.Publish) {
			t.Fatalf("a request shown from fuzzed bytes (%v)", err)
		}
		if recs, _ := n.TakeRecords(); len(recs) != 0 {
			t.Fatal("receiving an envelope wrote")
		}
	})
}
