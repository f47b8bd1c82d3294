package node

import (
	"time"

	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/signin"
	"github.com/mycelsync/mycel/node/syncnet"
)

// Limits are the node's bounds on what peers and clients may make it hold,
// its timeouts and its intervals. Every field's zero value means its
// default, documented beside it; Config.Limits is all zero unless a
// program (a test, the relay) sets it. The config file does not carry
// them.
type Limits struct {
	// SignIn are sign-in's (node/signin.Limits): requests kept per space
	// and per key, answer and refusal rates, request and trial lifetimes,
	// the asking schedule.
	SignIn signin.Limits
	// Sync is the replicator's (node/syncnet.Config): read, frame, write
	// and open timeouts; strikes, failed proofs and bans; the standing
	// table's bound; and, in Sync.Session, the replication session's own
	// (wants in flight, batch bytes, pending answers, feeds).
	Sync syncnet.Config
	// Ephemeral are the ephemeral messages' limits.
	Ephemeral EphemeralLimits
	// API are the local HTTP API's (the daemon passes them to
	// api.NewServer).
	API APILimits
	// Net are the connections'.
	Net NetLimits
}

// EphemeralLimits bound ephemeral messages.
type EphemeralLimits struct {
	// Seen bounds the seen-set: MaxSeen (default
	// ephemeral.DefaultMaxSeen, 262,144 IDs), MaxUntrusted (MaxSeen/4),
	// MaxPerSender (MaxSeen/16), PruneEvery (1 minute), FullRetry (1 s).
	// Its Now and Trusted are the node's.
	Seen ephemeral.Config
	// Service is the ephemeral/p2p Service's: StreamTimeout (10 s),
	// MaxInboundStreams direct streams at once (64), Buffer (256 messages
	// per subscription), PruneInterval of the seen-set (1 minute).
	Service p2p.Config
	// PubSubQueue is gossipsub's outbound queue per peer and its
	// validation queue. Default 256 (gossipsub's own 32 drop under load).
	PubSubQueue int
	// ListenBuffer is how many app messages wait for an API listener; one
	// that falls further behind is ended (api.ErrBehind). Default 64.
	ListenBuffer int
	// AnnounceInterval is how often a member announces its presence.
	// Default ephemeral.AnnounceInterval (10 s).
	AnnounceInterval time.Duration
	// OnlineFor is how long a device counts as online after it was last
	// heard from (ephemeral.OnlineFor, 30 s); MaxPresences bounds the
	// devices tracked per space (ephemeral.DefaultMaxPresences, 4096).
	OnlineFor    time.Duration
	MaxPresences int
	// TellInterval is the least time between two showings of its removal
	// to a removed device that keeps announcing (10 s); MaxTold bounds the
	// devices remembered as told per space (256).
	TellInterval time.Duration
	MaxTold      int
}

// APILimits bound the local HTTP API.
type APILimits struct {
	// MaxStreams bounds the streams (watch, requests, messages) open at
	// once. Default api.DefaultMaxStreams (64).
	MaxStreams int
	// MaxBody bounds a request's body. Default api.DefaultMaxBody (1 MiB).
	MaxBody int64
	// KeepAlive is the interval of keep-alive comments on streams.
	// Default api.DefaultKeepAlive (15 s).
	KeepAlive time.Duration
}

// NetLimits are the connections' timeouts and intervals.
type NetLimits struct {
	// DialTimeout bounds a dial (static peers, mDNS, hints) and the opening
	// of a session by resync. Default 15 s.
	DialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between two dials of a
	// static peer that is not connected, and between two dials at direct
	// addresses of one reached through relays only; MinBackoff is also
	// how often a static peer's connection is looked at. Defaults 1 s
	// and 1 minute.
	MinBackoff, MaxBackoff time.Duration
	// ResyncInterval is how often sessions that ended are reopened with
	// connected peers. Default 10 s.
	ResyncInterval time.Duration
	// LocateTimeout bounds a locate exchange (locate.go). Default 5 s.
	LocateTimeout time.Duration
	// LeaveWait bounds how long leaving a space waits for a peer to be
	// served the departure. Default 10 s.
	LeaveWait time.Duration
}

// resyncInterval is NetLimits.ResyncInterval's default.
const resyncInterval = 10 * time.Second

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	num := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	e := &l.Ephemeral
	num(&e.PubSubQueue, 256)
	num(&e.ListenBuffer, 64)
	dur(&e.AnnounceInterval, ephemeral.AnnounceInterval)
	dur(&e.OnlineFor, ephemeral.OnlineFor)
	num(&e.MaxPresences, ephemeral.DefaultMaxPresences)
	dur(&e.TellInterval, 10*time.Second)
	num(&e.MaxTold, 256)
	a := &l.API
	num(&a.MaxStreams, api.DefaultMaxStreams)
	if a.MaxBody <= 0 {
		a.MaxBody = api.DefaultMaxBody
	}
	dur(&a.KeepAlive, api.DefaultKeepAlive)
	n := &l.Net
	dur(&n.DialTimeout, 15*time.Second)
	dur(&n.MinBackoff, time.Second)
	dur(&n.MaxBackoff, time.Minute)
	dur(&n.ResyncInterval, resyncInterval)
	dur(&n.LocateTimeout, 5*time.Second)
	dur(&n.LeaveWait, 10*time.Second)
	// Sync's and the Service's own defaults are applied by syncnet.New and
	// p2p.New; the seen-set's by ephemeral.NewFilter.
	return l
}

// Limits returns the node's limits, defaults filled in (those of Sync,
// Ephemeral.Seen and Ephemeral.Service are applied by their packages and
// show as zero here).
func (n *Node) Limits() Limits { return n.limits }
