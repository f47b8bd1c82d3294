package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ws "github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files in dir.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// With a certificate the relay listens on a secure WebSocket, and a peer
// that trusts the certificate connects through it.
func TestSecureWebSocket(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	cfg := &Config{DataDir: dir, LogLevel: "info", Limits: DefaultLimits(), WSCert: certFile, WSKey: keyFile,
		Listen: []string{"/ip4/127.0.0.1/tcp/0/tls/ws"}}
	r, err := New(cfg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	var wss ma.Multiaddr
	for _, a := range r.Host().Addrs() {
		if strings.Contains(a.String(), "/tls/") && strings.Contains(a.String(), "/ws") {
			wss = a
		}
	}
	if wss == nil {
		t.Fatalf("no secure WebSocket address in %v", r.Host().Addrs())
	}
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableMetrics(),
		libp2p.Transport(ws.New, ws.WithTLSClientConfig(&tls.Config{InsecureSkipVerify: true})))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: []ma.Multiaddr{wss}}); err != nil {
		t.Fatalf("connect over wss: %v", err)
	}
	res := <-ping.Ping(ctx, h, r.Host().ID())
	if res.Error != nil {
		t.Fatalf("ping over wss: %v", res.Error)
	}
	if s := h.Network().ConnsToPeer(r.Host().ID())[0].RemoteMultiaddr().String(); !isSecureWS(s) {
		t.Fatalf("connected over %s, not the secure WebSocket", s)
	}

	// A key that is not the certificate's is refused with a clear error.
	_, otherKey := writeCert(t, t.TempDir())
	bad := *cfg
	bad.WSKey = otherKey
	if _, err := New(&bad, key, nil); err == nil || !strings.Contains(err.Error(), "secure WebSocket certificate") {
		t.Fatalf("mismatched key: %v", err)
	}
}
