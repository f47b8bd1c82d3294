// Package inviteqr shows an invite link as a QR code in a terminal, for
// `mycel invite`: the new device's camera reads it, and auth.ParseInvite
// reads the link it holds.
//
// It is apart from package auth so that the browser node, which draws its
// own QR codes, does not carry a QR encoder. The encoder is
// github.com/skip2/go-qrcode.
package inviteqr

import (
	"fmt"
	"strings"

	"github.com/mycelsync/mycel/auth"
	qrcode "github.com/skip2/go-qrcode"
)

// Level is the error correction of the codes: M restores 15% of the
// modules, enough for a photo of a screen.
const Level = qrcode.Medium

// QuietZone is the light border around a code, in modules (the QR
// standard asks for 4; scanners read 2 fine, and a terminal has little
// room).
const QuietZone = 2

// Text is what the QR code of an invite holds: its link in capitals. QR
// codes hold capitals, digits and ":/" in alphanumeric mode (5.5 bits a
// character instead of 8), which keeps an invite at version 5, 37 × 37
// modules; auth.ParseInvite reads the link in any case.
func Text(inv *auth.Invite) (string, error) {
	link, err := inv.Link()
	if err != nil {
		return "", err
	}
	return strings.ToUpper(link), nil
}

// Bitmap returns the modules of the QR code of text, true for dark, with
// a quiet zone of QuietZone modules on each side.
func Bitmap(text string) ([][]bool, error) {
	q, err := qrcode.New(text, Level)
	if err != nil {
		return nil, fmt.Errorf("inviteqr: %w", err)
	}
	q.DisableBorder = true
	inner := q.Bitmap()
	n := len(inner) + 2*QuietZone
	out := make([][]bool, n)
	for y := range out {
		out[y] = make([]bool, n)
		if y >= QuietZone && y < n-QuietZone {
			copy(out[y][QuietZone:], inner[y-QuietZone])
		}
	}
	return out, nil
}

// Terminal renders the QR code of text with Unicode half blocks, two rows
// of modules per line of text, each line ending in "\n". Light modules are
// drawn in the foreground colour (█, ▀, ▄) and dark ones left blank, which
// is right for the usual light-on-dark terminal; invert is for a dark-on-
// light one. Scanners read both polarities, but the quiet zone must be
// light to be found.
func Terminal(text string, invert bool) (string, error) {
	bm, err := Bitmap(text)
	if err != nil {
		return "", err
	}
	// glyph[top drawn][bottom drawn]
	glyph := [2][2]string{{" ", "▄"}, {"▀", "█"}}
	drawn := func(y, x int) bool {
		if y >= len(bm) {
			return !invert // the row below an odd-sized code: light
		}
		return bm[y][x] == invert
	}
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			b.WriteString(glyph[b2i(drawn(y, x))][b2i(drawn(y+1, x))])
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}
