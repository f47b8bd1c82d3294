package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

type env struct {
	fake   *apitest.Fake
	srv    *httptest.Server
	client *api.Client
	space  string // a space of the fake
}

func newEnv(t *testing.T, opts ...func(*api.ServerConfig)) *env {
	t.Helper()
	fake := apitest.New()
	cfg := api.ServerConfig{Backend: fake, Token: testToken, Version: "v-test"}
	for _, o := range opts {
		o(&cfg)
	}
	srv := httptest.NewServer(api.NewServer(cfg))
	t.Cleanup(srv.Close)
	c, err := api.NewClient(srv.URL, testToken, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, srv: srv, client: c, space: fake.AddSpace("notes")}
}

// raw sends a request with the test token unless header says otherwise,
// and returns the status and the decoded Error (if the body is one).
func (e *env) raw(t *testing.T, method, path, body string, header map[string]string) (int, api.Error, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	for k, v := range header {
		switch {
		case k == "Host":
			req.Host = v
		case v == "":
			req.Header.Del(k)
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var apiErr api.Error
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: error with Content-Type %q", method, path, ct)
		}
		if err := json.Unmarshal(b, &apiErr); err != nil || apiErr.Code == "" || apiErr.Message == "" {
			t.Errorf("%s %s: error body %q is not an Error", method, path, b)
		}
	}
	return resp.StatusCode, apiErr, resp.Header
}

// TestRefused is the list: missing or wrong token (401), foreign
// Host or Origin (403), oversized body (413), bad JSON (400); none of them
// reaches a write of the Backend.
func TestRefused(t *testing.T) {
	e := newEnv(t)
	sp, feed := e.space, apitest.HexID(0xf001)
	goodPut := `{"value":"aGVsbG8="}`
	writes := []struct{ method, path, body string }{
		{"POST", "/v1/spaces", `{"name":"x"}`},
		{"POST", "/v1/join", `{"space":"` + apitest.HexID(0xcafe) + `","password":"correct horse","name":"x"}`},
		{"PUT", "/v1/spaces/" + sp + "/password", `{"password":"correct horse"}`},
		{"PUT", "/v1/spaces/" + sp + "/keys/k", goodPut},
		{"DELETE", "/v1/spaces/" + sp + "/keys/k", ""},
		{"DELETE", "/v1/spaces/" + sp + "/members/" + feed, ""},
	}
	huge := `{"value":"` + strings.Repeat("A", api.DefaultMaxBody) + `"}`
	type tc struct {
		name   string
		header map[string]string
		body   func(string) string // nil: the good body
		status int
		code   string
	}
	cases := []tc{
		{"no token", map[string]string{"Authorization": ""}, nil, 401, "unauthorized"},
		{"wrong token", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, nil, 401, "unauthorized"},
		{"token prefix", map[string]string{"Authorization": "Bearer " + testToken[:63]}, nil, 401, "unauthorized"},
		{"basic auth", map[string]string{"Authorization": "Basic " + testToken}, nil, 401, "unauthorized"},
		{"foreign host", map[string]string{"Host": "evil.example"}, nil, 403, "forbidden"},
		{"rebinding host", map[string]string{"Host": "attacker.example:4103"}, nil, 403, "forbidden"},
		{"localhost suffix host", map[string]string{"Host": "localhost.evil.example"}, nil, 403, "forbidden"},
		{"private address host", map[string]string{"Host": "192.168.1.2:4103"}, nil, 403, "forbidden"},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, nil, 403, "forbidden"},
		{"null origin", map[string]string{"Origin": "null"}, nil, 403, "forbidden"},
		{"loopback lookalike origin", map[string]string{"Origin": "http://127.0.0.1.evil.example"}, nil, 403, "forbidden"},
		{"file origin", map[string]string{"Origin": "file://localhost"}, nil, 403, "forbidden"},
	}
	cases = append(cases,
		tc{"oversized body", nil, func(string) string { return huge }, 413, "too_large"},
		tc{"syntax error", nil, func(string) string { return `{"name":` }, 400, "bad_json"},
		tc{"unknown field", nil, func(b string) string { return b[:len(b)-1] + `,"evil":1}` }, 400, "bad_json"},
		tc{"trailing data", nil, func(b string) string { return b + `{}` }, 400, "bad_json"},
		tc{"trailing garbage", nil, func(b string) string { return b + `x` }, 400, "bad_json"},
		tc{"wrong type", nil, func(string) string { return `{"name":1,"token":2,"value":3,"feed":4}` }, 400, "bad_json"},
		tc{"array", nil, func(string) string { return `[]` }, 400, "bad_json"},
		tc{"empty body", nil, func(string) string { return "" }, 400, "bad_json"},
		tc{"text/plain", map[string]string{"Content-Type": "text/plain"}, nil, 415, "bad_json"},
	)
	for _, w := range writes {
		for _, c := range cases {
			body := w.body
			if c.body != nil {
				if w.body == "" {
					continue // no body to spoil
				}
				body = c.body(w.body)
			}
			if c.header["Content-Type"] != "" && w.body == "" {
				continue
			}
			t.Run(w.method+" "+w.path[:min(len(w.path), 20)]+"/"+c.name, func(t *testing.T) {
				status, apiErr, _ := e.raw(t, w.method, w.path, body, c.header)
				if status != c.status || apiErr.Code != c.code {
					t.Errorf("%s %s (%s): got %d %q (%s), want %d %q", w.method, w.path, c.name,
						status, apiErr.Code, apiErr.Message, c.status, c.code)
				}
			})
		}
	}
	// Malformed IDs and non-canonical paths are refused before the Backend.
	for _, w := range []struct{ method, path, body string }{
		{"PUT", "/v1/spaces/" + sp[:63] + "/keys/k", goodPut},
		{"PUT", "/v1/spaces/" + sp + "zz/keys/k", goodPut},
		{"PUT", "/v1/spaces/nothex/password", `{"password":"correct horse"}`},
		{"DELETE", "/v1/spaces/" + sp + "/members/" + feed[:10], ""},
		{"PUT", "/v1/spaces/" + sp + "/keys/a//b", goodPut},
		{"PUT", "/v1/spaces/" + sp + "/keys/a/../b", goodPut},
		{"PUT", "/v1/spaces/" + sp + "/keys/..", goodPut},
	} {
		status, apiErr, _ := e.raw(t, w.method, w.path, w.body, nil)
		if status != 400 || apiErr.Code != "bad_request" {
			t.Errorf("%s %s: got %d %q, want 400 bad_request", w.method, w.path, status, apiErr.Code)
		}
	}
	if got := e.fake.Writes(); len(got) != 0 {
		t.Fatalf("refused requests reached the Backend's writes: %v", got)
	}
	// The same requests, done right, do write: the refusals were not an
	// accident of the test's requests.
	for _, w := range writes {
		status, apiErr, _ := e.raw(t, w.method, w.path, w.body, nil)
		if status >= 300 {
			t.Errorf("%s %s: %d %s %s", w.method, w.path, status, apiErr.Code, apiErr.Message)
		}
	}
	if got, want := len(e.fake.Writes()), len(writes); got != want {
		t.Errorf("good requests made %d writes, want %d", got, want)
	}
}

func TestHostAndOriginAllowed(t *testing.T) {
	e := newEnv(t)
	for _, h := range []map[string]string{
		{"Host": "localhost"},
		{"Host": "LocalHost:4103"},
		{"Host": "127.0.0.1"},
		{"Host": "127.1.2.3:80"},
		{"Host": "[::1]:4103"},
		{"Host": "[::1]"},
		{"Origin": "http://localhost:4103"},
		{"Origin": "https://127.0.0.1"},
		{"Origin": "http://[::1]:8080"},
	} {
		if status, apiErr, _ := e.raw(t, "GET", "/v1/status", "", h); status != 200 {
			t.Errorf("%v: %d %s", h, status, apiErr.Message)
		}
	}
}

func TestOpenAPINeedsNoToken(t *testing.T) {
	e := newEnv(t)
	status, _, hdr := e.raw(t, "GET", "/v1/openapi.json", "", map[string]string{"Authorization": ""})
	if status != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi: %d %s", status, hdr.Get("Content-Type"))
	}
	// Host is still checked.
	if status, _, _ := e.raw(t, "GET", "/v1/openapi.json", "", map[string]string{"Host": "evil.example"}); status != 403 {
		t.Errorf("openapi with a foreign Host: %d", status)
	}
	doc, err := e.client.OpenAPI(t.Context())
	if err != nil || !bytes.Equal(doc, api.OpenAPI()) {
		t.Errorf("client OpenAPI: %v", err)
	}
}

func TestUnrouted(t *testing.T) {
	e := newEnv(t)
	status, apiErr, _ := e.raw(t, "GET", "/v1/nope", "", nil)
	if status != 404 || apiErr.Code != "not_found" {
		t.Errorf("unknown path: %d %q", status, apiErr.Code)
	}
	status, apiErr, hdr := e.raw(t, "POST", "/v1/status", `{}`, nil)
	if status != 405 || apiErr.Code != "method_not_allowed" || !strings.Contains(hdr.Get("Allow"), "GET") {
		t.Errorf("wrong method: %d %q Allow %q", status, apiErr.Code, hdr.Get("Allow"))
	}
	status, apiErr, hdr = e.raw(t, "GET", "/v1//status", "", nil)
	if status != 400 || apiErr.Code != "bad_request" || hdr.Get("Location") != "" {
		t.Errorf("unclean path: %d %q Location %q", status, apiErr.Code, hdr.Get("Location"))
	}
	// A write to .../keys without a key would be redirected to .../keys/.
	status, apiErr, _ = e.raw(t, "PUT", "/v1/spaces/"+e.space+"/keys", `{"value":""}`, nil)
	if status != 400 || apiErr.Code != "bad_request" {
		t.Errorf("PUT keys: %d %q", status, apiErr.Code)
	}
	if w := e.fake.Writes(); len(w) != 0 {
		t.Errorf("writes: %v", w)
	}
}

func TestClientRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctr := prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_test_total", Help: "test"})
	reg.MustRegister(ctr)
	ctr.Add(7)
	e := newEnv(t, func(c *api.ServerConfig) { c.Metrics = reg })
	ctx := t.Context()
	c := e.client

	st, err := c.Status(ctx)
	if err != nil || st.Version != "v-test" || st.PeerID != "12D3KooWfake" || st.Spaces != 1 || st.Addrs == nil {
		t.Fatalf("Status: %+v %v", st, err)
	}
	info, err := c.CreateSpace(ctx, "photos")
	if err != nil || info.Name != "photos" || len(info.ID) != 64 {
		t.Fatalf("CreateSpace: %+v %v", info, err)
	}
	if _, err := c.CreateSpace(ctx, ""); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("CreateSpace without a name: %v", err)
	}
	list, err := c.Spaces(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("Spaces: %+v %v", list, err)
	}
	if got, err := c.Space(ctx, info.ID); err != nil || !reflect.DeepEqual(got, info) {
		t.Errorf("Space: %+v %v", got, err)
	}
	if got, err := c.Space(ctx, strings.ToUpper(info.ID)); err != nil || !reflect.DeepEqual(got, info) {
		t.Errorf("Space by uppercase ID: %+v %v", got, err)
	}
	_, err = c.Space(ctx, apitest.HexID(5))
	var apiErr *api.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "not_found" || !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Space unknown: %#v", err)
	}

	// Members: a device joins by signing in (signin_test.go); the fake's
	// AddDevice stands for two approvals. The manual token exchange is
	// gone: its routes are unknown.
	for _, m := range []api.Member{{Feed: apitest.HexID(0x76), Name: "phone"}, {Feed: apitest.HexID(0x77), Name: "tablet"}} {
		if err := e.fake.AddDevice(e.space, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/spaces/" + e.space + "/join"},
		{"POST", "/v1/accept"},
		{"POST", "/v1/spaces/" + e.space + "/members"},
	} {
		if code, _, _ := e.raw(t, r.method, r.path, `{"name":"x","token":"x"}`, nil); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s (removed): %d", r.method, r.path, code)
		}
	}
	ms, err := c.Members(ctx, e.space)
	if err != nil || len(ms) != 3 || ms[1].Name != "phone" || ms[2].Name != "tablet" || !ms[0].Self {
		t.Fatalf("Members: %+v %v", ms, err)
	}
	if err := c.RemoveMember(ctx, e.space, apitest.HexID(0x77)); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	if err := c.RemoveMember(ctx, e.space, apitest.HexID(0x77)); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("RemoveMember twice: %v", err)
	}

	// Keys, including ones that look like paths.
	keys := []string{"a", "dir/file", "a//b", "/lead", "trail/", ".", "..", "x/../y", "sp ace?&#%", "ünï"}
	for i, k := range keys {
		if err := c.Put(ctx, e.space, k, []byte{byte(i)}); err != nil {
			t.Fatalf("Put %q: %v", k, err)
		}
	}
	for i, k := range keys {
		got, err := c.Get(ctx, e.space, k)
		if err != nil || got.Key != k || len(got.Versions) != 1 || !bytes.Equal(got.Versions[0].Value, []byte{byte(i)}) {
			t.Errorf("Get %q: %+v %v", k, got, err)
		}
	}
	if err := c.Put(ctx, e.space, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, e.space, "empty"); err != nil || got.Versions[0].Value == nil && len(got.Versions[0].Value) != 0 {
		t.Errorf("Get empty value: %+v %v", got, err)
	}
	if _, err := c.Get(ctx, e.space, "never"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Get never written: %v", err)
	}
	if err := c.Delete(ctx, e.space, "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, e.space, "a"); err != nil || !got.Versions[0].Deleted {
		t.Errorf("Get deleted: %+v %v (a deleted key is an Entry, not a 404)", got, err)
	}
	// A key with raw slashes in the path works too (curl).
	if status, _, _ := e.raw(t, "GET", "/v1/spaces/"+e.space+"/keys/dir/file", "", nil); status != 200 {
		t.Errorf("raw slash key: %d", status)
	}
	e.fake.SetWriter(e.space, false)
	if err := c.Put(ctx, e.space, "k", []byte("v")); !errors.Is(err, api.ErrReadOnly) || !strings.Contains(err.Error(), "writer") {
		t.Errorf("Put read-only: %v", err)
	}

	// Network.
	e.fake.SetPeers([]api.Peer{{ID: "p1", Conns: []api.Conn{{Addr: "/ip4/127.0.0.1/tcp/1", Transport: "tcp", Direction: "outbound"}}}, {ID: "p2"}})
	e.fake.SetProgress([]api.Progress{{Space: e.space, Peer: "p1", Feed: apitest.HexID(1), Have: 3, Want: 5, BytesIn: 300, Rate: 100, ETA: 2}})
	peers, err := c.Peers(ctx)
	if err != nil || len(peers) != 2 || peers[0].Conns[0].Transport != "tcp" || peers[1].Conns == nil {
		t.Errorf("Peers: %+v %v", peers, err)
	}
	prog, err := c.Progress(ctx)
	if err != nil || len(prog) != 1 || prog[0].Want != 5 || prog[0].ETA != 2 {
		t.Errorf("Progress: %+v %v", prog, err)
	}
	m, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(string(m), "mycel_test_total 7") {
		t.Errorf("Metrics: %q %v", m, err)
	}
}

// Empty lists are [] in JSON, never null.
func TestEmptyListsAreArrays(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/v1/peers", "/v1/progress", "/v1/spaces/" + e.space + "/keys"} {
		resp, err := e.srv.Client().Do(authed(t, "GET", e.srv.URL+path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, []byte("null")) {
			t.Errorf("%s: %s", path, b)
		}
	}
}

func authed(t *testing.T, method, url string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	return req
}

func TestPagination(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for i := range 250 {
		if err := e.client.Put(ctx, e.space, fmt.Sprintf("k%03d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	e.client.Put(ctx, e.space, "other", nil)
	var got []string
	after, pages := "", 0
	for {
		p, err := e.client.List(ctx, e.space, "k", after, 0)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, en := range p.Entries {
			got = append(got, en.Key)
		}
		if p.Next == "" {
			break
		}
		if len(p.Entries) != api.DefaultListLimit {
			t.Errorf("page %d has %d entries", pages, len(p.Entries))
		}
		after = p.Next
	}
	if pages != 3 || len(got) != 250 || !slices.IsSorted(got) || got[0] != "k000" || got[249] != "k249" {
		t.Errorf("%d pages, %d keys", pages, len(got))
	}
	p, err := e.client.List(ctx, e.space, "", "", 5000)
	if err != nil || len(p.Entries) != 251 || p.Next != "" {
		t.Errorf("limit 5000: %d entries, next %q, %v", len(p.Entries), p.Next, err)
	}
	for _, bad := range []string{"0", "-1", "abc", "1e3"} {
		status, apiErr, _ := e.raw(t, "GET", "/v1/spaces/"+e.space+"/keys?limit="+bad, "", nil)
		if status != 400 || apiErr.Code != "bad_request" {
			t.Errorf("limit=%s: %d %q", bad, status, apiErr.Code)
		}
	}
	// Over 1000 is 1000.
	for i := range 800 {
		e.client.Put(ctx, e.space, fmt.Sprintf("m%03d", i), nil)
	}
	p, err = e.client.List(ctx, e.space, "", "", 5000)
	if err != nil || len(p.Entries) != api.MaxListLimit || p.Next == "" {
		t.Errorf("limit 5000 of 1051 keys: %d entries, next %q, %v", len(p.Entries), p.Next, err)
	}
}

// errBackend returns err from every write.
type errBackend struct {
	*apitest.Fake
	err error
}

func (b errBackend) Put(ctx context.Context, id, key string, value []byte) error { return b.err }

func TestErrorCodes(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{api.ErrNotFound, 404, "not_found"},
		{api.ErrBadRequest, 400, "bad_request"},
		{api.ErrReadOnly, 409, "read_only"},
		{api.ErrConflict, 409, "conflict"},
		{api.ErrNoKeys, 409, "no_keys"},
		{api.ErrTooLarge, 413, "too_large"},
		{api.ErrClosed, 503, "unavailable"},
		{errors.New("disk on fire"), 500, "internal"},
	} {
		fake := apitest.New()
		id := fake.AddSpace("s")
		wrapped := fmt.Errorf("space: put: %w", c.err)
		srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: errBackend{fake, wrapped}, Token: testToken}))
		cl, _ := api.NewClient(srv.URL, testToken, srv.Client())
		err := cl.Put(t.Context(), id, "k", []byte("v"))
		var apiErr *api.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != c.status || apiErr.Code != c.code || apiErr.Message != wrapped.Error() {
			t.Errorf("%v: got %#v, want %d %s", c.err, err, c.status, c.code)
		}
		if c.code != "internal" && !errors.Is(err, c.err) {
			t.Errorf("%v: errors.Is on the client's error fails", c.err)
		}
		srv.Close()
	}
}

func TestEmptyTokenRefusesAll(t *testing.T) {
	fake := apitest.New()
	srv := httptest.NewServer(api.NewServer(api.ServerConfig{Backend: fake}))
	defer srv.Close()
	for _, tok := range []string{"", " "} {
		cl, _ := api.NewClient(srv.URL, tok, srv.Client())
		var apiErr *api.APIError
		if _, err := cl.Status(t.Context()); !errors.As(err, &apiErr) || apiErr.Code != "unauthorized" {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	if fake.CallCount() != 0 {
		t.Errorf("the Backend was called")
	}
}

func TestLogsNoToken(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, func(c *api.ServerConfig) { c.Logger = log })
	e.client.Status(t.Context())
	e.raw(t, "GET", "/v1/status?token="+testToken, "", map[string]string{"Authorization": "Bearer " + testToken + "x"})
	out := buf.String()
	if !strings.Contains(out, "path=/v1/status") || !strings.Contains(out, "status=200") || !strings.Contains(out, "status=401") || !strings.Contains(out, "duration=") {
		t.Errorf("log lacks the request:\n%s", out)
	}
	if strings.Contains(out, testToken) {
		t.Errorf("log holds the token:\n%s", out)
	}
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (b *syncBuffer) lock() {
	if b.mu == nil {
		b.mu = make(chan struct{}, 1)
	}
	b.mu <- struct{}{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.String()
}

func TestWatch(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, errf, err := e.client.Watch(ctx, e.space, "doc/")
	if err != nil {
		t.Fatal(err)
	}
	// Changes made once Watch returned are in the stream; others keys not.
	e.client.Put(ctx, e.space, "other", []byte("x"))
	e.client.Put(ctx, e.space, "doc/1", []byte("one"))
	e.client.Delete(ctx, e.space, "doc/1")
	e.client.Put(ctx, e.space, "doc/a/b", []byte("two"))
	want := []string{"doc/1=one", "doc/1=deleted", "doc/a/b=two"}
	for _, w := range want {
		select {
		case en, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended: %v", errf())
			}
			got := en.Key + "=" + string(en.Versions[0].Value)
			if en.Versions[0].Deleted {
				got = en.Key + "=deleted"
			}
			if got != w {
				t.Errorf("change %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no change %q", w)
		}
	}
	cancel()
	for range ch {
	}
	if err := errf(); err != nil {
		t.Errorf("watch ended by its context: %v", err)
	}
	// The server's handler returned and ended the Backend's watch.
	waitFor(t, func() bool { return e.fake.ActiveWatchers() == 0 })
}

func TestWatchBehind(t *testing.T) {
	e := newEnv(t)
	ch, errf, err := e.client.Watch(t.Context(), e.space, "")
	if err != nil {
		t.Fatal(err)
	}
	e.fake.CloseWatchers(fmt.Errorf("%w: 1024 changes pending", api.ErrBehind))
	for range ch {
	}
	var apiErr *api.APIError
	if err := errf(); !errors.As(err, &apiErr) || apiErr.Code != "behind" || !errors.Is(err, api.ErrBehind) {
		t.Errorf("watch of a slow reader ended with %v, want code behind", err)
	}
}

func TestWatchDaemonClosing(t *testing.T) {
	e := newEnv(t)
	ch, errf, err := e.client.Watch(t.Context(), e.space, "")
	if err != nil {
		t.Fatal(err)
	}
	e.fake.CloseWatchers(fmt.Errorf("%w: shutting down", api.ErrClosed))
	for range ch {
	}
	if err := errf(); !errors.Is(err, api.ErrClosed) {
		t.Errorf("watch ended with %v, want unavailable", err)
	}
	if _, _, err := e.client.Watch(t.Context(), apitest.HexID(9), ""); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("watch of an unknown space: %v", err)
	}
}

func TestWatchKeepAlive(t *testing.T) {
	e := newEnv(t, func(c *api.ServerConfig) { c.KeepAlive = 20 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req := authed(t, "GET", e.srv.URL+"/v1/spaces/"+e.space+"/watch").WithContext(ctx)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var got []byte
	buf := make([]byte, 256)
	for bytes.Count(got, []byte(": keepalive\n\n")) < 2 {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.HasPrefix(got, []byte(": mycel watch\n\n")) {
		t.Errorf("stream starts with %q", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 5 s")
}

// A put without a value ({} or "value": null) is refused, as the OpenAPI
// document's "required" says; "" is an empty value and is stored.
func TestPutNeedsValue(t *testing.T) {
	e := newEnv(t)
	path := "/v1/spaces/" + e.space + "/keys/k"
	for _, body := range []string{`{}`, `{"value":null}`} {
		status, apiErr, _ := e.raw(t, "PUT", path, body, nil)
		if status != 400 || apiErr.Code != "bad_request" {
			t.Errorf("PUT %s: got %d %q (%s), want 400 bad_request", body, status, apiErr.Code, apiErr.Message)
		}
	}
	if got := e.fake.Writes(); len(got) != 0 {
		t.Fatalf("a put without a value reached the Backend: %v", got)
	}
	if status, apiErr, _ := e.raw(t, "PUT", path, `{"value":""}`, nil); status != 204 {
		t.Fatalf(`PUT {"value":""}: %d %s %s`, status, apiErr.Code, apiErr.Message)
	}
	en, err := e.client.Get(t.Context(), e.space, "k")
	if err != nil || len(en.Versions) != 1 || en.Versions[0].Value == nil || len(en.Versions[0].Value) != 0 {
		t.Fatalf("empty value: %+v, %v", en, err)
	}
}

// TestStreamsEndWhenDaemonStops: closing ServerConfig.Closing ends the
// watch, requests and messages streams with the documented last event
// (code unavailable), while their Backend streams still run.
func TestStreamsEndWhenDaemonStops(t *testing.T) {
	closing := make(chan struct{})
	e := newEnv(t, func(c *api.ServerConfig) { c.Closing = closing })
	ctx := t.Context()
	wch, werr, err := e.client.Watch(ctx, e.space, "")
	if err != nil {
		t.Fatal(err)
	}
	rch, rerr, err := e.client.WatchRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lch, lerr, err := e.client.Listen(ctx, e.space, "")
	if err != nil {
		t.Fatal(err)
	}
	close(closing)
	drain(t, "watch", wch)
	drain(t, "requests", rch)
	drain(t, "listen", lch)
	for name, errf := range map[string]func() error{"watch": werr, "requests": rerr, "listen": lerr} {
		var apiErr *api.APIError
		if err := errf(); !errors.As(err, &apiErr) || apiErr.Code != "unavailable" || !errors.Is(err, api.ErrClosed) {
			t.Errorf("%s ended with %v, want code unavailable", name, err)
		}
	}
}

// drain reads ch until it is closed, failing after 10 s.
func drain[T any](t *testing.T, name string, ch <-chan T) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("%s: the stream did not end in 10 s", name)
		}
	}
}

// TestStreamsBounded: past MaxStreams open streams, one more is refused
// with 429 too_many before the Backend opens a subscription; closing one
// frees its slot.
func TestStreamsBounded(t *testing.T) {
	const max = 4
	e := newEnv(t, func(c *api.ServerConfig) { c.MaxStreams = max })
	cancels := make([]context.CancelFunc, 0, max)
	for range max - 1 {
		ctx, cancel := context.WithCancel(t.Context())
		cancels = append(cancels, cancel)
		if _, _, err := e.client.Watch(ctx, e.space, ""); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancels = append(cancels, cancel)
	if _, _, err := e.client.Listen(ctx, e.space, ""); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for name, open := range map[string]func() error{
		"watch":    func() error { _, _, err := e.client.Watch(t.Context(), e.space, ""); return err },
		"requests": func() error { _, _, err := e.client.WatchRequests(t.Context()); return err },
		"listen":   func() error { _, _, err := e.client.Listen(t.Context(), e.space, ""); return err },
	} {
		var apiErr *api.APIError
		if err := open(); !errors.As(err, &apiErr) || apiErr.Status != 429 || apiErr.Code != "too_many" || !errors.Is(err, api.ErrTooMany) {
			t.Errorf("%s past the bound: %v, want 429 too_many", name, err)
		}
	}
	if n := e.fake.ActiveWatchers(); n != max-1 {
		t.Errorf("%d watches reached the Backend, want %d", n, max-1)
	}
	// Other requests still work, and a closed stream frees its slot.
	if err := e.client.Put(t.Context(), e.space, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	cancels[0]()
	waitFor(t, func() bool { return e.fake.ActiveWatchers() == max-2 })
	var err error
	for range 100 { // the handler returns just after the Backend's watch ends
		if _, _, err = e.client.Watch(t.Context(), e.space, ""); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("watch after one closed: %v", err)
	}
}
