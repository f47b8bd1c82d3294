package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mycelsync/mycel/internal/gzasset"
)

// Defaults of ServerConfig.
const (
	// DefaultMaxBody bounds a request's JSON body: 1 MiB, which holds a
	// put of the largest value a space takes (512 KiB, 683 KiB in base64).
	DefaultMaxBody = 1 << 20
	// DefaultMaxStreams bounds the streams (watch, requests, messages)
	// open at once: each holds a Backend subscription that every change
	// fans out to, so thousands would slow every write.
	DefaultMaxStreams = 64
	// DefaultKeepAlive is the interval of the comments that keep a watch
	// stream alive through idle periods.
	DefaultKeepAlive = 15 * time.Second
	// DefaultListLimit and MaxListLimit bound ?limit= of a listing; a
	// larger limit is lowered to MaxListLimit.
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ServerConfig configures NewServer.
type ServerConfig struct {
	// Backend serves the requests. Required.
	Backend Backend
	// Token is the bearer token every request but GET /v1/openapi.json
	// must carry (Authorization: Bearer <token>). An empty Token refuses
	// every request.
	Token string
	// Metrics, when set, are served at GET /metrics (token required).
	Metrics prometheus.Gatherer
	// Logger logs each request at Debug (method, path, status, duration;
	// never the token). Default: discard.
	Logger *slog.Logger
	// MaxBody bounds request bodies. Default DefaultMaxBody.
	MaxBody int64
	// KeepAlive is the interval of keep-alive comments on watch streams.
	// Default DefaultKeepAlive.
	KeepAlive time.Duration
	// Version is the daemon's version, reported by GET /v1/status when
	// the Backend leaves Status.Version empty.
	Version string
	// MaxStreams bounds the streams open at once; one more is refused with
	// 429 too_many before the Backend sees it. Default DefaultMaxStreams.
	MaxStreams int
	// Closing, when closed, ends every stream (watch, requests, messages)
	// with its last event, an error of code unavailable: the daemon is
	// stopping. Close it before http.Server.Shutdown, which waits for the
	// streams' handlers, and before cancelling the requests' contexts, which
	// would end the streams without a word.
	Closing <-chan struct{}
	// UI, when set, is the web app (webui.Dist): served at / to a browser
	// signed in with a login link (see ui.go), its assets to anyone. Nil:
	// no web UI.
	UI fs.FS
}

// NewServer returns the API's handler. Every request is refused with 403
// forbidden unless its Host is a loopback name or address (localhost,
// 127.0.0.0/8, [::1]; any port) and its Origin, if any, an http(s) origin
// on loopback: a web page elsewhere cannot reach the API, even through DNS
// rebinding. Then every route but the OpenAPI document needs the token
// (401 unauthorized) or, from a browser, the session cookie of the web UI
// with a request from the UI's own origin (403 forbidden from another:
// ui.go). Bodies are JSON, at most MaxBody bytes (413
// too_large), with no unknown fields or trailing data (400 bad_json).
// Responses are JSON, errors an Error with a stable code, except the
// watch stream (text/event-stream) and the metrics (Prometheus text).
//
// A path must be canonical (no empty, "." or ".." segments: encode "/"
// in a key as %2F, and a key "." or ".." as %2E): the server refuses
// rather than redirects, so that a write never lands on another key.
func NewServer(cfg ServerConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	s := &server{cfg: cfg, b: cfg.Backend, log: cfg.Logger, mux: http.NewServeMux(),
		streams: make(chan struct{}, cfg.MaxStreams), ss: newSessions(nil)}
	if cfg.Token != "" {
		s.token = sha256.Sum256([]byte(cfg.Token))
		s.hasToken = true
	}
	if cfg.UI != nil {
		s.gz = gzasset.New(cfg.UI)
	}
	for _, rt := range routes {
		s.mux.Handle(rt.pattern(), s.wrap(rt))
	}
	s.uiRoutes()
	return s
}

type server struct {
	cfg      ServerConfig
	b        Backend
	log      *slog.Logger
	mux      *http.ServeMux
	token    [sha256.Size]byte // hashed, so that the comparison is constant-time whatever the length
	hasToken bool
	streams  chan struct{}  // a slot per open stream
	ss       *sessions      // the web UI's logins
	gz       *gzasset.Cache // the web UI's scripts and wasm core gzipped (nil without a UI)
}

// ServeHTTP checks Host and Origin, then routes.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	}()
	if !loopbackHost(r.Host) {
		sw.routed = true // the answer is ours, not the mux's
		writeError(sw, http.StatusForbidden, "forbidden", fmt.Sprintf("host %q is not loopback", r.Host))
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !loopbackOrigin(o) {
		sw.routed = true
		writeError(sw, http.StatusForbidden, "forbidden", fmt.Sprintf("origin %q is not allowed", o))
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// wrap turns a route's handler into the mux's: token check, then the
// handler, then its error as JSON.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sw, ok := w.(*statusWriter); ok {
			sw.routed = true
		}
		if !rt.public && !s.authorized(r) {
			switch {
			case s.session(r) == "":
				w.Header().Set("WWW-Authenticate", `Bearer realm="mycel"`)
				writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token (see api.token in the data directory)")
				return
			case !sameOrigin(r):
				writeError(w, http.StatusForbidden, "forbidden", "a request with the web UI's session cookie from another origin")
				return
			}
		}
		if rt.stream {
			select {
			case s.streams <- struct{}{}:
				defer func() { <-s.streams }()
			default:
				writeError(w, http.StatusTooManyRequests, "too_many",
					fmt.Sprintf("%d streams (watch, requests, messages) are open, the limit: close one first", cap(s.streams)))
				return
			}
		}
		if err := rt.handle(s, w, r); err != nil {
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				return // the response has begun: nothing to add
			}
			status, e := errorBody(err)
			if status >= 500 {
				s.log.Warn("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, status, e.Code, e.Message)
		}
	})
}

func (s *server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !s.hasToken {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

// loopbackHost reports whether a Host header names this machine by a
// loopback name or address, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackOrigin reports whether an Origin header is an http(s) origin on
// loopback: the daemon's own web UI, or a local tool.
func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	return loopbackHost(u.Host)
}

// statusWriter records the status for the log, and turns the mux's own
// answers to requests no route takes (404, 405, redirects to a cleaned
// path) into JSON errors.
type statusWriter struct {
	http.ResponseWriter
	status  int
	routed  bool // a route's handler runs: its answers pass through
	swallow bool // the mux's plain-text body is replaced
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if !w.routed {
		w.routed = true // writeError below writes through
		h := w.Header()
		for _, k := range []string{"Content-Type", "Content-Length", "Location", "X-Content-Type-Options"} {
			h.Del(k)
		}
		switch {
		case code == http.StatusMethodNotAllowed:
			writeError(w, code, "method_not_allowed", "method not allowed (see Allow)")
		case code >= 300 && code < 400:
			writeError(w, http.StatusBadRequest, "bad_request", "path is not canonical: encode / in a key as %2F and a key . or .. as %2E")
		default:
			writeError(w, http.StatusNotFound, "not_found", "no such route (see /v1/openapi.json)")
		}
		w.swallow = true
		return
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errorBody maps an error to its status and Error: the sentinels of this
// package by errors.Is, anything else as internal.
func errorBody(err error) (int, Error) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, Error{Code: he.code, Message: he.msg}
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.status, Error{Code: c.code, Message: err.Error()}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, Error{Code: "unavailable", Message: err.Error()}
	}
	return http.StatusInternalServerError, Error{Code: "internal", Message: err.Error()}
}

// codes maps the sentinels to statuses and codes, in one place; the
// client maps codes back to sentinels with it.
var codes = []struct {
	err    error
	status int
	code   string
}{
	{ErrNotFound, http.StatusNotFound, "not_found"},
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{ErrReadOnly, http.StatusConflict, "read_only"},
	{ErrConflict, http.StatusConflict, "conflict"},
	{ErrNoKeys, http.StatusConflict, "no_keys"},
	{ErrBehind, http.StatusConflict, "behind"},
	{ErrSafetyCode, http.StatusConflict, "safety_code"},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{ErrTooMany, http.StatusTooManyRequests, "too_many"},
	{ErrClosed, http.StatusServiceUnavailable, "unavailable"},
}

// httpError is an error the server makes itself, with its status and code.
type httpError struct {
	status    int
	code, msg string
}

func (e *httpError) Error() string { return e.code + ": " + e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Error{Code: code, Message: msg})
}

// decode reads r's body as one JSON value into v: at most MaxBody bytes,
// no unknown fields, nothing after it.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &httpError{http.StatusUnsupportedMediaType, "bad_json", fmt.Sprintf("Content-Type %q: send application/json", ct)}
		}
	}
	if r.ContentLength > s.cfg.MaxBody {
		return tooLarge(s.cfg.MaxBody)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// One value and nothing after it but spaces.
		if err = dec.Decode(&json.RawMessage{}); err == io.EOF {
			return nil
		}
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return tooLarge(s.cfg.MaxBody)
		}
		return &httpError{http.StatusBadRequest, "bad_json", "body holds more than one JSON value"}
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return tooLarge(s.cfg.MaxBody)
	}
	if errors.Is(err, io.EOF) {
		return &httpError{http.StatusBadRequest, "bad_json", "empty body: send a JSON object"}
	}
	return &httpError{http.StatusBadRequest, "bad_json", "body: " + err.Error()}
}

func tooLarge(limit int64) error {
	return &httpError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", limit)}
}

// Path parameters.

// idParam returns the path parameter name, a 32-byte ID in hex (space ID
// or feed key), lowercased.
func idParam(r *http.Request, name string) (string, error) {
	v := strings.ToLower(r.PathValue(name))
	if b, err := hex.DecodeString(v); err != nil || len(b) != 32 {
		return "", badRequest("%s %q: want 64 hex digits", name, r.PathValue(name))
	}
	return v, nil
}

func spaceParam(r *http.Request) (string, error) { return idParam(r, "space") }

// Handlers, in the order of routes.

func (s *server) status(w http.ResponseWriter, r *http.Request) error {
	st := s.b.Status()
	if st.Version == "" {
		st.Version = s.cfg.Version
	}
	if st.Addrs == nil {
		st.Addrs = []string{}
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *server) spaces(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, nonNil(s.b.Spaces()))
	return nil
}

func (s *server) createSpace(w http.ResponseWriter, r *http.Request) error {
	var req CreateSpaceRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return badRequest("a space needs a name")
	}
	info, err := s.b.CreateSpace(r.Context(), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, info)
	return nil
}

func (s *server) space(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	info, err := s.b.Space(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (s *server) list(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badRequest("limit %q: want a positive integer", v)
		}
		limit = min(n, MaxListLimit)
	}
	page, err := s.b.List(id, q.Get("prefix"), q.Get("after"), limit)
	if err != nil {
		return err
	}
	page.Entries = nonNil(page.Entries)
	for i := range page.Entries {
		page.Entries[i].Versions = nonNil(page.Entries[i].Versions)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *server) get(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	e, err := s.b.Get(id, key)
	if err != nil {
		return err
	}
	if len(e.Versions) == 0 {
		return fmt.Errorf("%w: key %q was never written", ErrNotFound, key)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *server) put(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	var req PutRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Value == nil {
		// JSON's "" decodes to an empty, non-nil value: nil is a body
		// without "value", or with null.
		return badRequest(`a put needs a value: {"value": "<base64>"} ("" for an empty one)`)
	}
	if err := s.b.Put(r.Context(), id, r.PathValue("key"), req.Value); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) delete(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	if err := s.b.Delete(r.Context(), id, r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) members(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	ms, err := s.b.Members(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(ms))
	return nil
}

func (s *server) leaveSpace(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	left, err := s.b.LeaveSpace(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, left)
	return nil
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	feed, err := idParam(r, "feed")
	if err != nil {
		return err
	}
	if err := s.b.RemoveMember(r.Context(), id, feed); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) peers(w http.ResponseWriter, r *http.Request) error {
	ps := nonNil(s.b.Peers())
	for i := range ps {
		ps[i].Conns = nonNil(ps[i].Conns)
	}
	writeJSON(w, http.StatusOK, ps)
	return nil
}

func (s *server) progress(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, nonNil(s.b.Progress()))
	return nil
}

func (s *server) openapi(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDocument)
	return nil
}

func (s *server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Metrics == nil {
		return fmt.Errorf("%w: this daemon serves no metrics", ErrNotFound)
	}
	promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// nonNil makes a nil slice an empty one, so that JSON says [] and not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
