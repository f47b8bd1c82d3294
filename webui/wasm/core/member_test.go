package core

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/node/signin"
	"github.com/mycelsync/mycel/node/space"
)

// origin is a daemon's side of a space, built from node/space directly: a
// Space over its own feed.DB.
type origin struct {
	db *feed.DB
	sp *space.Space
}

func newOrigin(t testing.TB) *origin {
	t.Helper()
	db, err := feed.Open(memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	dk, err := auth.GenerateDeviceKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := space.Create(context.Background(), space.Config{Feeds: db, Store: memstore.New(), Writer: priv, Device: dk}, "daemon")
	if err != nil {
		t.Fatal(err)
	}
	return &origin{db: db, sp: sp}
}

func (o *origin) id() []byte { id := o.sp.ID(); return id[:] }

func (o *origin) secrets(t testing.TB) []Secret {
	t.Helper()
	kr, err := o.sp.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	var out []Secret
	for _, es := range kr.All() {
		out = append(out, Secret{Epoch: es.Epoch, Secret: append([]byte(nil), es.Secret[:]...)})
	}
	return out
}

// recordOf returns the record of feed k's entries [from, to) in db, as a
// page keeps it.
func recordOf(t testing.TB, db *feed.DB, k feed.PublicKey, from, to uint64) []byte {
	t.Helper()
	f, err := db.Feed(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Batch(feed.BatchRequest{Want: []feed.Range{{Start: from, End: to}}, Base: from})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := record(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// ingest ingests a page's records into the origin's feeds, as the daemon
// ingests what the page's session sends: a fork is refused.
func (o *origin) ingest(t testing.TB, recs [][]byte) error {
	t.Helper()
	for _, rec := range recs {
		b, err := decodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		f, err := o.db.Feed(b.Head.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Ingest(b); err != nil {
			return err
		}
	}
	_, err := o.sp.Refresh()
	return err
}

// pageMember returns a page node that holds the origin's feed and is a
// member writing with seed; the origin added it as a writer.
func pageMember(t testing.TB, o *origin, seed []byte, dk *auth.DeviceKey, extra ...[]byte) *Node {
	t.Helper()
	own, _ := PublicKey(seed)
	n, err := NewNode([][]byte{o.id(), own})
	if err != nil {
		t.Fatal(err)
	}
	ofeed := o.sp.Feed()
	if err := n.Import(recordOf(t, o.db, ofeed, 0, o.sp.Held(ofeed))); err != nil {
		t.Fatal(err)
	}
	for _, rec := range extra {
		if err := n.Import(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Member(MemberConfig{Space: o.id(), Seed: seed, Device: dk.Bytes(), Secrets: o.secrets(t), NowMs: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMemberWritesAndReloads: a page made a member writes puts and a
// delete into its own feed through node/space; the daemon ingests the
// records it hands out and holds the page's view. Started again from
// those records (a reload), the page lists its writes and writes on: its
// feed continues, and the daemon ingests the new entry without a fork.
func TestMemberWritesAndReloads(t *testing.T) {
	o := newOrigin(t)
	ctx := context.Background()
	if err := o.sp.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{7}, 32)
	own, _ := PublicKey(seed)
	dk, _ := auth.GenerateDeviceKey(rand.Reader)
	if err := o.sp.AddWriter(ctx, feed.PublicKey(own), "page", dk.Public()); err != nil {
		t.Fatal(err)
	}
	n := pageMember(t, o, seed, dk)
	n.TakeRecords()
	if _, err := n.Put("b", []byte("2"), time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	l, err := n.Delete("a", time.Now().UnixMilli())
	if err != nil || l != 2 {
		t.Fatalf("delete: length %d, %v", l, err)
	}
	recs, dropped := n.TakeRecords()
	if len(recs) != 2 || dropped != 0 {
		t.Fatalf("%d records of the writes, %d dropped", len(recs), dropped)
	}
	if err := o.ingest(t, recs); err != nil {
		t.Fatal(err)
	}
	v, _ := n.ViewSummary(o.id(), nil)
	if d := o.sp.Digest(); !bytes.Equal(v.Digest, d[:]) {
		t.Fatalf("the page's digest %x is not the daemon's %x", v.Digest[:8], d[:8])
	}
	if vs := o.sp.Get("a"); len(vs) != 1 || !vs[0].Deleted {
		t.Fatalf("the daemon's a: %+v", vs)
	}

	// Reload: a new node from the records.
	n2 := pageMember(t, o, seed, dk, recs...)
	es, _, err := n2.List("", "", 0)
	if err != nil || len(es) != 1 || es[0].Key != "b" || string(es[0].Versions[0].Value) != "2" || !bytes.Equal(es[0].Versions[0].Feed, own) {
		t.Fatalf("after the reload the page lists %+v, %v", es, err)
	}
	n2.TakeRecords()
	if l, err := n2.Put("c", []byte("3"), time.Now().UnixMilli()); err != nil || l != 3 {
		t.Fatalf("put after the reload: length %d, %v", l, err)
	}
	more, _ := n2.TakeRecords()
	if err := o.ingest(t, more); err != nil {
		t.Fatalf("the daemon refuses the page's write after its reload: %v", err)
	}
	if f, _ := o.db.Feed(feed.PublicKey(own)); f.Evidence() != nil || f.Length() != 3 {
		t.Fatalf("the page's feed at the daemon: length %d, evidence %v", f.Length(), f.Evidence() != nil)
	}
	if vs := o.sp.Get("c"); len(vs) != 1 || string(vs[0].Value) != "3" {
		t.Fatalf("the daemon's c: %+v", vs)
	}
	ds, _ := n2.Devices()
	if len(ds) != 2 || !ds[1].Self || ds[1].Name != "page" {
		t.Fatalf("devices: %+v", ds)
	}
}

// TestMemberNotWriter: a node that is no member, or a member whose feed
// no writer added, writes nothing.
func TestMemberNotWriter(t *testing.T) {
	o := newOrigin(t)
	n, _ := NewNode([][]byte{o.id()})
	if _, err := n.Put("a", nil, time.Now().UnixMilli()); err == nil {
		t.Fatal("a node that is no member wrote")
	}
	dk, _ := auth.GenerateDeviceKey(rand.Reader)
	n = pageMember(t, o, bytes.Repeat([]byte{8}, 32), dk)
	if _, err := n.Put("a", nil, time.Now().UnixMilli()); !errors.Is(err, space.ErrReadOnly) {
		t.Fatalf("a member no writer added wrote: %v", err)
	}
	if recs, _ := n.TakeRecords(); len(recs) != 0 {
		t.Fatalf("%d records of a refused write", len(recs))
	}
}

// inviteSpace is an origin that made an invite, and a page member that
// holds its records (the invite among them).
func inviteSpace(t testing.TB) (*origin, *Node, *auth.Invite) {
	t.Helper()
	o := newOrigin(t)
	ctx := context.Background()
	inv, err := auth.NewInvite(o.sp.ID(), time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.sp.RecordInvite(ctx, inv.Record(), nil); err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{10}, 32)
	own, _ := PublicKey(seed)
	dk, _ := auth.GenerateDeviceKey(rand.Reader)
	if err := o.sp.AddWriter(ctx, feed.PublicKey(own), "page", dk.Public()); err != nil {
		t.Fatal(err)
	}
	n := pageMember(t, o, seed, dk)
	n.TakeRecords()
	return o, n, inv
}

// TestMemberApprovesInviteRequest: a device asks with an invite another
// member (the daemon) made; the page holds the invite's record in its
// view, shows the request, and approving spends the invite in the page's
// feed, which the daemon then counts as used.
func TestMemberApprovesInviteRequest(t *testing.T) {
	o, n, inv := inviteSpace(t)
	link, _ := inv.Link()
	now := time.Now()
	a, err := NewAsker(AskWith{Invite: link, Name: "phone"}, now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	st, _ := a.Step(now.UnixMilli(), 1)
	r, err := n.SigninReceive(st.Publish, now.UnixMilli(), "peer")
	if err != nil || r.Shown == nil || r.Shown.Code != a.SafetyCode() || r.Shown.Via != "invite "+inv.ID().String() {
		t.Fatalf("the invite request: %+v, %v", r.Shown, err)
	}
	if _, err := n.Approve(r.Shown.ID, a.SafetyCode(), now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	recs, _ := n.TakeRecords()
	if err := o.ingest(t, recs); err != nil {
		t.Fatal(err)
	}
	if rec, _, ok := o.sp.Invite(inv.ID()); !ok || !rec.Used || rec.UsedBy != [32]byte(a.Feed()) {
		t.Fatalf("the daemon's invite record after the page's approval: %+v", rec)
	}
	if !o.sp.IsDevice(feed.PublicKey(a.Feed())) {
		t.Fatal("the daemon does not count the device")
	}
}

// passwordSpace is an origin with a password and a page member that
// holds its records.
func passwordSpace(t testing.TB, pw string) (*origin, *Node) {
	t.Helper()
	o := newOrigin(t)
	ctx := context.Background()
	if err := o.sp.SetPasswordKey(ctx, 0, auth.PasswordKeyAt(pw, o.sp.ID(), 0)); err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{9}, 32)
	own, _ := PublicKey(seed)
	dk, _ := auth.GenerateDeviceKey(rand.Reader)
	if err := o.sp.AddWriter(ctx, feed.PublicKey(own), "page", dk.Public()); err != nil {
		t.Fatal(err)
	}
	n := pageMember(t, o, seed, dk)
	n.TakeRecords()
	return o, n
}

// TestMemberApprovesPasswordRequest: a device asks with the space's
// password (core.Asker, node/signin's Device); the page, a member, keeps
// the request with the safety code the device shows. A wrong code is
// refused; the right one appends the add-writer op to the page's feed and
// yields an approval the device opens into a trial of the space's keys.
func TestMemberApprovesPasswordRequest(t *testing.T) {
	const pw = "correct horse battery"
	o, n := passwordSpace(t, pw)
	now := time.Now()
	a, err := NewAsker(AskWith{Space: o.sp.ID().String(), Password: pw, Name: "laptop"}, now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.Step(now.UnixMilli(), 1)
	if err != nil || st.Publish == nil {
		t.Fatalf("the device publishes no request: %v", err)
	}
	r, err := n.SigninReceive(st.Publish, now.UnixMilli(), "peer-b")
	if err != nil || !r.Handled || r.Shown == nil {
		t.Fatalf("the page does not keep the request: %+v, %v", r, err)
	}
	if r.Shown.Code != a.SafetyCode() || r.Shown.Name != "laptop" || r.Shown.Via != "password" || !bytes.Equal(r.Shown.Feed, a.Feed()) {
		t.Fatalf("the page shows %+v; the device shows code %s", r.Shown, a.SafetyCode())
	}
	rs := n.Requests(now.UnixMilli())
	if len(rs) != 1 || rs[0].ID != r.Shown.ID {
		t.Fatalf("requests: %+v", rs)
	}
	if _, err := n.Approve(rs[0].ID, "000-000", now.UnixMilli()); !errors.Is(err, ErrSafetyCode) {
		t.Fatalf("approved with a wrong code: %v", err)
	}
	if recs, _ := n.TakeRecords(); len(recs) != 0 {
		t.Fatal("a refused approval wrote")
	}
	env, err := n.Approve(rs[0].ID[:8], a.SafetyCode(), now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := n.TakeRecords()
	if len(recs) != 1 {
		t.Fatalf("%d records of the approval", len(recs))
	}
	if !n.isWriter(feed.PublicKey(a.Feed())) {
		t.Fatal("the device is no writer in the page's view")
	}
	if err := o.ingest(t, recs); err != nil {
		t.Fatal(err)
	}
	if !o.sp.IsDevice(feed.PublicKey(a.Feed())) {
		t.Fatal("the daemon does not count the page's add-writer op")
	}
	mine, wake, err := a.Receive(env, now.UnixMilli())
	if err != nil || !mine || !wake {
		t.Fatalf("the device takes the approval: mine %v wake %v, %v", mine, wake, err)
	}
	tr := a.NextTrial(now.UnixMilli())
	if len(tr.Secrets) != 1 || !bytes.Equal(tr.Secrets[0].Secret, o.secrets(t)[0].Secret) || len(tr.Feeds) != 1 || !bytes.Equal(tr.Feeds[0], n.Own()) {
		t.Fatalf("the trial: %d secrets, feeds %x", len(tr.Secrets), tr.Feeds)
	}
	if rs := n.Requests(now.UnixMilli()); len(rs) != 0 {
		t.Fatalf("the approved request is still listed: %+v", rs)
	}
}

// TestMemberRefusesForgedRequests: what a stranger or a damaged channel
// hands the page's member side is refused and never shown: a request
// with a byte flipped, a request the sender did not sign with the feed it
// names, a replayed request, one sealed under a password key the space
// does not hold (refused at most at the rate allowed), one out of the
// clock's window; a members' message is not taken for a sign-in envelope.
func TestMemberRefusesForgedRequests(t *testing.T) {
	const pw = "correct horse battery"
	o, n := passwordSpace(t, pw)
	now := time.Now()
	a, _ := NewAsker(AskWith{Space: o.sp.ID().String(), Password: pw, Name: "laptop"}, now.UnixMilli())
	st, _ := a.Step(now.UnixMilli(), 1)
	good := st.Publish

	for i := 0; i < len(good); i += 7 {
		bad := bytes.Clone(good)
		bad[i] ^= 0x20
		r, err := n.SigninReceive(bad, now.UnixMilli(), "x")
		if r.Shown != nil || len(r.Publish) != 0 {
			t.Fatalf("byte %d flipped: shown %+v, %d published", i, r.Shown, len(r.Publish))
		}
		_ = err // most flips are errors; one in the key kind is another topic's
	}

	// Signed by another key than the feed the request names.
	e, _ := ephemeral.Parse(good)
	k := a.d.Key()
	plain, _ := e.Open(k.Key)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := ephemeral.Seal(k.Key, stranger, ephemeral.Header{Topic: e.Topic, KeyKind: e.KeyKind, KeyID: e.KeyID}, plain, now, nil)
	fb, _ := forged.Marshal()
	if r, err := n.SigninReceive(fb, now.UnixMilli(), "x"); !errors.Is(err, signin.ErrNotRequest) || r.Shown != nil {
		t.Fatalf("a request not signed by its feed: %+v, %v", r, err)
	}

	// Out of the clock's window.
	if r, err := n.SigninReceive(good, now.Add(time.Hour).UnixMilli(), "x"); err == nil || r.Shown != nil {
		t.Fatalf("a request an hour old: %+v, %v", r, err)
	}

	// A wrong password: a refusal, not a request shown; and the refusal
	// is rate-limited.
	b, _ := NewAsker(AskWith{Space: o.sp.ID().String(), Password: "wrong horse battery", Name: "x"}, now.UnixMilli())
	stb, _ := b.Step(now.UnixMilli(), 1)
	r, err := n.SigninReceive(stb.Publish, now.UnixMilli(), "x")
	if err != nil || r.Shown != nil || len(r.Publish) != 1 {
		t.Fatalf("a wrong password: %+v, %v", r, err)
	}
	b2, _ := NewAsker(AskWith{Space: o.sp.ID().String(), Password: "wrong horse battery", Name: "x"}, now.UnixMilli())
	stb2, _ := b2.Step(now.UnixMilli(), 1)
	if r, _ := n.SigninReceive(stb2.Publish, now.UnixMilli(), "x"); len(r.Publish) != 0 {
		t.Fatal("a second wrong password at once is refused again: no rate")
	}

	// The good one is shown once; its replay is refused by the filter.
	if r, err := n.SigninReceive(good, now.UnixMilli(), "x"); err != nil || r.Shown == nil {
		t.Fatalf("the honest request after the forgeries: %+v, %v", r, err)
	}
	if r, err := n.SigninReceive(good, now.UnixMilli(), "x"); err == nil || r.Shown != nil {
		t.Fatalf("a replay: %+v, %v", r, err)
	}
	if rs := n.Requests(now.UnixMilli()); len(rs) != 1 {
		t.Fatalf("%d requests listed, want the honest one", len(rs))
	}

	// Not a sign-in envelope: left to the members' receiver.
	msg, _ := ephemeral.Seal([32]byte{}, stranger, ephemeral.Header{Topic: e.Topic, KeyKind: 1, KeyID: make([]byte, 16)}, []byte("x"), now, nil)
	mb, _ := msg.Marshal()
	if r, err := n.SigninReceive(mb, now.UnixMilli(), "x"); err != nil || r.Handled {
		t.Fatalf("a members' message: %+v, %v", r, err)
	}
}

// TestMemberDeniesAndPages: a denial reaches the device as one (its
// request ends denied) and spends nothing of the page's feed for a
// password request; a put's HLC is the page's clock passed in; List pages
// through the keys with next.
func TestMemberDeniesAndPages(t *testing.T) {
	const pw = "correct horse battery"
	_, n := passwordSpace(t, pw)
	now := time.Now()
	a, _ := NewAsker(AskWith{Space: n.mem.sp.ID().String(), Password: pw, Name: "laptop"}, now.UnixMilli())
	st, _ := a.Step(now.UnixMilli(), 1)
	r, err := n.SigninReceive(st.Publish, now.UnixMilli(), "peer")
	if err != nil || r.Shown == nil {
		t.Fatalf("%+v, %v", r, err)
	}
	env, err := n.Deny(r.Shown.ID, now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if recs, _ := n.TakeRecords(); len(recs) != 0 {
		t.Fatalf("a denial of a password request wrote %d records", len(recs))
	}
	if _, _, err := a.Receive(env, now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if s := a.State(); s.State != signin.StateDenied {
		t.Fatalf("the device's request after the denial: %+v", s)
	}
	if rs := n.Requests(now.UnixMilli()); len(rs) != 0 {
		t.Fatalf("the denied request is still listed: %+v", rs)
	}

	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli()
	for _, k := range []string{"p/1", "p/2", "p/3"} {
		if _, err := n.Put(k, []byte(k), at); err != nil {
			t.Fatal(err)
		}
	}
	es, next, err := n.List("p/", "", 2)
	if err != nil || len(es) != 2 || next != "p/2" {
		t.Fatalf("first page: %d entries, next %q, %v", len(es), next, err)
	}
	if h := es[0].Versions[0].HLC; h>>16 != uint64(at) {
		t.Fatalf("the put's HLC %d is not of the clock passed in (%d ms)", h, at)
	}
	es, next, err = n.List("p/", next, 2)
	if err != nil || len(es) != 1 || es[0].Key != "p/3" || next != "" {
		t.Fatalf("second page: %+v, next %q, %v", es, next, err)
	}
}

// TestMemberProvesRotatedEpoch: after a member rotates the space's key,
// the page — made a member with the old epoch's secret only — learns the
// new secret from the rotation sealed to its device key, proves it to a
// peer that holds only the new epoch (as a device approved after the
// rotation does), and admits that peer by the Space's rule: the session
// runs and the peer gets the space's entries. A page proving only the
// secrets it was handed would be refused.
func TestMemberProvesRotatedEpoch(t *testing.T) {
	o := newOrigin(t)
	ctx := context.Background()
	old := o.secrets(t)
	seed := bytes.Repeat([]byte{11}, 32)
	own, _ := PublicKey(seed)
	dk, _ := auth.GenerateDeviceKey(rand.Reader)
	if err := o.sp.AddWriter(ctx, feed.PublicKey(own), "page", dk.Public()); err != nil {
		t.Fatal(err)
	}
	if err := o.sp.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.sp.Put(ctx, "after", []byte("rotation")); err != nil {
		t.Fatal(err)
	}
	all := o.secrets(t)
	if len(all) != 2 {
		t.Fatalf("%d epochs after the rotation", len(all))
	}
	n, err := NewNode([][]byte{o.id(), own})
	if err != nil {
		t.Fatal(err)
	}
	of := o.sp.Feed()
	if err := n.Import(recordOf(t, o.db, of, 0, o.sp.Held(of))); err != nil {
		t.Fatal(err)
	}
	if err := n.Member(MemberConfig{Space: o.id(), Seed: seed, Device: dk.Bytes(), Secrets: old, NowMs: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if es, _, _ := n.List("after", "", 0); len(es) != 1 {
		t.Fatal("the page does not read what was written under the new epoch")
	}
	peer, _ := NewNode([][]byte{o.id()})
	newest := []Secret{all[1]}
	sa, err := n.NewSession(SessionConfig{LocalID: []byte("a"), RemoteID: []byte("b"), Nonce: bytes.Repeat([]byte{1}, 32), Space: o.id(), Secrets: old})
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := peer.NewSession(SessionConfig{LocalID: []byte("b"), RemoteID: []byte("a"), Nonce: bytes.Repeat([]byte{2}, 32), Space: o.id(), Secrets: newest})
	if errA, errB := pump(t, sa, sb); errA != nil || errB != nil {
		t.Fatalf("the session: page %v, peer %v", errA, errB)
	}
	if l, _ := peer.Length(o.id()); l != o.sp.Held(of) {
		t.Fatalf("the peer holds %d entries of the origin's feed, want %d", l, o.sp.Held(of))
	}
}
