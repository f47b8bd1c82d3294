package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func noDaemonDir() (string, error) { return "/nonexistent-daemon-dir", nil }

func writeConfig(t *testing.T, dir, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Each setting comes from its flag, else its environment variable, else
// config.json, else its default.
func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{"listen": ["/ip4/127.0.0.1/tcp/1"], "log_level": "warn",
		"limits": {"max_conns": 100, "circuit_bytes": "1MiB", "circuit_duration": "10m"}}`)
	e := map[string]string{"MYCEL_RELAY_MAX_CONNS": "200", "MYCEL_RELAY_LISTEN": "/ip4/127.0.0.1/tcp/2, /ip4/127.0.0.1/tcp/3",
		"MYCEL_RELAY_METRICS": "127.0.0.1:9999"}
	flags := Overrides{DataDir: dir, Limits: map[string]string{"max-conns": "300"}}

	cfg, err := LoadConfig(flags, env(e), noDaemonDir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.MaxConns != 300 {
		t.Errorf("flag: max conns %d", cfg.Limits.MaxConns)
	}
	if !reflect.DeepEqual(cfg.Listen, []string{"/ip4/127.0.0.1/tcp/2", "/ip4/127.0.0.1/tcp/3"}) {
		t.Errorf("env over file: listen %v", cfg.Listen)
	}
	if cfg.LogLevel != "warn" || cfg.Limits.CircuitBytes != 1<<20 || cfg.Limits.CircuitDuration != 10*time.Minute {
		t.Errorf("file: %+v", cfg)
	}
	if cfg.Metrics != "127.0.0.1:9999" {
		t.Errorf("env: metrics %q", cfg.Metrics)
	}
	if d := DefaultLimits(); cfg.Limits.MaxReservations != d.MaxReservations || cfg.Limits.MaxStreamsPerPeer != d.MaxStreamsPerPeer {
		t.Errorf("defaults: %+v", cfg.Limits)
	}

	flags.Limits = nil
	if cfg, err = LoadConfig(flags, env(e), noDaemonDir); err != nil || cfg.Limits.MaxConns != 200 {
		t.Fatalf("env: max conns %d, %v", cfg.Limits.MaxConns, err)
	}
	if cfg, err = LoadConfig(flags, env(nil), noDaemonDir); err != nil || cfg.Limits.MaxConns != 100 {
		t.Fatalf("file: max conns %d, %v", cfg.Limits.MaxConns, err)
	}
	if cfg, err = LoadConfig(Overrides{DataDir: t.TempDir()}, env(nil), noDaemonDir); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Limits, DefaultLimits()) || !reflect.DeepEqual(cfg.Listen, DefaultListen) || cfg.Metrics != "" || cfg.LogLevel != "info" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestLoadConfigDataDir(t *testing.T) {
	cfg, err := LoadConfig(Overrides{}, env(nil), func() (string, error) { return "/d", nil })
	if err != nil || cfg.DataDir != filepath.Join("/d", DataDirName) {
		t.Fatalf("default: %q %v", cfg.DataDir, err)
	}
	cfg, err = LoadConfig(Overrides{}, env(map[string]string{"MYCEL_RELAY_HOME": "/e"}), noDaemonDir)
	if err != nil || cfg.DataDir != "/e" {
		t.Fatalf("env: %q %v", cfg.DataDir, err)
	}
	cfg, err = LoadConfig(Overrides{DataDir: "/f"}, env(map[string]string{"MYCEL_RELAY_HOME": "/e"}), noDaemonDir)
	if err != nil || cfg.DataDir != "/f" {
		t.Fatalf("flag: %q %v", cfg.DataDir, err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		file  string
		env   map[string]string
		flags Overrides
		want  string
	}{
		{name: "unknown key", file: `{"listn": []}`, want: "listn"},
		{name: "unknown limit", file: `{"limits": {"max_con": 1}}`, want: `unknown limit "max_con"`},
		{name: "bad limit in file", file: `{"limits": {"max_conns": -1}}`, want: "max_conns"},
		{name: "bad env", env: map[string]string{"MYCEL_RELAY_CIRCUIT_DURATION": "soon"}, want: "MYCEL_RELAY_CIRCUIT_DURATION"},
		{name: "bad size", flags: Overrides{Limits: map[string]string{"max-memory": "12XB"}}, want: "KiB, MiB or GiB"},
		{name: "zero", flags: Overrides{Limits: map[string]string{"max-conns": "0"}}, want: "positive"},
		{name: "per peer above overall", flags: Overrides{Limits: map[string]string{"max-conns": "4", "max-conns-per-peer": "8"}}, want: "max-conns-per-peer is above max-conns"},
		{name: "log level", flags: Overrides{LogLevel: "loud"}, want: "log level"},
		{name: "metrics not loopback", flags: Overrides{Metrics: "0.0.0.0:9100"}, want: "not a loopback address"},
		{name: "metrics not host:port", flags: Overrides{Metrics: "9100"}, want: "host:port"},
		{name: "cert without key", flags: Overrides{WSCert: "c.pem"}, want: "both --ws-cert and --ws-key"},
		{name: "wss without cert", flags: Overrides{Listen: []string{"/ip4/127.0.0.1/tcp/0/tls/ws"}}, want: "needs a certificate"},
		{name: "listen list in a flag", flags: Overrides{Listen: []string{"/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/tcp/1/ws"}}, want: "one address per --listen"},
		{name: "listen not a multiaddr", flags: Overrides{Listen: []string{"127.0.0.1:4111"}}, want: `listen address "127.0.0.1:4111"`},
		{name: "bad rate", flags: Overrides{Limits: map[string]string{"router-signin-per-peer": "fast"}}, want: "positive number per second"},
		{name: "zero rate", env: map[string]string{"MYCEL_RELAY_ROUTER_SIGNIN_PER_SPACE": "0"}, want: "MYCEL_RELAY_ROUTER_SIGNIN_PER_SPACE"},
		{name: "infinite rate", flags: Overrides{Limits: map[string]string{"router-signin-per-space": "+Inf"}}, want: "positive number per second"},
		{name: "bad router duration", file: `{"limits": {"router_ban_for": "-1m"}}`, want: "router_ban_for"},
		{name: "bad directory count", flags: Overrides{Limits: map[string]string{"directory-max-aliases": "many"}}, want: "positive whole number"},
		{name: "locators per space above overall", flags: Overrides{Limits: map[string]string{"directory-max-locators": "10", "directory-locators-per-space": "11"}},
			want: "directory-locators-per-space is above directory-max-locators"},
		{name: "aliases per space above overall", file: `{"limits": {"directory_max_aliases": 2}}`, want: "directory-aliases-per-space is above directory-max-aliases"},
		{name: "cert without wss", flags: Overrides{WSCert: "c.pem", WSKey: "k.pem", Listen: []string{"/ip4/127.0.0.1/tcp/0/ws"}}, want: "no listen address uses it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.file != "" {
				writeConfig(t, dir, c.file)
			}
			c.flags.DataDir = dir
			_, err := LoadConfig(c.flags, env(c.env), noDaemonDir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// With a certificate and no listen addresses, the WebSocket default is
// the secure one.
func TestLoadConfigTLSDefault(t *testing.T) {
	cfg, err := LoadConfig(Overrides{DataDir: t.TempDir(), WSCert: "c.pem", WSKey: "k.pem"}, env(nil), noDaemonDir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Listen, DefaultListenTLS) || strings.Contains(strings.Join(cfg.Listen, " "), "/tcp/4112/ws") {
		t.Fatalf("listen %v", cfg.Listen)
	}
}

func TestLimitValues(t *testing.T) {
	for v, want := range map[string]int64{"1": 1, "4096": 4096, "64KiB": 64 << 10, "3 MiB": 3 << 20, "1GiB": 1 << 30, "10B": 10} {
		if got, err := parseSize(v); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"", "0", "-1", "1.5MiB", "1TiB", "KiB", "99999999999GiB"} {
		if _, err := parseSize(v); err == nil {
			t.Errorf("parseSize(%q) accepted", v)
		}
	}
	d := DefaultLimits()
	for _, name := range LimitNames() {
		usage, def, typ := LimitUsage(name)
		if usage == "" || def == "" || typ == "" {
			t.Errorf("%s: no usage", name)
		}
		// Each default, as --help prints it, parses back to itself.
		var l Limits
		f := limitByName(name)
		if err := f.set(&l, def); err != nil || f.format(&l) != f.format(&d) {
			t.Errorf("%s: default %q does not round-trip: %v", name, def, err)
		}
	}
	if err := CheckLimit("max-conn", "1"); err == nil {
		t.Error("CheckLimit accepted an unknown limit")
	}
}

// TestRouterDirectoryLimitSettings: the router's and the directory's
// limits come from flags, the environment and config.json like the
// others (each with its default when none is given), a program's own
// RouterLimits and DirectoryLimits win over them, and a relay started
// from the loaded config holds them.
func TestRouterDirectoryLimitSettings(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{"listen": ["/ip4/127.0.0.1/tcp/0"], "limits": {"router_max_seen": 1000, "directory_window": "90s"}}`)
	e := map[string]string{"MYCEL_RELAY_ROUTER_SIGNIN_PER_PEER": "0.5", "MYCEL_RELAY_DIRECTORY_ALIASES_PER_SPACE": "2"}
	flags := Overrides{DataDir: dir, Limits: map[string]string{"router-mesh-peers": "12", "router-ban-for": "3m",
		"directory-max-locators": "100", "directory-lookups-per-peer": "7"}}
	cfg, err := LoadConfig(flags, env(e), noDaemonDir)
	if err != nil {
		t.Fatal(err)
	}
	wantR := DefaultRouterLimits()
	wantR.MeshPeers, wantR.MaxSeen, wantR.SigninPerPeer, wantR.BanFor = 12, 1000, 0.5, 3*time.Minute
	if got := cfg.Limits.router(cfg.RouterLimits); got != wantR {
		t.Fatalf("router limits %+v, want %+v", got, wantR)
	}
	wantD := DefaultDirectoryLimits()
	wantD.MaxLocators, wantD.AliasesPerSpace, wantD.LookupsPerPeer, wantD.Window = 100, 2, 7, 90*time.Second
	if got := cfg.Limits.directory(cfg.DirectoryLimits); got != wantD {
		t.Fatalf("directory limits %+v, want %+v", got, wantD)
	}
	if got := cfg.Limits.router(RouterLimits{MaxRejects: 3}); got.MaxRejects != 3 || got.MeshPeers != 12 {
		t.Fatalf("a program's router limits: %+v", got)
	}
	if got := cfg.Limits.directory(DirectoryLimits{MaxAliases: 9}); got.MaxAliases != 9 || got.MaxLocators != 100 {
		t.Fatalf("a program's directory limits: %+v", got)
	}
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r, err := New(cfg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.router.lim.MeshPeers != 12 || r.router.lim.SigninPerPeer != 0.5 || r.dir.lim.MaxLocators != 100 || r.dir.lim.Window != 90*time.Second {
		t.Fatalf("the relay holds router %+v, directory %+v", r.router.lim, r.dir.lim)
	}
}

// TestMirrorLimitSettings: the mirror's limits come from flags, the
// environment and config.json like the others, and the relay's mirror
// holds them: a relay started from LoadConfig with
// --mirror-handovers-per-peer 2 and MYCEL_RELAY_MIRROR_MAX_UNCONFIRMED_SPACES=1
// refuses a second unconfirmed space as full and a third handover of one
// peer as busy, over real hosts.
func TestMirrorLimitSettings(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{"listen": ["/ip4/127.0.0.1/tcp/0"], "limits": {"mirror_bytes_per_space": "2MiB", "mirror_pending_ttl": "10m"}}`)
	e := map[string]string{"MYCEL_RELAY_MIRROR_MAX_UNCONFIRMED_SPACES": "1", "MYCEL_RELAY_MIRROR_KEEP_EPOCHS": "3"}
	flags := Overrides{DataDir: dir, Limits: map[string]string{"mirror-handovers-per-peer": "2", "mirror-max-spaces": "5"}}
	cfg, err := LoadConfig(flags, env(e), noDaemonDir)
	if err != nil {
		t.Fatal(err)
	}
	want := MirrorLimits{BytesPerSpace: 2 << 20, MaxSpaces: 5, MaxUnconfirmedSpaces: 1, MaxPendingPerSpace: 4,
		KeepEpochs: 3, PendingTTL: 10 * time.Minute, HandoversPerPeer: 2, HandoverWindow: time.Hour}
	if got := cfg.Limits.mirror(cfg.MirrorLimits); got != want {
		t.Fatalf("mirror limits %+v, want %+v", got, want)
	}
	// A program's own MirrorLimits win over the settings.
	if got := cfg.Limits.mirror(MirrorLimits{MaxSpaces: 9}); got.MaxSpaces != 9 || got.HandoversPerPeer != 2 {
		t.Fatalf("a program's limits: %+v", got)
	}
	if _, err := LoadConfig(Overrides{DataDir: t.TempDir(), Limits: map[string]string{"mirror-max-unconfirmed-spaces": "10", "mirror-max-spaces": "5"}},
		env(nil), noDaemonDir); err == nil || !strings.Contains(err.Error(), "mirror-max-unconfirmed-spaces is above mirror-max-spaces") {
		t.Fatalf("unconfirmed spaces above spaces: %v", err)
	}

	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r, err := New(cfg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()
	c, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	hand := func() error { return HandMirrorToken(ctx, c, r.Host().ID(), randomToken(0)) }
	if err := hand(); err != nil {
		t.Fatalf("first handover: %v", err)
	}
	if err := hand(); err != nil || len(r.Mirror().Spaces()) != 1 || r.Mirror().Counts().Evicted != 1 {
		t.Fatalf("a second unconfirmed space with mirror-max-unconfirmed-spaces 1: %v; %d spaces, %d evicted",
			err, len(r.Mirror().Spaces()), r.Mirror().Counts().Evicted)
	}
	if err := hand(); !errors.Is(err, ErrMirrorBusy) {
		t.Fatalf("a third handover with mirror-handovers-per-peer 2: %v", err)
	}
}

// TestCheckEnv: every variable LoadConfig reads passes, the daemon's
// MYCEL_RELAYS and others' variables too; a mistyped MYCEL_RELAY_* one is
// refused, with the name it is nearest to.
func TestCheckEnv(t *testing.T) {
	ok := []string{"MYCEL_RELAYS=/ip4/1.2.3.4/tcp/1/p2p/x", "PATH=/bin", "MYCEL_RELAY_HOME=/tmp/r", "MYCEL_RELAY_LISTEN=",
		"MYCEL_RELAY_MIRROR_MAX_SPACES=3", "MYCEL_RELAY_MAILBOX_EXPIRY=1h"}
	for _, n := range LimitNames() {
		ok = append(ok, "MYCEL_RELAY_"+strings.ToUpper(strings.ReplaceAll(n, "-", "_"))+"=1")
	}
	if err := CheckEnv(ok); err != nil {
		t.Fatalf("known variables: %v", err)
	}
	for kv, want := range map[string]string{
		"MYCEL_RELAY_LISTN=/ip4/127.0.0.1/tcp/0": "did you mean MYCEL_RELAY_LISTEN?",
		"MYCEL_RELAY_MAX_CONN=5":                 "did you mean MYCEL_RELAY_MAX_CONNS?",
		"MYCEL_RELAY_SOMETHING_ELSE=1":           "unknown variable MYCEL_RELAY_SOMETHING_ELSE (mycel relay --help",
	} {
		if err := CheckEnv(append(ok, kv)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", kv, err, want)
		}
	}
}
