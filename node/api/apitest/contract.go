package apitest

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// Contract runs the behaviour every api.Backend must have — the daemon
// (node.Node) and the Fake alike — against fresh backends from newBackend:
// what one device alone can observe of spaces, keys, watches, members,
// invites and requests, and which error (api.Err*) each misuse gets. The
// server maps those errors to statuses and codes, so a fake that answered
// differently would let the API's tests pass against behaviour the daemon
// does not have.
func Contract(t *testing.T, newBackend func(t *testing.T) api.Backend) {
	for _, c := range contractCases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c.run(ctx, t, newBackend(t))
		})
	}
}

var contractCases = []struct {
	name string
	run  func(ctx context.Context, t *testing.T, b api.Backend)
}{
	{"Spaces", contractSpaces},
	{"PutGetDelete", contractPutGetDelete},
	{"Refusals", contractRefusals},
	{"List", contractList},
	{"Watch", contractWatch},
	{"Members", contractMembers},
	{"Leave", contractLeave},
	{"SignIn", contractSignIn},
}

var hexID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// unknownID is a well-formed space ID no backend holds.
const unknownID = "00000000000000000000000000000000000000000000000000000000000000ff"

func mustCreate(ctx context.Context, t *testing.T, b api.Backend, name string) api.SpaceInfo {
	t.Helper()
	info, err := b.CreateSpace(ctx, name)
	if err != nil {
		t.Fatalf("CreateSpace(%q): %v", name, err)
	}
	return info
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want one wrapping %q", what, err, want)
	}
}

func contractSpaces(ctx context.Context, t *testing.T, b api.Backend) {
	info := mustCreate(ctx, t, b, "notes")
	if !hexID.MatchString(info.ID) || info.Name != "notes" || !info.Approved || !info.Writer || info.Feed == "" {
		t.Fatalf("created space: %+v", info)
	}
	other := mustCreate(ctx, t, b, "photos")
	if other.ID == info.ID {
		t.Fatal("two spaces with one ID")
	}
	var ids []string
	for _, s := range b.Spaces() {
		ids = append(ids, s.ID)
	}
	if len(ids) != 2 || !strings.Contains(strings.Join(ids, " "), info.ID) || !strings.Contains(strings.Join(ids, " "), other.ID) {
		t.Fatalf("Spaces: %v, want %s and %s", ids, info.ID, other.ID)
	}
	got, err := b.Space(info.ID)
	if err != nil || got.ID != info.ID || got.Name != "notes" {
		t.Fatalf("Space(full ID): %+v, %v", got, err)
	}
	// A prefix of at least 8 hex digits names the space it starts.
	got, err = b.Space(info.ID[:12])
	if err != nil || got.ID != info.ID {
		t.Fatalf("Space(prefix): %+v, %v", got, err)
	}
	_, err = b.Space(unknownID)
	wantErr(t, "Space(unknown)", err, api.ErrNotFound)
	_, err = b.Space(info.ID[:4])
	wantErr(t, "Space(4 digits)", err, api.ErrBadRequest)
	_, err = b.CreateSpace(ctx, "")
	wantErr(t, "CreateSpace(\"\")", err, api.ErrBadRequest)
	if st := b.Status(); st.Spaces != 2 || st.PeerID == "" {
		t.Errorf("Status: %+v, want 2 spaces and a peer ID", st)
	}
}

func contractPutGetDelete(ctx context.Context, t *testing.T, b api.Backend) {
	id := mustCreate(ctx, t, b, "kv").ID
	e, err := b.Get(id, "absent")
	if err != nil || e.Key != "absent" || len(e.Versions) != 0 {
		t.Fatalf("Get(absent): %+v, %v", e, err)
	}
	if err := b.Put(ctx, id, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, id, "a", []byte("2")); err != nil {
		t.Fatal(err)
	}
	e, err = b.Get(id, "a")
	if err != nil || len(e.Versions) != 1 || string(e.Versions[0].Value) != "2" || e.Versions[0].Deleted {
		t.Fatalf("Get(a) after two puts: %+v, %v", e, err)
	}
	info, _ := b.Space(id)
	if e.Versions[0].Feed != info.Feed {
		t.Errorf("version's feed %s, want this device's %s", e.Versions[0].Feed, info.Feed)
	}
	// An empty value is a value, not a deletion.
	if err := b.Put(ctx, id, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Get(id, "empty"); err != nil || len(e.Versions) != 1 || e.Versions[0].Deleted || len(e.Versions[0].Value) != 0 {
		t.Fatalf("Get(empty): %+v, %v", e, err)
	}
	if err := b.Delete(ctx, id, "a"); err != nil {
		t.Fatal(err)
	}
	e, err = b.Get(id, "a")
	if err != nil || len(e.Versions) != 1 || !e.Versions[0].Deleted {
		t.Fatalf("Get(a) after delete: %+v, %v (want one deleted version)", e, err)
	}
	// A deleted key is not listed.
	p, err := b.List(id, "", "", 10)
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Key != "empty" {
		t.Fatalf("List after delete: %+v, %v", p, err)
	}
}

func contractRefusals(ctx context.Context, t *testing.T, b api.Backend) {
	id := mustCreate(ctx, t, b, "refusals").ID
	_, err := b.Get(unknownID, "k")
	wantErr(t, "Get(unknown space)", err, api.ErrNotFound)
	wantErr(t, "Put(unknown space)", b.Put(ctx, unknownID, "k", nil), api.ErrNotFound)
	wantErr(t, "Delete(unknown space)", b.Delete(ctx, unknownID, "k"), api.ErrNotFound)
	_, err = b.List(unknownID, "", "", 10)
	wantErr(t, "List(unknown space)", err, api.ErrNotFound)
	_, _, err = b.Watch(ctx, unknownID, "")
	wantErr(t, "Watch(unknown space)", err, api.ErrNotFound)

	_, err = b.Get(id, "")
	wantErr(t, "Get(empty key)", err, api.ErrBadRequest)
	wantErr(t, "Put(empty key)", b.Put(ctx, id, "", []byte("v")), api.ErrBadRequest)
	wantErr(t, "Delete(empty key)", b.Delete(ctx, id, ""), api.ErrBadRequest)
	wantErr(t, "Put(key not UTF-8)", b.Put(ctx, id, "\xff\xfe", []byte("v")), api.ErrBadRequest)
	wantErr(t, "Put(key of 2 KiB)", b.Put(ctx, id, strings.Repeat("k", 2048), []byte("v")), api.ErrBadRequest)
	wantErr(t, "Put(value of 2 MiB)", b.Put(ctx, id, "big", make([]byte, 2<<20)), api.ErrTooLarge)
	_, err = b.List(id, "", "", 0)
	wantErr(t, "List(limit 0)", err, api.ErrBadRequest)
	// Nothing refused was written.
	if p, err := b.List(id, "", "", 10); err != nil || len(p.Entries) != 0 {
		t.Fatalf("after refusals: %+v, %v", p, err)
	}
}

func contractList(ctx context.Context, t *testing.T, b api.Backend) {
	id := mustCreate(ctx, t, b, "list").ID
	for _, k := range []string{"b/2", "a/1", "b/1", "c", "b/3"} {
		if err := b.Put(ctx, id, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(p api.Page) string {
		var ks []string
		for _, e := range p.Entries {
			if len(e.Versions) != 1 || string(e.Versions[0].Value) != e.Key {
				t.Errorf("List entry %q: versions %+v", e.Key, e.Versions)
			}
			ks = append(ks, e.Key)
		}
		return strings.Join(ks, " ")
	}
	p, err := b.List(id, "", "", 10)
	if err != nil || keys(p) != "a/1 b/1 b/2 b/3 c" || p.Next != "" {
		t.Fatalf("List all: %q next %q, %v", keys(p), p.Next, err)
	}
	// Pages of two with the prefix "b/", following Next.
	p, err = b.List(id, "b/", "", 2)
	if err != nil || keys(p) != "b/1 b/2" || p.Next != "b/2" {
		t.Fatalf("List b/ page 1: %q next %q, %v", keys(p), p.Next, err)
	}
	p, err = b.List(id, "b/", p.Next, 2)
	if err != nil || keys(p) != "b/3" || p.Next != "" {
		t.Fatalf("List b/ page 2: %q next %q, %v", keys(p), p.Next, err)
	}
	p, err = b.List(id, "zz", "", 10)
	if err != nil || len(p.Entries) != 0 || p.Next != "" {
		t.Fatalf("List of no key: %+v, %v", p, err)
	}
}

func contractWatch(ctx context.Context, t *testing.T, b api.Backend) {
	id := mustCreate(ctx, t, b, "watch").ID
	wctx, stop := context.WithCancel(ctx)
	ch, errf, err := b.Watch(wctx, id, "w/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x", "w/1"} {
		if err := b.Put(ctx, id, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, id, "w/1"); err != nil {
		t.Fatal(err)
	}
	next := func() api.Entry {
		t.Helper()
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("watch ended early: %v", errf())
			}
			return e
		case <-ctx.Done():
			t.Fatal("no change within the deadline")
		}
		return api.Entry{}
	}
	// Only keys with the prefix, in the order written.
	if e := next(); e.Key != "w/1" || len(e.Versions) != 1 || string(e.Versions[0].Value) != "w/1" {
		t.Fatalf("first change: %+v", e)
	}
	if e := next(); e.Key != "w/1" || len(e.Versions) != 1 || !e.Versions[0].Deleted {
		t.Fatalf("second change: %+v (want the deletion)", e)
	}
	// Ending the context closes the channel without an error.
	stop()
	for {
		select {
		case e, ok := <-ch:
			if ok {
				t.Fatalf("change after the watch ended: %+v", e)
			}
			if err := errf(); err != nil {
				t.Fatalf("watch ended by its context: error %v", err)
			}
			return
		case <-ctx.Done():
			t.Fatal("watch not closed after its context ended")
		}
	}
}

func contractMembers(ctx context.Context, t *testing.T, b api.Backend) {
	info := mustCreate(ctx, t, b, "members")
	ms, err := b.Members(info.ID)
	if err != nil || len(ms) != 1 || ms[0].Feed != info.Feed || !ms[0].Self {
		t.Fatalf("Members of a new space: %+v, %v (want this device alone)", ms, err)
	}
	_, err = b.Members(unknownID)
	wantErr(t, "Members(unknown space)", err, api.ErrNotFound)
	wantErr(t, "RemoveMember(not a member)", b.RemoveMember(ctx, info.ID, strings.Repeat("ab", 32)), api.ErrNotFound)
	wantErr(t, "RemoveMember(not hex)", b.RemoveMember(ctx, info.ID, "zz"), api.ErrBadRequest)
}

func contractLeave(ctx context.Context, t *testing.T, b api.Backend) {
	keep := mustCreate(ctx, t, b, "keep").ID
	gone := mustCreate(ctx, t, b, "gone").ID
	if err := b.Put(ctx, keep, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	left, err := b.LeaveSpace(short, gone)
	cancel()
	if err != nil || left.Space != gone || !left.Removed || left.Reached != 0 || left.Warning == "" {
		t.Fatalf("LeaveSpace with no peer: %+v, %v (want removed, reached 0, a warning)", left, err)
	}
	_, err = b.Space(gone)
	wantErr(t, "Space after leaving", err, api.ErrNotFound)
	wantErr(t, "Put after leaving", b.Put(ctx, gone, "k", nil), api.ErrNotFound)
	_, err = b.LeaveSpace(ctx, gone)
	wantErr(t, "LeaveSpace twice", err, api.ErrNotFound)
	// The other space is untouched.
	if e, err := b.Get(keep, "k"); err != nil || len(e.Versions) != 1 || string(e.Versions[0].Value) != "v" {
		t.Fatalf("other space after leaving: %+v, %v", e, err)
	}
	if n := len(b.Spaces()); n != 1 {
		t.Fatalf("%d spaces after leaving one of two", n)
	}
}

func contractSignIn(ctx context.Context, t *testing.T, b api.Backend) {
	id := mustCreate(ctx, t, b, "signin").ID
	inv, err := b.CreateInvite(ctx, id, time.Hour)
	if err != nil || inv.Space != id || inv.Code == "" || !strings.HasPrefix(inv.Link, "mycel://join/") {
		t.Fatalf("CreateInvite: %+v, %v", inv, err)
	}
	if d := time.Until(inv.Expires); d < 50*time.Minute || d > 70*time.Minute {
		t.Errorf("invite for 1 h expires in %v", d)
	}
	_, err = b.CreateInvite(ctx, unknownID, time.Hour)
	wantErr(t, "CreateInvite(unknown space)", err, api.ErrNotFound)
	wantErr(t, "SetPassword(7 bytes)", b.SetPassword(ctx, id, "1234567"), api.ErrBadRequest)
	if err := b.SetPassword(ctx, id, "correct horse battery"); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	// A device cannot ask to join a space it is a member of.
	_, err = b.Join(ctx, api.JoinWith{Invite: inv.Link})
	wantErr(t, "Join(own space's invite)", err, api.ErrConflict)
	_, err = b.Join(ctx, api.JoinWith{Invite: "not an invite"})
	wantErr(t, "Join(garbage)", err, api.ErrBadRequest)
	if rs := b.Requests(); len(rs) != 0 {
		t.Fatalf("Requests with nobody asking: %+v", rs)
	}
	wantErr(t, "Approve(unknown request)", b.Approve(ctx, "0123456789abcdef", ""), api.ErrNotFound)
	wantErr(t, "Deny(unknown request)", b.Deny(ctx, "0123456789abcdef"), api.ErrNotFound)
}
