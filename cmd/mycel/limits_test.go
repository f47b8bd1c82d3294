package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/space"
)

// TestCLIValueLimit: a value over the space's limit (512 KiB) is refused
// by put, in the words of that limit, and never reaches the daemon; one
// at the limit is stored.
func TestCLIValueLimit(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	for _, size := range []int{space.MaxValueSize + 1, 5 << 20} {
		f := filepath.Join(dir, fmt.Sprint(size))
		os.WriteFile(f, make([]byte, size), 0o600)
		_, stderr, code := e.run(t, "", "put", "notes", "big", "--file", f)
		if code != 1 || !strings.Contains(stderr, "at most 512 KiB") || strings.Contains(stderr, "4194304") {
			t.Errorf("put of %d bytes: exit %d, stderr %q; want a refusal naming 512 KiB", size, code, stderr)
		}
	}
	if w := e.fake.Writes(); len(w) != 0 {
		t.Fatalf("values over the limit reached the daemon: %v", w)
	}
	f := filepath.Join(dir, "max")
	os.WriteFile(f, make([]byte, space.MaxValueSize), 0o600)
	if _, stderr, code := e.run(t, "", "put", "notes", "big", "--file", f); code != 0 {
		t.Fatalf("put of %d bytes: exit %d, %s", space.MaxValueSize, code, stderr)
	}
}

// TestLimitsStatedAlike holds the README's table of limits and the help
// texts to the constants that enforce them.
func TestLimitsStatedAlike(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{
		"key":                         fmt.Sprintf("1 to %d bytes of UTF-8", space.MaxKeySize),
		"value":                       fmt.Sprintf("at most %d KiB", space.MaxValueSize>>10),
		"name of a space or a device": fmt.Sprintf("1 to %d bytes of UTF-8", space.MaxNameSize),
		"API request body":            fmt.Sprintf("at most %d MiB", api.DefaultMaxBody>>20),
		"keys per listing page":       fmt.Sprintf("%d by default, at most %d", api.DefaultListLimit, api.MaxListLimit),
		"streams open at once (watch, requests, messages)": fmt.Sprintf("%d; one more is `429 too_many`", api.DefaultMaxStreams),
		"app message":                                fmt.Sprintf("at most %d KiB, topic 1 to %d bytes", api.MaxMessageData>>10, api.MaxMessageTopic),
		"space password":                             fmt.Sprintf("%d to %d bytes", api.MinPassword, api.MaxPassword),
		"a space named by a prefix of its ID":        fmt.Sprintf("%d or more hex digits", minSpacePrefix),
		"a device named by a prefix of its feed key": fmt.Sprintf("%d or more hex digits", minDevicePrefix),
		"a join request named by a prefix of its ID": fmt.Sprintf("%d or more hex digits", api.MinRequestPrefix),
	}
	for what, limit := range rows {
		if row := "| " + what + " | " + limit + " |"; !strings.Contains(string(readme), row) {
			t.Errorf("README.md lacks the row %q", row)
		}
	}
	if strings.Contains(string(readme), "8+ hex digits") {
		t.Errorf("README.md still names a space by 8+ hex digits; the CLI takes %d", minSpacePrefix)
	}
	helps := map[string][]string{
		fmt.Sprintf("prefix of %d or more hex digits", minSpacePrefix): {"space", "--help"},
		fmt.Sprintf("or %d or more hex digits", api.MinRequestPrefix):  {"approve", "--help"},
		fmt.Sprintf("or %d or\nmore hex digits", minDevicePrefix):      {"remove", "--help"},
	}
	for want, args := range helps {
		if out, _, _ := runCLI(t, "", args...); !strings.Contains(out, want) {
			t.Errorf("mycel %v does not say %q:\n%s", args, want, out)
		}
	}
}
