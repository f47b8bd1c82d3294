package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

func TestCLIInvite(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok(t, "invite", "notes")
	invs := e.fake.Invites()
	if len(invs) != 1 {
		t.Fatalf("invites: %+v", invs)
	}
	inv := invs[0]
	for _, want := range []string{inv.Link, inv.Code, inv.QR, `"notes"`, inv.Expires.Local().Format("2006-01-02 15:04"),
		"mycel join " + inv.Link, "--space " + e.space} {
		if !strings.Contains(out, want) {
			t.Errorf("invite output lacks %q:\n%s", want, out)
		}
	}
	if d := time.Until(inv.Expires); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("default invite expires in %s", d)
	}
	var got api.Invite
	if err := json.Unmarshal([]byte(e.ok(t, "invite", e.space[:8], "--ttl", "1h", "--json")), &got); err != nil ||
		got.Code == "" || got.QR == "" || time.Until(got.Expires) > 2*time.Hour {
		t.Errorf("invite --json: %+v %v", got, err)
	}
	if _, stderr, code := e.run(t, "", "invite", "notes", "--ttl", "10s"); code != exitError || !strings.Contains(stderr, "ttl") {
		t.Errorf("invite --ttl 10s: exit %d %s", code, stderr)
	}
	if _, _, code := e.run(t, "", "invite", "notes", "--ttl", "soon"); code != exitUsage {
		t.Errorf("invite --ttl soon: exit %d", code)
	}
	if _, _, code := e.run(t, "", "invite"); code != exitUsage {
		t.Errorf("invite without a space: exit %d", code)
	}
}

func TestCLISpacePassword(t *testing.T) {
	e := newCLIEnv(t)
	out, stderr, code := e.run(t, "correct horse battery\nnext line\n", "space", "password", "notes")
	if code != 0 || out != "" || !strings.Contains(stderr, "mycel join --space "+e.space+" --password") {
		t.Fatalf("space password: exit %d %q %q", code, out, stderr)
	}
	if got := e.fake.Password(e.space); got != "correct horse battery" {
		t.Errorf("password set %q", got)
	}
	if strings.Contains(stderr, "horse") {
		t.Errorf("the password was echoed: %s", stderr)
	}
	if _, stderr, code := e.run(t, "short\n", "space", "password", "notes"); code != exitError || !strings.Contains(stderr, "8 to 1024 bytes") {
		t.Errorf("short password: exit %d %s", code, stderr)
	}
	// No input at all: runCLI keeps the test's stdin, which may be
	// anything; an empty file stands for it.
	if _, stderr, code := e.run(t, "\n", "space", "password", "notes"); code != exitError || !strings.Contains(stderr, "password") {
		t.Errorf("empty password: exit %d %s", code, stderr)
	}
}

var safetyLine = regexp.MustCompile(`Asked to join (.+)\. Safety code: (\d{3}-\d{3}) — the approving device must show the same code\.\n`)

// joinAsync runs mycel join in the background; answer, once the Fake has
// the request, answers it.
func joinAsync(t *testing.T, e *cliEnv, answer func(api.JoinState), args ...string) (stdout, stderr string, code int) {
	t.Helper()
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	before := len(e.fake.Joins())
	go func() {
		var out, errOut bytes.Buffer
		code := run(t.Context(), append(args, "--interval", "20ms", "--data", e.dir), &out, &errOut)
		done <- result{out.String(), errOut.String(), code}
	}()
	if answer != nil {
		var st api.JoinState
		waitUntil(t, func() bool {
			js := e.fake.Joins()
			for _, j := range js {
				if j.State == api.JoinWaiting {
					st = j
				}
			}
			return len(js) > before && st.Space != ""
		})
		polls := e.fake.Calls("Space")
		waitUntil(t, func() bool { return e.fake.Calls("Space") >= polls+2 }) // a poll or two sees it waiting
		answer(st)
	}
	select {
	case r := <-done:
		return r.out, r.errOut, r.code
	case <-time.After(30 * time.Second):
		t.Fatal("mycel join did not end")
	}
	return
}

func TestCLIJoin(t *testing.T) {
	e := newCLIEnv(t)
	work, home := apitest.HexID(0xa1), apitest.HexID(0xa2)

	// Approved: exit 0, after showing the safety code.
	out, stderr, code := joinAsync(t, e, func(st api.JoinState) { e.fake.AnswerJoin(st.Space, api.JoinApproved, "") },
		"join", apitest.InviteLink(work, 1), "--name", "work")
	m := safetyLine.FindStringSubmatch(stderr)
	if code != 0 || m == nil || !strings.Contains(m[1], "work") || !strings.Contains(out, "approved: this device can now read and write") {
		t.Fatalf("join, approved: exit %d\nstdout %q\nstderr %q", code, out, stderr)
	}
	if info, err := e.fake.Space(work); err != nil || info.Join.Code != m[2] || !info.Writer {
		t.Errorf("the code shown %s; the space %+v %v", m[2], info, err)
	}

	// Denied: exit 1 with the reason.
	link := apitest.InviteLink(home, 1)
	out, stderr, code = joinAsync(t, e, func(st api.JoinState) { e.fake.AnswerJoin(st.Space, api.JoinDenied, "not my phone") },
		"join", link)
	if code != exitError || !safetyLine.MatchString(stderr) || !strings.Contains(stderr, "denied: not my phone") || strings.Contains(out, "approved") {
		t.Errorf("join, denied: exit %d %q %q", code, out, stderr)
	}
	// The invite worked once: refused, at once.
	_, stderr, code = e.run(t, "", "join", link)
	if code != exitError || !strings.Contains(stderr, "refused: the invite was used") || safetyLine.MatchString(stderr) {
		t.Errorf("join with a used invite: exit %d %q", code, stderr)
	}

	// Refused while waiting, with --json.
	out, stderr, code = joinAsync(t, e, func(st api.JoinState) { e.fake.AnswerJoin(st.Space, api.JoinRefused, "the invite expired") },
		"join", apitest.InviteLink(apitest.HexID(0xa3), 1), "--json")
	var st api.JoinState
	if code != exitError || json.Unmarshal([]byte(out), &st) != nil || st.State != api.JoinRefused || !strings.Contains(stderr, "refused: the invite expired") {
		t.Errorf("join, refused: exit %d %q %q", code, out, stderr)
	}

	// --no-wait returns at once; --timeout gives up.
	_, stderr, code = e.run(t, "", "join", apitest.InviteLink(apitest.HexID(0xa4), 1), "--no-wait")
	if code != 0 || !safetyLine.MatchString(stderr) || !strings.Contains(stderr, "mycel space info") {
		t.Errorf("join --no-wait: exit %d %q", code, stderr)
	}
	_, stderr, code = e.run(t, "", "join", apitest.InviteLink(apitest.HexID(0xa5), 1), "--timeout", "200ms", "--interval", "20ms")
	if code != exitError || !strings.Contains(stderr, "no answer within 200ms") || !strings.Contains(stderr, "the request stands") {
		t.Errorf("join --timeout: exit %d %q", code, stderr)
	}

	// A code names no space: --space does.
	codeInvite := "ABCD-EFGH-JKMN-PQRS-TVWX"
	if _, stderr, code := e.run(t, "", "join", codeInvite, "--no-wait"); code != exitError || !strings.Contains(stderr, "space") {
		t.Errorf("join with a code, no --space: exit %d %q", code, stderr)
	}
	if _, stderr, code := e.run(t, "", "join", codeInvite, "--space", apitest.HexID(0xa6), "--no-wait"); code != 0 || !safetyLine.MatchString(stderr) {
		t.Errorf("join with a code and --space: exit %d %q", code, stderr)
	}

	// The password, from stdin (not a terminal); never printed.
	pwSpace := apitest.HexID(0xa7)
	_, stderr, code = e.run(t, "correct horse battery\n", "join", "--space", pwSpace, "--password", "--no-wait")
	if code != 0 || !safetyLine.MatchString(stderr) || strings.Contains(stderr, "horse") {
		t.Errorf("join --password: exit %d %q", code, stderr)
	}
	if info, err := e.fake.Space(pwSpace); err != nil || info.Join == nil || info.Join.State != api.JoinWaiting {
		t.Errorf("password join: %+v %v", info, err)
	}

	for _, args := range [][]string{
		{"join"},
		{"join", "--password"},
		{"join", "--space", "abc", "--password"},
		{"join", apitest.InviteLink(work, 2), "--space", pwSpace, "--password"},
		{"join", "a", "b"},
		{"join", apitest.InviteLink(work, 2), "--timeout", "-1s"},
	} {
		if _, stderr, code := e.run(t, "", args...); code != exitUsage {
			t.Errorf("mycel %v: exit %d %s", args, code, stderr)
		}
	}
}

func TestCLIRequests(t *testing.T) {
	e := newCLIEnv(t)
	if out, stderr, code := e.run(t, "", "requests"); code != 0 || out != "" || !strings.Contains(stderr, "no requests waiting") {
		t.Errorf("requests, none: exit %d %q %q", code, out, stderr)
	}
	r1 := e.fake.AddRequest(api.Request{Space: e.space, Name: "Firefox on Ubuntu 64-bit"})
	r2 := e.fake.AddRequest(api.Request{Space: e.space, Name: "phone", Via: "password"})
	out := e.ok(t, "requests")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID SPACE DEVICE CODE VIA ASKED" {
		t.Fatalf("requests:\n%s", out)
	}
	for i, r := range []api.Request{r1, r2} {
		for _, want := range []string{r.ID, "notes", r.Name, r.Code, r.Via} {
			if !strings.Contains(lines[i+1], want) {
				t.Errorf("row %q lacks %q", lines[i+1], want)
			}
		}
	}
	var got []api.Request
	if err := json.Unmarshal([]byte(e.ok(t, "requests", "--json")), &got); err != nil || len(got) != 2 || got[0] != r1 {
		t.Errorf("requests --json: %+v %v", got, err)
	}

	// --watch: those waiting, then new ones, one JSON object per line.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr := newLinePipe()
	defer pr.Close()
	done := make(chan int, 1)
	go func() {
		var errOut bytes.Buffer
		done <- run(ctx, []string{"requests", "--watch", "--json", "--data", e.dir}, pr, &errOut)
	}()
	waitUntil(t, func() bool { return e.fake.ActiveRequestWatchers() == 1 })
	r3 := e.fake.AddRequest(api.Request{Space: e.space, Name: "tablet"})
	for _, want := range []api.Request{r1, r2, r3} {
		l, err := pr.ReadLine(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r api.Request
		if err := json.Unmarshal([]byte(l), &r); err != nil || r != want {
			t.Errorf("watch line %q, want %+v (%v)", l, want, err)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("requests --watch ended by its context: exit %d", code)
	}
	waitUntil(t, func() bool { return e.fake.ActiveRequestWatchers() == 0 })

	// Plain --watch: a line each.
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	pr2 := newLinePipe()
	defer pr2.Close()
	go func() {
		var errOut bytes.Buffer
		done <- run(ctx2, []string{"requests", "-w", "--data", e.dir}, pr2, &errOut)
	}()
	for _, want := range []api.Request{r1, r2, r3} {
		l, err := pr2.ReadLine(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Split(l, "\t"); len(f) != 6 || f[0] != want.ID || f[1] != "notes" || f[2] != fmt.Sprintf("%q", want.Name) || f[3] != want.Code {
			t.Errorf("watch line %q, want %+v", l, want)
		}
	}
	cancel2()
	<-done
}

func TestCLIApproveDeny(t *testing.T) {
	e := newCLIEnv(t)
	r1 := e.fake.AddRequest(api.Request{Space: e.space, Name: "laptop"})
	r2 := e.fake.AddRequest(api.Request{Space: e.space, Name: "phone"})
	r3 := e.fake.AddRequest(api.Request{Space: e.space, Name: "tablet"})

	// Not a terminal, neither --code nor --yes: mycel cannot ask.
	out, stderr, code := e.run(t, "y\n", "approve", r1.ID)
	if code != exitUsage || out != "" || !strings.Contains(stderr, "--code") || !strings.Contains(stderr, "--yes") {
		t.Errorf("approve on a non-terminal: exit %d %q %q", code, out, stderr)
	}
	// A wrong code: refused by the daemon, nothing changes.
	if _, stderr, code := e.run(t, "", "approve", r1.ID, "--code", "000-000"); code != exitError || !strings.Contains(stderr, "not the request's") {
		t.Errorf("approve with a wrong code: exit %d %q", code, stderr)
	}
	if len(e.fake.Requests()) != 3 || len(e.fake.Writes()) != 1 {
		t.Fatalf("refused approvals changed something: %v", e.fake.Writes())
	}
	// The right code, the ID by 8 of its digits.
	out, stderr, code = e.run(t, "", "approve", r1.ID[:8], "--code", strings.ReplaceAll(r1.Code, "-", ""))
	if code != 0 || !strings.Contains(out, `approved "laptop"`) {
		t.Errorf("approve --code: exit %d %q %q", code, out, stderr)
	}
	if out := e.ok(t, "approve", r2.ID, "--yes"); !strings.Contains(out, `approved "phone"`) {
		t.Errorf("approve --yes: %q", out)
	}
	if ms, _ := e.fake.Members(e.space); len(ms) != 3 || ms[1].Name != "laptop" || ms[2].Name != "phone" {
		t.Errorf("members: %+v", ms)
	}
	if out := e.ok(t, "deny", r3.ID); !strings.Contains(out, `denied "tablet"`) {
		t.Errorf("deny: %q", out)
	}
	for _, args := range [][]string{{"deny", r3.ID}, {"approve", r1.ID, "--yes"}} {
		if _, stderr, code := e.run(t, "", args...); code != exitError || !strings.Contains(stderr, "no request") {
			t.Errorf("mycel %v again: exit %d %q", args, code, stderr)
		}
	}
	for _, args := range [][]string{{"deny", "xyz!"}, {"approve", "ab", "--yes"}, {"deny"}, {"approve", r1.ID, "extra", "--yes"}} {
		if _, stderr, code := e.run(t, "", args...); code != exitUsage {
			t.Errorf("mycel %v: exit %d %q", args, code, stderr)
		}
	}
}

// TestConfirmApprove: the question a terminal gets, and the answers that
// approve.
func TestConfirmApprove(t *testing.T) {
	r := api.Request{ID: "0123456789abcdef", SpaceName: "notes", Name: "Firefox on Ubuntu 64-bit", Code: "482-193"}
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " y \r\n": true, "n\n": false, "\n": false, "sure\n": false} {
		var w bytes.Buffer
		ok, err := confirmApprove(t.Context(), strings.NewReader(in+"leftover"), &w, r)
		if err != nil || ok != want {
			t.Errorf("answer %q: %v %v", in, ok, err)
		}
		if q := `Authorise node "Firefox on Ubuntu 64-bit" to join notes? Safety code 482-193 — does the new device show the same code? [y/N] `; w.String() != q {
			t.Errorf("question %q", w.String())
		}
	}
	if ok, err := confirmApprove(t.Context(), strings.NewReader("y"), &bytes.Buffer{}, r); !ok || err != nil {
		t.Errorf("answer y at the end of the input: %v %v", ok, err)
	}
	if _, err := confirmApprove(t.Context(), strings.NewReader(""), &bytes.Buffer{}, r); err == nil {
		t.Error("no answer approved or passed")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	blocked, release := newBlockedReader()
	defer release()
	if _, err := confirmApprove(ctx, blocked, &bytes.Buffer{}, r); err == nil {
		t.Error("a canceled prompt returned no error")
	}
}

// newBlockedReader returns a reader whose Read blocks until the test ends.
func newBlockedReader() (*blockedReader, func()) {
	b := &blockedReader{c: make(chan struct{})}
	return b, func() { close(b.c) }
}

type blockedReader struct{ c chan struct{} }

func (b *blockedReader) Read(p []byte) (int, error) {
	<-b.c
	return 0, context.Canceled
}

func TestCLIRemove(t *testing.T) {
	e := newCLIEnv(t)
	prefixed := "abcdef01" + strings.Repeat("2", 56)
	for _, m := range []api.Member{
		{Feed: apitest.HexID(0x77), Name: "laptop"},
		{Feed: prefixed, Name: "old phone"},
		{Feed: apitest.HexID(0x78), Name: "tablet"},
		{Feed: apitest.HexID(0x79), Name: "tablet"},
	} {
		if err := e.fake.AddDevice(e.space, m); err != nil {
			t.Fatal(err)
		}
	}
	out := e.ok(t, "remove", "notes", "laptop")
	if !strings.Contains(out, `removed "laptop"`) || !strings.Contains(out, "keys were rotated") {
		t.Errorf("remove by name: %q", out)
	}
	if out := e.ok(t, "remove", e.space[:8], "ABCDEF01"); !strings.Contains(out, `removed "old phone"`) {
		t.Errorf("remove by prefix: %q", out)
	}
	ds, _ := e.fake.Devices(e.space)
	if len(ds) != 3 {
		t.Errorf("devices left: %+v", ds)
	}
	// Ambiguous by name, or by a prefix every fake feed shares: the
	// matches are listed, nothing is removed.
	for _, ref := range []string{"tablet", "00000000"} {
		_, stderr, code := e.run(t, "", "remove", "notes", ref)
		if code != exitError || !strings.Contains(stderr, "matches") || !strings.Contains(stderr, short(apitest.HexID(0x78))) {
			t.Errorf("remove %s: exit %d %q", ref, code, stderr)
		}
	}
	for _, ref := range []string{"abcd", "nobody", "laptop"} {
		if _, stderr, code := e.run(t, "", "remove", "notes", ref); code != exitError || !strings.Contains(stderr, "no device") {
			t.Errorf("remove %s: exit %d %q", ref, code, stderr)
		}
	}
	if ds, _ := e.fake.Devices(e.space); len(ds) != 3 {
		t.Errorf("refused removals removed: %+v", ds)
	}
	if _, _, code := e.run(t, "", "remove", "notes"); code != exitUsage {
		t.Errorf("remove without a device: exit %d", code)
	}
}
