package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mycelsync/mycel/node/api"
)

// hostile is a device name (or key, topic…) as another device may choose
// it: ANSI sequences that erase the line and move the cursor, a carriage
// return and a fake safety code, 8-bit CSI (C1), NEL, BEL, NUL, a tab, a
// right-to-left override and isolate, and a byte that is not UTF-8.
const hostile = "evil\x1b[2K\x1b[1A\rSafety code 000-000\u202e\u2066lanif\u009b31m\u0085\a\x00\ttab\xff\x9b"

// rawControl reports what of out would act on a terminal: a C0 control
// other than newline (and tab, which the CLI's own tables use), DEL, a C1
// or bidi control, or invalid UTF-8.
func rawControl(out string) []string {
	var found []string
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRuneInString(out[i:])
		switch {
		case r == '\n', r == '\t':
		case r == utf8.RuneError && n == 1:
			found = append(found, fmt.Sprintf("invalid UTF-8 %#x", out[i]))
		case unsafeRune(r):
			found = append(found, safe(string(r)))
		}
		i += n
	}
	return found
}

// TestCLIEscapesControlCharacters plays a device that names itself (and
// writes keys) with terminal escape sequences, carriage returns, C1 and
// bidi controls: every command that shows them prints them escaped, the
// approval prompt included, and the text stays readable ("evil\x1b[2K").
func TestCLIEscapesControlCharacters(t *testing.T) {
	e := newCLIEnv(t)
	c, err := api.DialAddr(e.dir, e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	feed := strings.Repeat("ab", 32)
	if err := e.fake.AddDevice(e.space, api.Member{Feed: feed, Name: hostile}); err != nil {
		t.Fatal(err)
	}
	// Keys are UTF-8 (the daemon and every peer's entry check refuse
	// others): the hostile key keeps its controls, not its stray bytes.
	hostileKey := strings.ToValidUTF8(hostile, "")
	if err := c.Put(t.Context(), e.space, hostileKey, []byte(hostile)); err != nil {
		t.Fatal(err)
	}
	r := e.fake.AddRequest(api.Request{Space: e.space, Name: hostile, SpaceName: hostile})
	for _, args := range [][]string{
		{"members", "notes"},
		{"devices", "notes"},
		{"requests"},
		{"requests", "--json"},
		{"ls", "notes"},
		{"ls", "notes", "--json"},
		{"get", "notes", hostileKey, "--json"},
		{"members", "notes", "--json"},
		{"devices", "notes", "--json"},
	} {
		out, stderr, code := e.run(t, "", args...)
		if code != 0 {
			t.Errorf("mycel %q: exit %d: %s", args, code, stderr)
			continue
		}
		if bad := rawControl(out + stderr); len(bad) > 0 {
			t.Errorf("mycel %q printed raw %v:\n%q", args, bad, out)
		}
		if !strings.Contains(out, `evil\x1b[2K`) && !strings.Contains(out, `evil\u001b[2K`) {
			t.Errorf("mycel %q does not show the name escaped:\n%q", args, out)
		}
		if strings.HasSuffix(args[len(args)-1], "json") {
			var v any
			if err := json.Unmarshal([]byte(strings.Split(out, "\n\n")[0]), &v); err != nil && !strings.Contains(out, "\n{") {
				t.Errorf("mycel %q: not JSON after escaping: %v", args, err)
			}
		}
	}

	// The approval prompt: the name cannot paint over the safety code.
	var w bytes.Buffer
	if _, err := confirmApprove(t.Context(), strings.NewReader("n\n"), &w, r); err != nil {
		t.Fatal(err)
	}
	if bad := rawControl(w.String()); len(bad) > 0 || !strings.Contains(w.String(), "Safety code "+r.Code) {
		t.Errorf("approval prompt printed raw %v: %q", bad, w.String())
	}

	// Errors the daemon sends back may quote such a string.
	var errOut bytes.Buffer
	if code := run(t.Context(), []string{"members", "remove", "notes", hostile, "--data", e.dir}, &bytes.Buffer{}, &errOut); code == 0 {
		t.Fatal("removing an unknown member passed")
	}
	if bad := rawControl(errOut.String()); len(bad) > 0 {
		t.Errorf("error printed raw %v: %q", bad, errOut.String())
	}
	// Messages: sender, topic and text.
	m := api.Message{Name: hostile, Topic: hostile, Data: []byte(hostile)}
	line := safe(sender(m)) + safe(m.Topic) + messageText(m.Data)
	if bad := rawControl(line); len(bad) > 0 {
		t.Errorf("message line has raw %v: %q", bad, line)
	}
}

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"Firefox on Ubuntu 64-bit": "Firefox on Ubuntu 64-bit",
		"Zoë's 📱 — 電話":             "Zoë's 📱 — 電話",
		"a\x1b[31mb":               `a\x1b[31mb`,
		"x\ry\tz\n":                `x\x0dy\x09z\x0a`,
		"\u202eabc\u2069":          `\u202eabc\u2069`,
		"\x9b\u0085":               `\x9b\x85`,
		"bad\xffbyte":              `bad\xffbyte`,
	} {
		if got := safe(in); got != want {
			t.Errorf("safe(%q) = %q, want %q", in, got, want)
		}
	}
	b := jsonSafe([]byte("{\"n\": \"a\u202eb\u0085\"}\n"))
	var v map[string]string
	if err := json.Unmarshal(b, &v); err != nil || v["n"] != "a\u202eb\u0085" || bytes.ContainsRune(b, 0x202e) {
		t.Errorf("jsonSafe: %q → %v %v", b, v, err)
	}
}
