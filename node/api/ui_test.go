package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

const uiIndex = "<!doctype html><title>mycel</title><script src=app.js></script>"

// uiEnv is a server with a web UI and a client that follows no redirect
// and keeps no cookie: each test says what it sends.
type uiEnv struct {
	srv   *httptest.Server
	hc    *http.Client
	space string
}

func newUIEnv(t *testing.T) *uiEnv {
	t.Helper()
	fake := apitest.New()
	ui := fstest.MapFS{
		"index.html": {Data: []byte(uiIndex)},
		"app.js":     {Data: []byte("console.log('mycel')")},
		"core.wasm":  {Data: []byte("\x00asm")},
		"hashes.txt": {Data: []byte("abc  app.js\n")},
	}
	srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: fake, Token: testToken, UI: ui}))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &uiEnv{srv: srv, hc: hc, space: fake.AddSpace("notes")}
}

// get sends method path (a full URL or a path) with the cookie and the
// headers given, and returns the response with its body read.
func (e *uiEnv) do(t *testing.T, method, path string, cookie *http.Cookie, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	if strings.HasPrefix(path, "/") {
		path = e.srv.URL + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *uiEnv) link(t *testing.T, token string, now time.Time) string {
	t.Helper()
	l, err := api.LoginLink(e.srv.URL, token, now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// login uses a fresh link and returns the session cookie.
func (e *uiEnv) login(t *testing.T) *http.Cookie {
	t.Helper()
	resp, body := e.do(t, "GET", e.link(t, testToken, time.Now()), nil, nil, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s %s", resp.Status, body)
	}
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("login set %d cookies", len(cs))
	}
	return cs[0]
}

// refused asserts a refused login: a page that says so, no cookie, and
// the API still closed to the browser.
func (e *uiEnv) refused(t *testing.T, link, want string) {
	t.Helper()
	resp, body := e.do(t, "GET", link, nil, nil, "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login with %s: %s, want 403", link, resp.Status)
	}
	if len(resp.Cookies()) != 0 {
		t.Fatalf("a refused login set a cookie: %v", resp.Cookies())
	}
	if !strings.Contains(body, want) || !strings.Contains(body, "mycel ui") {
		t.Fatalf("refusal page says %q, want %q and how to get a new link", body, want)
	}
	if strings.Contains(body, "app.js") {
		t.Fatal("a refused login served the app")
	}
}

func TestUILoginLinkWorksOnce(t *testing.T) {
	e := newUIEnv(t)
	link := e.link(t, testToken, time.Now())
	if !strings.HasPrefix(link, e.srv.URL+"/login?k=") || strings.Contains(link, testToken) {
		t.Fatalf("link %q: want %s/login?k=… without the token", link, e.srv.URL)
	}
	resp, _ := e.do(t, "GET", link, nil, nil, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %s to %q, want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("login set %d cookies, want 1", len(cs))
	}
	c := cs[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || len(c.Value) < 32 {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/ and a long random value", c)
	}
	if c.Value == testToken || strings.Contains(c.Value, testToken) {
		t.Fatal("the cookie carries the token")
	}
	// The cookie opens the page and the API.
	resp, body := e.do(t, "GET", "/", c, nil, "")
	if resp.StatusCode != http.StatusOK || body != uiIndex {
		t.Fatalf("GET / with the session: %s %q", resp.Status, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("the page's CSP is %q", csp)
	}
	resp, body = e.do(t, "GET", "/v1/spaces", c, nil, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, e.space) {
		t.Fatalf("GET /v1/spaces with the session: %s %s", resp.Status, body)
	}
	// Used once: refused the second time, whoever asks.
	e.refused(t, link, "used already")
}

func TestUILoginLinkExpires(t *testing.T) {
	e := newUIEnv(t)
	e.refused(t, e.link(t, testToken, time.Now().Add(-api.LoginLinkTTL-time.Second)), "expired")
	// A link minted to work for longer than a link may is refused too:
	// its expiry is under the MAC, but the server holds the bound.
	e.refused(t, e.link(t, testToken, time.Now().Add(time.Hour)), "longer than a link may")
}

func TestUILoginWrongLink(t *testing.T) {
	e := newUIEnv(t)
	good := e.link(t, testToken, time.Now())
	u, _ := url.Parse(good)
	k := u.Query().Get("k")
	tampered := k[:len(k)-1] + string("01"[(k[len(k)-1]-'0'+1)%2])
	other := e.link(t, strings.Repeat("f", 64), time.Now()) // another daemon's token
	for _, link := range []string{
		e.srv.URL + "/login",                                  // missing
		e.srv.URL + "/login?k=",                               // empty
		e.srv.URL + "/login?k=" + url.QueryEscape(tampered),   // MAC changed
		e.srv.URL + "/login?k=" + strings.Repeat("a", 100000), // huge
		other,
	} {
		e.refused(t, link, "not a login link of this daemon")
	}
	// The good link still works: the wrong ones spent nothing.
	e.login(t)
}

func TestUINoSessionNoData(t *testing.T) {
	e := newUIEnv(t)
	resp, body := e.do(t, "GET", "/", nil, nil, "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "mycel ui") || strings.Contains(body, "app.js") {
		t.Fatalf("GET / without a session: %s %q", resp.Status, body)
	}
	for _, c := range []*http.Cookie{nil, {Name: "mycel_session_" + portOf(t, e.srv.URL), Value: strings.Repeat("0", 64)}} {
		resp, body = e.do(t, "GET", "/v1/spaces", c, nil, "")
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, e.space) {
			t.Fatalf("GET /v1/spaces with cookie %v: %s %s", c, resp.Status, body)
		}
	}
	// Assets hold no data and load without a session.
	resp, _ = e.do(t, "GET", "/app.js", nil, nil, "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET /app.js: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}

// TestUIBrowserNodePage: /node is the app's page without a session, with
// a policy that lets it compile the wasm core and dial a relay's
// WebSocket, and no data of the daemon; core.wasm is WebAssembly and
// hashes.txt text, both without a session.
func TestUIBrowserNodePage(t *testing.T) {
	e := newUIEnv(t)
	resp, body := e.do(t, "GET", "/node?relay=/ip4/127.0.0.1/tcp/1/ws/p2p/x", nil, nil, "")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != http.StatusOK || body != uiIndex || strings.Contains(body, e.space) ||
		!strings.Contains(csp, "'wasm-unsafe-eval'") || !strings.Contains(csp, "connect-src 'self' ws: wss:") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("GET /node: %s, CSP %q, %q", resp.Status, csp, body)
	}
	for path, ct := range map[string]string{"/core.wasm": "application/wasm", "/hashes.txt": "text/plain"} {
		resp, _ := e.do(t, "GET", path, nil, nil, "")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Fatalf("GET %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
	// The control panel still needs a session.
	if resp, _ := e.do(t, "GET", "/", nil, nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET / without a session: %s", resp.Status)
	}
}

func portOf(t *testing.T, base string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// TestUISessionRefusedFromAnotherOrigin: the session cookie is the API's
// key only from the page's own origin. Another port on loopback passes
// the server's loopback Origin check and is the same site to a browser
// (SameSite=Strict sends it the cookie), so only the origin check stops a
// page served by another local program from using the session.
func TestUISessionRefusedFromAnotherOrigin(t *testing.T) {
	e := newUIEnv(t)
	c := e.login(t)
	own := e.srv.URL
	put := "/v1/spaces/" + e.space + "/keys/k"
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header map[string]string
		body   string
	}{
		{"other port GET", "GET", "/v1/spaces", map[string]string{"Origin": "http://127.0.0.1:1"}, ""},
		{"other port PUT", "PUT", put, map[string]string{"Origin": "http://127.0.0.1:1", "Content-Type": "application/json"}, `{"value":"eA=="}`},
		{"localhost for 127.0.0.1", "PUT", put, map[string]string{"Origin": "http://localhost:" + portOf(t, own), "Content-Type": "application/json"}, `{"value":"eA=="}`},
		{"cross-site fetch", "GET", "/v1/spaces", map[string]string{"Sec-Fetch-Site": "cross-site"}, ""},
		{"same-site fetch", "GET", "/v1/spaces", map[string]string{"Sec-Fetch-Site": "same-site"}, ""},
		{"PUT without Origin", "PUT", put, map[string]string{"Content-Type": "application/json"}, `{"value":"eA=="}`},
		{"stream from another origin", "GET", "/v1/requests/events", map[string]string{"Origin": "http://127.0.0.1:1"}, ""},
	} {
		resp, body := e.do(t, tc.method, tc.path, c, tc.header, tc.body)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(body, e.space) {
			t.Errorf("%s: %s %s, want 403", tc.name, resp.Status, body)
		}
	}
	// Nothing was written; from its own origin the same PUT works.
	resp, body := e.do(t, "GET", put, c, nil, "")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after the refused PUTs, GET k: %s %s", resp.Status, body)
	}
	resp, body = e.do(t, "PUT", put, c, map[string]string{"Origin": own, "Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, `{"value":"eA=="}`)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT from the page's origin: %s %s", resp.Status, body)
	}
	// The bearer token is still taken from anywhere on loopback.
	resp, _ = e.do(t, "GET", "/v1/spaces", nil, map[string]string{"Origin": "http://127.0.0.1:1", "Authorization": "Bearer " + testToken}, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer from another loopback origin: %s", resp.Status)
	}
}

func TestUILogout(t *testing.T) {
	e := newUIEnv(t)
	c := e.login(t)
	resp, _ := e.do(t, "POST", "/logout", c, map[string]string{"Origin": "http://127.0.0.1:1"}, "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout from another origin: %s", resp.Status)
	}
	resp, _ = e.do(t, "POST", "/logout", c, map[string]string{"Origin": e.srv.URL}, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %s", resp.Status)
	}
	resp, _ = e.do(t, "GET", "/v1/spaces", c, nil, "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the session after logout: %s", resp.Status)
	}
}

// TestUIAssetGzip: the daemon sends the browser node's scripts and wasm
// core gzipped to a browser that takes gzip (the core is 6.8 MB, 1.85 MB
// gzipped), the same bytes once unzipped; raw to one that does not.
func TestUIAssetGzip(t *testing.T) {
	wasm := bytes.Repeat([]byte("\x00asm core "), 4096)
	ui := fstest.MapFS{"index.html": {Data: []byte(uiIndex)}, "core.wasm": {Data: wasm}}
	srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: apitest.New(), Token: testToken, UI: ui}))
	t.Cleanup(srv.Close)
	get := func(accept string) (*http.Response, []byte) {
		req, err := http.NewRequest("GET", srv.URL+"/core.wasm", nil)
		if err != nil {
			t.Fatal(err)
		}
		// Set by hand, the transport hands the body over as sent.
		req.Header.Set("Accept-Encoding", accept)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, b := get("gzip, deflate, br")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != "application/wasm" || len(b) >= len(wasm)/4 {
		t.Fatalf("core.wasm with gzip accepted: %s %v, %d bytes", resp.Status, resp.Header, len(b))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, wasm) {
		t.Fatalf("unzipped: %d bytes, %v", len(got), err)
	}
	for _, accept := range []string{"identity", "gzip;q=0"} {
		if resp, b := get(accept); resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, wasm) {
			t.Fatalf("Accept-Encoding %q: %v, %d bytes", accept, resp.Header, len(b))
		}
	}
}
