package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	no := false

	cfg, err := LoadConfig(Overrides{DataDir: dir}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != dir || strings.Join(cfg.Listen, ",") != strings.Join(DefaultListen, ",") || !*cfg.MDNS || cfg.LogLevel != "info" {
		t.Fatalf("defaults: %+v", cfg)
	}
	// The file overrides defaults…
	file := `{"listen": ["/ip4/127.0.0.1/tcp/1"], "log_level": "debug", "mdns": false}`
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = LoadConfig(Overrides{DataDir: dir}, getenv)
	if err != nil || cfg.Listen[0] != "/ip4/127.0.0.1/tcp/1" || cfg.LogLevel != "debug" || *cfg.MDNS {
		t.Fatalf("file: %+v %v", cfg, err)
	}
	// …the environment overrides the file…
	env["MYCEL_LISTEN"] = "/ip4/127.0.0.1/tcp/2, /ip4/127.0.0.1/tcp/3"
	env["MYCEL_LOG_LEVEL"] = "warn"
	cfg, err = LoadConfig(Overrides{DataDir: dir}, getenv)
	if err != nil || len(cfg.Listen) != 2 || cfg.Listen[1] != "/ip4/127.0.0.1/tcp/3" || cfg.LogLevel != "warn" {
		t.Fatalf("env: %+v %v", cfg, err)
	}
	// …and flags override the environment.
	cfg, err = LoadConfig(Overrides{DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/4"}, LogLevel: "error", MDNS: &no}, getenv)
	if err != nil || len(cfg.Listen) != 1 || cfg.Listen[0] != "/ip4/127.0.0.1/tcp/4" || cfg.LogLevel != "error" {
		t.Fatalf("flags: %+v %v", cfg, err)
	}
	// MYCEL_HOME names the data directory when --data does not.
	other := t.TempDir()
	env["MYCEL_HOME"] = other
	if cfg, err := LoadConfig(Overrides{}, getenv); err != nil || cfg.DataDir != other {
		t.Fatalf("MYCEL_HOME: %+v %v", cfg, err)
	}
	// Clear errors for bad settings.
	for name, c := range map[string]struct {
		file string
		env  map[string]string
	}{
		"unknown field": {file: `{"listn": []}`},
		"bad json":      {file: `{`},
		"bad level":     {env: map[string]string{"MYCEL_LOG_LEVEL": "loud"}},
		"bad mdns":      {env: map[string]string{"MYCEL_MDNS": "sometimes"}},
	} {
		d := t.TempDir()
		if c.file != "" {
			os.WriteFile(filepath.Join(d, ConfigFile), []byte(c.file), 0o600)
		}
		if _, err := LoadConfig(Overrides{DataDir: d}, func(k string) string { return c.env[k] }); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIdentityPersistsAndIsPrivate(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadIdentity(dir)
	if err != nil || !k1.Equals(k2) {
		t.Fatalf("identity changed on reload: %v", err)
	}
	path := filepath.Join(dir, IdentityFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %v, %v", fi.Mode().Perm(), err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadIdentity(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
}

func loopbackConfig(t testing.TB, peers ...string) *Config {
	no := false
	return &Config{
		DataDir:  t.TempDir(),
		Listen:   []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		Peers:    peers,
		MDNS:     &no, // tests stay on loopback: no multicast
		LogLevel: "info",
	}
}

// named sets a config's device name.
func named(cfg *Config, name string) *Config {
	cfg.Name = name
	return cfg
}

// TestStaticPeerReconnects: a node keeps its static peer connected, also
// after the connection is closed.
func TestStaticPeerReconnects(t *testing.T) {
	a, err := New(loopbackConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(loopbackConfig(t, a.Addrs()[0].String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitConnected := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for b.Host().Network().Connectedness(a.Host().ID()) != network.Connected {
			if time.Now().After(deadline) {
				t.Fatal("static peer not connected")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitConnected()
	if err := b.Host().Network().ClosePeer(a.Host().ID()); err != nil {
		t.Fatal(err)
	}
	waitConnected()
	if got := b.Host().ID(); got == a.Host().ID() {
		t.Fatal("two nodes with one identity")
	}
}

func TestBadPeerAddress(t *testing.T) {
	if _, err := New(loopbackConfig(t, "/ip4/127.0.0.1/tcp/1"), nil); err == nil || !strings.Contains(err.Error(), "/p2p/") {
		t.Fatalf("peer address without an ID: %v", err)
	}
}
