package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Strings that other devices control — device names, keys, topics,
// messages, the daemon's error messages that quote them — reach the
// person's terminal. A control character there can move the cursor, erase
// a line or recolour it, and a bidi control can reorder what follows: a
// device name beside the safety code in the approval prompt could paint
// over the code. Every such string is printed through safe (or %q, which
// escapes the same characters), and --json output through jsonSafe.

// unsafeRune reports whether r must not reach a terminal as it is: the C0
// controls (tab and newline too: they would break a table's columns or
// fake a line), DEL, the C1 controls (U+0080–U+009F: 8-bit CSI, OSC…), the
// line and paragraph separators, and the bidi controls (embeddings,
// overrides, isolates and marks).
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0x2028, r == 0x2029,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// safe returns s with each unsafe character written as a Go escape (\x1b,
// \u202e) and each byte that is not UTF-8 as \xNN; anything else is kept,
// so that names in any script read as they are.
func safe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// safeText is safe for a message of several lines: newlines stay.
func safeText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safe(l)
	}
	return strings.Join(lines, "\n")
}

func needsEscape(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			return true
		}
	}
	return false
}

// jsonSafe rewrites JSON that encoding/json made so that it holds no
// unsafe character raw: encoding/json escapes the C0 controls but writes
// the C1 and bidi controls as they are. Those can only be inside strings,
// where \uXXXX means the same. (The C0 characters left, newlines and
// spaces, are the JSON's own.)
func jsonSafe(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x80 && unsafeRune(r) }) {
		return b
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		if r >= 0x80 && unsafeRune(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
			continue
		}
		out.WriteRune(r)
	}
	return out.Bytes()
}
