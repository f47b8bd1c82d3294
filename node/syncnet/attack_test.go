package syncnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/replication/syncpb"
)

// waitNoSession waits until r has no session with h: r may be opening one
// to h, which serves nothing, and is refused.
func waitNoSession(t *testing.T, r *Replicator, h host.Host) {
	t.Helper()
	eventually(t, testDeadline, func() error {
		if r.hasSession(h.ID()) {
			return errors.New("still a session with the outsider")
		}
		return nil
	})
}

func openRaw(t *testing.T, from, to host.Host, p *pair) network.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := from.NewStream(ctx, to.ID(), ProtocolFor(p.space))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Reset() })
	return st
}

func helloFrame(t *testing.T) []byte {
	var b bytesBuffer
	nonce := newNonce()
	if err := replication.WriteFrame(&b, &syncpb.Message{Body: &syncpb.Message_Hello{Hello: &syncpb.Hello{Version: replication.Version, Nonce: nonce[:]}}}); err != nil {
		t.Fatal(err)
	}
	return b.b
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// TestOutsiderFrameLengthsHoldNoMemory: an outsider opens streams that each
// send only the 4-byte length of the largest frame (half of them after a
// Hello) and then stall. The node must not allocate those frames: its heap
// stays far below one frame's size, and every stream is reset at once.
func TestOutsiderFrameLengthsHoldNoMemory(t *testing.T) {
	const streams = 8
	p := newPair(t, 10)
	p.serve(t)
	hc := newHost(t)
	connect(t, hc, p.ha)
	waitNoSession(t, p.rA, hc)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc

	length := binary.AppendUvarint(nil, replication.MaxFrameSize)
	if len(length) != 4 {
		t.Fatalf("length prefix of %d bytes", len(length))
	}
	ended := make(chan error, streams)
	for i := range streams {
		st := openRaw(t, hc, p.ha, p)
		data := length
		if i%2 == 1 {
			data = append(helloFrame(t), length...)
		}
		if _, err := st.Write(data); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := io.Copy(io.Discard, st)
			ended <- err
		}()
	}
	var peak uint64
	deadline := time.After(10 * time.Second)
	for done := 0; done < streams; {
		select {
		case err := <-ended:
			if !errors.Is(err, network.ErrReset) {
				t.Errorf("stream ended with %v, want a reset", err)
			}
			done++
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Errorf("%d of %d streams still open after 10 s", streams-done, streams)
			done = streams
		}
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base {
			peak = max(peak, ms.HeapAlloc-base)
		}
	}
	t.Logf("heap growth: peak %.1f MiB over %d streams", float64(peak)/(1<<20), streams)
	if peak >= replication.MaxFrameSize/2 {
		t.Fatalf("heap grew by %d bytes for %d unproven streams that each sent a frame length, want < %d (half a frame)", peak, streams, replication.MaxFrameSize/2)
	}
}

// emptyModel is the Model of a replica that holds nothing.
func emptyModel(t *testing.T) replication.Model {
	return NewDBModel(newDB(t), func() []feed.PublicKey { return nil })
}

// member drives a replication.Session by hand over a raw stream, as a member
// holding the capability, until the node has sent its heads (it is then
// caught up with this member, which shows none).
func memberOpen(t *testing.T, p *pair, hc host.Host) (network.Stream, *bufio.Reader) {
	t.Helper()
	st := openRaw(t, hc, p.ha, p)
	st.SetDeadline(time.Now().Add(20 * time.Second))
	s := replication.New(replication.Config{
		LocalID: []byte(hc.ID()), RemoteID: []byte(p.ha.ID()), Nonce: newNonce(),
		Creds:  replication.Credentials{Caps: []auth.ReplicationCapability{p.capA}},
		Verify: replication.VerifyCap(p.capA), Model: emptyModel(t),
	})
	s.Start()
	br := bufio.NewReader(st)
	for gotHeads := false; !gotHeads; {
		for s.HasReady() {
			rd := s.Ready()
			if rd.Err != nil {
				t.Fatal(rd.Err)
			}
			for _, m := range rd.Send {
				if err := replication.WriteFrame(st, m); err != nil {
					t.Fatal(err)
				}
			}
			s.Advance()
		}
		m, err := replication.ReadFrame(br, 0)
		if err != nil {
			t.Fatal(err)
		}
		gotHeads = m.GetHeads() != nil
		if err := s.Step(m); err != nil {
			t.Fatal(err)
		}
	}
	st.SetDeadline(time.Time{})
	return st, br
}

// TestMemberHalfFrameDropped: a member that has caught up and then sends
// the first half of a frame is dropped once Config.FrameTimeout passed;
// caught up and silent, it is not.
func TestMemberHalfFrameDropped(t *testing.T) {
	const frameTimeout = 300 * time.Millisecond
	p := newPair(t, 10)
	p.rA = newReplicator(t, p.ha, p.logA.logger(), WithConfig(Config{IdleTimeout: 20 * time.Second, WriteTimeout: 10 * time.Second, FrameTimeout: frameTimeout}))
	p.serve(t)
	hc := newHost(t)
	connect(t, hc, p.ha)
	waitNoSession(t, p.rA, hc)

	st, br := memberOpen(t, p, hc)
	// Caught up and silent for several frame timeouts: still served.
	time.Sleep(5 * frameTimeout)
	if !p.rA.hasSession(hc.ID()) {
		t.Fatalf("a caught-up, silent member was dropped:\n%s", p.logA)
	}
	// Half of a 1 MiB frame, then nothing.
	half := append(binary.AppendUvarint(nil, 1<<20), make([]byte, 512<<10)...)
	start := time.Now()
	if _, err := st.Write(half); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := io.Copy(io.Discard, br)
	if !errors.Is(err, network.ErrReset) {
		t.Fatalf("stream ended with %v after %v, want a reset", err, time.Since(start))
	}
	if d := time.Since(start); d < frameTimeout {
		t.Fatalf("dropped after %v, before the frame timeout %v", d, frameTimeout)
	}
	eventually(t, 5*time.Second, func() error {
		if p.rA.hasSession(hc.ID()) {
			return fmt.Errorf("session with the member still open")
		}
		return nil
	})
	t.Logf("half frame dropped after %v (FrameTimeout %v)", time.Since(start), frameTimeout)
}

// TestForkEqualLengthFreezesEverywhere: the writer gave A and C one branch
// and B another of the same length. A and C replicate (nothing to do);
// when B connects to A, A and B freeze the feed with the same evidence,
// and A passes it on to C over their open session.
func TestForkEqualLengthFreezesEverywhere(t *testing.T) {
	priv := newKey(t)
	k := pub(priv)
	space := auth.SpaceID(k)
	cp := newCap(space)
	type replica struct {
		h  host.Host
		db *feed.DB
		r  *Replicator
	}
	var reps [3]replica
	branches := [3]string{"one", "two", "one"} // A, B, C
	for i := range reps {
		reps[i].h, reps[i].db = newHost(t), newDB(t)
		w, err := reps[i].db.Writer(priv)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 6 {
			if _, err := w.Append(context.Background(), fmt.Appendf(nil, "%s %d", branches[i], j)); err != nil {
				t.Fatal(err)
			}
		}
		reps[i].r = newReplicator(t, reps[i].h, nil)
		if err := reps[i].r.Serve(NewFeedSpace(space, reps[i].db, []feed.PublicKey{k}, cp)); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := reps[0], reps[1], reps[2]
	connect(t, c.h, a.h)
	eventually(t, testDeadline, func() error {
		if !a.r.hasSession(c.h.ID()) || !c.r.hasSession(a.h.ID()) {
			return errors.New("no session between A and C")
		}
		return nil
	})
	connect(t, b.h, a.h)
	evidence := func(rp replica) ([]byte, error) {
		f, err := rp.db.Feed(k)
		if err != nil {
			return nil, err
		}
		ev := f.Evidence()
		if ev == nil {
			return nil, errors.New("not frozen")
		}
		return ev.MarshalBinary()
	}
	eventually(t, testDeadline, func() error {
		var first []byte
		for i, rp := range reps {
			ev, err := evidence(rp)
			if err != nil {
				return fmt.Errorf("replica %d: %v", i, err)
			}
			if i == 0 {
				first = ev
			} else if !bytes.Equal(ev, first) {
				return fmt.Errorf("replica %d holds other evidence than A", i)
			}
		}
		return nil
	})
}

// writerSpace is a FeedSpace whose node proves a writer key too, as a
// member's does.
type writerSpace struct {
	*FeedSpace
	writer ed25519.PrivateKey
}

func (s writerSpace) Credentials() replication.Credentials {
	c := s.FeedSpace.Credentials()
	c.Writer = s.writer
	return c
}

// TestOutsiderHelloLearnsNoSpaceID: the space's creator serves it, proving
// its writer key, which is the space ID. An outsider sends Hello, reads
// what the node answers, sends a proof that fails, and reads on until the
// reset: no byte of the space ID among them.
func TestOutsiderHelloLearnsNoSpaceID(t *testing.T) {
	priv := newKey(t)
	p := &pair{ha: newHost(t), dbA: newDB(t), kA: pub(priv), logA: new(logBuffer)}
	p.space = auth.SpaceID(p.kA)
	w, err := p.dbA.Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	appendEntries(t, w, 10, 100)
	p.capA = newCap(p.space)
	p.rA = newReplicator(t, p.ha, p.logA.logger())
	if err := p.rA.Serve(writerSpace{NewFeedSpace(p.space, p.dbA, []feed.PublicKey{p.kA}, p.capA), priv}); err != nil {
		t.Fatal(err)
	}
	hc := newHost(t)
	connect(t, hc, p.ha)
	waitNoSession(t, p.rA, hc)
	st := openRaw(t, hc, p.ha, p)
	st.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := st.Write(helloFrame(t)); err != nil {
		t.Fatal(err)
	}
	var got bytesBuffer
	r := io.TeeReader(st, &got)
	for range 2 { // Hello and Prove
		if _, err := replication.ReadFrame(r, 0); err != nil {
			t.Fatal(err)
		}
	}
	var bad bytesBuffer
	replication.WriteFrame(&bad, &syncpb.Message{Body: &syncpb.Message_Prove{Prove: &syncpb.Prove{Proofs: []*syncpb.EpochProof{{Epoch: 1, Proof: make([]byte, 32)}}}}})
	if _, err := st.Write(bad.b); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, network.ErrReset) {
		t.Fatalf("stream ended with %v, want a reset", err)
	}
	if bytes.Contains(got.b, p.space[:]) || bytes.Contains(got.b, p.space[:8]) {
		t.Fatalf("the outsider received the space ID in %d bytes", len(got.b))
	}
	t.Logf("the outsider received %d bytes", len(got.b))
}
