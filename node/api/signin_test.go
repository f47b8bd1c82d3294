package api_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

// TestSignIn goes through invites, the password, joining, and a member's
// answers through the client, with the statuses the routes answer.
func TestSignIn(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client

	// Invites: 24 h by default; a TTL from 1 minute to 30 days.
	inv, err := c.CreateInvite(ctx, e.space, 0)
	if err != nil || inv.Space != e.space || !strings.HasPrefix(inv.Link, "mycel://join/") || len(inv.Code) != 24 ||
		inv.QR == "" || inv.ID == "" {
		t.Fatalf("CreateInvite: %+v %v", inv, err)
	}
	if d := time.Until(inv.Expires); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("default invite expires in %s", d)
	}
	if inv, err := c.CreateInvite(ctx, e.space, 2*time.Hour); err != nil || time.Until(inv.Expires) > 3*time.Hour {
		t.Errorf("CreateInvite 2h: %+v %v", inv, err)
	}
	for _, body := range []string{``, `{}`, `{"ttl":"1m"}`, `{"ttl":"720h"}`} {
		if status, apiErr, _ := e.raw(t, "POST", "/v1/spaces/"+e.space+"/invites", body, nil); status != http.StatusCreated {
			t.Errorf("invite %q: %d %s", body, status, apiErr.Message)
		}
	}
	for _, ttl := range []string{"59s", "720h1m", "-1h", "0s", "1d", "soon", "1"} {
		status, apiErr, _ := e.raw(t, "POST", "/v1/spaces/"+e.space+"/invites", `{"ttl":"`+ttl+`"}`, nil)
		if status != 400 || apiErr.Code != "bad_request" || !strings.Contains(apiErr.Message, "ttl") {
			t.Errorf("invite ttl %q: %d %q %q", ttl, status, apiErr.Code, apiErr.Message)
		}
	}
	if _, err := c.CreateInvite(ctx, apitest.HexID(9), 0); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("invite to an unknown space: %v", err)
	}

	// The password.
	if err := c.SetPassword(ctx, e.space, "correct horse battery"); err != nil || e.fake.Password(e.space) != "correct horse battery" {
		t.Fatalf("SetPassword: %v", err)
	}
	for _, pw := range []string{"short", strings.Repeat("p", api.MaxPassword+1)} {
		if err := c.SetPassword(ctx, e.space, pw); !errors.Is(err, api.ErrBadRequest) || strings.Contains(err.Error(), pw) {
			t.Errorf("SetPassword %.10q: %v", pw, err)
		}
	}

	// Joining another space: waiting, with a safety code; the space's
	// info follows the request.
	other := apitest.HexID(0xcafe)
	st, err := c.Join(ctx, api.JoinWith{Invite: apitest.InviteLink(other, 1), Name: "work"})
	if err != nil || st.Space != other || st.State != api.JoinWaiting || len(st.Code) != 7 || st.Code[3] != '-' || st.Since.IsZero() {
		t.Fatalf("Join: %+v %v", st, err)
	}
	info, err := c.Space(ctx, other)
	if err != nil || info.Approved || info.Join == nil || *info.Join != st || info.Name != "work" {
		t.Errorf("Space while joining: %+v %v", info, err)
	}
	e.fake.AnswerJoin(other, api.JoinApproved, "")
	if info, err := c.Space(ctx, other); err != nil || !info.Writer || info.Join.State != api.JoinApproved {
		t.Errorf("Space once approved: %+v %v", info, err)
	}
	// A password sign-in names the space; the status is 202.
	status, apiErr, _ := e.raw(t, "POST", "/v1/join", `{"space":"`+strings.ToUpper(apitest.HexID(0xd00d))+`","password":"correct horse"}`, nil)
	if status != http.StatusAccepted {
		t.Errorf("password join: %d %s", status, apiErr.Message)
	}
	for _, body := range []string{
		`{}`,
		`{"name":"x"}`,
		`{"invite":"   "}`,
		`{"invite":"` + apitest.InviteLink(other, 2) + `","password":"correct horse","space":"` + other + `"}`,
		`{"password":"correct horse"}`,
		`{"password":"short","space":"` + other + `"}`,
		`{"invite":"ABCD-EFGH-JKMN-PQRS-TVWX"}`, // a code does not name its space
		`{"invite":"ABCD-EFGH-JKMN-PQRS-TVWX","space":"nothex"}`,
		`{"invite":"` + strings.Repeat("A", 2000) + `"}`,
	} {
		status, apiErr, _ := e.raw(t, "POST", "/v1/join", body, nil)
		if status != 400 || apiErr.Code != "bad_request" {
			t.Errorf("join %.60s: %d %q %s", body, status, apiErr.Code, apiErr.Message)
		}
	}

	// Requests from other devices, and a member's answers.
	r1 := e.fake.AddRequest(api.Request{Space: e.space, Name: "laptop"})
	r2 := e.fake.AddRequest(api.Request{Space: e.space, Name: "phone", Via: "password"})
	r3 := e.fake.AddRequest(api.Request{Space: e.space, Name: "tablet"})
	reqs, err := c.Requests(ctx)
	if err != nil || len(reqs) != 3 || reqs[0] != r1 || reqs[1] != r2 || reqs[0].SpaceName != "notes" || len(reqs[0].ID) != 16 {
		t.Fatalf("Requests: %+v %v", reqs, err)
	}
	writes := len(e.fake.Writes())
	err = c.Approve(ctx, r1.ID, "000-000")
	var ae *api.APIError
	if !errors.Is(err, api.ErrSafetyCode) || !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != "safety_code" {
		t.Errorf("Approve with a wrong code: %#v", err)
	}
	if reqs, _ := c.Requests(ctx); len(reqs) != 3 {
		t.Errorf("a wrong code changed the requests: %+v", reqs)
	}
	if err := c.Approve(ctx, r1.ID, strings.ReplaceAll(r1.Code, "-", " ")); err != nil {
		t.Fatalf("Approve with the code: %v", err)
	}
	if ms, _ := c.Members(ctx, e.space); len(ms) != 2 || ms[1].Name != "laptop" || ms[1].Feed != r1.Feed {
		t.Errorf("members after approval: %+v", ms)
	}
	// No body at all approves without a code; a prefix of 6 or more
	// digits names a request.
	if status, apiErr, _ := e.raw(t, "POST", "/v1/requests/"+strings.ToUpper(r3.ID[:6])+"/approve", "", nil); status != http.StatusNoContent {
		t.Errorf("approve without a body: %d %s", status, apiErr.Message)
	}
	if err := c.Deny(ctx, r2.ID); err != nil {
		t.Fatalf("Deny: %v", err)
	}
	if err := c.Deny(ctx, r2.ID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Deny twice: %v", err)
	}
	if err := c.Approve(ctx, r2.ID, ""); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Approve a denied request: %v", err)
	}
	if got := e.fake.Writes()[writes:]; strings.Join(got, " ") != "Approve Approve Approve Deny Deny Approve" {
		t.Errorf("writes: %v", got)
	}
	for _, path := range []string{"/v1/requests/abc/approve", "/v1/requests/" + r1.ID[:5] + "/approve", "/v1/requests/" + strings.Repeat("z", 16) + "/deny", "/v1/requests/" + r1.ID + "00/deny"} {
		if status, apiErr, _ := e.raw(t, "POST", path, "", nil); status != 400 || apiErr.Code != "bad_request" {
			t.Errorf("%s: %d %q", path, status, apiErr.Code)
		}
	}
	if status, apiErr, _ := e.raw(t, "POST", "/v1/requests/"+r1.ID+"/approve", `{"code":"`+strings.Repeat("1", 65)+`"}`, nil); status != 400 {
		t.Errorf("approve with a code too long: %d %q", status, apiErr.Code)
	}
}

// TestSignInRefused: the new routes need the token, and refuse bad JSON
// and oversized bodies before the Backend sees them.
func TestSignInRefused(t *testing.T) {
	e := newEnv(t)
	req := e.fake.AddRequest(api.Request{Space: e.space})
	sp := e.space
	routes := []struct{ method, path, body string }{
		{"POST", "/v1/spaces/" + sp + "/invites", `{"ttl":"1h"}`},
		{"PUT", "/v1/spaces/" + sp + "/password", `{"password":"correct horse"}`},
		{"POST", "/v1/join", `{"invite":"` + apitest.InviteLink(apitest.HexID(0xcafe), 1) + `"}`},
		{"GET", "/v1/requests", ""},
		{"GET", "/v1/requests/events", ""},
		{"POST", "/v1/requests/" + req.ID + "/approve", `{"code":"` + req.Code + `"}`},
		{"POST", "/v1/requests/" + req.ID + "/deny", ""},
	}
	calls := e.fake.CallCount()
	for _, r := range routes {
		for _, h := range []map[string]string{
			{"Authorization": ""},
			{"Authorization": "Bearer " + strings.Repeat("0", 64)},
		} {
			if status, apiErr, _ := e.raw(t, r.method, r.path, r.body, h); status != 401 || apiErr.Code != "unauthorized" {
				t.Errorf("%s %s %v: %d %q", r.method, r.path, h, status, apiErr.Code)
			}
		}
		if status, apiErr, _ := e.raw(t, r.method, r.path, r.body, map[string]string{"Host": "evil.example"}); status != 403 || apiErr.Code != "forbidden" {
			t.Errorf("%s %s foreign host: %d %q", r.method, r.path, status, apiErr.Code)
		}
		if r.body == "" {
			continue
		}
		for _, bad := range []string{`{"ttl":`, r.body[:len(r.body)-1] + `,"evil":1}`, r.body + `{}`, `[]`, `"x"`} {
			if status, apiErr, _ := e.raw(t, r.method, r.path, bad, nil); status != 400 || apiErr.Code != "bad_json" {
				t.Errorf("%s %s %q: %d %q", r.method, r.path, bad, status, apiErr.Code)
			}
		}
		huge := `{"ttl":"` + strings.Repeat("1", api.DefaultMaxBody) + `"}`
		if status, apiErr, _ := e.raw(t, r.method, r.path, huge, nil); status != 413 || apiErr.Code != "too_large" {
			t.Errorf("%s %s oversized: %d %q", r.method, r.path, status, apiErr.Code)
		}
		if status, _, _ := e.raw(t, r.method, r.path, r.body, map[string]string{"Content-Type": "text/plain"}); status != 415 {
			t.Errorf("%s %s text/plain: %d", r.method, r.path, status)
		}
	}
	if n := e.fake.CallCount(); n != calls {
		t.Errorf("refused requests reached the Backend: %d calls", n-calls)
	}
	// An empty body is an error where the body is required.
	for _, path := range []string{"/v1/spaces/" + sp + "/password", "/v1/join"} {
		method := "POST"
		if strings.HasSuffix(path, "password") {
			method = "PUT"
		}
		if status, apiErr, _ := e.raw(t, method, path, "", nil); status != 400 || apiErr.Code != "bad_json" {
			t.Errorf("%s without a body: %d %q", path, status, apiErr.Code)
		}
	}
	if len(e.fake.Writes()) != 0 {
		t.Errorf("writes: %v", e.fake.Writes())
	}
}

// TestPasswordNeverEchoed: neither the password nor the body that holds it
// appears in a response or in the log, even in the debug log of a failed
// request.
func TestPasswordNeverEchoed(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, func(c *api.ServerConfig) { c.Logger = log })
	const secret = "hunter2-Secret-Word"
	for _, body := range []string{
		`{"password":"` + secret + `"}`,
		`{"password":"` + secret + `"`,
		`{"password":"` + secret + `","nope":1}`,
		`{"password":` + secret + `}`,
		`{"password":"` + secret + `"}{"password":"` + secret + `"}`,
	} {
		for _, path := range []string{"/v1/spaces/" + e.space + "/password", "/v1/join"} {
			method := "PUT"
			if path == "/v1/join" {
				method = "POST"
				body = strings.Replace(body, `"password"`, `"space":"`+apitest.HexID(0xd00d)+`","password"`, 1)
			}
			req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				sb.WriteString(sc.Text())
			}
			resp.Body.Close()
			if strings.Contains(sb.String(), "hunter") || strings.Contains(sb.String(), "Secret") {
				t.Errorf("%s %q: response %s", path, body, sb.String())
			}
		}
	}
	if out := buf.String(); strings.Contains(out, "hunter") || !strings.Contains(out, "/password") {
		t.Errorf("log:\n%s", out)
	}
}

// TestWatchRequests: the stream starts with the requests waiting, then
// passes on new ones; it keeps alive, ends when the daemon closes it, and
// ends the Backend's watch when the client goes.
func TestWatchRequests(t *testing.T) {
	e := newEnv(t, func(c *api.ServerConfig) { c.KeepAlive = 20 * time.Millisecond })
	first := e.fake.AddRequest(api.Request{Space: e.space, Name: "laptop"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, errf, err := e.client.WatchRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() api.Request {
		t.Helper()
		select {
		case r, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended: %v", errf())
			}
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no request")
		}
		return api.Request{}
	}
	if r := next(); r != first {
		t.Errorf("first %+v, want %+v", r, first)
	}
	time.Sleep(60 * time.Millisecond) // a few keepalives pass unseen
	second := e.fake.AddRequest(api.Request{Space: e.space, Name: "phone"})
	if r := next(); r != second {
		t.Errorf("second %+v, want %+v", r, second)
	}
	cancel()
	for range ch {
	}
	if err := errf(); err != nil {
		t.Errorf("stream ended by its context: %v", err)
	}
	waitFor(t, func() bool { return e.fake.ActiveRequestWatchers() == 0 })

	// The raw stream: its comment, its events, then the daemon closing.
	req := authed(t, "GET", e.srv.URL+"/v1/requests/events")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == ": keepalive" && e.fake.ActiveRequestWatchers() == 1 {
			e.fake.CloseRequestWatchers()
		}
	}
	got := strings.TrimSpace(strings.Join(lines, "\n"))
	if !strings.HasPrefix(got, ": mycel requests\n") || strings.Count(got, "event: request\ndata: {") != 2 || !strings.Contains(got, "\n: keepalive\n") ||
		!strings.Contains(got, `"id":"`+second.ID+`"`) || !strings.HasSuffix(got, "event: error\ndata: {\"code\":\"unavailable\",\"message\":\"daemon is closing: the request stream ended\"}") {
		t.Errorf("stream:\n%s", got)
	}

	// The client reports the daemon closing.
	ch, errf, err = e.client.WatchRequests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	<-ch
	waitFor(t, func() bool { return e.fake.ActiveRequestWatchers() == 1 })
	e.fake.CloseRequestWatchers()
	for range ch {
	}
	if err := errf(); !errors.Is(err, api.ErrClosed) {
		t.Errorf("stream of a closing daemon ended with %v", err)
	}
}
