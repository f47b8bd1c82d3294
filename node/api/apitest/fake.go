// Package apitest is an in-memory api.Backend for tests of the API's
// server, its client and the CLI: it records the calls it gets, so that a
// test can assert that a refused request wrote nothing.
package apitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/space"
)

// Fake is an in-memory Backend that records the calls it gets.
type Fake struct {
	mu       sync.Mutex
	calls    []string // method names, in order
	spaces   map[string]*fakeSpace
	peers    []api.Peer
	progress []api.Progress
	watchers []*fakeWatcher
	static   []string
	relays   []api.Relay
	lsn      fakeListeners // app-message listeners (messages.go)
	si       fakeSignIn    // invites, passwords, requests (signin.go), under mu

	aliases map[string]string // alias → space ID (aliases.go), under mu
	// WatchBuf is the buffer of a watcher's channel; a full buffer ends
	// the watch with api.ErrBehind.
	WatchBuf int
	nextID   int
}

type fakeSpace struct {
	info    api.SpaceInfo
	data    map[string][]api.Version
	members []api.Member
}

type fakeWatcher struct {
	space, prefix string
	ch            chan api.Entry
	err           error
	closed        bool
}

// writeCalls are the Backend methods that change state.
var writeCalls = map[string]bool{"CreateSpace": true,
	"Put": true, "Delete": true, "RemoveMember": true, "Send": true, "LeaveSpace": true,
	"CreateInvite": true, "SetPassword": true, "Join": true, "Approve": true, "Deny": true,
	"HandToRelay": true, "DropRelay": true}

func New() *Fake {
	return &Fake{spaces: map[string]*fakeSpace{}, WatchBuf: 16}
}

func (f *Fake) record(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

// Writes returns the write calls seen.
func (f *Fake) Writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if writeCalls[c] {
			out = append(out, c)
		}
	}
	return out
}

// Calls counts the calls of one method.
func (f *Fake) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

func (f *Fake) CallCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func HexID(n int) string { return fmt.Sprintf("%064x", n) }

// AddSpace adds a space directly (not recorded as a call).
func (f *Fake) AddSpace(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addSpaceLocked(name).info.ID
}

func (f *Fake) addSpaceLocked(name string) *fakeSpace {
	f.nextID++
	// IDs differ from their first digits, as real ones do.
	sum := sha256.Sum256([]byte{byte(f.nextID)})
	id := hex.EncodeToString(sum[:])
	sp := &fakeSpace{info: api.SpaceInfo{ID: id, Name: name, Feed: HexID(0xf000 + f.nextID), Approved: true, Writer: true, Feeds: 1},
		data: map[string][]api.Version{}}
	sp.members = []api.Member{{Feed: sp.info.Feed, Name: "this", Self: true}}
	f.spaces[id] = sp
	return sp
}

// find returns the space whose ID is id or starts with it (at least 8
// hex digits), as the daemon does.
func (f *Fake) find(id string) (*fakeSpace, error) {
	if sp, ok := f.spaces[id]; ok {
		return sp, nil
	}
	if len(id) < 8 {
		return nil, fmt.Errorf("%w: space ID %q: give at least 8 hex digits", api.ErrBadRequest, id)
	}
	var found *fakeSpace
	for full, sp := range f.spaces {
		if strings.HasPrefix(full, id) {
			if found != nil {
				return nil, fmt.Errorf("%w: %q names several spaces", api.ErrBadRequest, id)
			}
			found = sp
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: space %s", api.ErrNotFound, id)
	}
	return found, nil
}

// checkKey and checkValue refuse what the daemon refuses.
func checkKey(key string) error {
	if key == "" || len(key) > space.MaxKeySize || !utf8.ValidString(key) {
		return fmt.Errorf("%w: a key is 1 to %d bytes of UTF-8", api.ErrBadRequest, space.MaxKeySize)
	}
	return nil
}

func (f *Fake) Status() api.Status {
	f.record("Status")
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.Status{PeerID: "12D3KooWfake", Device: "00112233445566778899aabbccddeeff", DataDir: "/tmp/x",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Spaces: len(f.spaces), Peers: len(f.peers),
		StaticPeers: append([]string(nil), f.static...), Relays: append([]api.Relay(nil), f.relays...)}
}

// SetRelays sets the relays Status reports.
func (f *Fake) SetRelays(rs []api.Relay) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.relays = rs
}

// SetStaticPeers sets the static peers Status reports.
func (f *Fake) SetStaticPeers(ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.static = ids
}

func (f *Fake) CreateSpace(ctx context.Context, name string) (api.SpaceInfo, error) {
	f.record("CreateSpace")
	if name == "" || len(name) > space.MaxNameSize || !utf8.ValidString(name) {
		return api.SpaceInfo{}, fmt.Errorf("%w: a name is 1 to %d bytes of UTF-8", api.ErrBadRequest, space.MaxNameSize)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addSpaceLocked(name).info, nil
}

func (f *Fake) Spaces() []api.SpaceInfo {
	f.record("Spaces")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.SpaceInfo
	for _, sp := range f.spaces {
		out = append(out, sp.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (f *Fake) Space(id string) (api.SpaceInfo, error) {
	f.record("Space")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return api.SpaceInfo{}, err
	}
	return sp.info, nil
}

func (f *Fake) Get(id, key string) (api.Entry, error) {
	f.record("Get")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return api.Entry{}, err
	}
	if err := checkKey(key); err != nil {
		return api.Entry{}, err
	}
	return api.Entry{Key: key, Versions: sp.data[key]}, nil
}

func (f *Fake) write(id, key string, v api.Version) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return err
	}
	if !sp.info.Writer {
		return fmt.Errorf("%w: not a writer", api.ErrReadOnly)
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if len(v.Value) > space.MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes", api.ErrTooLarge, len(v.Value))
	}
	v.Feed = sp.info.Feed
	v.HLC = uint64(len(sp.data) + 1)
	sp.data[key] = []api.Version{v}
	e := api.Entry{Key: key, Versions: sp.data[key]}
	for _, w := range f.watchers {
		if w.closed || w.space != id || !strings.HasPrefix(key, w.prefix) {
			continue
		}
		select {
		case w.ch <- e:
		default:
			w.err, w.closed = api.ErrBehind, true
			close(w.ch)
		}
	}
	return nil
}

func (f *Fake) Put(ctx context.Context, id, key string, value []byte) error {
	f.record("Put")
	return f.write(id, key, api.Version{Value: value})
}

func (f *Fake) Delete(ctx context.Context, id, key string) error {
	f.record("Delete")
	return f.write(id, key, api.Version{Deleted: true})
}

func (f *Fake) List(id, prefix, after string, limit int) (api.Page, error) {
	f.record("List")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return api.Page{}, err
	}
	if limit <= 0 {
		return api.Page{}, fmt.Errorf("%w: limit %d", api.ErrBadRequest, limit)
	}
	var keys []string
	for k, vs := range sp.data {
		if len(vs) == 1 && vs[0].Deleted {
			continue // deleted keys are not listed
		}
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var p api.Page
	if len(keys) > limit {
		keys = keys[:limit]
		p.Next = keys[limit-1]
	}
	for _, k := range keys {
		p.Entries = append(p.Entries, api.Entry{Key: k, Versions: sp.data[k]})
	}
	return p, nil
}

func (f *Fake) Watch(ctx context.Context, id, prefix string) (<-chan api.Entry, func() error, error) {
	f.record("Watch")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.find(id); err != nil {
		return nil, nil, err
	}
	w := &fakeWatcher{space: id, prefix: prefix, ch: make(chan api.Entry, f.WatchBuf)}
	f.watchers = append(f.watchers, w)
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !w.closed {
			w.closed = true
			close(w.ch)
		}
	})
	return w.ch, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		return w.err
	}, nil
}

// ActiveWatchers counts the watches not ended yet.
func (f *Fake) ActiveWatchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.watchers {
		if !w.closed {
			n++
		}
	}
	return n
}

// CloseWatchers ends every watch with err, as a closing daemon does.
func (f *Fake) CloseWatchers(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.watchers {
		if !w.closed {
			w.err, w.closed = err, true
			close(w.ch)
		}
	}
}

func (f *Fake) Members(id string) ([]api.Member, error) {
	f.record("Members")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return nil, err
	}
	return append([]api.Member(nil), sp.members...), nil
}

// AddDevice makes a device a writer of space id, as a member's approval
// of its join request would: a shortcut for tests that need a member list
// (not a Backend method, not recorded).
func (f *Fake) AddDevice(id string, m api.Member) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return err
	}
	sp.members = append(sp.members, m)
	return nil
}

// LeaveSpace deletes the space; a writer's removal "reaches" no peer (the
// fake has none) unless Peers were set.
func (f *Fake) LeaveSpace(ctx context.Context, id string) (api.Left, error) {
	f.record("LeaveSpace")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return api.Left{}, err
	}
	delete(f.spaces, id)
	left := api.Left{Space: id, Removed: sp.info.Writer}
	if left.Removed {
		left.Reached = len(f.peers)
		if left.Reached == 0 {
			left.Warning = "no peer was reachable"
		}
	}
	return left, nil
}

// HandToRelay implements api.RelayHander: it checks the space and that
// the address names a peer ID, and records the call.
func (f *Fake) HandToRelay(ctx context.Context, id, addr string) error {
	f.record("HandToRelay")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.find(id); err != nil {
		return err
	}
	if !strings.Contains(addr, "/p2p/") {
		return fmt.Errorf("%w: relay address %q: want a multiaddr ending in /p2p/<peer ID>", api.ErrBadRequest, addr)
	}
	return nil
}

// SpaceRelays implements api.SpaceRelayer: the space's relays are none.
func (f *Fake) SpaceRelays(id string) ([]api.SpaceRelay, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.find(id); err != nil {
		return nil, err
	}
	return nil, nil
}

// DropRelay implements api.SpaceRelayer: it checks the space and records
// the call.
func (f *Fake) DropRelay(ctx context.Context, id, peer string) error {
	f.record("DropRelay")
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.find(id)
	return err
}

func (f *Fake) RemoveMember(ctx context.Context, id, feed string) error {
	f.record("RemoveMember")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return err
	}
	if _, err := hex.DecodeString(feed); err != nil || len(feed) != 64 {
		return fmt.Errorf("%w: feed key %q: 64 hex digits", api.ErrBadRequest, feed)
	}
	for i, m := range sp.members {
		if m.Feed == feed {
			sp.members = append(sp.members[:i], sp.members[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w: no member %s", api.ErrNotFound, feed)
}

func (f *Fake) Peers() []api.Peer {
	f.record("Peers")
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Peer(nil), f.peers...)
}

func (f *Fake) Progress() []api.Progress {
	f.record("Progress")
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Progress(nil), f.progress...)
}

// SetPeers sets what Peers returns.
func (f *Fake) SetPeers(ps []api.Peer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = ps
}

// SetProgress sets what Progress returns.
func (f *Fake) SetProgress(ps []api.Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.progress = ps
}

// SetWriter makes this device a writer of space id or not.
func (f *Fake) SetWriter(id string, writer bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spaces[id].info.Writer = writer
}

var _ api.Backend = (*Fake)(nil)
