package inviteqr

import (
	"image"
	"image/color"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/mycelsync/mycel/auth"
)

var now = time.Unix(1_800_000_000, 0)

func testInvite(t *testing.T) *auth.Invite {
	t.Helper()
	space, err := auth.SpaceIDFromBytes([]byte(strings.Repeat("s", auth.SpaceIDSize)))
	if err != nil {
		t.Fatal(err)
	}
	return &auth.Invite{Space: space, Secret: auth.InviteSecret([]byte("0123456789")), Expires: now.Add(time.Hour)}
}

// fromTerminal turns rendered half blocks back into modules (true = dark).
func fromTerminal(t *testing.T, s string, invert bool) [][]bool {
	t.Helper()
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		top, bottom := []bool{}, []bool{}
		for _, r := range line {
			var dt, db bool // drawn top, drawn bottom
			switch r {
			case ' ':
			case '▀':
				dt = true
			case '▄':
				db = true
			case '█':
				dt, db = true, true
			default:
				t.Fatalf("unexpected rune %q", r)
			}
			top, bottom = append(top, dt == invert), append(bottom, db == invert)
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

// decode reads a QR code from modules with an independent decoder (ZXing's
// Go port), drawing each module as 4 × 4 pixels.
func decode(t *testing.T, bm [][]bool) string {
	t.Helper()
	const px = 4
	img := image.NewGray(image.Rect(0, 0, len(bm[0])*px, len(bm)*px))
	for y := range img.Bounds().Dy() {
		for x := range img.Bounds().Dx() {
			c := color.Gray{Y: 255}
			if bm[y/px][x/px] {
				c.Y = 0
			}
			img.SetGray(x, y, c)
		}
	}
	src, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(src, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return res.GetText()
}

func TestTerminalDecodes(t *testing.T) {
	inv := testInvite(t)
	text, err := Text(inv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "MYCEL://JOIN/") {
		t.Fatalf("QR text %q", text)
	}
	bm, err := Bitmap(text)
	if err != nil {
		t.Fatal(err)
	}
	// Version 5 (37 modules) in alphanumeric mode, plus the quiet zone.
	if n := 37 + 2*QuietZone; len(bm) != n || len(bm[0]) != n {
		t.Fatalf("%d × %d modules, want %d × %d", len(bm), len(bm[0]), n, n)
	}
	for _, invert := range []bool{false, true} {
		s, err := Terminal(text, invert)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		if len(lines) != (len(bm)+1)/2 {
			t.Fatalf("%d lines for %d rows", len(lines), len(bm))
		}
		back := fromTerminal(t, s, invert)
		for y := range bm {
			for x := range bm[y] {
				if back[y][x] != bm[y][x] {
					t.Fatalf("invert %t: module (%d, %d) differs", invert, x, y)
				}
			}
		}
		for x := range bm[0] { // the padding row is light
			if back[len(bm)][x] {
				t.Fatalf("invert %t: padding row dark at %d", invert, x)
			}
		}
		again, _ := Terminal(text, invert)
		if again != s {
			t.Fatal("rendering is not deterministic")
		}
		got, err := auth.ParseInvite(decode(t, back[:len(bm)]), now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, inv) {
			t.Fatalf("decoded invite %v, want %v", got, inv)
		}
	}
	if _, err := Text(&auth.Invite{Secret: inv.Secret}); err == nil {
		t.Fatal("QR text of a code-only invite")
	}
}

// TestHintedLinkDecodes: a link with hints (two addresses and a relay
// circuit, as a daemon makes it) still makes a QR code a camera reads
// back to the same invite, at version 10 (57 modules) or less.
func TestHintedLinkDecodes(t *testing.T) {
	inv := testInvite(t)
	peer := make([]byte, 38)
	inv.Hints = auth.InviteHints{Peer: peer, Addrs: [][]byte{make([]byte, 8), make([]byte, 9), make([]byte, 49)}}
	for i := range inv.Hints.Addrs {
		for j := range inv.Hints.Addrs[i] {
			inv.Hints.Addrs[i][j] = byte(i*31 + j)
		}
	}
	text, err := Text(inv)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := Bitmap(text)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(bm) - 2*QuietZone; n > 57 {
		t.Errorf("%d modules across, more than version 10's 57", n)
	}
	got, err := auth.ParseInvite(decode(t, bm), now)
	if err != nil || !reflect.DeepEqual(got, inv) {
		t.Fatalf("decoded %+v (%v), want %+v", got, err, inv)
	}
}
