package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// Config is the relay's settings. Each has a default; the config file
// (config.json in the relay's data directory), then MYCEL_RELAY_*
// environment variables, then command-line flags override it, in that
// order of precedence (LoadConfig).
type Config struct {
	// DataDir holds the relay's identity (node.key) and config.json.
	// Default: "relay" in the daemon's data directory ($MYCEL_HOME, else
	// $XDG_DATA_HOME/mycel or ~/.local/share/mycel). Env MYCEL_RELAY_HOME;
	// flag --data.
	DataDir string `json:"-"`
	// Listen are the multiaddrs the host listens on. Default
	// DefaultListen (DefaultListenTLS with a WebSocket certificate). Env
	// MYCEL_RELAY_LISTEN (comma-separated); flag --listen (repeatable).
	Listen []string `json:"listen,omitempty"`
	// WSCert and WSKey are the PEM files of the certificate and key of the
	// secure WebSocket listener (/tls/ws); both or neither. Env
	// MYCEL_RELAY_WS_CERT, MYCEL_RELAY_WS_KEY; flags --ws-cert, --ws-key.
	WSCert string `json:"ws_cert,omitempty"`
	WSKey  string `json:"ws_key,omitempty"`
	// Metrics is the loopback host:port of the Prometheus endpoint
	// (/metrics), or empty for none. Default none. Env MYCEL_RELAY_METRICS;
	// flag --metrics.
	Metrics string `json:"metrics,omitempty"`
	// LogLevel is debug, info, warn or error. Default info. The relay logs
	// no connection, reservation or circuit at any level. Env
	// MYCEL_RELAY_LOG_LEVEL; flag --log-level.
	LogLevel string `json:"log_level,omitempty"`
	// Limits bound what peers may take; see Limits for each one's default,
	// environment variable and flag.
	Limits Limits `json:"-"`
	// Peers are other relays (multiaddrs with /p2p/ID) this one joins in
	// the relays' DHT, through which relays that mirror the same space
	// find each other and keep their mirrors in step (peers.go). Default
	// none. Env MYCEL_RELAY_PEERS (comma-separated); flag --peer
	// (repeatable).
	Peers []string `json:"peers,omitempty"`
	// PeerInterval is how often the relay provides its spaces in the DHT
	// and syncs them with the other relays providing them. Default
	// DefaultPeerInterval; tests shorten it.
	PeerInterval time.Duration `json:"-"`
	// MirrorLimits bound the blind mirror (spaces, pending tokens,
	// handovers per peer) when a program sets them; each zero field takes
	// its value from Limits' Mirror* fields, which the flags, environment
	// and config.json set.
	MirrorLimits MirrorLimits `json:"-"`
	// RouterLimits bound the message router when a program sets them;
	// each zero field takes its value from Limits' Router* fields
	// (--router-* flags, the environment, config.json).
	RouterLimits RouterLimits `json:"-"`
	// DirectoryLimits bound the directory of invite locators and aliases
	// (locators.go) when a program sets them; each zero field takes its
	// value from Limits' Directory* fields (--directory-* flags).
	DirectoryLimits DirectoryLimits `json:"-"`
}

// DefaultListen are the addresses a relay listens on by default: every
// transport a daemon or a browser may use. They are beside the daemon's
// ports (4101, 4102) so that both run on one machine.
var DefaultListen = []string{
	"/ip4/0.0.0.0/tcp/4111",
	"/ip6/::/tcp/4111",
	"/ip4/0.0.0.0/udp/4111/quic-v1",
	"/ip4/0.0.0.0/udp/4111/quic-v1/webtransport",
	"/ip4/0.0.0.0/udp/4111/webrtc-direct",
	"/ip4/0.0.0.0/tcp/4112/ws",
}

// DefaultListenTLS is DefaultListen with a secure WebSocket (/tls/ws)
// instead of the plain one: the default when a certificate is given.
var DefaultListenTLS = append(slices.Clone(DefaultListen[:len(DefaultListen)-1]), "/ip4/0.0.0.0/tcp/4112/tls/ws")

// ConfigFile is the name of the config file in the relay's data directory.
const ConfigFile = "config.json"

// DataDirName is the relay's data directory inside the daemon's, its
// default place.
const DataDirName = "relay"

// Overrides are settings given on the command line: empty means not
// given. Limits maps a limit's flag name (LimitNames) to its value as
// typed.
type Overrides struct {
	DataDir  string
	Listen   []string
	WSCert   string
	WSKey    string
	Metrics  string
	LogLevel string
	Peers    []string
	Limits   map[string]string
}

// fileConfig is config.json: Config's settings, and limits by their
// config names (max_conns) with numbers or strings ("512MiB", "2m") as
// values.
type fileConfig struct {
	Config
	Limits map[string]json.RawMessage `json:"limits,omitempty"`
}

// LoadConfig resolves the settings: defaults, then the config file, then
// the environment (getenv, os.Getenv in the command), then flags.
// daemonDir returns the daemon's data directory, in which the relay's is
// by default; it is called only when neither flags nor the environment
// name the relay's.
func LoadConfig(flags Overrides, getenv func(string) string, daemonDir func() (string, error)) (*Config, error) {
	dir := flags.DataDir
	if dir == "" {
		dir = getenv("MYCEL_RELAY_HOME")
	}
	if dir == "" {
		base, err := daemonDir()
		if err != nil {
			return nil, fmt.Errorf("relay: no data directory: %w (set MYCEL_RELAY_HOME or --data)", err)
		}
		dir = filepath.Join(base, DataDirName)
	}
	cfg := &Config{LogLevel: "info", Limits: DefaultLimits()}
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("relay: read config: %w (the data directory must be a directory the relay can write; --data or MYCEL_RELAY_HOME chooses another)", err)
	default:
		var file fileConfig
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return nil, fmt.Errorf("relay: %s: %w", path, err)
		}
		cfg.merge(&file.Config)
		for key, raw := range file.Limits {
			f := limitByKey(key)
			if f == nil {
				return nil, fmt.Errorf("relay: %s: unknown limit %q (known: %s)", path, key, strings.Join(limitKeys(), ", "))
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				v = string(raw) // a number
			}
			if err := f.set(&cfg.Limits, v); err != nil {
				return nil, fmt.Errorf("relay: %s: limit %s: %w", path, key, err)
			}
		}
	}
	cfg.merge(&Config{Listen: list(getenv("MYCEL_RELAY_LISTEN")), WSCert: getenv("MYCEL_RELAY_WS_CERT"),
		WSKey: getenv("MYCEL_RELAY_WS_KEY"), Metrics: getenv("MYCEL_RELAY_METRICS"), LogLevel: getenv("MYCEL_RELAY_LOG_LEVEL"),
		Peers: list(getenv("MYCEL_RELAY_PEERS"))})
	for _, f := range limitFields {
		if v := getenv(f.env()); v != "" {
			if err := f.set(&cfg.Limits, v); err != nil {
				return nil, fmt.Errorf("relay: %s=%q: %w", f.env(), v, err)
			}
		}
	}
	cfg.merge(&Config{Listen: flags.Listen, WSCert: flags.WSCert, WSKey: flags.WSKey, Metrics: flags.Metrics, LogLevel: flags.LogLevel, Peers: flags.Peers})
	for name, v := range flags.Limits {
		f := limitByName(name)
		if f == nil {
			return nil, fmt.Errorf("relay: unknown limit %q", name)
		}
		if err := f.set(&cfg.Limits, v); err != nil {
			return nil, fmt.Errorf("relay: --%s %q: %w", name, v, err)
		}
	}
	cfg.DataDir = dir
	if len(cfg.Listen) == 0 {
		cfg.Listen = DefaultListen
		if cfg.WSCert != "" {
			cfg.Listen = DefaultListenTLS
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Validate checks the settings that do not need the network: the log
// level, the metrics address, the certificate's pairing with the secure
// WebSocket addresses, and the limits.
func (c *Config) Validate() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("relay: log level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.Metrics != "" {
		if err := checkLoopback(c.Metrics); err != nil {
			return fmt.Errorf("relay: metrics address: %w", err)
		}
	}
	if (c.WSCert == "") != (c.WSKey == "") {
		return errors.New("relay: secure WebSocket: give both --ws-cert and --ws-key, or neither")
	}
	for _, a := range c.Listen {
		if _, err := ma.NewMultiaddr(a); err != nil {
			if strings.Contains(a, ",") {
				return fmt.Errorf("relay: listen address %q: give one address per --listen (MYCEL_RELAY_LISTEN and the config file take a list)", a)
			}
			return fmt.Errorf("relay: listen address %q: %w", a, err)
		}
	}
	tls := slices.ContainsFunc(c.Listen, isSecureWS)
	switch {
	case tls && c.WSCert == "":
		return errors.New("relay: a secure WebSocket address (/tls/ws or /wss) needs a certificate: --ws-cert and --ws-key")
	case !tls && c.WSCert != "":
		return fmt.Errorf("relay: a WebSocket certificate is given but no listen address uses it: add one like %s", DefaultListenTLS[len(DefaultListenTLS)-1])
	}
	if _, err := peerInfos(c.Peers); err != nil {
		return err
	}
	return c.Limits.Validate()
}

func isSecureWS(addr string) bool {
	return strings.Contains(addr, "/tls/ws") || strings.Contains(addr, "/wss")
}

// merge overrides c with the settings o sets.
func (c *Config) merge(o *Config) {
	if len(o.Listen) > 0 {
		c.Listen = o.Listen
	}
	if o.WSCert != "" {
		c.WSCert = o.WSCert
	}
	if o.WSKey != "" {
		c.WSKey = o.WSKey
	}
	if o.Metrics != "" {
		c.Metrics = o.Metrics
	}
	if o.LogLevel != "" {
		c.LogLevel = o.LogLevel
	}
	if len(o.Peers) > 0 {
		c.Peers = o.Peers
	}
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Limits bound what peers may take from the relay. The host's limits are
// enforced by libp2p's resource manager, the circuit limits by the relay's
// circuit relay v2 hop service (hop.go). Every field has a flag (its name in
// LimitNames), an environment variable (MYCEL_RELAY_ and the name in
// capitals, dashes as underscores) and a key in config.json's "limits"
// object (underscores); sizes take a KiB, MiB or GiB suffix, durations Go's
// units (90s, 2m, 1h).
//
// Limits per space (connections, streams and bytes of one space's
// members) take effect once the relay serves spaces; until then every
// peer is held to the per-peer limits.
type Limits struct {
	// MaxConns bounds the connections of all peers. Default 2048.
	MaxConns int
	// MaxConnsPerPeer bounds one peer's connections. Default 8.
	MaxConnsPerPeer int
	// MaxConnsPerIP bounds the connections from one IPv4 address or one
	// IPv6 /56 (a household behind one NAT shares one). Default 64.
	MaxConnsPerIP int
	// MaxStreams bounds the streams of all peers. Default 16384.
	MaxStreams int
	// MaxStreamsPerPeer bounds one peer's streams. Default 256.
	MaxStreamsPerPeer int
	// MaxMemory bounds the memory the resource manager lets connections
	// and streams reserve (buffers, windows), all peers together.
	// Default 256 MiB.
	MaxMemory int64
	// MaxMemoryPerPeer bounds what one peer's connections and streams
	// reserve. Default 32 MiB.
	MaxMemoryPerPeer int64

	// MaxReservations bounds the circuit relay slots held at once.
	// Default 128 (libp2p's).
	MaxReservations int
	// MaxReservationsPerIP bounds the slots reserved from one IP address.
	// Default 8 (libp2p's).
	MaxReservationsPerIP int
	// ReservationTTL is how long a slot lasts before its holder must
	// refresh it. Default 1h (libp2p's).
	ReservationTTL time.Duration
	// MaxCircuitsPerPeer bounds the relayed connections to or from one
	// peer. Default 16 (libp2p's).
	MaxCircuitsPerPeer int
	// CircuitDuration and CircuitBytes bound one relayed connection: it is
	// reset after that long, or after that many bytes in either
	// direction. Defaults 2m and 128 KiB (libp2p's). Every circuit gets
	// these but a members' one (below).
	CircuitDuration time.Duration
	CircuitBytes    int64
	// MemberCircuitDuration and MemberCircuitBytes bound a relayed
	// connection between two members of spaces the relay serves (ACL), so
	// that a whole sync and the message traffic cross it. Defaults 1h and
	// 1 GiB; a peer reconnects through a new circuit after either.
	MemberCircuitDuration time.Duration
	MemberCircuitBytes    int64
	// MaxMembers bounds the allow-list of members (ACL); when it is full
	// the oldest proof is dropped. MemberTTL is how long a member stays on
	// it after its last proof once it is no longer connected. Defaults
	// 4096 and 24h.
	MaxMembers int
	MemberTTL  time.Duration

	// MailboxBytesPerSpace and MailboxExpiry bound the mailbox of one space
	// (envelopes kept for offline devices, MailboxLimits; flags
	// --mailbox-bytes-per-space, --mailbox-expiry).
	// Defaults 16 MiB and 168h (a week).
	MailboxBytesPerSpace int64
	MailboxExpiry        time.Duration

	// The blind mirror's limits (MirrorLimits, whose fields they fill):
	// MirrorBytesPerSpace the entry bytes stored for one space (1 GiB);
	// MirrorMaxSpaces the spaces mirrored (1024), of which
	// MirrorMaxUnconfirmedSpaces may be ones no writer has confirmed yet
	// (64); MirrorMaxPendingPerSpace the unconfirmed tokens of one space
	// (4), kept MirrorPendingTTL (1h); MirrorKeepEpochs the confirmed
	// epochs kept per space (2); MirrorHandoversPerPeer the handovers one
	// peer may make per MirrorHandoverWindow (16 per 1h).
	MirrorBytesPerSpace        int64
	MirrorMaxSpaces            int
	MirrorMaxUnconfirmedSpaces int
	MirrorMaxPendingPerSpace   int
	MirrorPendingTTL           time.Duration
	MirrorKeepEpochs           int
	MirrorHandoversPerPeer     int
	MirrorHandoverWindow       time.Duration

	// The message router's limits (RouterLimits, whose fields they fill;
	// see there for what each bounds): RouterMeshPeers (256),
	// RouterMaxSeen (ephemeral.DefaultMaxSeen), RouterSigninPerPeer and
	// RouterSigninPerPeerBurst (1 per second, burst 8),
	// RouterSigninPerSpace and RouterSigninPerSpaceBurst (8 per second,
	// burst 64), RouterMaxSigninPeers (4096), RouterMaxRejects (16) and
	// RouterBanFor (10m).
	RouterMeshPeers           int
	RouterMaxSeen             int
	RouterSigninPerPeer       float64
	RouterSigninPerPeerBurst  int
	RouterSigninPerSpace      float64
	RouterSigninPerSpaceBurst int
	RouterMaxSigninPeers      int
	RouterMaxRejects          int
	RouterBanFor              time.Duration

	// The directory's limits (DirectoryLimits, whose fields they fill):
	// DirectoryMaxLocators (16384) and DirectoryLocatorsPerSpace (64),
	// DirectoryMaxAliases (4096) and DirectoryAliasesPerSpace (4),
	// DirectoryWritesPerPeer and DirectoryLookupsPerPeer (64 each per
	// DirectoryWindow, 10m).
	DirectoryMaxLocators      int
	DirectoryLocatorsPerSpace int
	DirectoryMaxAliases       int
	DirectoryAliasesPerSpace  int
	DirectoryWritesPerPeer    int
	DirectoryLookupsPerPeer   int
	DirectoryWindow           time.Duration
}

// router returns the router's limits: those a program set in o, and l's
// for the fields o leaves zero.
func (l *Limits) router(o RouterLimits) RouterLimits {
	seti(&o.MeshPeers, l.RouterMeshPeers)
	seti(&o.MaxSeen, l.RouterMaxSeen)
	if o.SigninPerPeer <= 0 {
		o.SigninPerPeer = l.RouterSigninPerPeer
	}
	seti(&o.SigninPerPeerBurst, l.RouterSigninPerPeerBurst)
	if o.SigninPerSpace <= 0 {
		o.SigninPerSpace = l.RouterSigninPerSpace
	}
	seti(&o.SigninPerSpaceBurst, l.RouterSigninPerSpaceBurst)
	seti(&o.MaxSigninPeers, l.RouterMaxSigninPeers)
	seti(&o.MaxRejects, l.RouterMaxRejects)
	if o.BanFor <= 0 {
		o.BanFor = l.RouterBanFor
	}
	return o
}

// directory returns the directory's limits: those a program set in o,
// and l's for the fields o leaves zero.
func (l *Limits) directory(o DirectoryLimits) DirectoryLimits {
	seti(&o.MaxLocators, l.DirectoryMaxLocators)
	seti(&o.LocatorsPerSpace, l.DirectoryLocatorsPerSpace)
	seti(&o.MaxAliases, l.DirectoryMaxAliases)
	seti(&o.AliasesPerSpace, l.DirectoryAliasesPerSpace)
	seti(&o.WritesPerPeer, l.DirectoryWritesPerPeer)
	seti(&o.LookupsPerPeer, l.DirectoryLookupsPerPeer)
	if o.Window <= 0 {
		o.Window = l.DirectoryWindow
	}
	return o
}

// seti sets *dst to v when it is not positive.
func seti(dst *int, v int) {
	if *dst <= 0 {
		*dst = v
	}
}

// mirror returns the mirror's limits: those a program set in o, and
// l's for the fields o leaves zero.
func (l *Limits) mirror(o MirrorLimits) MirrorLimits {
	set := func(dst *int, v int) {
		if *dst <= 0 {
			*dst = v
		}
	}
	if o.BytesPerSpace <= 0 {
		o.BytesPerSpace = l.MirrorBytesPerSpace
	}
	set(&o.MaxSpaces, l.MirrorMaxSpaces)
	set(&o.MaxUnconfirmedSpaces, l.MirrorMaxUnconfirmedSpaces)
	set(&o.MaxPendingPerSpace, l.MirrorMaxPendingPerSpace)
	set(&o.KeepEpochs, l.MirrorKeepEpochs)
	set(&o.HandoversPerPeer, l.MirrorHandoversPerPeer)
	if o.PendingTTL <= 0 {
		o.PendingTTL = l.MirrorPendingTTL
	}
	if o.HandoverWindow <= 0 {
		o.HandoverWindow = l.MirrorHandoverWindow
	}
	return o
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	m, r, d := DefaultMirrorLimits(), DefaultRouterLimits(), DefaultDirectoryLimits()
	return Limits{
		MaxConns:          2048,
		MaxConnsPerPeer:   8,
		MaxConnsPerIP:     64,
		MaxStreams:        16384,
		MaxStreamsPerPeer: 256,
		MaxMemory:         256 << 20,
		MaxMemoryPerPeer:  32 << 20,

		MaxReservations:      128,
		MaxReservationsPerIP: 8,
		ReservationTTL:       time.Hour,
		MaxCircuitsPerPeer:   16,
		CircuitDuration:      2 * time.Minute,
		CircuitBytes:         128 << 10,

		MemberCircuitDuration: time.Hour,
		MemberCircuitBytes:    1 << 30,
		MaxMembers:            DefaultMaxMembers,
		MemberTTL:             DefaultMemberTTL,

		MailboxBytesPerSpace: 16 << 20,
		MailboxExpiry:        7 * 24 * time.Hour,

		MirrorBytesPerSpace:        m.BytesPerSpace,
		MirrorMaxSpaces:            m.MaxSpaces,
		MirrorMaxUnconfirmedSpaces: m.MaxUnconfirmedSpaces,
		MirrorMaxPendingPerSpace:   m.MaxPendingPerSpace,
		MirrorPendingTTL:           m.PendingTTL,
		MirrorKeepEpochs:           m.KeepEpochs,
		MirrorHandoversPerPeer:     m.HandoversPerPeer,
		MirrorHandoverWindow:       m.HandoverWindow,

		RouterMeshPeers:           r.MeshPeers,
		RouterMaxSeen:             r.MaxSeen,
		RouterSigninPerPeer:       r.SigninPerPeer,
		RouterSigninPerPeerBurst:  r.SigninPerPeerBurst,
		RouterSigninPerSpace:      r.SigninPerSpace,
		RouterSigninPerSpaceBurst: r.SigninPerSpaceBurst,
		RouterMaxSigninPeers:      r.MaxSigninPeers,
		RouterMaxRejects:          r.MaxRejects,
		RouterBanFor:              r.BanFor,

		DirectoryMaxLocators:      d.MaxLocators,
		DirectoryLocatorsPerSpace: d.LocatorsPerSpace,
		DirectoryMaxAliases:       d.MaxAliases,
		DirectoryAliasesPerSpace:  d.AliasesPerSpace,
		DirectoryWritesPerPeer:    d.WritesPerPeer,
		DirectoryLookupsPerPeer:   d.LookupsPerPeer,
		DirectoryWindow:           d.Window,
	}
}

// Validate refuses a limit that is not positive, a per-peer limit above
// its overall one, and a circuit limit above the members' one.
func (l *Limits) Validate() error {
	for _, f := range limitFields {
		if !f.positive(l) {
			return fmt.Errorf("relay: limit %s must be positive", f.name)
		}
	}
	for _, c := range []struct {
		part, whole string
		ok          bool
	}{
		{"max-conns-per-peer", "max-conns", l.MaxConnsPerPeer <= l.MaxConns},
		{"max-conns-per-ip", "max-conns", l.MaxConnsPerIP <= l.MaxConns},
		{"max-streams-per-peer", "max-streams", l.MaxStreamsPerPeer <= l.MaxStreams},
		{"max-memory-per-peer", "max-memory", l.MaxMemoryPerPeer <= l.MaxMemory},
		{"mirror-max-unconfirmed-spaces", "mirror-max-spaces", l.MirrorMaxUnconfirmedSpaces <= l.MirrorMaxSpaces},
		{"circuit-bytes", "member-circuit-bytes", l.CircuitBytes <= l.MemberCircuitBytes},
		{"circuit-duration", "member-circuit-duration", l.CircuitDuration <= l.MemberCircuitDuration},
		{"directory-locators-per-space", "directory-max-locators", l.DirectoryLocatorsPerSpace <= l.DirectoryMaxLocators},
		{"directory-aliases-per-space", "directory-max-aliases", l.DirectoryAliasesPerSpace <= l.DirectoryMaxAliases},
	} {
		if !c.ok {
			return fmt.Errorf("relay: limit %s is above %s", c.part, c.whole)
		}
	}
	return nil
}

// limitField is one settable limit: its flag name, what it bounds and
// where it lives in Limits.
type limitField struct {
	name  string // flag name; the env and config names derive from it
	usage string
	kind  limitKind
	i     func(*Limits) *int
	i64   func(*Limits) *int64
	d     func(*Limits) *time.Duration
	f     func(*Limits) *float64
}

type limitKind int

const (
	kindCount limitKind = iota
	kindSize
	kindDuration
	kindRate // per second, a positive decimal number
)

// limitFields are the limits a flag, the environment or config.json
// sets, in the order --help lists them.
var limitFields = []limitField{
	{name: "max-conns", usage: "connections of all peers", kind: kindCount, i: func(l *Limits) *int { return &l.MaxConns }},
	{name: "max-conns-per-peer", usage: "connections of one peer", kind: kindCount, i: func(l *Limits) *int { return &l.MaxConnsPerPeer }},
	{name: "max-conns-per-ip", usage: "connections from one IPv4 address or IPv6 /56", kind: kindCount, i: func(l *Limits) *int { return &l.MaxConnsPerIP }},
	{name: "max-streams", usage: "streams of all peers", kind: kindCount, i: func(l *Limits) *int { return &l.MaxStreams }},
	{name: "max-streams-per-peer", usage: "streams of one peer", kind: kindCount, i: func(l *Limits) *int { return &l.MaxStreamsPerPeer }},
	{name: "max-memory", usage: "memory reserved by all peers' connections and streams", kind: kindSize, i64: func(l *Limits) *int64 { return &l.MaxMemory }},
	{name: "max-memory-per-peer", usage: "memory reserved by one peer's connections and streams", kind: kindSize, i64: func(l *Limits) *int64 { return &l.MaxMemoryPerPeer }},
	{name: "max-reservations", usage: "circuit relay slots held at once", kind: kindCount, i: func(l *Limits) *int { return &l.MaxReservations }},
	{name: "max-reservations-per-ip", usage: "circuit relay slots reserved from one IP address", kind: kindCount, i: func(l *Limits) *int { return &l.MaxReservationsPerIP }},
	{name: "reservation-ttl", usage: "lifetime of a slot before it must be refreshed", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.ReservationTTL }},
	{name: "max-circuits-per-peer", usage: "relayed connections to or from one peer", kind: kindCount, i: func(l *Limits) *int { return &l.MaxCircuitsPerPeer }},
	{name: "circuit-duration", usage: "lifetime of one relayed connection", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.CircuitDuration }},
	{name: "circuit-bytes", usage: "bytes one relayed connection carries each way", kind: kindSize, i64: func(l *Limits) *int64 { return &l.CircuitBytes }},
	{name: "mirror-bytes-per-space", usage: "entry bytes the mirror stores for one space", kind: kindSize, i64: func(l *Limits) *int64 { return &l.MirrorBytesPerSpace }},
	{name: "mirror-max-spaces", usage: "spaces the mirror serves", kind: kindCount, i: func(l *Limits) *int { return &l.MirrorMaxSpaces }},
	{name: "mirror-max-unconfirmed-spaces", usage: "mirrored spaces no writer has confirmed yet", kind: kindCount, i: func(l *Limits) *int { return &l.MirrorMaxUnconfirmedSpaces }},
	{name: "mirror-max-pending-per-space", usage: "unconfirmed mirror tokens of one space", kind: kindCount, i: func(l *Limits) *int { return &l.MirrorMaxPendingPerSpace }},
	{name: "mirror-pending-ttl", usage: "how long an unconfirmed mirror token is kept", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.MirrorPendingTTL }},
	{name: "mirror-keep-epochs", usage: "confirmed key epochs the mirror keeps per space", kind: kindCount, i: func(l *Limits) *int { return &l.MirrorKeepEpochs }},
	{name: "mirror-handovers-per-peer", usage: "mirror token handovers one peer may make per window", kind: kindCount, i: func(l *Limits) *int { return &l.MirrorHandoversPerPeer }},
	{name: "mirror-handover-window", usage: "the window of mirror-handovers-per-peer", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.MirrorHandoverWindow }},
	{name: "mailbox-bytes-per-space", usage: "envelope bytes the mailbox keeps for one space", kind: kindSize, i64: func(l *Limits) *int64 { return &l.MailboxBytesPerSpace }},
	{name: "mailbox-expiry", usage: "longest time the mailbox keeps an envelope", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.MailboxExpiry }},
	{name: "member-circuit-duration", usage: "lifetime of one relayed connection between members of served spaces", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.MemberCircuitDuration }},
	{name: "member-circuit-bytes", usage: "bytes one relayed connection between members carries each way", kind: kindSize, i64: func(l *Limits) *int64 { return &l.MemberCircuitBytes }},
	{name: "router-mesh-peers", usage: "the router's gossipsub mesh degree per space", kind: kindCount, i: func(l *Limits) *int { return &l.RouterMeshPeers }},
	{name: "router-max-seen", usage: "message IDs the router remembers to drop replays", kind: kindCount, i: func(l *Limits) *int { return &l.RouterMaxSeen }},
	{name: "router-signin-per-peer", usage: "sign-in messages per second forwarded from one neighbour in one space", kind: kindRate, f: func(l *Limits) *float64 { return &l.RouterSigninPerPeer }},
	{name: "router-signin-per-peer-burst", usage: "burst of router-signin-per-peer", kind: kindCount, i: func(l *Limits) *int { return &l.RouterSigninPerPeerBurst }},
	{name: "router-signin-per-space", usage: "sign-in messages per second forwarded in one space", kind: kindRate, f: func(l *Limits) *float64 { return &l.RouterSigninPerSpace }},
	{name: "router-signin-per-space-burst", usage: "burst of router-signin-per-space", kind: kindCount, i: func(l *Limits) *int { return &l.RouterSigninPerSpaceBurst }},
	{name: "router-max-signin-peers", usage: "neighbours whose sign-in rate and rejected messages the router tracks", kind: kindCount, i: func(l *Limits) *int { return &l.RouterMaxSigninPeers }},
	{name: "router-max-rejects", usage: "rejected messages from one neighbour within a minute that ban it", kind: kindCount, i: func(l *Limits) *int { return &l.RouterMaxRejects }},
	{name: "router-ban-for", usage: "how long the router ignores a banned neighbour", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.RouterBanFor }},
	{name: "directory-max-locators", usage: "invite locators the relay keeps", kind: kindCount, i: func(l *Limits) *int { return &l.DirectoryMaxLocators }},
	{name: "directory-locators-per-space", usage: "invite locators kept for one space", kind: kindCount, i: func(l *Limits) *int { return &l.DirectoryLocatorsPerSpace }},
	{name: "directory-max-aliases", usage: "aliases (name@relay) the relay keeps", kind: kindCount, i: func(l *Limits) *int { return &l.DirectoryMaxAliases }},
	{name: "directory-aliases-per-space", usage: "aliases of one space", kind: kindCount, i: func(l *Limits) *int { return &l.DirectoryAliasesPerSpace }},
	{name: "directory-writes-per-peer", usage: "locator and alias writes served to one peer per directory-window", kind: kindCount, i: func(l *Limits) *int { return &l.DirectoryWritesPerPeer }},
	{name: "directory-lookups-per-peer", usage: "locator and alias lookups served to one peer per directory-window", kind: kindCount, i: func(l *Limits) *int { return &l.DirectoryLookupsPerPeer }},
	{name: "directory-window", usage: "the window of directory-writes-per-peer and directory-lookups-per-peer", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.DirectoryWindow }},
	{name: "max-members", usage: "peers on the allow-list of members of served spaces", kind: kindCount, i: func(l *Limits) *int { return &l.MaxMembers }},
	{name: "member-ttl", usage: "how long a disconnected member stays on the allow-list after its last proof", kind: kindDuration, d: func(l *Limits) *time.Duration { return &l.MemberTTL }},
}

// LimitNames are the flag names of the settable limits, in order.
func LimitNames() []string {
	out := make([]string, len(limitFields))
	for i, f := range limitFields {
		out[i] = f.name
	}
	return out
}

// LimitUsage returns what the limit named name bounds, with its
// environment variable and config key, its default and the type of its
// value (count, size or duration), for --help.
func LimitUsage(name string) (usage, def, typ string) {
	f := limitByName(name)
	if f == nil {
		return "", "", ""
	}
	d := DefaultLimits()
	return fmt.Sprintf("%s (env %s)", f.usage, f.env()), f.format(&d), [...]string{"count", "size", "duration", "rate"}[f.kind]
}

// CheckLimit parses v as the value of the limit named name.
func CheckLimit(name, v string) error {
	f := limitByName(name)
	if f == nil {
		return fmt.Errorf("unknown limit %q", name)
	}
	var l Limits
	return f.set(&l, v)
}

func (f *limitField) env() string {
	return "MYCEL_RELAY_" + strings.ToUpper(strings.ReplaceAll(f.name, "-", "_"))
}

func (f *limitField) key() string { return strings.ReplaceAll(f.name, "-", "_") }

func (f *limitField) positive(l *Limits) bool {
	switch f.kind {
	case kindCount:
		return *f.i(l) > 0
	case kindSize:
		return *f.i64(l) > 0
	case kindRate:
		return *f.f(l) > 0
	default:
		return *f.d(l) > 0
	}
}

func (f *limitField) format(l *Limits) string {
	switch f.kind {
	case kindCount:
		return strconv.Itoa(*f.i(l))
	case kindSize:
		return formatSize(*f.i64(l))
	case kindRate:
		return strconv.FormatFloat(*f.f(l), 'g', -1, 64)
	default:
		return f.d(l).String()
	}
}

// set parses v into l's field: a positive integer, a size, a rate or a
// duration.
func (f *limitField) set(l *Limits, v string) error {
	v = strings.TrimSpace(v)
	switch f.kind {
	case kindCount:
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive whole number, got %q", v)
		}
		*f.i(l) = n
	case kindSize:
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*f.i64(l) = n
	case kindRate:
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0) || math.IsInf(r, 0) {
			return fmt.Errorf("want a positive number per second like 0.5 or 8, got %q", v)
		}
		*f.f(l) = r
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration like 90s, 2m or 1h, got %q", v)
		}
		*f.d(l) = d
	}
	return nil
}

func limitByName(name string) *limitField {
	for i := range limitFields {
		if limitFields[i].name == name {
			return &limitFields[i]
		}
	}
	return nil
}

func limitByKey(key string) *limitField {
	return limitByName(strings.ReplaceAll(key, "_", "-"))
}

func limitKeys() []string {
	out := make([]string, len(limitFields))
	for i := range limitFields {
		out[i] = limitFields[i].key()
	}
	return out
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseSize parses a positive byte count, with an optional KiB, MiB or
// GiB suffix.
func parseSize(v string) (int64, error) {
	num, shift := v, uint(0)
	for _, u := range sizeUnits {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, shift = strings.TrimSpace(s), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("want a positive size in bytes, with an optional KiB, MiB or GiB suffix, got %q", v)
	}
	return n << shift, nil
}

func formatSize(n int64) string {
	for _, u := range sizeUnits {
		if u.shift > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// envNames are the variables LoadConfig reads.
func envNames() []string {
	names := []string{"MYCEL_RELAY_HOME", "MYCEL_RELAY_LISTEN", "MYCEL_RELAY_WS_CERT", "MYCEL_RELAY_WS_KEY",
		"MYCEL_RELAY_METRICS", "MYCEL_RELAY_LOG_LEVEL", "MYCEL_RELAY_PEERS"}
	for _, f := range limitFields {
		names = append(names, f.env())
	}
	return names
}

// CheckEnv refuses a MYCEL_RELAY_* variable in environ (os.Environ's
// form) that LoadConfig does not read: a mistyped one would otherwise
// leave its setting at the default without a word, where a mistyped flag
// is refused.
func CheckEnv(environ []string) error {
	known := envNames()
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "MYCEL_RELAY_") || slices.Contains(known, k) {
			continue
		}
		best, bestD := "", 4 // suggest only a name within 3 edits
		for _, n := range known {
			if d := editDistance(k, n); d < bestD {
				best, bestD = n, d
			}
		}
		hint := "mycel relay --help lists the variables"
		if best != "" {
			hint = "did you mean " + best + "? " + hint
		}
		return fmt.Errorf("relay: unknown variable %s (%s)", k, hint)
	}
	return nil
}

// editDistance is the Levenshtein distance between a and b (ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
