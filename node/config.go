package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/internal/listencheck"
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
	if err := listencheck.Loopback(addr, DefaultAPI); err != nil {
		return fmt.Errorf("node: API address %w", err)
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
var ErrAddrInUse = listencheck.ErrAddrInUse

// checkPortsFree fails, naming the flag and the variable to change, when
// another process holds a port of listen (listencheck.PortsFree).
func checkPortsFree(listen []string) error {
	var inUse *listencheck.InUse
	if err := listencheck.PortsFree(listen); errors.As(err, &inUse) {
		return fmt.Errorf("node: %w (another mycel daemon?); stop it, or choose other addresses with --listen (MYCEL_LISTEN)", err)
	}
	return nil
}
