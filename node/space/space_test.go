package space

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/feed/memstore"
)

// device is one device's stores and keys.
type device struct {
	name   string
	store  feed.Storage
	feeds  *feed.DB
	writer ed25519.PrivateKey
	key    *auth.DeviceKey
	sp     *Space
}

func newDevice(t testing.TB, name string, store feed.Storage) *device {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	db, err := feed.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	dk, err := auth.GenerateDeviceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &device{name: name, store: store, feeds: db, writer: priv, key: dk}
}

func (d *device) config() Config {
	return Config{Feeds: d.feeds, Store: d.store, Writer: d.writer, Device: d.key}
}

func (d *device) feedKey() feed.PublicKey {
	var k feed.PublicKey
	copy(k[:], d.writer.Public().(ed25519.PublicKey))
	return k
}

func create(t testing.TB, d *device) {
	t.Helper()
	sp, err := Create(context.Background(), d.config(), d.name)
	if err != nil {
		t.Fatal(err)
	}
	d.sp = sp
}

func join(t testing.TB, d *device, id auth.SpaceID) {
	t.Helper()
	sp, err := Open(d.config(), id)
	if err != nil {
		t.Fatal(err)
	}
	d.sp = sp
}

// pull copies every feed of the space that src holds to dst, with proofs,
// then lets dst's space read them: replication without a network.
func pull(t testing.TB, dst, src *device) {
	t.Helper()
	copyFeeds(t, dst, src)
	if _, err := dst.sp.Refresh(); err != nil {
		t.Fatal(err)
	}
}

// copyFeeds copies every feed of the space that src holds to dst.
func copyFeeds(t testing.TB, dst, src *device) {
	t.Helper()
	for _, k := range src.sp.Feeds() {
		sf, err := src.feeds.Feed(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := sf.Head(); !ok {
			continue
		}
		df, err := dst.feeds.Feed(k)
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			b, err := sf.Batch(feed.BatchRequest{Want: df.Missing(), Base: df.Length()})
			if err != nil {
				t.Fatal(err)
			}
			if len(df.Missing()) == 0 && df.Length() == sf.Length() {
				break
			}
			if err := df.Ingest(b); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func value(sp *Space, key string) string {
	vs := sp.Get(key)
	if len(vs) == 0 || vs[0].Deleted {
		return ""
	}
	return string(vs[0].Value)
}

func TestSpaceLocal(t *testing.T) {
	ctx := context.Background()
	a := newDevice(t, "Laptop", nil)
	create(t, a)
	w := a.sp.Watch("notes/")
	if err := a.sp.Put(ctx, "notes/1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := a.sp.Put(ctx, "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := a.sp.Put(ctx, "notes/2", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := a.sp.Delete(ctx, "notes/1"); err != nil {
		t.Fatal(err)
	}
	if got := value(a.sp, "notes/2"); got != "two" {
		t.Fatalf("get = %q", got)
	}
	if vs := a.sp.Get("notes/1"); len(vs) != 1 || !vs[0].Deleted {
		t.Fatalf("deleted key: %+v", vs)
	}
	if got := fmt.Sprint(a.sp.List("notes/", "", 10)); got != "[notes/2]" {
		t.Fatalf("list = %s", got)
	}
	var events []string
	for len(events) < 3 {
		select {
		case c := <-w.C:
			events = append(events, c.Key)
		case <-time.After(time.Second):
			t.Fatalf("watch: got %v", events)
		}
	}
	if fmt.Sprint(events) != "[notes/1 notes/2 notes/1]" {
		t.Fatalf("watch events %v", events)
	}
	if d := a.sp.Devices(); len(d) != 1 || d[0].Name != "Laptop" || d[0].Feed != a.feedKey() {
		t.Fatalf("devices %+v", d)
	}

	// Reopen from the same stores: same view, still a writer.
	digest := a.sp.Digest()
	a.sp.Close()
	join(t, a, a.sp.ID())
	if a.sp.Digest() != digest || !a.sp.IsWriter() {
		t.Fatal("reopened space differs")
	}
	if a.sp.read != 0 {
		t.Fatalf("reopening read %d entries again; the view is stored", a.sp.read)
	}
	if err := a.sp.Put(ctx, "notes/3", []byte("three")); err != nil {
		t.Fatalf("write after reopen: %v", err)
	}
	if len(a.sp.Invalid()) != 0 {
		t.Fatalf("invalid ops: %+v", a.sp.Invalid())
	}
}

func TestSpaceApproveWriteConverge(t *testing.T) {
	ctx := context.Background()
	a, b := newDevice(t, "Laptop", nil), newDevice(t, "Firefox on Ubuntu 64-bit", nil)
	create(t, a)
	if err := a.sp.Put(ctx, "k", []byte("from a")); err != nil {
		t.Fatal(err)
	}
	join(t, b, a.sp.ID())
	pull(t, b, a)
	// Not approved: B holds A's entries but can read and write nothing.
	if got := value(b.sp, "k"); got != "" {
		t.Fatalf("unapproved device reads %q", got)
	}
	if err := b.sp.Put(ctx, "x", []byte("y")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("unapproved write: %v", err)
	}

	if err := a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, b, a)
	if got := value(b.sp, "k"); got != "from a" {
		t.Fatalf("approved device reads %q", got)
	}
	if !b.sp.IsWriter() {
		t.Fatal("approved device is not a writer")
	}
	if err := b.sp.Put(ctx, "k", []byte("from b")); err != nil {
		t.Fatal(err)
	}
	if err := a.sp.Put(ctx, "j", []byte("concurrent")); err != nil {
		t.Fatal(err)
	}
	pull(t, a, b)
	pull(t, b, a)
	if value(a.sp, "k") != "from b" || value(b.sp, "j") != "concurrent" {
		t.Fatalf("a: k=%q; b: j=%q", value(a.sp, "k"), value(b.sp, "j"))
	}
	if a.sp.Digest() != b.sp.Digest() {
		t.Fatal("digests differ after exchanging everything")
	}
	names := map[string]bool{}
	for _, d := range a.sp.Devices() {
		names[d.Name] = true
	}
	if !names["Laptop"] || !names["Firefox on Ubuntu 64-bit"] {
		t.Fatalf("devices %v", names)
	}
}

// threeMembers returns devices A, B and C of one space: A created it and
// approved B and C, which have caught up with A.
func threeMembers(t testing.TB) (a, b, c *device) {
	t.Helper()
	a, b, c = newDevice(t, "A", nil), newDevice(t, "B", nil), newDevice(t, "C", nil)
	create(t, a)
	for _, d := range []*device{b, c} {
		join(t, d, a.sp.ID())
		if err := a.sp.AddWriter(context.Background(), d.feedKey(), d.name, d.key.Public()); err != nil {
			t.Fatal(err)
		}
	}
	pull(t, b, a)
	pull(t, c, a)
	return a, b, c
}

func TestSpaceRemovalRotates(t *testing.T) {
	ctx := context.Background()
	a, b, c := threeMembers(t)
	if err := c.sp.Put(ctx, "before", []byte("counts")); err != nil {
		t.Fatal(err)
	}
	pull(t, a, c)

	if err := a.sp.RemoveWriter(ctx, c.feedKey()); err != nil {
		t.Fatal(err)
	}
	if err := a.sp.Put(ctx, "secret", []byte("after removal")); err != nil {
		t.Fatal(err)
	}
	// C races its removal, then receives everything.
	if err := c.sp.Put(ctx, "raced", []byte("void")); err != nil {
		t.Fatal(err)
	}
	pull(t, c, a)
	pull(t, a, c)
	pull(t, b, a)
	pull(t, b, c)

	if value(b.sp, "secret") != "after removal" {
		t.Fatal("remaining member cannot read the new epoch")
	}
	if value(c.sp, "secret") != "" {
		t.Fatal("removed device reads an entry of the new epoch")
	}
	// The entry itself: C holds it but no key opens it.
	af, _ := c.feeds.Feed(a.feedKey())
	last, err := af.Get(af.Length() - 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEntry(c.sp.ID(), a.feedKey(), af.Length()-1, last, c.sp.keys); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed device opening a new entry: %v", err)
	}
	for _, d := range []*device{a, b} {
		if value(d.sp, "raced") != "" || value(d.sp, "before") != "counts" {
			t.Fatalf("%s: raced=%q before=%q", d.name, value(d.sp, "raced"), value(d.sp, "before"))
		}
	}
	if a.sp.Digest() != b.sp.Digest() {
		t.Fatal("remaining members disagree")
	}
	if c.sp.IsWriter() {
		t.Fatal("removed device still a writer")
	}
	if err := c.sp.Put(ctx, "later", []byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("removed device writes: %v", err)
	}
}

// TestSpaceNoPlaintextAtRest plants canaries as keys, values and device
// names and looks for them, and for the epoch secrets, in every key and
// value the store holds (through its API: badger compresses its files).
func TestSpaceNoPlaintextAtRest(t *testing.T) {
	ctx := context.Background()
	st, err := badgerstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := newDevice(t, "origin-device", st)
	create(t, a)
	var canaries [][]byte
	canary := func() []byte {
		c := make([]byte, 12)
		rand.Read(c)
		c = []byte(fmt.Sprintf("canary-%x", c))
		canaries = append(canaries, c)
		return c
	}
	for i := 0; i < 20; i++ {
		d := newDevice(t, string(canary()), nil)
		if err := a.sp.AddWriter(ctx, d.feedKey(), d.name, d.key.Public()); err != nil {
			t.Fatal(err)
		}
	}
	for len(canaries) < 1000 {
		if err := a.sp.Put(ctx, string(canary()), canary()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.sp.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.sp.Flush(); err != nil { // the view's records too
		t.Fatal(err)
	}
	secrets := a.sp.keyring.All()
	// A control stored in the clear shows the scan would see a canary.
	control := []byte("control-" + string(canaries[7]))
	if err := st.Commit([]feed.Write{{Key: []byte("zz-control"), Value: control}}); err != nil {
		t.Fatal(err)
	}
	// Every key and value, through badger's API (its files are compressed,
	// so grepping them would miss things).
	found, scanned, controlSeen := 0, 0, false
	err = st.Scan(nil, nil, func(k, v []byte) error {
		scanned++
		if string(k) == "zz-control" {
			controlSeen = bytes.Contains(v, canaries[7])
			return nil
		}
		for _, c := range canaries {
			if bytes.Contains(k, c) || bytes.Contains(v, c) {
				found++
			}
		}
		for _, es := range secrets {
			if bytes.Contains(k, es.Secret[:]) || bytes.Contains(v, es.Secret[:]) {
				found++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("planted %d canaries and %d epoch secrets; scanned %d records; found %d", len(canaries), len(secrets), scanned, found)
	if !controlSeen {
		t.Fatal("the scan missed the control canary")
	}
	if found != 0 {
		t.Fatalf("%d plaintext canaries or secrets at rest", found)
	}
	// The canaries are really there to be found when decrypted.
	if value(a.sp, string(canaries[40])) != string(canaries[41]) {
		t.Fatal("canary not readable through the space")
	}
}

// TestSpaceConcurrentRotationDoesNotLeak: A removes C while B, not yet
// aware, rotates and seals its new secret to C too. Once the removal has
// reached them, A's and B's writes must use a secret C does not hold.
func TestSpaceConcurrentRotationDoesNotLeak(t *testing.T) {
	ctx := context.Background()
	a, b, c := threeMembers(t)
	if err := a.sp.RemoveWriter(ctx, c.feedKey()); err != nil {
		t.Fatal(err)
	}
	if err := b.sp.Rotate(ctx); err != nil { // concurrent: B still counts C in
		t.Fatal(err)
	}
	pull(t, a, b)
	pull(t, b, a)
	pull(t, c, a)
	pull(t, c, b)
	for _, d := range []*device{a, b} {
		if err := d.sp.Put(ctx, "after-"+d.name, []byte("secret")); err != nil {
			t.Fatal(err)
		}
	}
	pull(t, c, a)
	pull(t, c, b)
	for _, d := range []*device{a, b} {
		if got := value(c.sp, "after-"+d.name); got != "" {
			t.Fatalf("removed device reads %s's write after its removal: %q", d.name, got)
		}
	}
	pull(t, a, b)
	pull(t, b, a)
	if value(a.sp, "after-B") != "secret" || value(b.sp, "after-A") != "secret" {
		t.Fatal("remaining members cannot read each other")
	}
}

// TestSpaceShareKeysToConcurrentlyAddedDevice: B approves D while A rotates;
// D's keyring lacks the new epoch, so it can neither read A's new writes
// nor write, until a member shares the secret.
func TestSpaceShareKeysToConcurrentlyAddedDevice(t *testing.T) {
	ctx := context.Background()
	a, b, d := newDevice(t, "A", nil), newDevice(t, "B", nil), newDevice(t, "D", nil)
	create(t, a)
	join(t, b, a.sp.ID())
	if err := a.sp.AddWriter(ctx, b.feedKey(), b.name, b.key.Public()); err != nil {
		t.Fatal(err)
	}
	pull(t, b, a)
	join(t, d, a.sp.ID())
	if err := a.sp.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.sp.AddWriter(ctx, d.feedKey(), d.name, d.key.Public()); err != nil { // concurrent
		t.Fatal(err)
	}
	for _, x := range [][2]*device{{a, b}, {b, a}, {d, a}, {d, b}} {
		pull(t, x[0], x[1])
	}
	if err := a.sp.Put(ctx, "k", []byte("epoch 1")); err != nil {
		t.Fatal(err)
	}
	pull(t, d, a)
	if value(d.sp, "k") != "" {
		t.Fatal("D reads an epoch it was never given")
	}
	if err := d.sp.Put(ctx, "d", []byte("x")); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("D writes without the current secret: %v", err)
	}
	if _, err := a.sp.ShareKeys(ctx); err != nil {
		t.Fatal(err)
	}
	pull(t, d, a)
	if value(d.sp, "k") != "epoch 1" {
		t.Fatal("D cannot read after the secret was shared")
	}
	if err := d.sp.Put(ctx, "d", []byte("from D")); err != nil {
		t.Fatal(err)
	}
	pull(t, a, d)
	if value(a.sp, "d") != "from D" {
		t.Fatal("A cannot read D's write")
	}
	// Nothing left to share: no op is written.
	before := a.sp.w.Length()
	if n, err := a.sp.ShareKeys(ctx); err != nil || n != 0 || a.sp.w.Length() != before {
		t.Fatalf("second share wrote an op (%v)", err)
	}
}

// TestSpaceShareKeysAfterConcurrentRemoval: A approves C while B removes D.
// B's rotation seals the new epoch's secret to A and B only, and C's
// keyring (from A) predates it: C can neither read B's new writes nor
// write. Every holder sees the gap (ShareDue), ranked by feed key, also
// after a reopen; the first shares one box, to C and not to D; C then
// reads and writes in the newest epoch, and D opens nothing of it. A
// second share, even a concurrent one, writes nothing more.
func TestSpaceShareKeysAfterConcurrentRemoval(t *testing.T) {
	ctx := context.Background()
	a, b, d := newDevice(t, "A", nil), newDevice(t, "B", nil), newDevice(t, "D", nil)
	c := newDevice(t, "C", nil)
	create(t, a)
	for _, x := range []*device{b, d} {
		join(t, x, a.sp.ID())
		if err := a.sp.AddWriter(ctx, x.feedKey(), x.name, x.key.Public()); err != nil {
			t.Fatal(err)
		}
	}
	pull(t, b, a)
	pull(t, d, a)
	join(t, c, a.sp.ID())
	if err := a.sp.AddWriter(ctx, c.feedKey(), c.name, c.key.Public()); err != nil {
		t.Fatal(err)
	}
	if err := b.sp.RemoveWriter(ctx, d.feedKey()); err != nil { // concurrent
		t.Fatal(err)
	}
	if err := b.sp.Put(ctx, "b-new", []byte("newest epoch")); err != nil {
		t.Fatal(err)
	}
	everyone := func() {
		t.Helper()
		for _, x := range []*device{a, b, c, d} {
			for _, y := range []*device{a, b, c, d} {
				if x != y && y.sp.IsWriter() {
					pull(t, x, y)
				}
			}
		}
	}
	everyone()
	if value(c.sp, "b-new") != "" {
		t.Fatal("C reads an epoch it was never given")
	}
	if err := c.sp.Put(ctx, "c-new", []byte("x")); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("C writes without the newest secret: %v", err)
	}
	// The gap survives a restart: A's reopened space still sees it.
	if err := a.sp.Close(); err != nil {
		t.Fatal(err)
	}
	join(t, a, a.sp.ID())
	rankA, dueA := a.sp.ShareDue()
	rankB, dueB := b.sp.ShareDue()
	if !dueA || !dueB || rankA+rankB != 1 {
		t.Fatalf("holders' turns: A %d %v, B %d %v", rankA, dueA, rankB, dueB)
	}
	for _, x := range []*device{c, d} {
		if _, due := x.sp.ShareDue(); due {
			t.Fatalf("%s, without the newest secret, is due to share it", x.name)
		}
	}
	first, second := a, b
	if rankB == 0 {
		first, second = b, a
	}
	if n, err := first.sp.ShareKeys(ctx); err != nil || n != 1 {
		t.Fatalf("first share: %d ops, %v", n, err)
	}
	// The holder ranked second shares too before it sees the first share
	// (its turn came while the first was offline): harmless, and bounded.
	if n, err := second.sp.ShareKeys(ctx); err != nil || n != 1 {
		t.Fatalf("concurrent share: %d ops, %v", n, err)
	}
	for _, x := range []*device{first, second} {
		r := x.sp.view.special[len(x.sp.view.special)-1].op.Rotation
		if len(r.Boxes) != 1 || r.Boxes[0].Feed != c.feedKey() {
			t.Fatalf("%s's share has boxes for %v", x.name, r.Boxes)
		}
	}
	everyone()
	if got := value(c.sp, "b-new"); got != "newest epoch" {
		t.Fatalf("C reads %q after the share", got)
	}
	if err := c.sp.Put(ctx, "c-new", []byte("from C")); err != nil {
		t.Fatal(err)
	}
	everyone()
	for _, x := range []*device{a, b} {
		if got := value(x.sp, "c-new"); got != "from C" {
			t.Fatalf("%s reads %q of C's write", x.name, got)
		}
		if _, due := x.sp.ShareDue(); due {
			t.Fatalf("%s still due to share", x.name)
		}
		if n, err := x.sp.ShareKeys(ctx); err != nil || n != 0 {
			t.Fatalf("%s shares again: %d ops, %v", x.name, n, err)
		}
	}
	// D holds no secret of the newest epoch and reads nothing of it.
	if value(d.sp, "b-new") != "" || value(d.sp, "c-new") != "" {
		t.Fatal("D reads the newest epoch")
	}
	capsA, _ := a.sp.Capabilities()
	capsD, _ := d.sp.Capabilities()
	if len(capsD) != len(capsA)-1 {
		t.Fatalf("D holds %d epochs, A %d", len(capsD), len(capsA))
	}
	capsC, _ := c.sp.Capabilities()
	if len(capsC) != len(capsA) {
		t.Fatalf("C holds %d epochs, A %d", len(capsC), len(capsA))
	}
}
