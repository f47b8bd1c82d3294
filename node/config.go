package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/mycelsync/mycel/auth"
)

// Config is the daemon's settings. Each has a default; the config file
// (config.json in the data directory), then MYCEL_* environment variables,
// then command-line flags override it, in that order of precedence.
type Config struct {
	// DataDir holds the identity key, the store and config.json.
	// Default: $XDG_DATA_HOME/mycel, ~/.local/share/mycel (Linux),
	// ~/Library/Application Support/mycel (macOS), %LocalAppData%\mycel
	// (Windows). Env MYCEL_HOME; flag --data.
	DataDir string `json:"-"`
	// Listen are the multiaddrs the host listens on. Env MYCEL_LISTEN
	// (comma-separated); flag --listen (repeatable).
	Listen []string `json:"listen,omitempty"`
	// Peers are static peers (multiaddrs with /p2p/ID) kept connected, with
	// backoff. Env MYCEL_PEERS; flag --peer.
	Peers []string `json:"peers,omitempty"`
	// Relays are circuit relays (multiaddrs with /p2p/ID) used when this
	// node is not reachable. Env MYCEL_RELAYS; flag --relay.
	Relays []string `json:"relays,omitempty"`
	// MDNS finds peers on the local network. Default true. Env MYCEL_MDNS;
	// flag --mdns.
	MDNS *bool `json:"mdns,omitempty"`
	// LogLevel is debug, info, warn or error. Default info. Env
	// MYCEL_LOG_LEVEL; flag --log-level.
	LogLevel string `json:"log_level,omitempty"`
	// API is the host:port of the local HTTP API; it must be a loopback
	// address. Default 127.0.0.1:4103; port 0 picks a free one. Env
	// MYCEL_API; flag --api.
	API string `json:"api,omitempty"`
	// Name is this device's name, shown to the members asked to approve
	// it and in the list of devices. Default DefaultName(). Env MYCEL_NAME;
	// flag --name.
	Name string `json:"name,omitempty"`
	// Limits are the node's bounds, timeouts and intervals (limits.go);
	// zero fields take their defaults. Set by programs, not by the config
	// file.
	Limits Limits `json:"-"`
}

// DefaultName is a device name from the host: "mycel on <hostname>
// (<OS>/<arch>)".
func DefaultName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "an unnamed host"
	}
	name := fmt.Sprintf("mycel on %s (%s/%s)", host, runtime.GOOS, runtime.GOARCH)
	if len(name) > 64 {
		name = name[:64]
	}
	return strings.ToValidUTF8(name, "")
}

// DefaultAPI is where the local HTTP API listens by default.
const DefaultAPI = "127.0.0.1:4103"

// DefaultListen are the addresses a daemon listens on by default: every
// transport a browser or another daemon may use.
var DefaultListen = []string{
	"/ip4/0.0.0.0/tcp/4101",
	"/ip6/::/tcp/4101",
	"/ip4/0.0.0.0/udp/4101/quic-v1",
	"/ip4/0.0.0.0/udp/4101/quic-v1/webtransport",
	"/ip4/0.0.0.0/udp/4101/webrtc-direct",
	"/ip4/0.0.0.0/tcp/4102/ws",
}

// ConfigFile is the name of the config file in the data directory.
const ConfigFile = "config.json"

// DefaultDataDir returns the data directory used when none is given.
func DefaultDataDir() (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "mycel"), nil
		}
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "Application Support", "mycel"), nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "mycel"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("node: no data directory: %w (set MYCEL_HOME or --data)", err)
	}
	return filepath.Join(home, ".local", "share", "mycel"), nil
}

// Overrides are settings given on the command line: nil or empty means not
// given.
type Overrides struct {
	DataDir  string
	Listen   []string
	Peers    []string
	Relays   []string
	MDNS     *bool
	LogLevel string
	API      string
	Name     string
}

// LoadConfig resolves the settings: defaults, then the config file, then
// the environment (getenv, os.Getenv in the daemon), then flags.
func LoadConfig(flags Overrides, getenv func(string) string) (*Config, error) {
	dir := flags.DataDir
	if dir == "" {
		dir = getenv("MYCEL_HOME")
	}
	if dir == "" {
		var err error
		if dir, err = DefaultDataDir(); err != nil {
			return nil, err
		}
	}
	yes := true
	cfg := &Config{Listen: DefaultListen, MDNS: &yes, LogLevel: "info", API: DefaultAPI}
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("node: read config: %w", err)
	default:
		var file Config
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return nil, fmt.Errorf("node: %s: %w", filepath.Join(dir, ConfigFile), err)
		}
		cfg.merge(&file)
	}
	env := &Config{Listen: list(getenv("MYCEL_LISTEN")), Peers: list(getenv("MYCEL_PEERS")),
		Relays: list(getenv("MYCEL_RELAYS")), LogLevel: getenv("MYCEL_LOG_LEVEL"), API: getenv("MYCEL_API"), Name: getenv("MYCEL_NAME")}
	if v := getenv("MYCEL_MDNS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("node: MYCEL_MDNS=%q: want true or false", v)
		}
		env.MDNS = &b
	}
	cfg.merge(env)
	cfg.merge(&Config{Listen: flags.Listen, Peers: flags.Peers, Relays: flags.Relays, MDNS: flags.MDNS, LogLevel: flags.LogLevel, API: flags.API, Name: flags.Name})
	cfg.DataDir = dir
	switch cfg.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("node: log level %q: want debug, info, warn or error", cfg.LogLevel)
	}
	if err := checkLoopback(cfg.API); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName()
	}
	if err := checkDeviceName(cfg.Name); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkDeviceName refuses a device name a join request could not carry.
func checkDeviceName(name string) error {
	if err := auth.ValidateDeviceName(name); err != nil {
		return fmt.Errorf("node: device name %q: 1 to %d bytes of printable UTF-8", name, auth.MaxDeviceNameSize)
	}
	return nil
}

// merge overrides c with the settings o sets.
func (c *Config) merge(o *Config) {
	if len(o.Listen) > 0 {
		c.Listen = o.Listen
	}
	if len(o.Peers) > 0 {
		c.Peers = o.Peers
	}
	if len(o.Relays) > 0 {
		c.Relays = o.Relays
	}
	if o.MDNS != nil {
		c.MDNS = o.MDNS
	}
	if o.LogLevel != "" {
		c.LogLevel = o.LogLevel
	}
	if o.API != "" {
		c.API = o.API
	}
	if o.Name != "" {
		c.Name = o.Name
	}
}

// checkLoopback refuses an API address that is not on loopback: the API
// must not be reachable from other machines.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("node: API address %q: %w (want host:port, e.g. %s)", addr, err, DefaultAPI)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("node: API address %q: bad port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("node: API address %q is not a loopback address (127.0.0.1, ::1 or localhost)", addr)
	}
	return nil
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

// ErrAddrInUse is what New returns when a listen address's port is
// taken by another process.
var ErrAddrInUse = errors.New("address already in use")

// checkPortsFree binds each TCP and UDP port of listen for a moment, the
// plain way, and fails if another process holds one. libp2p binds its TCP
// ports with SO_REUSEPORT (for hole punching), so a second daemon on the
// same port would start and share it with the first, each getting some of
// the connections; a plain bind without SO_REUSEPORT is refused while any
// socket holds the port. Port 0 and addresses that do not parse are left
// to libp2p; so are errors other than "in use" (no IPv6, say), for which
// libp2p listens on the others.
func checkPortsFree(listen []string) error {
	seen := map[string]bool{}
	for _, s := range listen {
		network, addr, ok := bindAddr(s)
		if !ok || seen[network+" "+addr] {
			continue
		}
		seen[network+" "+addr] = true
		var err error
		if network == "tcp" {
			var ln net.Listener
			if ln, err = net.Listen("tcp", addr); err == nil {
				ln.Close()
			}
		} else {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				pc.Close()
			}
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("node: listen on %s: %w: another process (another mycel daemon?) holds %s port %s; stop it, or choose other addresses with --listen (MYCEL_LISTEN)",
				s, ErrAddrInUse, strings.ToUpper(network), addr[strings.LastIndex(addr, ":")+1:])
		}
	}
	return nil
}

// bindAddr returns the socket a listen multiaddr binds: "tcp" or "udp"
// and host:port, from its leading /ip4|ip6/<ip>/tcp|udp/<port>.
func bindAddr(s string) (network, addr string, ok bool) {
	f := strings.Split(strings.TrimPrefix(s, "/"), "/")
	if len(f) < 4 || (f[0] != "ip4" && f[0] != "ip6") || (f[2] != "tcp" && f[2] != "udp") || f[3] == "0" {
		return "", "", false
	}
	if net.ParseIP(f[1]) == nil {
		return "", "", false
	}
	if _, err := strconv.ParseUint(f[3], 10, 16); err != nil {
		return "", "", false
	}
	return f[2], net.JoinHostPort(f[1], f[3]), true
}
