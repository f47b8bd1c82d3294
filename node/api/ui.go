package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The web UI and its login.
//
// The app (ServerConfig.UI) is served at /: index.html to a browser with a
// session, a page that says how to sign in to one without; its scripts and
// styles (/app.js, /app.css...) to anyone, since they hold no data. A
// browser cannot put a bearer token on an EventSource, and the page must
// never show the token, so a browser signs in with a login link:
//
//	http://127.0.0.1:7070/login?k=<expiry>.<nonce>.<mac>
//
// expiry is a Unix time in seconds, nonce 16 random bytes in hex, and mac
// HMAC-SHA256, keyed with the API token, of "mycel ui login\x00" +
// expiry + "." + nonce, in hex. Whoever holds the token mints links
// (LoginLink: `mycel ui`, the daemon's start-up line), so the daemon keeps
// no state for a link until it is used. The server takes a link once,
// before its expiry and at most LoginLinkTTL ahead of it, and answers it
// with a session cookie (HttpOnly, SameSite=Strict, Path=/) and a redirect
// to /. The API takes the cookie as it takes the bearer token, but only
// from the page's own origin: a request with the cookie whose Origin is
// another (even another port on loopback, which is the same site to a
// browser) or whose Sec-Fetch-Site says cross-site is refused (403), and a
// request that changes anything must carry Origin.
//
// GET /node is the same page as a browser node (webui/doc.go, "Which node
// the page is"): the tab is a device of its own, which dials the relay
// that ?relay= names (a multiaddr ending in /p2p/<relay ID>) and keeps its
// data in the browser. It needs no session and calls no API: it holds no
// data of this daemon. It is for a person who does not trust a relay's
// operator to serve the page's code (README, "Who serves the page's
// code"). Its policy lets the page compile the wasm core and open
// WebSockets to any host (the relay it was told). /core.wasm, and
// /hashes.txt (the build's SHA-256 of each file), are served with the
// scripts; the scripts and the core gzipped to a browser that takes gzip
// (internal/gzasset, as the relay serves them).

// Bounds of the login and its sessions.
const (
	// LoginLinkTTL is how long a login link works.
	LoginLinkTTL = 10 * time.Minute
	// SessionTTL is how long a session lasts after its login.
	SessionTTL = 24 * time.Hour
	// MaxSessions bounds the sessions held; a login past it ends the
	// oldest.
	MaxSessions = 64
	// maxUsedLinks bounds the nonces of used links remembered until their
	// expiry; a login past it is refused until some expire.
	maxUsedLinks = 4096
	// maxLoginParam bounds ?k= (a link's is 10+1+32+1+64 bytes).
	maxLoginParam = 256
)

const loginMACLabel = "mycel ui login\x00"

// LoginLink returns a one-time login link to the web UI of the API at
// baseURL (http://host:port) whose token is token, working until
// now+LoginLinkTTL.
func LoginLink(baseURL, token string, now time.Time) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("api: base URL %q: want http://host:port", baseURL)
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	exp := strconv.FormatInt(now.Add(LoginLinkTTL).Unix(), 10)
	n := hex.EncodeToString(nonce[:])
	q := url.Values{"k": {exp + "." + n + "." + loginMAC(token, exp, n)}}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/login", RawQuery: q.Encode()}).String(), nil
}

// LoginLink returns a one-time login link to the web UI of the daemon the
// client calls.
func (c *Client) LoginLink() (string, error) {
	return LoginLink(c.base.String(), c.token, time.Now())
}

func loginMAC(token, exp, nonce string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(loginMACLabel + exp + "." + nonce))
	return hex.EncodeToString(m.Sum(nil))
}

// sessions holds the login state: the sessions (by the hash of their
// cookie) and the nonces of the links used, until they expire.
type sessions struct {
	mu       sync.Mutex
	sessions map[[sha256.Size]byte]time.Time // expiry
	used     map[string]time.Time            // nonce → the link's expiry
	now      func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	if now == nil {
		now = time.Now
	}
	return &sessions{sessions: map[[sha256.Size]byte]time.Time{}, used: map[string]time.Time{}, now: now}
}

// login checks a link's k and, if it is good and unused, marks it used and
// returns a new session's cookie value. The error says, for the person,
// what was wrong.
func (ss *sessions) login(token, k string) (string, error) {
	if token == "" {
		return "", fmt.Errorf("this daemon has no API token, so nobody can sign in")
	}
	if len(k) > maxLoginParam {
		return "", fmt.Errorf("this is not a login link of this daemon")
	}
	parts := strings.Split(k, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("this is not a login link of this daemon")
	}
	exp, nonce, mac := parts[0], parts[1], parts[2]
	if !hmac.Equal([]byte(mac), []byte(loginMAC(token, exp, nonce))) {
		return "", fmt.Errorf("this is not a login link of this daemon (or its API token changed since)")
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "", fmt.Errorf("this is not a login link of this daemon")
	}
	expiry := time.Unix(e, 0)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	switch {
	case !now.Before(expiry):
		return "", fmt.Errorf("this login link expired at %s: a link works for %s", expiry.Format(time.TimeOnly), LoginLinkTTL)
	case expiry.Sub(now) > LoginLinkTTL+time.Minute:
		return "", fmt.Errorf("this login link claims to work until %s, longer than a link may", expiry.Format(time.DateTime))
	}
	for n, x := range ss.used {
		if !now.Before(x) {
			delete(ss.used, n)
		}
	}
	if _, ok := ss.used[nonce]; ok {
		return "", fmt.Errorf("this login link was used already: a link works once")
	}
	if len(ss.used) >= maxUsedLinks {
		return "", fmt.Errorf("too many logins in the last %s: try again later", LoginLinkTTL)
	}
	ss.used[nonce] = expiry
	var id [32]byte
	rand.Read(id[:])
	cookie := hex.EncodeToString(id[:])
	for h, x := range ss.sessions {
		if !now.Before(x) {
			delete(ss.sessions, h)
		}
	}
	for len(ss.sessions) >= MaxSessions {
		var oldest [sha256.Size]byte
		first := true
		for h, x := range ss.sessions {
			if first || x.Before(ss.sessions[oldest]) {
				oldest, first = h, false
			}
		}
		delete(ss.sessions, oldest)
	}
	ss.sessions[sha256.Sum256([]byte(cookie))] = now.Add(SessionTTL)
	return cookie, nil
}

// valid reports whether cookie is a live session's.
func (ss *sessions) valid(cookie string) bool {
	if len(cookie) != 64 {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	x, ok := ss.sessions[sha256.Sum256([]byte(cookie))]
	return ok && ss.now().Before(x)
}

func (ss *sessions) logout(cookie string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.sessions, sha256.Sum256([]byte(cookie)))
}

// cookieName is the session cookie's name for the API at host (host:port):
// cookies do not tell ports apart, so two daemons on one machine would
// otherwise overwrite each other's.
func cookieName(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil && port != "" {
		return "mycel_session_" + port
	}
	return "mycel_session"
}

// session returns the request's session cookie if it names a live
// session, else "".
func (s *server) session(r *http.Request) string {
	c, err := r.Cookie(cookieName(r.Host))
	if err != nil || !s.ss.valid(c.Value) {
		return ""
	}
	return c.Value
}

// sameOrigin reports whether a request that carries the session cookie
// comes from the page's own origin. Loopback's other ports are the same
// site to a browser, so SameSite=Strict alone would let a page served by
// another local program call the API with the cookie.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		// A browser sends Origin on every request that can change
		// something; a GET without it is a same-origin one (or no
		// browser's).
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host) && (u.Path == "" || u.Path == "/")
}

// uiRoutes registers the web UI's paths on the mux.
func (s *server) uiRoutes() {
	handle := func(pattern string, h http.HandlerFunc) {
		s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sw, ok := w.(*statusWriter); ok {
				sw.routed = true
			}
			h(w, r)
		}))
	}
	handle("GET /{$}", s.index)
	handle("GET /node", s.nodePage)
	handle("GET /hashes.txt", s.hashes)
	handle("GET /login", s.login)
	handle("POST /logout", s.logout)
	handle("GET /{file}", s.asset)
}

// pageHeaders are the headers of every page and asset of the UI: nothing
// but the daemon's own scripts runs, nothing frames it, and no URL leaks
// in a Referer.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// index serves the app to a browser with a session, and to one without a
// page that says how to get one.
func (s *server) index(w http.ResponseWriter, r *http.Request) {
	if s.cfg.UI == nil {
		writeError(w, http.StatusNotFound, "not_found", "this daemon serves no web UI")
		return
	}
	if s.session(r) == "" {
		messagePage(w, http.StatusUnauthorized, "Not signed in",
			"Open the web UI with a login link: run <code>mycel ui</code> on this machine and open the link it prints. A link works once, for "+LoginLinkTTL.String()+".")
		return
	}
	name := "index.html"
	if _, err := fs.Stat(s.cfg.UI, name); err != nil {
		name = "placeholder.html"
	}
	b, err := fs.ReadFile(s.cfg.UI, name)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "the web UI holds no "+name)
		return
	}
	pageHeaders(w.Header())
	if name == "placeholder.html" {
		w.Header().Set("Content-Security-Policy", staticPageCSP)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// nodePageCSP is the policy of the browser node's page: the daemon's own
// scripts, the wasm core compiled, WebSockets to the relay it names.
const nodePageCSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws: wss:; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// nodePage serves the app's page to anyone, as the browser node (above).
func (s *server) nodePage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.UI == nil {
		writeError(w, http.StatusNotFound, "not_found", "this daemon serves no web UI")
		return
	}
	b, err := fs.ReadFile(s.cfg.UI, "index.html")
	if err != nil {
		messagePage(w, http.StatusNotFound, "No web app", "This mycel was built without its web app: build it with <code>make build</code>.")
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Security-Policy", nodePageCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// hashes serves the build's hashes.txt.
func (s *server) hashes(w http.ResponseWriter, r *http.Request) {
	if s.cfg.UI == nil {
		writeError(w, http.StatusNotFound, "not_found", "this daemon serves no web UI")
		return
	}
	b, err := fs.ReadFile(s.cfg.UI, "hashes.txt")
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "this daemon's web app has no hashes.txt")
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Security-Policy", staticPageCSP)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// staticPageCSP is the policy of the pages without scripts (the messages,
// the placeholder): their inline style only.
const staticPageCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// login exchanges a login link for a session cookie.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	if s.cfg.UI == nil {
		writeError(w, http.StatusNotFound, "not_found", "this daemon serves no web UI")
		return
	}
	cookie, err := s.ss.login(s.cfg.Token, r.URL.Query().Get("k"))
	if err != nil {
		s.log.Info("api: web UI login refused", "err", err)
		messagePage(w, http.StatusForbidden, "This login link does not work",
			html.EscapeString(err.Error())+". Run <code>mycel ui</code> on this machine for a new one.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r.Host), Value: cookie, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(SessionTTL / time.Second),
	})
	pageHeaders(w.Header())
	// The link leaves the address bar, and history's entry is spent.
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session; the page's own origin only.
func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "forbidden", "a request from another origin")
		return
	}
	if c := s.session(r); c != "" {
		s.ss.logout(c)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(r.Host), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// asset serves a script, style or image of the app: public, as it holds no
// data.
func (s *server) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".map": "application/json",
		".wasm": "application/wasm"}
	ct, ok := types[path.Ext(name)]
	if s.cfg.UI == nil || !ok || !fs.ValidPath(name) {
		writeError(w, http.StatusNotFound, "not_found", "no such route (see /v1/openapi.json)")
		return
	}
	if s.gz.Serve(w, r, name, ct, pageHeaders) {
		return
	}
	b, err := fs.ReadFile(s.cfg.UI, name)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "the web UI holds no "+name)
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// messagePage answers with a small HTML page: a title and a message
// (HTML, already escaped), and no data.
func messagePage(w http.ResponseWriter, status int, title, msg string) {
	pageHeaders(w.Header())
	w.Header().Set("Content-Security-Policy", staticPageCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html>
<html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>mycel — %s</title>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em">
<h1 id="message-title">%s</h1>
<p id="message">%s</p>
</body></html>
`, html.EscapeString(title), html.EscapeString(title), msg)
}
