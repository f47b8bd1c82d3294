package api

import (
	"context"
	"errors"
	"time"

	"github.com/mycelsync/mycel/auth"
)

// Backend is what the HTTP API serves: the daemon (node.Node) implements
// it; tests use a fake. Space IDs and feed keys are lowercase hex.
// Methods return errors wrapping the sentinels below (errors.Is) so that
// the server can map them to HTTP statuses and stable codes.
type Backend interface {
	Status() Status

	CreateSpace(ctx context.Context, name string) (SpaceInfo, error)
	Spaces() []SpaceInfo
	Space(id string) (SpaceInfo, error)
	// LeaveSpace deletes this device's copy of a space: its feeds, view,
	// keys and record. A device that is a writer first writes its own
	// removal and waits (within ctx) for a peer to be served it; Left says
	// whether one was. It also gives up a join that waits for approval,
	// or clears one that was refused.
	LeaveSpace(ctx context.Context, id string) (Left, error)

	Get(id, key string) (Entry, error)
	Put(ctx context.Context, id, key string, value []byte) error
	Delete(ctx context.Context, id, key string) error
	// List returns up to limit keys with prefix after `after`, with their
	// winning versions, and the cursor of the next page ("" at the end).
	List(id, prefix, after string, limit int) (Page, error)
	// Watch streams the changes of keys with prefix until ctx ends; the
	// returned channel is closed then, or when the watcher falls behind
	// (the error function then says why).
	Watch(ctx context.Context, id, prefix string) (<-chan Entry, func() error, error)

	Members(id string) ([]Member, error)
	RemoveMember(ctx context.Context, id, feed string) error
	// Devices returns the writers with whether they are online: heard
	// from (presence or any message) within the last 30 s.
	Devices(id string) ([]Device, error)

	// Send publishes an app message to the space's other devices that are
	// online; nothing is kept for those that are not.
	Send(ctx context.Context, id, topic string, data []byte) error
	// Listen streams the app messages other devices send, of one topic or
	// of all ("") until ctx ends; the returned channel is closed then, or
	// when the listener falls behind (the error function then says why).
	Listen(ctx context.Context, id, topic string) (<-chan Message, func() error, error)

	Peers() []Peer
	Progress() []Progress

	SignIn
}

// InviteHinter is a Backend that says where a new device may reach it
// (its peer ID and addresses): the server adds these hints to the links of
// the invites it makes (auth.InviteHints).
type InviteHinter interface {
	InviteHints() auth.InviteHints
}

// HintDialer is a Backend that can dial the hints of an invite link: the
// server calls it before Join, so that the request reaches the inviting
// device without mDNS or a static peer.
type HintDialer interface {
	DialHints(ctx context.Context, hints auth.InviteHints) error
}

// Errors a Backend returns (wrapped). The server maps them to statuses and
// to the codes in Error.Code.
var (
	ErrNotFound   = errors.New("not found")         // 404 not_found
	ErrBadRequest = errors.New("bad request")       // 400 bad_request
	ErrReadOnly   = errors.New("read-only")         // 409 read_only: not a writer (yet)
	ErrConflict   = errors.New("conflict")          // 409 conflict
	ErrNoKeys     = errors.New("no keys")           // 409 no_keys: not approved yet
	ErrTooLarge   = errors.New("too large")         // 413 too_large
	ErrClosed     = errors.New("daemon is closing") // 503 unavailable
	ErrSafetyCode = errors.New("wrong safety code") // 409 safety_code
	// ErrBehind ends a watch whose reader fell behind the changes (code
	// behind, sent as the stream's error event).
	ErrBehind = errors.New("watcher fell behind") // 409 behind
	// ErrTooMany refuses a stream (watch, requests, messages) while
	// ServerConfig.MaxStreams are open.
	ErrTooMany = errors.New("too many streams") // 429 too_many
)

// Error is the body of every error response.
type Error struct {
	// Code is stable: unauthorized, forbidden, not_found,
	// method_not_allowed, bad_request, bad_json, too_large, too_many, read_only,
	// no_keys, conflict, behind, safety_code, unavailable, internal.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Status is the daemon's state.
type Status struct {
	Version string    `json:"version"`
	PeerID  string    `json:"peer_id"`
	Addrs   []string  `json:"addrs"`  // listen addresses with /p2p/<peer ID>
	Device  string    `json:"device"` // fingerprint of the device's public key (hex, 16 bytes)
	DataDir string    `json:"data_dir"`
	Started time.Time `json:"started"`
	Spaces  int       `json:"spaces"`
	Peers   int       `json:"peers"` // connected
	// StaticPeers are the peer IDs of the static peers (--peer) that the
	// daemon keeps connected, connected now or not.
	StaticPeers []string `json:"static_peers,omitempty"`
	// Relays are the circuit relays the daemon keeps a reservation on
	// (those of --relay, and those its spaces list), and their state.
	Relays []Relay `json:"relays,omitempty"`
}

// Relay is the state of one of the daemon's circuit relays.
type Relay struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"` // as configured or listed
	Connected bool     `json:"connected"`
	// Config: one of the daemon's --relay, used for every space.
	Config bool `json:"config,omitempty"`
	// Spaces are the IDs of the spaces that list the relay (it is used
	// for them; for every space if Config).
	Spaces []string `json:"spaces,omitempty"`
	// ReservedUntil is when the reservation expires (the daemon renews it
	// before); absent while the daemon holds none.
	ReservedUntil *time.Time `json:"reserved_until,omitempty"`
	// Circuit are the addresses peers reach this daemon at through the
	// relay (<relay addr>/p2p/<relay>/p2p-circuit/p2p/<self>), while
	// reserved.
	Circuit []string `json:"circuit,omitempty"`
	// LimitSeconds and LimitBytes are the relay's limits on one relayed
	// connection, as its last reservation reply gave them (0: none
	// given): the members' limits once the relay admitted this node as a
	// member (the daemon renews early to learn them).
	LimitSeconds int64  `json:"limit_seconds,omitempty"`
	LimitBytes   uint64 `json:"limit_bytes,omitempty"`
	// Error is the last failure to connect or reserve, until a
	// reservation succeeds.
	Error string `json:"error,omitempty"`
}

// SpaceInfo describes a space this device belongs to or asked to join.
type SpaceInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`     // local label
	Feed     string `json:"feed"`     // this device's feed in the space
	Approved bool   `json:"approved"` // holds the space's keys
	Writer   bool   `json:"writer"`   // its writes count
	Feeds    int    `json:"feeds"`
	Entries  uint64 `json:"entries"` // entries held, all feeds
	Keys     int    `json:"keys"`    // live keys in the view
	Digest   string `json:"digest"`  // view digest: same entries, same digest
	Invalid  int    `json:"invalid"` // entries refused (see diagnostics)
	// Forked are the feeds (hex keys) frozen by a fork: their writer signed
	// two histories that cannot both be true — its key copied to another
	// device, or a backup restored and written to again. The space keeps
	// what it held of such a feed and takes nothing more of it; the
	// evidence travels with it, so every device freezes it too.
	Forked  []string `json:"forked,omitempty"`
	Waiting int      `json:"waiting"` // ops waiting for their causal past
	// Join is this device's request to join the space, while it has one.
	Join *JoinState `json:"join,omitempty"`
}

// Left is what leaving a space did.
type Left struct {
	Space string `json:"space"`
	// Removed: this device was a writer and wrote its own removal.
	Removed bool `json:"removed"`
	// Reached counts the peers that were served the removal before the
	// copy was deleted. Removed with Reached 0 means no peer was
	// reachable: the other devices go on listing this device as a writer
	// until one of them removes it (mycel members remove).
	Reached int `json:"reached"`
	// Warning says, in words, what the person should know (no peer
	// reached).
	Warning string `json:"warning,omitempty"`
}

// Version is one version of a key's register.
type Version struct {
	Value   []byte `json:"value"` // base64 in JSON
	Deleted bool   `json:"deleted,omitempty"`
	HLC     uint64 `json:"hlc"`
	Feed    string `json:"feed"` // author
	Index   uint64 `json:"index"`
}

// Entry is a key and its versions, the winner first (more than one when
// concurrent writes left siblings). A key never written, or whose winner
// is a delete, has Versions empty or Versions[0].Deleted.
type Entry struct {
	Key      string    `json:"key"`
	Versions []Version `json:"versions"`
}

// Page is one page of a listing.
type Page struct {
	Entries []Entry `json:"entries"`
	Next    string  `json:"next,omitempty"` // pass as ?after= for the next page
}

// Member is a writer of a space.
type Member struct {
	Feed   string `json:"feed"`
	Name   string `json:"name"`
	Self   bool   `json:"self,omitempty"`
	Length uint64 `json:"length"` // entries of its feed held here
}

// Device is a writer of a space and whether it is online.
type Device struct {
	Feed   string `json:"feed"`
	Name   string `json:"name"`
	Self   bool   `json:"self,omitempty"`
	Online bool   `json:"online"`
	// LastSeen is when it was last heard from (now for this device);
	// absent when never since the daemon started.
	LastSeen *time.Time `json:"last_seen,omitempty"`
}

// Message is an app message from another device of a space.
type Message struct {
	Sender string    `json:"sender"`         // the sender's feed (hex)
	Name   string    `json:"name,omitempty"` // the sender's device name, if known
	Time   time.Time `json:"time"`           // by the sender's clock
	Topic  string    `json:"topic"`
	Data   []byte    `json:"data"` // base64 in JSON
	// Kept: the sender asked the relays to keep it for devices offline
	// (SendRequest.Keep).
	Kept bool `json:"kept,omitempty"`
	// Stored: this device got it from a relay's mailbox, not live; Time
	// is still the sender's, possibly up to a week ago.
	Stored bool `json:"stored,omitempty"`
}

// Peer is a connected peer.
type Peer struct {
	ID    string `json:"id"`
	Conns []Conn `json:"conns"`
	// Spaces are the IDs of the spaces this device shares with the peer
	// (both replicate them). mycel sync --wait waits for a session with
	// the peer in each; left empty, it waits only for the sessions that
	// exist.
	Spaces []string `json:"spaces,omitempty"`
	// Relay: the peer is one of the daemon's relays (Status.Relays).
	Relay bool `json:"relay,omitempty"`
}

// Conn is one connection to a peer.
type Conn struct {
	Addr      string `json:"addr"`      // remote multiaddr
	Transport string `json:"transport"` // tcp, quic, websocket, webtransport, webrtc-direct, webrtc, relayed (through a circuit relay), other
	Direction string `json:"direction"` // inbound, outbound
	Limited   bool   `json:"limited,omitempty"`
}

// Progress is the replication state of one feed of a space with one peer.
type Progress struct {
	Space   string  `json:"space"`
	Peer    string  `json:"peer"`
	Feed    string  `json:"feed"`
	Have    uint64  `json:"have"`
	Want    uint64  `json:"want"`
	BytesIn uint64  `json:"bytes_in"`
	Rate    float64 `json:"rate"`          // bytes/s over the last seconds
	ETA     float64 `json:"eta,omitempty"` // seconds until Have reaches Want at Rate; 0 when caught up or unknown
}

// Request bodies.

// CreateSpaceRequest is the body of POST /v1/spaces.
type CreateSpaceRequest struct {
	Name string `json:"name"`
}

// PutRequest is the body of PUT /v1/spaces/{space}/keys/{key}.
type PutRequest struct {
	Value []byte `json:"value"` // base64 in JSON
}

// SendRequest is the body of POST /v1/spaces/{space}/messages: an app
// message of at most 16 KiB on a topic of 1 to 64 bytes.
type SendRequest struct {
	Topic string `json:"topic"`
	Data  []byte `json:"data"` // base64 in JSON
	// Keep asks the relays' mailboxes to keep the message for the devices
	// that are offline, for up to a week (node/EPHEMERAL.md, "Kept
	// messages"); without it the message reaches the devices online now.
	Keep bool `json:"keep,omitempty"`
}

// KeepSender is a Backend that can send kept app messages
// (SendRequest.Keep). A Backend that is not one answers keep with
// bad_request.
type KeepSender interface {
	SendKept(ctx context.Context, id, topic string, data []byte) error
}
