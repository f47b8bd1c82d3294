package auth

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	testNow     = time.Unix(1_800_000_000, 0)
	testExpires = testNow.Add(24 * time.Hour)
)

func testInvite(t testing.TB, tag byte) *Invite {
	t.Helper()
	inv, err := NewInvite(testSpace(t, tag), testExpires, newDetRand("invite "+string(rune('a'+tag))))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestInviteKnownAnswers pins the derivations and both encodings (checked
// against an independent implementation with Python's hmac, hashlib and
// base64).
func TestInviteKnownAnswers(t *testing.T) {
	inv := &Invite{Space: testSpace(t, 0x20), Secret: InviteSecret(seq(0, InviteSecretSize)), Expires: time.Unix(1_800_000_000, 0)}
	rk := inv.RequestKey()
	link, err := inv.Link()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][2]string{
		"invite ID":  {hex.EncodeToString(rk.ID[:]), "08031f0645ab195bae7a443888057739"},
		"invite key": {hex.EncodeToString(rk.Key[:]), "61bed108e468f3ff9e0d597b9d27b32c23be894c4f9d12ef0542be61a9a814bd"},
		"code":       {inv.Code(), "000G-40R4-0M30-E209-9EY0"},
		"link":       {link, "mycel://join/04G228H34GJJC9S854N2PB1D5RQK0C9J6CT3ADHQ70WKMESW7MZ3Y001081G81860W40J0000006PJEJ00F00"},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %s, want %s", name, c[0], c[1])
		}
	}
	if rk.Kind != RequestByInvite || inv.ID() != InviteID(rk.ID) {
		t.Fatal("request key of the wrong kind or ID")
	}
}

func TestInviteRoundTrips(t *testing.T) {
	inv := testInvite(t, 1)
	link, err := inv.Link()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, InviteLinkPrefix) || strings.ContainsAny(link, " \n") || len(link) != len(InviteLinkPrefix)+85 {
		t.Fatalf("link %q", link)
	}
	for _, form := range []string{
		link,
		strings.ToUpper(link),
		strings.ToLower(link),
		"  " + link + "\n",
		link[:40] + "\n" + link[40:], // wrapped by a terminal
	} {
		got, err := ParseInvite(form, testNow)
		if err != nil {
			t.Fatalf("ParseInvite(%q): %v", form, err)
		}
		if !reflect.DeepEqual(got, inv) {
			t.Fatalf("link round trip: %v, want %v", got, inv)
		}
	}

	code := inv.Code()
	if len(code) != 24 || strings.Count(code, "-") != 4 {
		t.Fatalf("code %q", code)
	}
	bare := strings.ReplaceAll(code, "-", "")
	for _, form := range []string{
		code,
		bare,
		strings.ToLower(code),
		" " + strings.ReplaceAll(code, "-", " ") + " ",
		bare[:10] + "-" + bare[10:],
		strings.NewReplacer("0", "O", "1", "I").Replace(code),
		strings.NewReplacer("0", "o", "1", "l").Replace(code),
	} {
		got, err := ParseInvite(form, testNow)
		if err != nil {
			t.Fatalf("ParseInvite(%q): %v", form, err)
		}
		if got.Secret != inv.Secret || got.KnowsSpace() || !got.Expires.IsZero() {
			t.Fatalf("code round trip: %v", got)
		}
		if got.ID() != inv.ID() || got.RequestKey() != inv.RequestKey() {
			t.Fatal("a code-only invite derives another ID or key")
		}
	}
}

func TestParseInviteRefuses(t *testing.T) {
	inv := testInvite(t, 2)
	link, _ := inv.Link()
	code := inv.Code()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, c := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrMalformed},
		{"blank", " \n\t", ErrMalformed},
		{"other scheme", "https://example.org/join/" + link[len(InviteLinkPrefix):], ErrMalformed},
		{"other mycel path", "mycel://space/" + link[len(InviteLinkPrefix):], ErrMalformed},
		{"link truncated", link[:len(link)-1], ErrMalformed},
		{"link extended", link + "0", ErrMalformed},
		{"link typo", flip(link, 30), ErrChecksum},
		{"link typo in last character", flip(link, len(link)-1), ErrChecksum},
		{"link bad character", link[:30] + "U" + link[31:], ErrMalformed},
		{"link non-ASCII", link[:30] + "ı" + link[32:], ErrMalformed},
		{"code typo", flip(code, 0), ErrChecksum},
		{"code typo in last character", flip(code, len(code)-1), ErrChecksum},
		{"code short", code[:len(code)-1], ErrMalformed},
		{"code long", code + "0", ErrMalformed},
		{"code bad character", "U" + code[1:], ErrMalformed},
		{"code punctuation", code[:5] + "!" + code[6:], ErrMalformed},
		{"huge", strings.Repeat("0", 5000), ErrTooLarge},
	} {
		if _, err := ParseInvite(c.in, testNow); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}

	// A link of another version: rebuild one with a good checksum.
	b, _ := decodeCrockford(link[len(InviteLinkPrefix):], inviteLinkPayloadSize)
	b[0] = 2
	copy(b[len(b)-2:], checksum(labelInviteLink, b[:len(b)-2]))
	if _, err := ParseInvite(InviteLinkPrefix+crockford.EncodeToString(b), testNow); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "version") {
		t.Errorf("link of version 2: %v", err)
	}
}

func TestInviteExpiry(t *testing.T) {
	inv := testInvite(t, 3)
	link, _ := inv.Link()
	if _, err := ParseInvite(link, testExpires.Add(-time.Second)); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	for _, now := range []time.Time{testExpires, testExpires.Add(time.Hour)} {
		if _, err := ParseInvite(link, now); !errors.Is(err, ErrExpired) {
			t.Fatalf("at %s: %v, want ErrExpired", now, err)
		}
	}
	if _, err := NewInvite(inv.Space, time.Time{}, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("invite without expiry: %v", err)
	}
	// Expiry is kept in whole seconds.
	odd, err := NewInvite(inv.Space, testExpires.Add(1500*time.Millisecond), nil)
	if err != nil || odd.Expires != testExpires.Add(time.Second) {
		t.Fatalf("expiry %v, %v", odd.Expires, err)
	}
}

func TestInviteLocator(t *testing.T) {
	inv := testInvite(t, 4)
	loc, err := inv.Locator(newDetRand("locator"))
	if err != nil {
		t.Fatal(err)
	}
	if len(loc) != InviteLocatorSize {
		t.Fatalf("locator of %d bytes, want %d", len(loc), InviteLocatorSize)
	}
	typed, err := ParseInvite(inv.Code(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := typed.Link(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("link of a code-only invite: %v", err)
	}
	if _, err := typed.Locator(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("locator of a code-only invite: %v", err)
	}
	found, err := typed.Locate(loc, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(found, inv) {
		t.Fatalf("located %v, want %v", found, inv)
	}
	if _, err := typed.Locate(loc, testExpires); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired locator: %v", err)
	}
	other := testInvite(t, 5)
	if _, err := other.Locate(loc, testNow); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another invite's locator: %v", err)
	}
	tampered := []byte(string(loc))
	tampered[30] ^= 1
	if _, err := typed.Locate(tampered, testNow); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered locator: %v", err)
	}
	if _, err := typed.Locate(loc[:10], testNow); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short locator: %v", err)
	}
	wrongSpace, _ := typed.WithSpace(testSpace(t, 9))
	if _, err := wrongSpace.Locate(loc, testNow); !errors.Is(err, ErrMismatch) {
		t.Fatalf("locator of another space: %v", err)
	}

	// --space instead of a locator.
	named, err := typed.WithSpace(inv.Space)
	if err != nil || !named.KnowsSpace() || named.Space != inv.Space || named.RequestKey() != inv.RequestKey() {
		t.Fatalf("WithSpace: %v, %v", named, err)
	}
	if _, err := inv.WithSpace(testSpace(t, 9)); !errors.Is(err, ErrMismatch) {
		t.Fatalf("WithSpace of another space: %v", err)
	}
}

func TestInviteRecord(t *testing.T) {
	inv := testInvite(t, 6)
	rec := inv.Record()
	if rec.RequestKey() != inv.RequestKey() || rec.Expires != inv.Expires {
		t.Fatal("record does not match its invite")
	}
	if err := rec.Check(testNow); err != nil {
		t.Fatal(err)
	}
	if err := rec.Check(testExpires); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired record: %v", err)
	}
	enc, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back InviteRecord
	if err := back.UnmarshalBinary(enc); err != nil || back != rec {
		t.Fatalf("record round trip: %v, %v", back, err)
	}

	feed := [32]byte(seq(0x40, 32))
	if err := rec.MarkUsed(feed); err != nil {
		t.Fatal(err)
	}
	if err := rec.MarkUsed(feed); err != nil {
		t.Fatalf("marking used again for the same feed: %v", err)
	}
	if err := rec.MarkUsed([32]byte(seq(0x41, 32))); !errors.Is(err, ErrUsed) {
		t.Fatalf("marking used for another feed: %v", err)
	}
	if err := rec.Check(testNow); !errors.Is(err, ErrUsed) {
		t.Fatalf("used record: %v", err)
	}
	enc, _ = rec.MarshalBinary()
	if err := back.UnmarshalBinary(enc); err != nil || back != rec {
		t.Fatalf("used record round trip: %v, %v", back, err)
	}
	for _, s := range []string{fmtV(rec), fmtV(inv), fmtV(inv.RequestKey())} {
		if strings.Contains(s, hex.EncodeToString(rec.Key[:4])) || strings.Contains(s, hex.EncodeToString(inv.Secret[:4])) {
			t.Fatalf("formatting leaks a secret: %s", s)
		}
	}

	for name, in := range map[string][]byte{
		"garbage":        {0xff, 0xff},
		"short ID":       mustHex(t, "0a0102"),
		"no key":         mustHex(t, "0a10"+strings.Repeat("00", 16)),
		"used_by unused": mustHex(t, "0a10"+strings.Repeat("00", 16)+"1220"+strings.Repeat("11", 32)+"1801"+"2a20"+strings.Repeat("22", 32)),
		"used, no by":    mustHex(t, "0a10"+strings.Repeat("00", 16)+"1220"+strings.Repeat("11", 32)+"1801"+"2001"),
		"no expiry":      mustHex(t, "0a10"+strings.Repeat("00", 16)+"1220"+strings.Repeat("11", 32)),
		"huge":           make([]byte, MaxInviteRecordSize+1),
	} {
		var r InviteRecord
		if err := r.UnmarshalBinary(in); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("record %s: %v", name, err)
		}
	}
}

// TestInviteLinkHints: a link carries where to reach the space (peer ID
// and addresses) after its payload; they round-trip, in any case (a QR
// code holds the link in capitals), the code stays as short as before,
// and a damaged or oversized hints part is refused with its sentinel.
func TestInviteLinkHints(t *testing.T) {
	inv := &Invite{Space: testSpace(t, 0x31), Secret: InviteSecret(seq(7, InviteSecretSize)), Expires: testExpires}
	plain, err := inv.Link()
	if err != nil {
		t.Fatal(err)
	}
	inv.Hints = InviteHints{Peer: seq(1, 38), Addrs: [][]byte{seq(2, 8), seq(3, 9), seq(4, 49)}}
	link, err := inv.Link()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, plain+"/") || len(inv.Code()) != 24 {
		t.Fatalf("link %q does not extend %q, or the code grew: %q", link, plain, inv.Code())
	}
	for _, form := range []string{link, strings.ToUpper(link), link[:60] + "\n" + link[60:]} {
		got, err := ParseInvite(form, testNow)
		if err != nil || !reflect.DeepEqual(got, inv) {
			t.Fatalf("ParseInvite(%q) = %+v, %v; want %+v", form, got, err, inv)
		}
	}
	// A link without hints still parses, with none.
	if got, err := ParseInvite(plain, testNow); err != nil || !got.Hints.IsZero() {
		t.Fatalf("link without hints: %+v %v", got, err)
	}

	flip := []byte(link)
	i := len(plain) + 5
	if flip[i] == 'A' {
		flip[i] = 'B'
	} else {
		flip[i] = 'A'
	}
	big := InviteHints{Peer: seq(1, 38)}
	for range MaxInviteHintAddrs {
		big.Addrs = append(big.Addrs, seq(5, MaxInviteHintAddrSize))
	}
	bigPayload := []byte{inviteHintsVersion, 38}
	bigPayload = append(append(bigPayload, seq(1, 38)...), byte(MaxInviteHintAddrs))
	for _, a := range big.Addrs {
		bigPayload = append(append(bigPayload, byte(len(a))), a...)
	}
	bigPayload = append(bigPayload, checksum(labelInviteHints, bigPayload)...)
	for name, c := range map[string]struct {
		link string
		want error
	}{
		"flipped":   {string(flip), ErrChecksum},
		"truncated": {link[:len(link)-3], ErrMalformed},
		"empty":     {plain + "/", ErrMalformed},
		"oversized": {plain + "/" + crockford.EncodeToString(bigPayload), ErrTooLarge},
		"garbage":   {plain + "/" + strings.Repeat("U", 40), ErrMalformed},
	} {
		if _, err := ParseInvite(c.link, testNow); !errors.Is(err, c.want) {
			t.Errorf("%s hints: %v, want %v", name, err, c.want)
		}
	}
	inv.Hints = big
	if _, err := inv.Link(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("hints over %d bytes made a link: %v", MaxInviteHintsSize, err)
	}
	inv.Hints = InviteHints{Addrs: [][]byte{seq(2, 8)}}
	if _, err := inv.Link(); !errors.Is(err, ErrMalformed) {
		t.Errorf("hints without a peer made a link: %v", err)
	}
}
