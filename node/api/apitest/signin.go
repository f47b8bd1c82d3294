package apitest

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mycelsync/mycel/node/api"
)

// fakeSignIn is the Fake's sign-in state, guarded by Fake.mu.
type fakeSignIn struct {
	n         int // numbers invites and requests
	invites   []api.Invite
	used      map[string]bool   // invites a Join used (work once)
	passwords map[string]string // by space
	requests  []api.Request     // waiting, oldest first
	watchers  []*fakeRequestWatcher
}

type fakeRequestWatcher struct {
	ch     chan api.Request
	closed bool
}

// crockford is the alphabet of the Fake's invite links and codes, as in
// the real ones (auth's).
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// InviteLink returns an invite link to space in the form the Fake's
// CreateInvite makes and its Join reads: a test joins a space the Fake is
// not a member of with it.
func InviteLink(space string, n int) string {
	b := make([]byte, 0, 53)
	b = append(b, 1)
	id, _ := hex.DecodeString(space)
	b = append(b, id...)
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", space, n))
	b = append(b, sum[:20]...)
	return "mycel://join/" + crockford.EncodeToString(b)
}

// spaceOfLink is the space an invite link of InviteLink names, or "".
func spaceOfLink(link string) string {
	rest, ok := cutPrefixFold(link, "mycel://join/")
	if !ok {
		return ""
	}
	b, err := crockford.DecodeString(strings.ToUpper(rest))
	if err != nil || len(b) != 53 || b[0] != 1 {
		return ""
	}
	return hex.EncodeToString(b[1:33])
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// inviteCode is the typing form of a link: 20 characters in groups of 4.
func inviteCode(link string) string {
	sum := sha256.Sum256([]byte(strings.ToUpper(link)))
	s := crockford.EncodeToString(sum[:])[:20]
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20]
}

// normalCode drops what a person may type between characters of a code.
func normalCode(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "", ".", "", "\t", "").Replace(s))
}

// fakeQR draws a few rows of half blocks from the link: it looks like a
// QR code in a terminal, and scans as nothing.
func fakeQR(link string) string {
	sum := sha256.Sum256([]byte(link))
	blocks := []string{" ", "▀", "▄", "█"}
	var sb strings.Builder
	for y := range 6 {
		for x := range 21 {
			bit := func(i int) int { return int(sum[(i/8)%len(sum)]>>(i%8)) & 1 }
			i := (y*21 + x) * 2
			sb.WriteString(blocks[bit(i)|bit(i+1)<<1])
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// safetyCode is a request's code: six digits in two groups, 482-193.
func safetyCode(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "/")))
	n := binary.BigEndian.Uint64(sum[:8]) % 1_000_000
	return fmt.Sprintf("%03d-%03d", n/1000, n%1000)
}

// CreateInvite implements api.Backend: a link, code and QR of the Fake's
// own form, valid for ttl (0: 24 h).
func (f *Fake) CreateInvite(ctx context.Context, id string, ttl time.Duration) (api.Invite, error) {
	f.record("CreateInvite")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return api.Invite{}, err
	}
	if !sp.info.Approved {
		return api.Invite{}, fmt.Errorf("%w: only a member invites", api.ErrNoKeys)
	}
	if ttl == 0 {
		ttl = api.DefaultInviteTTL
	}
	f.si.n++
	link := InviteLink(id, f.si.n)
	sum := sha256.Sum256([]byte(link))
	inv := api.Invite{Space: id, ID: hex.EncodeToString(sum[:8]), Link: link, Code: inviteCode(link),
		QR: fakeQR(link), Expires: time.Now().Add(ttl).UTC().Truncate(time.Second)}
	f.si.invites = append(f.si.invites, inv)
	return inv, nil
}

// Invites returns the invites CreateInvite made.
func (f *Fake) Invites() []api.Invite {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Invite(nil), f.si.invites...)
}

// SetPassword implements api.Backend.
func (f *Fake) SetPassword(ctx context.Context, id, password string) error {
	f.record("SetPassword")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return err
	}
	if !sp.info.Approved {
		return fmt.Errorf("%w: only a member sets the password", api.ErrNoKeys)
	}
	if len(password) < 8 || len(password) > 1024 || !utf8.ValidString(password) {
		return fmt.Errorf("%w: a password is 8 to 1024 bytes of UTF-8", api.ErrBadRequest)
	}
	if f.si.passwords == nil {
		f.si.passwords = map[string]string{}
	}
	f.si.passwords[id] = password
	return nil
}

// Password returns the password SetPassword set for space id.
func (f *Fake) Password(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.si.passwords[id]
}

// Join implements api.Backend. A link names its space (InviteLink makes
// one for any space), a code needs req.Space; an invite works once (then
// refused). The space, unknown to the Fake so far, appears read-only with
// its Join waiting until AnswerJoin.
func (f *Fake) Join(ctx context.Context, req api.JoinWith) (api.JoinState, error) {
	f.record("Join")
	f.mu.Lock()
	defer f.mu.Unlock()
	space, via := strings.ToLower(req.Space), "password"
	if req.Invite != "" {
		via = "invite"
		if strings.Contains(req.Invite, "://") {
			s := spaceOfLink(req.Invite)
			if s == "" {
				return api.JoinState{}, fmt.Errorf("%w: not an invite link", api.ErrBadRequest)
			}
			if space != "" && space != s {
				return api.JoinState{}, fmt.Errorf("%w: the invite is to space %s, not %s", api.ErrBadRequest, s, space)
			}
			space = s
		} else {
			if len(normalCode(req.Invite)) != 20 {
				return api.JoinState{}, fmt.Errorf("%w: an invite is a mycel://join/… link or a code of 20 letters and digits", api.ErrBadRequest)
			}
			if space == "" {
				return api.JoinState{}, fmt.Errorf("%w: an invite code does not name its space: give the space's ID", api.ErrBadRequest)
			}
		}
	}
	sp := f.spaces[space]
	if sp != nil && sp.info.Approved {
		return api.JoinState{}, fmt.Errorf("%w: already a member of space %s", api.ErrConflict, space)
	}
	if sp != nil && sp.info.Join != nil && sp.info.Join.State == api.JoinWaiting {
		return *sp.info.Join, nil
	}
	if sp == nil {
		name := req.Name
		if name == "" {
			name = "joined"
		}
		sp = &fakeSpace{info: api.SpaceInfo{ID: space, Name: name, Feed: HexID(0xbeef)}, data: map[string][]api.Version{}}
		f.spaces[space] = sp
	}
	f.si.n++
	st := api.JoinState{Space: space, Code: safetyCode(space, sp.info.Feed, fmt.Sprint(f.si.n)), State: api.JoinWaiting,
		Since: time.Now().UTC()}
	if via == "invite" {
		if f.si.used == nil {
			f.si.used = map[string]bool{}
		}
		key := normalCode(req.Invite)
		if f.si.used[key] {
			st.State, st.Reason = api.JoinRefused, "the invite was used already"
		}
		f.si.used[key] = true
	}
	sp.info.Join = &st
	return st, nil
}

// AnswerJoin answers this device's request to join space id, as a member
// would: state is api.JoinApproved (the device becomes a writer),
// JoinDenied or JoinRefused, with reason.
func (f *Fake) AnswerJoin(id, state, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sp := f.spaces[id]
	if sp == nil || sp.info.Join == nil {
		panic("apitest: AnswerJoin of a space not joined: " + id)
	}
	// A new JoinState, never the old one changed: SpaceInfos returned
	// before share the pointer.
	st := *sp.info.Join
	st.State, st.Reason = state, reason
	sp.info.Join = &st
	if state == api.JoinApproved {
		sp.info.Approved, sp.info.Writer = true, true
	}
}

// Joins returns this device's requests to join spaces, by Join.
func (f *Fake) Joins() []api.JoinState {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.JoinState
	for _, sp := range f.spaces {
		if sp.info.Join != nil {
			out = append(out, *sp.info.Join)
		}
	}
	return out
}

// AddRequest adds a join request from another device to the waiting ones,
// as if it had arrived, and passes it to the request watchers. Fields
// left empty are filled in: ID, SpaceName (of the Fake's space), Name,
// Feed, Code, Via and Time. It returns the request as added.
func (f *Fake) AddRequest(r api.Request) api.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.si.n++
	sum := sha256.Sum256(fmt.Appendf(nil, "request/%d", f.si.n))
	if r.ID == "" {
		r.ID = hex.EncodeToString(sum[:8])
	}
	if sp := f.spaces[r.Space]; sp != nil && r.SpaceName == "" {
		r.SpaceName = sp.info.Name
	}
	if r.Name == "" {
		r.Name = "Firefox on Ubuntu 64-bit"
	}
	if r.Feed == "" {
		r.Feed = hex.EncodeToString(sum[:])
	}
	if r.Code == "" {
		r.Code = safetyCode(r.ID, r.Feed)
	}
	if r.Via == "" {
		r.Via = "invite " + hex.EncodeToString(sum[8:16])
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	f.si.requests = append(f.si.requests, r)
	for _, w := range f.si.watchers {
		if w.closed {
			continue
		}
		select {
		case w.ch <- r:
		default:
			w.closed = true // too slow: the stream ends
			close(w.ch)
		}
	}
	return r
}

// Requests implements api.Backend.
func (f *Fake) Requests() []api.Request {
	f.record("Requests")
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Request(nil), f.si.requests...)
}

// WatchRequests implements api.Backend: the waiting requests, then those
// AddRequest adds, until ctx ends. A watcher more than WatchBuf requests
// behind is closed.
func (f *Fake) WatchRequests(ctx context.Context) (<-chan api.Request, error) {
	f.record("WatchRequests")
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeRequestWatcher{ch: make(chan api.Request, len(f.si.requests)+f.WatchBuf)}
	for _, r := range f.si.requests {
		w.ch <- r
	}
	f.si.watchers = append(f.si.watchers, w)
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !w.closed {
			w.closed = true
			close(w.ch)
		}
	})
	return w.ch, nil
}

// ActiveRequestWatchers counts the request watchers not ended yet.
func (f *Fake) ActiveRequestWatchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.si.watchers {
		if !w.closed {
			n++
		}
	}
	return n
}

// CloseRequestWatchers ends every request watcher, as a closing daemon
// does.
func (f *Fake) CloseRequestWatchers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.si.watchers {
		if !w.closed {
			w.closed = true
			close(w.ch)
		}
	}
}

// findRequest returns the index of the waiting request id names (its ID
// or a prefix of it naming one).
func (f *Fake) findRequest(id string) (int, error) {
	found := -1
	for i, r := range f.si.requests {
		if strings.HasPrefix(r.ID, id) {
			if found >= 0 {
				return -1, fmt.Errorf("%w: %q names several requests", api.ErrBadRequest, id)
			}
			found = i
		}
	}
	if found < 0 {
		return -1, fmt.Errorf("%w: no request %s waiting", api.ErrNotFound, id)
	}
	return found, nil
}

// takeRequest removes the waiting request id names.
func (f *Fake) takeRequest(id string) (api.Request, error) {
	i, err := f.findRequest(id)
	if err != nil {
		return api.Request{}, err
	}
	r := f.si.requests[i]
	f.si.requests = append(f.si.requests[:i], f.si.requests[i+1:]...)
	return r, nil
}

// Approve implements api.Backend: the request's device becomes a member
// of its space. A code given must match the request's (dashes and spaces
// aside), or nothing changes.
func (f *Fake) Approve(ctx context.Context, requestID, code string) error {
	f.record("Approve")
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findRequest(requestID)
	if err != nil {
		return err
	}
	if code != "" && normalCode(code) != normalCode(f.si.requests[i].Code) {
		return fmt.Errorf("%w: the code given is not the one the device shows", api.ErrSafetyCode)
	}
	r, err := f.takeRequest(requestID)
	if err != nil {
		return err
	}
	if sp := f.spaces[r.Space]; sp != nil {
		sp.members = append(sp.members, api.Member{Feed: r.Feed, Name: r.Name})
	}
	return nil
}

// Deny implements api.Backend.
func (f *Fake) Deny(ctx context.Context, requestID string) error {
	f.record("Deny")
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.takeRequest(requestID)
	return err
}
