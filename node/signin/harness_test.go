package signin

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt transcripts")

// The harness plays sign-in between member sides (Members over a
// fakeSpace) and device sides (Device) on one simulated topic, with a
// clock the test moves. Envelopes are really sealed and opened; the log
// is the transcript compared with testdata/<name>.txt.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fakeSpace struct {
	id       auth.SpaceID
	feed     ed25519.PrivateKey
	writer   bool
	devices  map[[32]byte]bool
	invites  map[auth.InviteID]auth.InviteRecord
	pwGen    uint32
	pwKey    *auth.RequestKey
	keyring  *auth.Keyring
	approved int // approvals sealed
}

func (s *fakeSpace) ID() auth.SpaceID                   { return s.id }
func (s *fakeSpace) IsWriter() bool                     { return s.writer }
func (s *fakeSpace) IsDevice(f [32]byte) bool           { return s.devices[f] }
func (s *fakeSpace) Feed() [32]byte                     { return [32]byte(s.feed.Public().(ed25519.PublicKey)) }
func (s *fakeSpace) PasswordGeneration() (uint32, bool) { return s.pwGen, s.pwKey != nil }
func (s *fakeSpace) Invite(id auth.InviteID) (auth.InviteRecord, bool) {
	r, ok := s.invites[id]
	return r, ok
}
func (s *fakeSpace) PasswordRequestKey() (auth.RequestKey, bool) {
	if s.pwKey == nil {
		return auth.RequestKey{}, false
	}
	return *s.pwKey, true
}
func (s *fakeSpace) Approval(req *auth.JoinRequest) ([]byte, error) {
	s.approved++
	a, err := auth.NewApproval(req, s.keyring, s.Feed(), 7)
	if err != nil {
		return nil, err
	}
	return a.MarshalBinary()
}

type member struct {
	name string
	ms   *Members
	sp   *fakeSpace
}

type device struct {
	name string
	feed ed25519.PrivateKey
	dk   *auth.DeviceKey
	d    *Device
	next time.Time // when its asker steps again
}

type sent struct {
	from string
	e    *ephemeral.Envelope
}

type harness struct {
	t       *testing.T
	rnd     *rand.ChaCha8
	now     time.Time
	space   auth.SpaceID
	topic   ephemeral.Topic
	keyring *auth.Keyring // the members' real keyring
	members []*member
	devices []*device
	bus     []sent
	drop    map[string]bool   // names whose incoming envelopes are lost
	peers   int               // peers on the topic, as devices see it
	via     map[string]string // the peer that hands a side's envelopes over (default "peer-<name>")
	lim     Limits            // the members'
	log     strings.Builder
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, Limits{}) }

func newHarnessWith(t *testing.T, lim Limits) *harness {
	h := &harness{t: t, rnd: rand.NewChaCha8([32]byte{1}), now: t0, drop: map[string]bool{}, peers: 1,
		via: map[string]string{}, lim: lim}
	origin := h.feedKey()
	h.space = auth.SpaceID(origin.Public().(ed25519.PublicKey))
	h.topic = ephemeral.Topic(auth.DiscoveryKey(h.space))
	kr, err := auth.NewKeyring(h.space, h.rnd)
	if err != nil {
		t.Fatal(err)
	}
	h.keyring = kr
	h.addMember("A", origin, h.keyring)
	return h
}

func (h *harness) feedKey() ed25519.PrivateKey {
	var seed [32]byte
	h.rnd.Read(seed[:])
	return ed25519.NewKeyFromSeed(seed[:])
}

func (h *harness) addMember(name string, feed ed25519.PrivateKey, kr *auth.Keyring) *member {
	m := &member{name: name, ms: NewMembers(h.lim), sp: &fakeSpace{id: h.space, feed: feed, writer: true,
		devices: map[[32]byte]bool{}, invites: map[auth.InviteID]auth.InviteRecord{}, keyring: kr}}
	m.sp.devices[m.sp.Feed()] = true
	h.members = append(h.members, m)
	return m
}

func (h *harness) member(name string) *member {
	for _, m := range h.members {
		if m.name == name {
			return m
		}
	}
	h.t.Fatalf("no member %s", name)
	return nil
}

func (h *harness) device(name string) *device {
	for _, d := range h.devices {
		if d.name == name {
			return d
		}
	}
	h.t.Fatalf("no device %s", name)
	return nil
}

// setPassword gives every member the password's key of generation gen.
func (h *harness) setPassword(password string, gen uint32) {
	k := auth.PasswordRequestKey(auth.PasswordKeyAt(password, h.space, gen), h.space)
	for _, m := range h.members {
		m.sp.pwGen, m.sp.pwKey = gen, &k
	}
	h.logf("-- members hold the password's key of generation %d", gen)
}

// invite records an invite in every member's space.
func (h *harness) invite(expires time.Time) *auth.Invite {
	inv, err := auth.NewInvite(h.space, expires, h.rnd)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, m := range h.members {
		m.sp.invites[inv.ID()] = inv.Record()
	}
	h.logf("-- invite %s, expires %s", inv.ID().String()[:8], h.at(expires))
	return inv
}

// ask has a new device ask to join with key.
func (h *harness) ask(name string, key auth.RequestKey, expires time.Time, password string) *device {
	d := &device{name: name, feed: h.feedKey(), next: h.now}
	dk, err := auth.GenerateDeviceKey(h.rnd)
	if err != nil {
		h.t.Fatal(err)
	}
	d.dk = dk
	req, err := auth.NewJoinRequest(h.space, name, [32]byte(d.feed.Public().(ed25519.PublicKey)), dk.Public(), h.now, h.rnd)
	if err != nil {
		h.t.Fatal(err)
	}
	if d.d, err = Ask(Limits{}, dk, req, key, expires, password); err != nil {
		h.t.Fatal(err)
	}
	h.devices = append(h.devices, d)
	h.logf("-- %s asks (%s), request %s, code %s", name, key.Kind, RequestID(req.Hash()), auth.SafetyCode(req))
	return d
}

func (h *harness) at(t time.Time) string { return "+" + t.Sub(t0).String() }

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(&h.log, "%-8s ", h.at(h.now))
	fmt.Fprintf(&h.log, format, args...)
	h.log.WriteByte('\n')
}

func (h *harness) publish(from string, signer ed25519.PrivateKey, msg Message) {
	plain, err := msg.Body.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	e, err := ephemeral.Seal(msg.Key.Key, signer, ephemeral.Header{Topic: h.topic, KeyKind: KeyKind(msg.Key.Kind), KeyID: msg.Key.ID[:]}, plain, h.now, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.bus = append(h.bus, sent{from, e})
}

func describe(b Body) string {
	s := b.Kind
	if b.Reason != "" {
		s += fmt.Sprintf(" %q", b.Reason)
	}
	if b.Password {
		s += fmt.Sprintf(" password generation=%d", b.Generation)
	}
	return s
}

func (h *harness) outputs(m *member, out Output, err error) string {
	var parts []string
	if out.Shown != nil {
		parts = append(parts, fmt.Sprintf("show %s %q via %s", out.Shown.ID, out.Shown.Req.Name, out.Shown.Via))
	}
	for _, msg := range out.Publish {
		parts = append(parts, "publish "+describe(msg.Body))
		h.publish(m.name, m.sp.feed, msg)
	}
	if err != nil {
		parts = append(parts, "error: "+err.Error())
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

// deliver hands every envelope published to every other side, until none
// is left.
func (h *harness) deliver() {
	for len(h.bus) > 0 {
		s := h.bus[0]
		h.bus = h.bus[1:]
		kid := [auth.KeyIDSize]byte(s.e.KeyID)
		for _, m := range h.members {
			if m.name == s.from || h.drop[m.name] {
				continue
			}
			from := h.via[s.from]
			if from == "" {
				from = "peer-" + s.from
			}
			out, err := m.ms.Receive(h.now, m.sp, s.e, from)
			if len(out.Publish) == 0 && out.Shown == nil && err == nil {
				continue // answers of other members: nothing to say
			}
			h.logf("%s ← %s: %s", m.name, s.from, h.outputs(m, out, err))
		}
		for _, d := range h.devices {
			if d.name == s.from || h.drop[d.name] || !d.d.Mine(kid) {
				continue
			}
			kind, other := "?", false
			plain, err := s.e.Open(d.d.Key().Key)
			if err != nil {
				plain, err = s.e.Open(RefusalKey(kid).Key)
			}
			if err == nil {
				if b, err := DecodeBody(plain); err == nil {
					own := d.d.Request().Hash()
					kind, other = describe(b), len(b.Hash) != 0 && !bytes.Equal(b.Hash, own[:])
				}
			}
			if kind == KindJoinRequest {
				continue // another device's request (same key)
			}
			u, err := d.d.Receive(h.now, s.e)
			if other && err == nil && u == (Update{}) {
				continue // an answer to another device's request: nothing to say
			}
			state, reason := d.d.State()
			line := fmt.Sprintf("%s ← %s %s: state %s", d.name, s.from, kind, state)
			if reason != "" {
				line += fmt.Sprintf(" (%s)", reason)
			}
			if u.Wake {
				line += ", wake"
				d.next = h.now
			}
			if u.Store {
				line += ", store"
			}
			if err != nil {
				line += ", error: " + err.Error()
			}
			h.logf("%s", line)
		}
	}
}

// genuine reports whether kr is the members' keyring (a member would
// admit the device's proof).
func (h *harness) genuine(kr *auth.Keyring) bool {
	a, _ := kr.MarshalBinary()
	b, _ := h.keyring.MarshalBinary()
	return bytes.Equal(a, b)
}

// stepDevice runs a device's asker once, as node's driver does: the next
// candidate's trial (admitted when genuine: then its add counts and it is
// approved), then Step.
func (h *harness) stepDevice(d *device) {
	next := d.d.lim.AskInterval
	if kr, wait := d.d.NextTrial(h.now); kr != nil {
		if h.genuine(kr) {
			h.logf("%s tries a candidate: admitted, its add counts", d.name)
			if d.d.Approved() {
				state, _ := d.d.State()
				h.logf("%s state %s, store", d.name, state)
			}
		} else {
			wait = d.d.Tried(1, nil)
			h.logf("%s tries a candidate: refused by the members; next trial in %s", d.name, wait)
		}
		if wait > 0 {
			next = min(next, wait)
		}
	} else if wait > 0 {
		next = min(next, wait)
	}
	st := d.d.Step(h.now, h.peers)
	var parts []string
	if st.Store {
		state, reason := d.d.State()
		parts = append(parts, fmt.Sprintf("state %s (%s), generation %d, store", state, reason, d.d.Record().Generation))
	}
	if st.Publish != nil {
		parts = append(parts, "publish "+describe(st.Publish.Body))
		h.publish(d.name, d.feed, *st.Publish)
	}
	next = min(next, st.Next)
	d.next = h.now.Add(next)
	if d.d.Waiting() {
		parts = append(parts, "next "+next.String())
	}
	if len(parts) > 0 {
		h.logf("%s step peers=%d: %s", d.name, h.peers, strings.Join(parts, "; "))
	}
}

// run moves the clock to until, stepping each device when its asker
// would and delivering what is published.
func (h *harness) run(until time.Duration) {
	end := t0.Add(until)
	for {
		var due *device
		for _, d := range h.devices {
			if d.d.Waiting() && !d.next.After(end) && (due == nil || d.next.Before(due.next)) {
				due = d
			}
		}
		if due == nil {
			break
		}
		if due.next.After(h.now) {
			h.now = due.next
		}
		h.stepDevice(due)
		h.deliver()
	}
	if end.After(h.now) {
		h.now = end
	}
}

// approve has member m approve the waiting request of device d.
func (h *harness) approve(m *member, d *device) {
	r := m.ms.Waiting(d.d.Request().Hash())
	if r == nil {
		h.t.Fatalf("%s does not hold %s's request", m.name, d.name)
	}
	for _, o := range h.members {
		if h.genuine(m.sp.keyring) && h.genuine(o.sp.keyring) {
			o.sp.devices[[32]byte(d.feed.Public().(ed25519.PublicKey))] = true // its add-writer op, replicated
		}
	}
	msg, err := m.ms.Approve(h.now, m.sp, r)
	if err != nil {
		h.t.Fatal(err)
	}
	h.logf("%s approves %s: publish %s", m.name, r.ID, describe(msg.Body))
	h.publish(m.name, m.sp.feed, msg)
	h.deliver()
}

func (h *harness) golden(name string) {
	h.t.Helper()
	path := filepath.Join("testdata", name+".txt")
	got := h.log.String()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		h.t.Errorf("transcript %s differs (run with -update after checking):\n--- got\n%s--- want\n%s", name, got, want)
	}
}
