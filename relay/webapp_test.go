package relay

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ws "github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mycelsync/mycel/webui"
)

// TestWebAppOnWebSocketPort: on the relay's plain and secure WebSocket
// ports, over real sockets, GET / answers the web app with the security
// headers, an unknown path 404; and a libp2p peer still connects over
// WebSocket on each of the same ports and pings the relay.
func TestWebAppOnWebSocketPort(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	cfg := &Config{DataDir: dir, LogLevel: "info", Limits: DefaultLimits(), WSCert: certFile, WSKey: keyFile,
		Listen: []string{"/ip4/127.0.0.1/tcp/0/ws", "/ip4/127.0.0.1/tcp/0/tls/ws"}}
	r, err := New(cfg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	want, err := fs.ReadFile(webui.Dist(), "placeholder.html")
	if webui.Built() {
		want, err = fs.ReadFile(webui.Dist(), "index.html")
	}
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	t.Cleanup(client.CloseIdleConnections)

	seen := map[string]bool{}
	for _, a := range r.Host().Addrs() {
		scheme := "http"
		switch {
		case isSecureWS(a.String()):
			scheme = "https"
		case strings.HasSuffix(a.String(), "/ws"):
		default:
			continue
		}
		seen[scheme] = true
		ip, _ := a.ValueForProtocol(ma.P_IP4)
		port, _ := a.ValueForProtocol(ma.P_TCP)
		base := scheme + "://" + ip + ":" + port
		t.Run(scheme, func(t *testing.T) {
			resp, err := client.Get(base + "/")
			if err != nil {
				t.Fatalf("GET / on the WebSocket port %s: %v", a, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != string(want) {
				t.Fatalf("GET %s/: %s, %d bytes, want the app's %d", base, resp.Status, len(body), len(want))
			}
			for h, v := range map[string]string{
				"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY",
				"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
				"Content-Type": "text/html",
			} {
				if !strings.Contains(resp.Header.Get(h), v) {
					t.Errorf("%s: %q, want it to hold %q", h, resp.Header.Get(h), v)
				}
			}
			resp, err = client.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Security-Policy") == "" {
				t.Fatalf("GET /metrics on the WebSocket port: %s, CSP %q", resp.Status, resp.Header.Get("Content-Security-Policy"))
			}

			h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableMetrics(),
				libp2p.Transport(ws.New, ws.WithTLSClientConfig(&tls.Config{InsecureSkipVerify: true})))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := h.Connect(ctx, peer.AddrInfo{ID: r.Host().ID(), Addrs: []ma.Multiaddr{a}}); err != nil {
				t.Fatalf("libp2p WebSocket dial on the app's port %s: %v", a, err)
			}
			if res := <-ping.Ping(ctx, h, r.Host().ID()); res.Error != nil {
				t.Fatalf("ping over %s: %v", a, res.Error)
			}
		})
	}
	if !seen["http"] || !seen["https"] {
		t.Fatalf("the relay listens on no plain or no secure WebSocket: %v", r.Host().Addrs())
	}
}

// TestWebAppFiles: the handler serves the page and the app's files with
// their types and policies, and nothing else: no path outside the app's
// top directory, no file of another type, no method that writes.
func TestWebAppFiles(t *testing.T) {
	app := fstest.MapFS{
		"index.html":       {Data: []byte("<!doctype html>app")},
		"app.js":           {Data: []byte("js")},
		"core.wasm":        {Data: []byte("\x00asm")},
		"secret.txt":       {Data: []byte("no")},
		"hashes.txt":       {Data: []byte("abc  app.js\n")},
		"sub/app.js":       {Data: []byte("no")},
		"placeholder.html": {Data: []byte("placeholder")},
	}
	relayID := peer.ID("relay-id")
	srv := &http.Server{Handler: WebApp(app, relayID)}
	for _, c := range []struct {
		method, path string
		status       int
		body, ctype  string
		csp          string
	}{
		{"GET", "/", 200, "<!doctype html>app", "text/html", "'wasm-unsafe-eval'"},
		{"GET", "/app.js", 200, "js", "text/javascript", "default-src 'self'"},
		{"GET", "/core.wasm", 200, "\x00asm", "application/wasm", "default-src 'self'"},
		{"HEAD", "/app.js", 200, "", "text/javascript", "default-src 'self'"},
		{"GET", "/secret.txt", 404, "", "", "default-src 'none'"},
		{"GET", "/hashes.txt", 200, "abc  app.js\n", "text/plain", "default-src 'none'"},
		{"GET", "/relay.json", 200, `{"peer_id":"` + relayID.String() + `"}`, "application/json", "default-src 'none'"},
		{"GET", "/sub/app.js", 404, "", "", "default-src 'none'"},
		{"GET", "/..%2findex.html", 404, "", "", "default-src 'none'"},
		{"GET", "/missing.js", 404, "", "", "default-src 'none'"},
		{"POST", "/", 405, "", "", ""},
		{"PUT", "/app.js", 405, "", "", ""},
	} {
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest(c.method, "http://relay"+c.path, nil)
		srv.Handler.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.status)
			continue
		}
		if c.status == 200 && c.method == "GET" && rec.Body.String() != c.body {
			t.Errorf("%s %s: body %q, want %q", c.method, c.path, rec.Body.String(), c.body)
		}
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), c.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.path, rec.Header().Get("Content-Type"), c.ctype)
		}
		if !strings.Contains(rec.Header().Get("Content-Security-Policy"), c.csp) {
			t.Errorf("%s %s: CSP %q, want it to hold %q", c.method, c.path, rec.Header().Get("Content-Security-Policy"), c.csp)
		}
	}
	// Without index.html, the placeholder with the policy of a page
	// without scripts.
	delete(app, "index.html")
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest("GET", "http://relay/", nil)
	WebApp(app, "").ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "placeholder" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("placeholder: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Security-Policy"))
	}
}

// TestWebAppBusy: past webAppMaxInFlight requests at once, the next is
// answered 503 at once rather than queued.
func TestWebAppBusy(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{}, webAppMaxInFlight)
	app := blockingFS{fstest.MapFS{"app.js": {Data: []byte("js")}}, block, entered}
	h := WebApp(app, "")
	done := make(chan int, webAppMaxInFlight)
	for range webAppMaxInFlight {
		go func() {
			rec := httptest.NewRecorder()
			req, _ := http.NewRequest("GET", "http://relay/app.js", nil)
			h.ServeHTTP(rec, req)
			done <- rec.Code
		}()
	}
	for range webAppMaxInFlight {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the requests did not all start")
		}
	}
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest("GET", "http://relay/app.js", nil)
	h.ServeHTTP(rec, req)
	close(block)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("request past the bound: %d, want 503", rec.Code)
	}
	for range webAppMaxInFlight {
		if s := <-done; s != 200 {
			t.Fatalf("a request within the bound: %d", s)
		}
	}
}

// blockingFS holds every Open until block is closed, telling entered.
type blockingFS struct {
	fs      fstest.MapFS
	block   chan struct{}
	entered chan struct{}
}

func (b blockingFS) Open(name string) (fs.File, error) {
	b.entered <- struct{}{}
	<-b.block
	return b.fs.Open(name)
}

// TestWebAppGzip: the scripts and the wasm core go gzipped to a browser
// that accepts it (the core is 7.6 MB, 2.0 MB gzipped), the same bytes
// once unzipped; raw to one that does not, or refuses gzip with q=0.
func TestWebAppGzip(t *testing.T) {
	wasm := bytes.Repeat([]byte("\x00asm core "), 4096)
	app := fstest.MapFS{"core.wasm": {Data: wasm}, "app.css": {Data: []byte("body{}")}}
	h := WebApp(app, "")
	get := func(path, accept string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest("GET", "http://relay"+path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := get("/core.wasm", "gzip, deflate, br")
	if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Content-Type") != "application/wasm" || rec.Body.Len() >= len(wasm)/4 {
		t.Fatalf("core.wasm with gzip accepted: %d %v, %d bytes", rec.Code, rec.Header(), rec.Body.Len())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, wasm) {
		t.Fatalf("unzipped: %d bytes, %v", len(got), err)
	}
	for _, accept := range []string{"", "br", "gzip;q=0"} {
		rec := get("/core.wasm", accept)
		if rec.Header().Get("Content-Encoding") != "" || !bytes.Equal(rec.Body.Bytes(), wasm) {
			t.Fatalf("Accept-Encoding %q: %v, %d bytes", accept, rec.Header(), rec.Body.Len())
		}
	}
	if rec := get("/app.css", "gzip"); rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != "body{}" {
		t.Fatalf("app.css: %v %q", rec.Header(), rec.Body.String())
	}
	if rec := get("/missing.wasm", "gzip"); rec.Code != http.StatusNotFound {
		t.Fatalf("missing.wasm: %d", rec.Code)
	}
}
