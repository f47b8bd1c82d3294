package core

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/signin"
	"github.com/mycelsync/mycel/node/space"
)

// The page as a member: it writes and it approves (issue 14).
//
// Once the page holds a member's keys and its own feed key (signed in, or
// given them), Node.Member opens a node/space Space over the node's feeds:
// the same code the daemon writes and reads with (node/spaces.go). From
// then on the node's view is the Space's (its Refresh reads what sessions
// ingest), the feeds it replicates are the Space's (origin, its own, every
// writer named in the view), and Put and Delete append to the page's own
// feed — sealed under the epoch the Space picks, stamped with its HLC and
// causal delta — as the daemon's writes do. Each append is handed to the
// page as a record (persist.go), as an ingested batch is: the page puts it
// in IndexedDB and only then calls Announce, which tells the sessions to
// offer the new head. So a tab closed before the record is committed has
// offered nobody the entry, and after a reload its feed continues from
// what IndexedDB holds (no fork).
//
// The member side of sign-in is node/signin's Members, as the daemon runs
// it (node/signin.go): SigninReceive hands it the sign-in envelopes of the
// space's topic; it keeps the verified requests for a person (Requests),
// answers again what it answered, and refuses wrong passwords at its rate.
// Approve checks the safety code, spends the invite (an invite request),
// appends the add-writer op with the keyring sealed to the device
// (space.AddWriter) and returns the approval sealed under the request's
// key and signed by the page's feed key; Deny likewise.

// MemberConfig is what makes a node a member of its space.
type MemberConfig struct {
	Space   []byte
	Seed    []byte   // the ed25519 seed of this device's feed key in the space
	Device  []byte   // the device key (auth.DeviceKey.Bytes); nil: a new one
	Secrets []Secret // the keyring's epoch secrets
	NowMs   int64    // the clock (Unix ms); each write brings its own
}

// member is a node's Space and its member side of sign-in.
type member struct {
	sp      *space.Space
	topic   ephemeral.Topic
	ms      *signin.Members // under Node.mu
	filter  *ephemeral.Filter
	now     time.Time // the clock of the call in progress: the filter's and the Space's (HLCs)
	changed uint64    // bumped on every change of the view
}

// keyring builds the keyring of secrets: the first secret of each epoch
// in order, the others as concurrent secrets.
func keyring(id auth.SpaceID, secrets []Secret) (*auth.Keyring, error) {
	kr := &auth.Keyring{Space: id}
	ss := append([]Secret(nil), secrets...)
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Epoch < ss[j].Epoch })
	for _, s := range ss {
		es, err := epochSecret(s)
		if err != nil {
			return nil, err
		}
		if int(es.Epoch) == len(kr.Epochs) {
			kr.Epochs = append(kr.Epochs, es)
		} else {
			kr.Concurrent = append(kr.Concurrent, es)
		}
	}
	return kr, kr.Validate()
}

// Member makes n a member of its space: a writer with the feed of
// cfg.Seed (continuing what the node holds of it: records imported
// first), reading with the keyring of cfg.Secrets. The view is read anew
// from every feed held. Calling it again replaces the member.
func (n *Node) Member(cfg MemberConfig) error {
	id, err := spaceID(cfg.Space)
	if err != nil {
		return err
	}
	if len(cfg.Seed) != ed25519.SeedSize {
		return errors.New("writer seed must be 32 bytes")
	}
	var dk *auth.DeviceKey
	if cfg.Device != nil {
		if dk, err = auth.ParseDeviceKey(cfg.Device); err != nil {
			return err
		}
	} else if dk, err = auth.GenerateDeviceKey(rand.Reader); err != nil {
		return err
	}
	kr, err := keyring(id, cfg.Secrets)
	if err != nil {
		return err
	}
	// The Space reads the time from the call in progress (the page's
	// clock, passed in), not from a clock of its own.
	m := &member{topic: ephemeral.Topic(auth.DiscoveryKey(id)), ms: signin.NewMembers(signin.Limits{}), now: time.UnixMilli(cfg.NowMs)}
	sp, err := space.Open(space.Config{Feeds: n.db, Store: memstore.New(), Writer: ed25519.NewKeyFromSeed(cfg.Seed), Device: dk,
		Now: func() time.Time { return m.now }}, id)
	if err != nil {
		return err
	}
	if err := sp.AcceptKeyring(kr); err != nil {
		return err
	}
	m.sp = sp
	m.filter, err = ephemeral.NewFilter(ephemeral.NewMemSeenStore(), ephemeral.Config{
		Now: func() time.Time { return m.now },
		// Members.Receive opens only requests under a key of the space.
		Trusted: func(ephemeral.Topic, ephemeral.PublicKey) bool { return true },
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.mem; old != nil {
		m.changed = old.changed + 1
		_ = old.sp.Close()
	}
	n.mem = m
	n.tr = nil // the Space's view replaces the tracked one
	return nil
}

// IsMember reports whether Member made n a member.
func (n *Node) IsMember() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mem != nil
}

func (n *Node) memberOf() (*member, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mem == nil {
		return nil, errors.New("not a member of the space here: sign in first")
	}
	return n.mem, nil
}

// Own is this device's feed key in the space (nil when not a member).
func (n *Node) Own() []byte {
	m, err := n.memberOf()
	if err != nil {
		return nil
	}
	k := m.sp.Feed()
	return k[:]
}

// Feeds lists the feeds the node replicates: a member's Space's (origin,
// its own, the writers its view names) and those it was made with.
func (n *Node) Feeds() [][]byte {
	var out [][]byte
	for _, k := range n.allFeeds() {
		out = append(out, append([]byte(nil), k[:]...))
	}
	return out
}

func (n *Node) allFeeds() []feed.PublicKey {
	n.mu.Lock()
	m := n.mem
	n.mu.Unlock()
	if m == nil {
		return n.feeds
	}
	fs := m.sp.Feeds()
	for _, k := range n.feeds {
		seen := false
		for _, f := range fs {
			seen = seen || f == k
		}
		if !seen {
			fs = append(fs, k)
		}
	}
	return fs
}

// Changed counts the changes of the view the node keeps: the page calls
// its watchers when it grew.
func (n *Node) Changed() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mem != nil {
		return n.mem.changed
	}
	if n.tr != nil {
		return n.tr.changed
	}
	return 0
}

// write runs a write of the member's Space and queues the record of what
// it appended to the page's own feed.
func (n *Node) write(nowMs int64, f func(context.Context, *space.Space) error) (uint64, error) {
	m, err := n.memberOf()
	if err != nil {
		return 0, err
	}
	m.now = time.UnixMilli(nowMs)
	own, err := n.db.Feed(m.sp.Feed())
	if err != nil {
		return 0, err
	}
	before := own.Length()
	werr := f(context.Background(), m.sp)
	after := own.Length()
	if after > before {
		// What was appended is in the feed even if the write then failed:
		// the page must keep it, or its feed would fork after a reload.
		b, err := own.Batch(feed.BatchRequest{Want: []feed.Range{{Start: before, End: after}}, Base: before, MaxBytes: feed.MaxBatchBytes / 2})
		n.mu.Lock()
		m.changed++
		if err == nil {
			n.keep(b)
		} else {
			n.dropped++
		}
		n.mu.Unlock()
		if err == nil && b.Runs[len(b.Runs)-1].End() < after {
			err = errors.New("the write's record does not hold all it appended")
		}
		werr = errors.Join(werr, err)
	}
	return after, werr
}

// Put sets key to value in the space: an entry appended to this device's
// feed. It returns the feed's new length. The record is handed to the
// page (TakeRecords); Announce offers the entry to the peers. nowMs is
// the page's clock, for the op's HLC.
func (n *Node) Put(key string, value []byte, nowMs int64) (uint64, error) {
	return n.write(nowMs, func(ctx context.Context, sp *space.Space) error { return sp.Put(ctx, key, value) })
}

// Delete deletes key in the space (an op in this device's feed).
func (n *Node) Delete(key string, nowMs int64) (uint64, error) {
	return n.write(nowMs, func(ctx context.Context, sp *space.Space) error { return sp.Delete(ctx, key) })
}

// Announce tells every session of the node that this device's feed grew:
// their Flush returns the new head for the peer. The page calls it once
// the write's record is committed to IndexedDB.
func (n *Node) Announce() {
	m, err := n.memberOf()
	if err != nil {
		return
	}
	for s := range n.sessions {
		s.s.Appended(m.sp.Feed())
	}
}

// VersionInfo is one version of a key (the daemon API's Version).
type VersionInfo struct {
	Value   []byte
	Deleted bool
	HLC     uint64
	Feed    []byte
	Index   uint64
}

// EntryInfo is a key and its versions, winner first.
type EntryInfo struct {
	Key      string
	Versions []VersionInfo
}

// MaxList bounds the keys List returns in one page.
const MaxList = 1000

// List returns up to limit keys (at most MaxList; 0: MaxList) with
// prefix after `after`, with their versions, and the key to list after
// for the next page ("" when this is the last).
func (n *Node) List(prefix, after string, limit int) ([]EntryInfo, string, error) {
	m, err := n.memberOf()
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	keys := m.sp.List(prefix, after, limit+1)
	next := ""
	if len(keys) > limit {
		keys, next = keys[:limit], keys[limit-1]
	}
	out := make([]EntryInfo, 0, len(keys))
	for _, k := range keys {
		e := EntryInfo{Key: k}
		for _, v := range m.sp.Get(k) {
			e.Versions = append(e.Versions, VersionInfo{Value: v.Value, Deleted: v.Deleted, HLC: v.HLC, Feed: append([]byte(nil), v.ID.Feed[:]...), Index: v.ID.Index})
		}
		out = append(out, e)
	}
	return out, next, m.sp.Err()
}

// DeviceInfo is a writer of the space and the name its add gave it.
type DeviceInfo struct {
	Feed []byte
	Name string
	Self bool
}

// Devices lists the writers of the space, most senior first.
func (n *Node) Devices() ([]DeviceInfo, error) {
	m, err := n.memberOf()
	if err != nil {
		return nil, err
	}
	own := m.sp.Feed()
	var out []DeviceInfo
	for _, d := range m.sp.Devices() {
		out = append(out, DeviceInfo{Feed: append([]byte(nil), d.Feed[:]...), Name: d.Name, Self: d.Feed == own})
	}
	return out, nil
}

// memberView is the view of a member's Space as View returns it.
func memberView(sp *space.Space, withKVs bool) ViewResult {
	d := sp.Digest()
	dg := sp.Diagnostics()
	res := ViewResult{Digest: d[:], Keys: sp.Keys(), Writers: len(sp.Devices()), Invalid: dg.InvalidTotal, Waiting: dg.Waiting}
	if !withKVs {
		return res
	}
	for _, k := range sp.List("", "", 0) {
		vs := sp.Get(k)
		if len(vs) == 0 {
			continue
		}
		res.KVs = append(res.KVs, KV{Key: k, Value: vs[0].Value, Deleted: vs[0].Deleted, Siblings: len(vs) - 1})
	}
	return res
}

// signinSpace is a member's Space as node/signin's member side sees it
// (node/signin.go's signinSpace, over the page's Space).
type signinSpace struct{ sp *space.Space }

var _ signin.Space = signinSpace{}

func (s signinSpace) ID() auth.SpaceID                            { return s.sp.ID() }
func (s signinSpace) IsWriter() bool                              { return s.sp.IsWriter() }
func (s signinSpace) IsDevice(f [32]byte) bool                    { return s.sp.IsDevice(feed.PublicKey(f)) }
func (s signinSpace) Feed() [32]byte                              { return s.sp.Feed() }
func (s signinSpace) PasswordRequestKey() (auth.RequestKey, bool) { return s.sp.PasswordRequestKey() }

func (s signinSpace) Invite(id auth.InviteID) (auth.InviteRecord, bool) {
	rec, _, ok := s.sp.Invite(id)
	return rec, ok
}

func (s signinSpace) PasswordGeneration() (uint32, bool) {
	if _, _, ok := s.sp.PasswordKey(); !ok {
		return 0, false
	}
	return s.sp.PasswordGeneration(), true
}

func (s signinSpace) Approval(req *auth.JoinRequest) ([]byte, error) {
	kr, err := s.sp.Keyring()
	if err != nil {
		return nil, err
	}
	a, err := auth.NewApproval(req, kr, s.sp.Feed(), s.sp.Held(s.sp.Feed())-1)
	if err != nil {
		return nil, err
	}
	return a.MarshalBinary()
}

// JoinRequestInfo is a request kept for a person (the daemon API's
// Request).
type JoinRequestInfo struct {
	ID    string
	Space []byte
	Name  string
	Feed  []byte
	Code  string
	Via   string
	Time  int64 // Unix ms, the device's clock
}

func requestInfo(p *signin.Request) JoinRequestInfo {
	return JoinRequestInfo{ID: p.ID, Space: p.Space[:], Name: p.Req.Name, Feed: append([]byte(nil), p.Req.Feed[:]...),
		Code: auth.SafetyCode(p.Req), Via: p.Via, Time: p.Req.Time.UnixMilli()}
}

// SigninResult is what a sign-in call asks the page to do.
type SigninResult struct {
	Handled bool             // a sign-in envelope: not a members' message
	Publish [][]byte         // envelopes to publish on the space's topic
	Shown   *JoinRequestInfo // a request newly kept for a person
}

// SigninReceive takes an envelope of the space's topic received at nowMs
// from peer `from`. One of another key kind (a members' message) is not
// handled: the page opens it as such. A sign-in envelope goes through an
// ephemeral.Filter (signature, clock window, seen before) and then to the
// member side, which keeps a request it verifies or answers it.
func (n *Node) SigninReceive(b []byte, nowMs int64, from string) (SigninResult, error) {
	e, err := ephemeral.Parse(b)
	if err != nil {
		return SigninResult{}, err
	}
	if e.KeyKind != signin.KeyKindInvite && e.KeyKind != signin.KeyKindPassword {
		return SigninResult{}, nil
	}
	res := SigninResult{Handled: true}
	m, err := n.memberOf()
	if err != nil || e.Topic != m.topic {
		return res, nil // not a member (yet): the page's own request is the asker's
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	m.now = time.UnixMilli(nowMs)
	if err := m.filter.Deliver(e); err != nil {
		return res, err
	}
	out, err := m.ms.Receive(m.now, signinSpace{m.sp}, e, from)
	if out.Shown != nil {
		ri := requestInfo(out.Shown)
		res.Shown = &ri
	}
	for _, msg := range out.Publish {
		env, serr := m.seal(msg, m.now)
		if serr != nil {
			return res, serr
		}
		res.Publish = append(res.Publish, env)
	}
	return res, err
}

// seal seals a sign-in body under its request key, signed by this
// device's feed key (node/signin.go publishSignin).
func (m *member) seal(msg signin.Message, now time.Time) ([]byte, error) {
	plain, err := msg.Body.Encode()
	if err != nil {
		return nil, err
	}
	k := msg.Key
	e, err := ephemeral.Seal(k.Key, m.sp.WriterKey(), ephemeral.Header{Topic: m.topic, KeyKind: signin.KeyKind(k.Kind), KeyID: k.ID[:]}, plain, now, nil)
	if err != nil {
		return nil, err
	}
	return e.Marshal()
}

// Requests returns the requests waiting for a person's answer, oldest
// first (signin.Members.Current drops those answered elsewhere, expired,
// or whose invite was spent).
func (n *Node) Requests(nowMs int64) []JoinRequestInfo {
	m, err := n.memberOf()
	if err != nil {
		return nil
	}
	n.mu.Lock()
	ps := m.ms.Current(time.UnixMilli(nowMs), func(id auth.SpaceID) signin.Space {
		if id == m.sp.ID() {
			return signinSpace{m.sp}
		}
		return nil
	})
	n.mu.Unlock()
	out := make([]JoinRequestInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, requestInfo(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out
}

// ErrSafetyCode is Approve's answer when the code typed is not the
// request's.
var ErrSafetyCode = errors.New("the device shows another code: check that you approve the right device")

// find returns the waiting request named by id (a prefix of at least 6
// hex digits naming one).
func (n *Node) find(m *member, id string, now time.Time) (*signin.Request, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < 6 {
		return nil, fmt.Errorf("request ID %q: give at least 6 hex digits", id)
	}
	var found []*signin.Request
	for _, p := range m.ms.Current(now, func(auth.SpaceID) signin.Space { return signinSpace{m.sp} }) {
		if strings.HasPrefix(p.ID, id) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("no one request %s waiting (%d match)", id, len(found))
	}
	return found[0], nil
}

// Approve approves the waiting request id once code matches its safety
// code (node.Approve): the invite is spent, the add-writer op appended to
// this device's feed (records for the page, then Announce), and the
// approval returned sealed, to publish.
func (n *Node) Approve(id, code string, nowMs int64) ([]byte, error) {
	m, err := n.memberOf()
	if err != nil {
		return nil, err
	}
	now := time.UnixMilli(nowMs)
	n.mu.Lock()
	p, err := n.find(m, id, now)
	n.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := auth.CheckSafetyCode(p.Req, code); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrSafetyCode, err)
	}
	if _, err := n.write(nowMs, func(ctx context.Context, sp *space.Space) error {
		if p.Key.Kind == auth.RequestByInvite {
			if err := sp.UseInvite(ctx, auth.InviteID(p.Key.ID), p.Req.Feed); err != nil {
				return err
			}
		}
		return sp.AddWriter(ctx, p.Req.Feed, p.Req.Name, p.Req.Device)
	}); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	msg, err := m.ms.Approve(now, signinSpace{m.sp}, p)
	if err != nil {
		return nil, err
	}
	return m.seal(msg, now)
}

// Deny denies the waiting request id (spending its invite) and returns
// the denial sealed, to publish.
func (n *Node) Deny(id string, nowMs int64) ([]byte, error) {
	m, err := n.memberOf()
	if err != nil {
		return nil, err
	}
	now := time.UnixMilli(nowMs)
	n.mu.Lock()
	p, err := n.find(m, id, now)
	n.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if p.Key.Kind == auth.RequestByInvite {
		if _, err := n.write(nowMs, func(ctx context.Context, sp *space.Space) error {
			if err := sp.UseInvite(ctx, auth.InviteID(p.Key.ID), p.Req.Feed); err != nil && !errors.Is(err, auth.ErrUsed) {
				return err
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	msg, err := m.ms.Deny(now, signinSpace{m.sp}, p)
	if err != nil {
		return nil, err
	}
	return m.seal(msg, now)
}
