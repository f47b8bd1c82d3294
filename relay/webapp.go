package relay

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ws "github.com/libp2p/go-libp2p/p2p/transport/websocket"

	"github.com/mycelsync/mycel/internal/gzasset"
)

// The web app on the WebSocket port.
//
// libp2p's WebSocket transport owns the relay's WebSocket listeners
// (/ws, and /tls/ws with the certificate); given a handler
// (ws.WithHTTPHandler) it passes every request that is not a WebSocket
// upgrade to it, over HTTP/1.1 or HTTP/2 (h2c on a plain listener, ALPN on
// TLS). So one port carries both: a browser opens http(s)://relay:4112/
// for the app, and the app, or any libp2p peer, dials
// /ip4/…/tcp/4112/(tls/)ws on it.
//
// The app is public code holding no data: the relay serves the same
// files to anyone, with no session, cookie or login, and logs no request.
// Whoever serves a page's code could change it (README, "Privacy").
//
// The page it serves is the browser node (webui/doc.go, "Which node the
// page is"): it learns that a relay served it from /relay.json, the
// relay's peer ID (`{"peer_id": "12D3…"}`), and dials the relay at its
// own origin's WebSocket (the same host and port, /ws or /tls/ws), as
// /…/p2p/<peer_id>. /hashes.txt is the SHA-256 of each file of the app
// (webui/build.mjs writes it), for a person to compare with a build of
// their own.

// Bounds of the web app's server.
const (
	// webAppMaxInFlight bounds the requests served at once; more are
	// answered 503 at once.
	webAppMaxInFlight = 64
	// webAppMaxHeaderBytes bounds a request's header.
	webAppMaxHeaderBytes = 8 << 10
	// webAppIdleTimeout bounds an idle keep-alive connection.
	webAppIdleTimeout = 30 * time.Second
	// webAppReadHeaderTimeout bounds how long a request's header may take.
	webAppReadHeaderTimeout = 10 * time.Second
)

// webAppCSP is the policy of the app's page and files: only the relay's
// own scripts run, WebAssembly (the core) may be compiled, connections go
// only to the relay's own origin (its WebSocket on this port included),
// and nothing frames the page. The browser node dials the relay only at
// this origin's WebSocket ('self' covers ws: and wss: to the same host and
// port); it would have to add the relay's WebTransport address to
// connect-src to dial it.
const webAppCSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// webAppStaticCSP is the policy of the placeholder page, which has no
// script: its inline style only.
const webAppStaticCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// webAppTypes are the files served besides the page, by extension.
var webAppTypes = map[string]string{
	".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
	".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png",
	".ico": "image/x-icon", ".map": "application/json",
}

// WebApp returns the handler of the web app in app (webui.Dist): GET / is
// index.html, or placeholder.html when the app is not bundled; GET /<file>
// a script, style, image or WebAssembly module of app's top directory;
// GET /hashes.txt the build's hashes (the one text file served); GET
// /relay.json, when id is not empty, the relay's peer ID; another path
// 404, another method 405. Every answer carries the security headers (CSP,
// X-Frame-Options, Referrer-Policy, nosniff). At most webAppMaxInFlight
// requests are served at once.
func WebApp(app fs.FS, id peer.ID) http.Handler {
	mux := http.NewServeMux()
	if id != "" {
		info, _ := json.Marshal(map[string]string{"peer_id": id.String()}) // a map of strings marshals
		mux.HandleFunc("GET /relay.json", func(w http.ResponseWriter, _ *http.Request) {
			securityHeaders(w.Header(), webAppStaticCSP)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.Write(info)
		})
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		name, csp := "index.html", webAppCSP
		if _, err := fs.Stat(app, name); err != nil {
			name, csp = "placeholder.html", webAppStaticCSP
		}
		serveFile(w, app, name, "text/html; charset=utf-8", csp)
	})
	mux.HandleFunc("GET /hashes.txt", func(w http.ResponseWriter, _ *http.Request) {
		serveFile(w, app, "hashes.txt", "text/plain; charset=utf-8", webAppStaticCSP)
	})
	gz := gzasset.New(app)
	mux.HandleFunc("GET /{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		ext := path.Ext(name)
		ct, ok := webAppTypes[ext]
		if !ok || !fs.ValidPath(name) {
			notFound(w)
			return
		}
		if gz.Serve(w, r, name, ct, func(h http.Header) { securityHeaders(h, webAppCSP) }) {
			return
		}
		serveFile(w, app, name, ct, webAppCSP)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			securityHeaders(w.Header(), webAppStaticCSP)
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		notFound(w)
	})
	sem := make(chan struct{}, webAppMaxInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		default:
			securityHeaders(w.Header(), webAppStaticCSP)
			http.Error(w, "busy, try again", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func serveFile(w http.ResponseWriter, app fs.FS, name, contentType, csp string) {
	b, err := fs.ReadFile(app, name)
	if err != nil {
		notFound(w)
		return
	}
	securityHeaders(w.Header(), csp)
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func notFound(w http.ResponseWriter) {
	securityHeaders(w.Header(), webAppStaticCSP)
	http.Error(w, "not found", http.StatusNotFound)
}

// securityHeaders are those of the daemon's web UI (node/api's
// pageHeaders), with csp as the policy.
func securityHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// webAppOptions are the WebSocket transport's options that serve app on
// the WebSocket port of the relay id, with the server's bounds.
func webAppOptions(app fs.FS, id peer.ID) []any {
	return []any{
		ws.WithHTTPHandler(WebApp(app, id)),
		ws.WithHTTPServerConfig(func(s *http.Server) {
			s.ReadHeaderTimeout = webAppReadHeaderTimeout
			s.IdleTimeout = webAppIdleTimeout
			s.MaxHeaderBytes = webAppMaxHeaderBytes
		}),
	}
}
