package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"
	protobuf "google.golang.org/protobuf/proto"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/syncnet"
)

// pollUntil polls cond every 20 ms until it returns nil or d passes.
func pollUntil(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// circuitAddr is dst's address through the relay's TCP listener.
func circuitAddr(t testing.TB, r *Relay, dst peer.ID) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/" + tcpPort(r) + "/p2p/" + r.Host().ID().String() + "/p2p-circuit/p2p/" + dst.String())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// limitsOf returns the circuit limits the relay announced on the
// relayed connection from src to dst.
func limitsOf(src host.Host, dst peer.ID) (time.Duration, int64, error) {
	for _, c := range src.Network().ConnsToPeer(dst) {
		st := c.Stat()
		if !st.Limited {
			continue
		}
		d, _ := st.Extra[client.StatLimitDuration].(time.Duration)
		n, _ := st.Extra[client.StatLimitData].(uint64)
		return d, int64(n), nil
	}
	return 0, 0, errors.New("no relayed connection")
}

// TestMemberCircuitLifted: with the default circuit limits made small
// (1 s, 32 KiB), a circuit between two members carries 512 KiB each way
// and still works after the default duration, and the relay announced the
// members' limits on it; a circuit from a non-member to the same member
// is announced the defaults and cut at them, by bytes and by time.
func TestMemberCircuitLifted(t *testing.T) {
	r := newTestRelay(t, func(l *Limits) {
		l.CircuitDuration, l.CircuitBytes = time.Second, 32<<10
		l.MemberCircuitDuration, l.MemberCircuitBytes = time.Hour, 8<<20
	})
	a, b, c := newPeer(t), newPeer(t), newPeer(t)
	r.ACL().SetMembers(a.ID(), b.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := reserve(ctx, t, a, r); err != nil {
		t.Fatal(err)
	}

	opened := time.Now()
	if err := circuitEcho(ctx, b, a, r, 512<<10); err != nil {
		t.Fatalf("member to member, 512 KiB: %v", err)
	}
	if d, n, err := limitsOf(b, a.ID()); err != nil || d != time.Hour || n != 8<<20 {
		t.Fatalf("limits announced to a member: %v %d %v, want 1h and 8 MiB", d, n, err)
	}
	if err := circuitEcho(ctx, c, a, r, 1<<10); err != nil {
		t.Fatalf("non-member, 1 KiB: %v", err)
	}
	if d, n, err := limitsOf(c, a.ID()); err != nil || d != time.Second || n != 32<<10 {
		t.Fatalf("limits announced to a non-member: %v %d %v, want 1s and 32 KiB", d, n, err)
	}
	// Past the default duration: the non-member's circuit is cut, the
	// members' carries on, on the same connection.
	pollUntil(t, 10*time.Second, func() error {
		if err := circuitEchoOn(ctx, c, a, 100); err == nil {
			return errors.New("the non-member's circuit still carries data")
		}
		return nil
	})
	if time.Since(opened) < 1500*time.Millisecond {
		time.Sleep(1500*time.Millisecond - time.Since(opened))
	}
	if err := circuitEchoOn(ctx, b, a, 64<<10); err != nil {
		t.Fatalf("member circuit after the default duration: %v", err)
	}
	if n := len(b.Network().ConnsToPeer(a.ID())); n != 1 {
		t.Fatalf("%d connections from B to A, want the one circuit", n)
	}
	// By bytes: a new non-member circuit is cut at 32 KiB.
	if err := circuitEcho(ctx, c, a, r, 256<<10); err == nil {
		t.Fatal("256 KiB crossed a non-member's circuit limited to 32 KiB")
	}
	if got := r.ACL().Decisions("connect", true); got != 1 {
		t.Fatalf("member circuits decided: %d, want 1", got)
	}
}

// circuitEchoOn is circuitEcho on the connection src already has to dst,
// without dialling.
func circuitEchoOn(ctx context.Context, src, dst host.Host, n int) error {
	if len(src.Network().ConnsToPeer(dst.ID())) == 0 {
		return errors.New("not connected")
	}
	ctx = network.WithNoDial(ctx, "test")
	return echoOn(ctx, src, dst.ID(), n)
}

// TestCircuitOneMemberDefaults: a circuit with one member end only (a
// member dialling a peer that proved nothing, and the reverse) gets the
// default limits.
func TestCircuitOneMemberDefaults(t *testing.T) {
	r := newTestRelay(t, func(l *Limits) { l.CircuitBytes = 32 << 10 })
	m, o := newPeer(t), newPeer(t)
	r.ACL().SetMembers(m.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, h := range []host.Host{m, o} {
		if _, err := reserve(ctx, t, h, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := circuitEcho(ctx, m, o, r, 256<<10); err == nil {
		t.Fatal("256 KiB from a member to a non-member crossed a 32 KiB circuit")
	}
	if err := circuitEcho(ctx, o, m, r, 256<<10); err == nil {
		t.Fatal("256 KiB from a non-member to a member crossed a 32 KiB circuit")
	}
}

// feedSource is one writer's feed of n entries, and the space (a
// syncnet.FeedSpace) it is replicated in.
type feedSource struct {
	id  auth.SpaceID
	k   feed.PublicKey
	db  *feed.DB
	cap auth.ReplicationCapability
	n   uint64
}

func newFeedSource(t testing.TB, n, size int) *feedSource {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w, err := db.Writer(priv)
	if err != nil {
		t.Fatal(err)
	}
	for done := 0; done < n; {
		batch := make([][]byte, min(n-done, 500))
		for i := range batch {
			e := fmt.Appendf(nil, "entry %d ", done+i)
			batch[i] = append(e, bytes.Repeat([]byte{'.'}, size-len(e))...)
		}
		if _, err := w.Append(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
		done += len(batch)
	}
	k := feed.PublicKey(priv.Public().(ed25519.PublicKey))
	s := &feedSource{id: auth.SpaceID(k), k: k, db: db, n: uint64(n)}
	s.cap = auth.ReplicationCapability{Space: s.id, Epoch: 1}
	rand.Read(s.cap.Key[:])
	return s
}

// replicate serves the source on a and an empty copy on b, calls connect
// (which joins a and b somehow) and waits until b holds the whole feed.
// It returns how long that took from connect on.
func (s *feedSource) replicate(t testing.TB, a, b host.Host, timeout time.Duration, connect func() error) (time.Duration, error) {
	t.Helper()
	dbB, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	defer dbB.Close()
	rA, rB := syncnet.New(a, nil), syncnet.New(b, nil)
	defer rA.Close()
	defer rB.Close()
	feeds := []feed.PublicKey{s.k}
	if err := rA.Serve(syncnet.NewFeedSpace(s.id, s.db, feeds, s.cap)); err != nil {
		t.Fatal(err)
	}
	if err := rB.Serve(syncnet.NewFeedSpace(s.id, dbB, feeds, s.cap)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := connect(); err != nil {
		return 0, err
	}
	deadline := start.Add(timeout)
	for {
		f, err := dbB.Feed(s.k)
		if err != nil {
			t.Fatal(err)
		}
		h, ok := f.Head()
		if ok && h.Length == s.n {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("after %v the copy holds %d of %d entries", timeout, h.Length, s.n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// viaCircuit connects src to dst through the relay's circuit only.
func viaCircuit(ctx context.Context, t testing.TB, r *Relay, src, dst host.Host) func() error {
	return func() error {
		src.Peerstore().ClearAddrs(dst.ID())
		return src.Connect(ctx, peer.AddrInfo{ID: dst.ID(), Addrs: []ma.Multiaddr{circuitAddr(t, r, dst.ID())}})
	}
}

// onlyRelayed fails unless every connection between a and b is relayed.
func onlyRelayed(t testing.TB, a, b host.Host) {
	t.Helper()
	conns := a.Network().ConnsToPeer(b.ID())
	if len(conns) == 0 {
		t.Fatal("not connected")
	}
	for _, c := range conns {
		if !c.Stat().Limited {
			t.Fatalf("a direct connection %s: the sync did not cross the relay", c.RemoteMultiaddr())
		}
	}
}

// TestMemberSyncThroughCircuit: two members replicate a 2 MiB feed
// (syncnet, the daemons' protocol) through the relay's circuit, with
// libp2p's default circuit limits (128 KiB, 2 min) for everyone else.
// The whole feed arrives, over the circuit alone.
func TestMemberSyncThroughCircuit(t *testing.T) {
	r := newTestRelay(t, nil)
	a, b := newPeer(t), newPeer(t)
	r.ACL().SetMembers(a.ID(), b.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := reserve(ctx, t, a, r); err != nil {
		t.Fatal(err)
	}
	src := newFeedSource(t, 2048, 1024)
	if _, err := src.replicate(t, a, b, 45*time.Second, viaCircuit(ctx, t, r, b, a)); err != nil {
		t.Fatalf("members' sync through the circuit: %v", err)
	}
	onlyRelayed(t, b, a)
}

// TestOverLimitsRefusedOthersSync: a greedy non-member takes slots,
// circuits and streams up to the relay's limits and is refused beyond
// them, each with the status that says why (RESERVATION_REFUSED,
// RESOURCE_LIMIT_EXCEEDED, a refused stream), while two members of another
// space sync 2 MiB through the relay.
func TestOverLimitsRefusedOthersSync(t *testing.T) {
	const streams = 16
	r := newTestRelay(t, func(l *Limits) { l.MaxReservations, l.MaxCircuitsPerPeer, l.MaxStreamsPerPeer = 4, 2, streams })
	r.Host().SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	m1, m2 := newPeer(t), newPeer(t)
	r.ACL().SetMembers(m1.ID(), m2.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := reserve(ctx, t, m1, r); err != nil {
		t.Fatal(err)
	}
	greedy := newPeer(t)
	var dests []host.Host
	for range 3 {
		d := newPeer(t)
		if _, err := reserve(ctx, t, d, r); err != nil {
			t.Fatalf("slot under the limit: %v", err)
		}
		dests = append(dests, d)
	}
	_, err := reserve(ctx, t, greedy, r)
	var refused client.ReservationError
	if !errors.As(err, &refused) || refused.Status != pbv2.Status_RESERVATION_REFUSED {
		t.Fatalf("slot over the limit: %v, want RESERVATION_REFUSED", err)
	}
	for i, d := range dests[:2] {
		if err := circuitEcho(ctx, greedy, d, r, 1<<10); err != nil {
			t.Fatalf("circuit %d under the limit: %v", i, err)
		}
	}
	err = circuitEcho(ctx, greedy, dests[2], r, 1<<10)
	if err == nil || !strings.Contains(err.Error(), "RESOURCE_LIMIT_EXCEEDED") {
		t.Fatalf("circuit over the limit: %v, want RESOURCE_LIMIT_EXCEEDED", err)
	}
	var held []network.Stream
	defer func() {
		for _, s := range held {
			s.Reset()
		}
	}()
	var streamErr error
	for len(held) <= streams {
		s, err := echoStream(ctx, greedy, r)
		if err != nil {
			streamErr = err
			break
		}
		held = append(held, s)
	}
	var se *network.StreamError
	if !errors.As(streamErr, &se) || se.ErrorCode != network.StreamResourceLimitExceeded || len(held) >= streams {
		t.Fatalf("the greedy peer holds %d streams on the relay (its limit is %d), then %v; want a stream refused with StreamResourceLimitExceeded",
			len(held), streams, streamErr)
	}

	src := newFeedSource(t, 2048, 1024)
	if _, err := src.replicate(t, m1, m2, 45*time.Second, viaCircuit(ctx, t, r, m2, m1)); err != nil {
		t.Fatalf("members' sync while another peer is refused: %v", err)
	}
	onlyRelayed(t, m2, m1)
	// The greedy peer's circuits under the limit still work.
	if err := circuitEchoOn(ctx, greedy, dests[0], 1<<10); err != nil {
		t.Fatalf("greedy peer's first circuit: %v", err)
	}
}

// TestACLBounded: the allow-list holds at most MaxMembers, dropping the
// oldest proof; a member expires MemberTTL after its last proof unless it
// is connected.
func TestACLBounded(t *testing.T) {
	a := NewACL(nil)
	now := time.Unix(1_700_000_000, 0)
	a.now = func() time.Time { return now }
	connected := map[peer.ID]bool{}
	a.bound(3, time.Hour, func(p peer.ID) bool { return connected[p] })
	ids := make([]peer.ID, 5)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprint("peer-", i))
	}
	for _, id := range ids {
		now = now.Add(time.Minute)
		a.Admit(id)
	}
	if n := a.Members(); n != 3 {
		t.Fatalf("%d members, want at most 3", n)
	}
	if a.Member(ids[0]) || a.Member(ids[1]) || !a.Member(ids[4]) {
		t.Fatal("the oldest proofs were not the ones dropped")
	}
	connected[ids[2]] = true
	now = now.Add(2 * time.Hour)
	if !a.Member(ids[2]) {
		t.Fatal("a connected member expired")
	}
	if a.Member(ids[3]) {
		t.Fatal("a disconnected member outlived MemberTTL")
	}
	a.Admit(ids[3])
	if !a.Member(ids[3]) || !a.Lifted(ids[2], ids[3]) || a.Lifted(ids[2], ids[0]) {
		t.Fatal("a renewed proof")
	}
}

// TestProverOfBinding: the ACL reads the prover out of the binding the
// replication session builds; anything else gives no one.
func TestProverOfBinding(t *testing.T) {
	p, q := newPeer(t).ID(), newPeer(t).ID()
	var n1, n2 [replication.NonceSize]byte
	rand.Read(n1[:])
	b := replication.Binding([]byte(p), []byte(q), n1, n2)
	if got, ok := prover(b); !ok || got != p {
		t.Fatalf("prover: %v %v, want %v", got, ok, p)
	}
	for _, bad := range [][]byte{nil, b[:len(bindingLabel)], b[:len(bindingLabel)+3], append([]byte("x"), b...)} {
		if got, ok := prover(bad); ok {
			t.Fatalf("prover of %x: %v", bad, got)
		}
	}
}

// FuzzProver: prover reads a binding the session built, but never panics
// on any bytes.
func FuzzProver(f *testing.F) {
	var n [replication.NonceSize]byte
	f.Add(replication.Binding([]byte("abc"), []byte("def"), n, n))
	f.Add([]byte(bindingLabel + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		prover(b)
	})
}

// echoOn sends n bytes on an echo stream from src to dst and checks that
// they come back.
func echoOn(ctx context.Context, src host.Host, dst peer.ID, n int) error {
	s, err := src.NewStream(network.WithAllowLimitedConn(ctx, "test"), dst, echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	want := make([]byte, n)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(want)
		if err == nil {
			err = s.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(s)
	if werr := <-errc; err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("echo differs")
	}
	return nil
}

// hopState returns how many slots, peers with circuits and open circuits
// the hop service holds.
func hopState(r *Relay) (slots, peers, open int) {
	r.svc.mu.Lock()
	defer r.svc.mu.Unlock()
	return len(r.svc.rsvp), len(r.svc.circuits), len(r.svc.open)
}

// TestReservationFloodBounded: 48 peers ask for a slot at once from one
// address; the relay grants MaxReservations (16), refuses the rest with
// RESERVATION_REFUSED and holds state for 16 only; circuits through it
// leave no state once closed; the slots of peers that left are freed, and
// a newcomer then gets one.
func TestReservationFloodBounded(t *testing.T) {
	const slots, peers = 16, 48
	r := newTestRelay(t, func(l *Limits) { l.MaxReservations, l.MaxReservationsPerIP = slots, 1000 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hosts := make([]host.Host, peers)
	errs := make([]error, peers)
	for i := range hosts {
		hosts[i] = newPeer(t)
		if err := hosts[i].Connect(ctx, relayInfo(r)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan int, peers)
	for i := range hosts {
		go func() {
			_, errs[i] = client.Reserve(ctx, hosts[i], relayInfo(r))
			done <- i
		}()
	}
	for range peers {
		<-done
	}
	var held []host.Host
	refusedN := 0
	for i, err := range errs {
		var refused client.ReservationError
		switch {
		case err == nil:
			held = append(held, hosts[i])
		case errors.As(err, &refused) && refused.Status == pbv2.Status_RESERVATION_REFUSED:
			refusedN++
		default:
			t.Fatalf("reservation %d: %v", i, err)
		}
	}
	if len(held) != slots || refusedN != peers-slots {
		t.Fatalf("%d slots granted, %d refused; want %d and %d", len(held), refusedN, slots, peers-slots)
	}
	if n, _, _ := hopState(r); n != slots {
		t.Fatalf("the relay holds %d slots", n)
	}
	// Circuits to half the holders, then closed: no state left.
	for i, h := range held[:slots/2] {
		if err := circuitEcho(ctx, hosts[peers-1-i%4], h, r, 1<<10); err != nil {
			t.Fatalf("circuit %d: %v", i, err)
		}
	}
	for _, h := range hosts[peers-4:] {
		for _, d := range held {
			h.Network().ClosePeer(d.ID())
		}
	}
	pollUntil(t, 10*time.Second, func() error {
		if _, p, o := hopState(r); p != 0 || o != 0 {
			return fmt.Errorf("after the circuits closed the relay holds %d peers' counts, %d circuits", p, o)
		}
		return nil
	})
	// The holders leave: their slots are freed.
	for _, h := range held {
		h.Close()
	}
	pollUntil(t, 10*time.Second, func() error {
		if n, _, _ := hopState(r); n != 0 {
			return fmt.Errorf("%d slots held after their holders left", n)
		}
		return nil
	})
	if _, err := reserve(ctx, t, newPeer(t), r); err != nil {
		t.Fatalf("a newcomer after the flood: %v", err)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += k
	return k, err
}

// hopFrame is msg with its uvarint length, as a peer sends it.
func hopFrame(t testing.TB, msg protobuf.Message) []byte {
	b, err := protobuf.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// TestReadHop: the hop request decoder takes RESERVE and CONNECT with a
// valid destination and refuses the rest as malformed, reading nothing
// past the message and nothing of one longer than 4 KiB.
func TestReadHop(t *testing.T) {
	dest := newPeer(t).ID()
	reserve := hopFrame(t, &pbv2.HopMessage{Type: pbv2.HopMessage_RESERVE.Enum()})
	connect := hopFrame(t, &pbv2.HopMessage{Type: pbv2.HopMessage_CONNECT.Enum(), Peer: &pbv2.Peer{Id: []byte(dest)}})
	for _, c := range []struct {
		name string
		in   []byte
		want pbv2.HopMessage_Type
		ok   bool
	}{
		{"reserve", reserve, pbv2.HopMessage_RESERVE, true},
		{"connect", connect, pbv2.HopMessage_CONNECT, true},
		{"connect without a peer", hopFrame(t, &pbv2.HopMessage{Type: pbv2.HopMessage_CONNECT.Enum()}), 0, false},
		{"connect to a bad peer ID", hopFrame(t, &pbv2.HopMessage{Type: pbv2.HopMessage_CONNECT.Enum(), Peer: &pbv2.Peer{Id: []byte("x")}}), 0, false},
		{"status", hopFrame(t, &pbv2.HopMessage{Type: pbv2.HopMessage_STATUS.Enum()}), 0, false},
		{"no type", hopFrame(t, &pbv2.HopMessage{}), 0, false},
		{"too long", append(binary.AppendUvarint(nil, hopMaxMessage+1), make([]byte, hopMaxMessage+1)...), 0, false},
		{"truncated", connect[:len(connect)-1], 0, false},
		{"empty", nil, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.in
			if c.ok {
				b = append(slices.Clone(b), "trailing"...)
			}
			in := &countingReader{r: bytes.NewReader(b)}
			req, err := readHop(in)
			if c.ok != (err == nil) || (c.ok && req.kind != c.want) {
				t.Fatalf("readHop: %+v, %v", req, err)
			}
			if !c.ok && !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not errMalformed", err)
			}
			if c.ok && in.n != len(c.in) {
				t.Fatalf("read %d bytes of a %d-byte message", in.n, len(c.in))
			}
			if c.name == "connect" && req.dest != dest {
				t.Fatalf("destination %v, want %v", req.dest, dest)
			}
			if in.n > binary.MaxVarintLen64+hopMaxMessage {
				t.Fatalf("read %d bytes", in.n)
			}
		})
	}
}

// FuzzReadHop: the hop and stop decoders never panic, read at most one
// bounded message, and a request they accept is a RESERVE or a CONNECT
// with a valid peer ID.
func FuzzReadHop(f *testing.F) {
	f.Add(hopFrame(f, &pbv2.HopMessage{Type: pbv2.HopMessage_RESERVE.Enum()}))
	f.Add(hopFrame(f, &pbv2.HopMessage{Type: pbv2.HopMessage_CONNECT.Enum(), Peer: &pbv2.Peer{Id: []byte("12D3KooW")}}))
	f.Add(hopFrame(f, &pbv2.StopMessage{Type: pbv2.StopMessage_STATUS.Enum(), Status: pbv2.Status_OK.Enum()}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := &countingReader{r: bytes.NewReader(b)}
		req, err := readHop(in)
		if in.n > binary.MaxVarintLen64+hopMaxMessage {
			t.Fatalf("read %d bytes", in.n)
		}
		if err == nil {
			switch req.kind {
			case pbv2.HopMessage_RESERVE:
			case pbv2.HopMessage_CONNECT:
				if req.dest.Validate() != nil {
					t.Fatalf("accepted destination %q", req.dest)
				}
			default:
				t.Fatalf("accepted a %v", req.kind)
			}
		}
		in = &countingReader{r: bytes.NewReader(b)}
		readStopStatus(in)
		if in.n > binary.MaxVarintLen64+hopMaxMessage {
			t.Fatalf("stop: read %d bytes", in.n)
		}
	})
}
