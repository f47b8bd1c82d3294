package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mycelsync/mycel/auth/authpb"
)

// Invite sizes and encodings (FORMAT.md, "Invites").
const (
	// InviteSecretSize is the size of an invite secret: 80 bits, so that
	// the short code stays short enough to type (20 characters).
	InviteSecretSize = 10
	// InviteIDSize is the size of an invite ID, the same as a KeyID.
	InviteIDSize = KeyIDSize

	// DefaultInviteLifetime is how long an invite should stay valid unless
	// the person asks otherwise: long enough to reach the other device,
	// short enough that a leaked one is soon worthless.
	DefaultInviteLifetime = 24 * time.Hour

	// InviteLinkPrefix starts every invite link. ParseInvite accepts it in
	// any case: a QR code carries the link in capitals, which its
	// alphanumeric mode packs more densely.
	InviteLinkPrefix = "mycel://join/"

	inviteLinkVersion  = 1
	inviteChecksumSize = 2
	// version (1) ‖ space ID (32) ‖ secret (10) ‖ expiry (8) ‖ checksum (2)
	inviteLinkPayloadSize = 1 + SpaceIDSize + InviteSecretSize + 8 + inviteChecksumSize
	// secret (10) ‖ checksum (2) in Crockford base32: 20 characters.
	inviteCodePayloadSize = InviteSecretSize + inviteChecksumSize
	inviteCodeLen         = (inviteCodePayloadSize*8 + 4) / 5
	inviteCodeGroup       = 4

	// maxInviteText bounds what ParseInvite looks at, whitespace included:
	// a link with the largest hints is 98 + 1 + 824 characters.
	maxInviteText = 2048

	// MaxInviteHintAddrs, MaxInviteHintAddrSize and MaxInviteHintPeerSize
	// bound the hints of a link (InviteHints): a few addresses, each a
	// binary multiaddr (a relay's circuit address with its peer ID takes
	// about 50 bytes), and a peer ID (38 bytes for an Ed25519 key).
	MaxInviteHintAddrs    = 8
	MaxInviteHintAddrSize = 128
	MaxInviteHintPeerSize = 64
	// MaxInviteHintsSize bounds the encoded hints.
	MaxInviteHintsSize = 512
	inviteHintsVersion = 1
	// inviteLocatorPlainSize is space ID (32) ‖ expiry (8).
	inviteLocatorPlainSize = SpaceIDSize + 8
	// InviteLocatorSize is the size of a sealed invite locator.
	InviteLocatorSize = ContentOverhead + inviteLocatorPlainSize
	// MaxInviteRecordSize bounds an encoded InviteRecord (its fields take
	// at most 98 bytes; the rest is room for fields added later).
	MaxInviteRecordSize = 256
)

// Labels of the invite derivations and checksums.
const (
	labelInviteID       = "mycel/v1/invite-id"
	labelInviteKey      = "mycel/v1/invite-key"
	labelInviteLink     = "mycel/v1/invite-link-check"
	labelInviteCode     = "mycel/v1/invite-code-check"
	labelInviteLocator  = "mycel/v1/invite-locator"
	labelInviteHints    = "mycel/v1/invite-hints-check"
	crockfordAlphabet   = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	inviteFormsExpected = "an invite is a " + InviteLinkPrefix + "… link or a code of 20 letters and digits"
)

var crockford = base32.NewEncoding(crockfordAlphabet).WithPadding(base32.NoPadding)

// InviteSecret is the random secret of an invite. The invite ID and key
// are derived from it; whoever holds it may ask to join (and only ask).
type InviteSecret [InviteSecretSize]byte

// InviteID names an invite in public: the key_id of the ephemeral
// envelopes that carry join requests made with it, the name under which a
// member publishes its locator. It reveals nothing of the secret.
type InviteID [InviteIDSize]byte

// String returns the ID in lowercase hex.
func (id InviteID) String() string { return hex.EncodeToString(id[:]) }

// Invite lets one new device ask to join a space, once, until it expires.
//
// An invite parsed from a short code knows only its secret: Space and
// Expires are zero until Locate fills them in from the locator a member
// published (or the person names the space, see WithSpace).
type Invite struct {
	Space   SpaceID
	Secret  InviteSecret
	Expires time.Time // whole seconds; zero when unknown
	// Hints say where to reach the inviting device; a link carries them,
	// a code does not. Empty when unknown.
	Hints InviteHints
}

// InviteHints say where a new device may reach the space: the inviting
// device's peer ID and its addresses — direct ones, and circuit addresses
// through the space's relays once there are relays — so that a device
// outside the LAN can join without being told a peer. They are hints, not
// trust: the joining device dials them and sends its request there, sealed
// under the invite's key like any; whoever answers must still be a member
// whose approval checks out. Package auth treats them as opaque bytes (the
// node encodes and decodes the multiaddrs).
type InviteHints struct {
	// Peer is the inviting device's libp2p peer ID, binary: 1 to
	// MaxInviteHintPeerSize bytes.
	Peer []byte
	// Addrs are binary multiaddrs without the trailing /p2p/<Peer>: 1 to
	// MaxInviteHintAddrs, each 1 to MaxInviteHintAddrSize bytes.
	Addrs [][]byte
}

// IsZero reports whether there are no hints.
func (h InviteHints) IsZero() bool { return len(h.Peer) == 0 && len(h.Addrs) == 0 }

// hintsPayload encodes h (FORMAT.md, "Invites"):
//
//	version (1) = 0x01 ‖ peer length (1) ‖ peer ‖ address count (1) ‖
//	{ address length (1) ‖ address }… ‖ checksum (2)
func (h InviteHints) payload() ([]byte, error) {
	switch {
	case len(h.Peer) == 0 || len(h.Peer) > MaxInviteHintPeerSize:
		return nil, errorf(ErrMalformed, "invite hints: peer ID of %d bytes, want 1 to %d", len(h.Peer), MaxInviteHintPeerSize)
	case len(h.Addrs) == 0 || len(h.Addrs) > MaxInviteHintAddrs:
		return nil, errorf(ErrMalformed, "invite hints: %d addresses, want 1 to %d", len(h.Addrs), MaxInviteHintAddrs)
	}
	b := []byte{inviteHintsVersion, byte(len(h.Peer))}
	b = append(b, h.Peer...)
	b = append(b, byte(len(h.Addrs)))
	for _, a := range h.Addrs {
		if len(a) == 0 || len(a) > MaxInviteHintAddrSize {
			return nil, errorf(ErrMalformed, "invite hints: address of %d bytes, want 1 to %d", len(a), MaxInviteHintAddrSize)
		}
		b = append(append(b, byte(len(a))), a...)
	}
	b = append(b, checksum(labelInviteHints, b)...)
	if len(b) > MaxInviteHintsSize {
		return nil, errorf(ErrTooLarge, "invite hints of %d bytes, limit %d", len(b), MaxInviteHintsSize)
	}
	return b, nil
}

// parseInviteHints decodes what payload encoded, refusing anything else:
// a wrong checksum (ErrChecksum), bounds exceeded or bytes left over
// (ErrMalformed, ErrTooLarge).
func parseInviteHints(b []byte) (InviteHints, error) {
	var h InviteHints
	if len(b) > MaxInviteHintsSize {
		return h, errorf(ErrTooLarge, "invite hints of %d bytes, limit %d", len(b), MaxInviteHintsSize)
	}
	if len(b) < 1+1+1+1+1+1+inviteChecksumSize {
		return h, errorf(ErrMalformed, "invite hints of %d bytes", len(b))
	}
	body, sum := b[:len(b)-inviteChecksumSize], b[len(b)-inviteChecksumSize:]
	if !bytes.Equal(checksum(labelInviteHints, body), sum) {
		return h, errorf(ErrChecksum, "invite link: hints checksum mismatch (copied incompletely?)")
	}
	if body[0] != inviteHintsVersion {
		return h, errorf(ErrMalformed, "invite hints of version %d, want %d", body[0], inviteHintsVersion)
	}
	rest := body[1:]
	take := func(max int, what string) ([]byte, error) {
		if len(rest) < 1 || rest[0] == 0 || int(rest[0]) > max || len(rest) < 1+int(rest[0]) {
			return nil, errorf(ErrMalformed, "invite hints: bad %s length", what)
		}
		v := bytes.Clone(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
		return v, nil
	}
	var err error
	if h.Peer, err = take(MaxInviteHintPeerSize, "peer ID"); err != nil {
		return InviteHints{}, err
	}
	if len(rest) < 1 || rest[0] == 0 || rest[0] > MaxInviteHintAddrs {
		return InviteHints{}, errorf(ErrMalformed, "invite hints: bad address count")
	}
	n := int(rest[0])
	rest = rest[1:]
	for range n {
		a, err := take(MaxInviteHintAddrSize, "address")
		if err != nil {
			return InviteHints{}, err
		}
		h.Addrs = append(h.Addrs, a)
	}
	if len(rest) != 0 {
		return InviteHints{}, errorf(ErrMalformed, "invite hints: %d bytes after the addresses", len(rest))
	}
	return h, nil
}

// NewInvite returns a new invite to space that expires at expires (whole
// seconds; it must be set), with its secret read from rand (crypto/rand
// when nil).
func NewInvite(space SpaceID, expires time.Time, rand io.Reader) (*Invite, error) {
	if expires.Unix() <= 0 {
		return nil, errorf(ErrMalformed, "new invite: no expiry")
	}
	inv := &Invite{Space: space, Expires: time.Unix(expires.Unix(), 0)}
	if _, err := io.ReadFull(orCryptoRand(rand), inv.Secret[:]); err != nil {
		return nil, fmt.Errorf("auth: new invite: %w", err)
	}
	return inv, nil
}

// String hides the secret so that logging an invite leaks nothing.
func (inv *Invite) String() string {
	return fmt.Sprintf("Invite{ID: %s, Space: %s, Expires: %s, Secret: <redacted>}",
		inv.ID(), inv.Space, inv.Expires.UTC().Format(time.RFC3339))
}

// GoString hides the secret from %#v too.
func (inv *Invite) GoString() string { return inv.String() }

// KnowsSpace reports whether the invite names its space: always for one
// made by NewInvite or parsed from a link, after Locate or WithSpace for
// one parsed from a code.
func (inv *Invite) KnowsSpace() bool { return inv.Space != SpaceID{} }

// WithSpace returns a copy of a code-only invite that names space, for a
// person who typed the code together with the space's ID. It refuses an
// invite that already names another space. The expiry stays unknown to
// the device; members still check it.
func (inv *Invite) WithSpace(space SpaceID) (*Invite, error) {
	if inv.KnowsSpace() && inv.Space != space {
		return nil, errorf(ErrMismatch, "invite %s is to space %s, not %s", inv.ID(), inv.Space, space)
	}
	out := *inv
	out.Space = space
	return &out, nil
}

// ID derives the invite ID: the first 16 bytes of
// HKDF(secret, "mycel/v1/invite-id").
func (inv *Invite) ID() InviteID { return inviteID(inv.Secret) }

func inviteID(s InviteSecret) InviteID {
	k := derive(s[:], labelInviteID)
	return InviteID(k[:InviteIDSize])
}

// RequestKey derives the key that seals join requests made with the
// invite: HKDF(secret, "mycel/v1/invite-key"), named by the invite ID.
func (inv *Invite) RequestKey() RequestKey {
	return RequestKey{Kind: RequestByInvite, ID: inv.ID(), Key: derive(inv.Secret[:], labelInviteKey)}
}

// Record returns what the inviting member keeps of the invite (and writes
// into its feed): its ID, its request key and its expiry, not the secret.
func (inv *Invite) Record() InviteRecord {
	rk := inv.RequestKey()
	return InviteRecord{ID: rk.ID, Key: rk.Key, Expires: inv.Expires}
}

// Link encodes the invite as a link, one line of Crockford base32:
//
//	mycel://join/<version (1) ‖ space ID (32) ‖ secret (10) ‖ expiry (8) ‖ checksum (2)>[/<hints>]
//
// with the hints, when there are any, after a "/" (InviteHints). It needs
// the space and the expiry: a code-only invite has no link.
func (inv *Invite) Link() (string, error) {
	if !inv.KnowsSpace() || inv.Expires.IsZero() {
		return "", errorf(ErrMalformed, "invite link: the invite names no space or expiry")
	}
	b := make([]byte, 0, inviteLinkPayloadSize)
	b = append(b, inviteLinkVersion)
	b = append(b, inv.Space[:]...)
	b = append(b, inv.Secret[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(inv.Expires.Unix()))
	b = append(b, checksum(labelInviteLink, b)...)
	link := InviteLinkPrefix + crockford.EncodeToString(b)
	if !inv.Hints.IsZero() {
		h, err := inv.Hints.payload()
		if err != nil {
			return "", err
		}
		link += "/" + crockford.EncodeToString(h)
	}
	return link, nil
}

// Code encodes the invite's secret as a short code for a person to type:
// secret (10) ‖ checksum (2) in Crockford base32, 20 characters in groups
// of four, e.g. "7K3M-Q9TX-4RBN-0HZ2-WD8E". It carries neither the space
// nor the expiry: the joining device finds the space by the invite ID
// (Locate), or the person names it.
func (inv *Invite) Code() string {
	b := append(inv.Secret[:len(inv.Secret):len(inv.Secret)], checksum(labelInviteCode, inv.Secret[:])...)
	s := crockford.EncodeToString(b)
	var out strings.Builder
	for i := 0; i < len(s); i += inviteCodeGroup {
		if i > 0 {
			out.WriteByte('-')
		}
		out.WriteString(s[i:min(i+inviteCodeGroup, len(s))])
	}
	return out.String()
}

// checksum is the first 2 bytes of SHA-256(label ‖ 0x00 ‖ data). It
// catches typos and truncation; it is no defence against forgery, which
// the secret and expiry do not need (a forged link only asks to join a
// space whose members will not recognise its invite ID).
func checksum(label string, data []byte) []byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write(data)
	return h.Sum(nil)[:inviteChecksumSize]
}

// ParseInvite reads an invite in any of its textual forms: a link
// (mycel://join/…, in any case; a QR code holds the link) or a short code
// (spaces and dashes anywhere; Crockford's I, L → 1 and O → 0). Whitespace
// around and inside the text is ignored, so that a link wrapped by a
// terminal still parses.
//
// A link past its expiry at now is ErrExpired; a code carries no expiry,
// which Locate checks. A checksum that does not match is ErrChecksum
// (a typo), anything else that does not parse ErrMalformed.
func ParseInvite(s string, now time.Time) (*Invite, error) {
	if len(s) > maxInviteText {
		return nil, errorf(ErrTooLarge, "invite of %d bytes, limit %d", len(s), maxInviteText)
	}
	s = strings.Join(strings.Fields(s), "")
	if s == "" {
		return nil, errorf(ErrMalformed, "empty invite: %s", inviteFormsExpected)
	}
	if len(s) >= len(InviteLinkPrefix) && strings.EqualFold(s[:len(InviteLinkPrefix)], InviteLinkPrefix) {
		return parseInviteLink(s[len(InviteLinkPrefix):], now)
	}
	if strings.Contains(s, "://") || strings.HasPrefix(strings.ToLower(s), "mycel:") {
		return nil, errorf(ErrMalformed, "invite link does not start with %s", InviteLinkPrefix)
	}
	return parseInviteCode(s)
}

func parseInviteLink(s string, now time.Time) (*Invite, error) {
	s, hints, withHints := strings.Cut(s, "/")
	b, err := decodeCrockford(s, inviteLinkPayloadSize)
	if err != nil {
		return nil, fmt.Errorf("invite link: %w", err)
	}
	if b[0] != inviteLinkVersion {
		return nil, errorf(ErrMalformed, "invite link of version %d, want %d (a newer mycel made it?)", b[0], inviteLinkVersion)
	}
	body, sum := b[:len(b)-inviteChecksumSize], b[len(b)-inviteChecksumSize:]
	if !bytes.Equal(checksum(labelInviteLink, body), sum) {
		return nil, errorf(ErrChecksum, "invite link: checksum mismatch (copied incompletely?)")
	}
	inv := &Invite{Space: SpaceID(body[1:33]), Secret: InviteSecret(body[33:43])}
	exp := binary.BigEndian.Uint64(body[43:51])
	if exp == 0 || exp > 1<<62 {
		return nil, errorf(ErrMalformed, "invite link: expiry %d", exp)
	}
	inv.Expires = time.Unix(int64(exp), 0)
	if withHints {
		n := len(hints) * 5 / 8
		if n > MaxInviteHintsSize {
			return nil, errorf(ErrTooLarge, "invite hints of %d bytes, limit %d", n, MaxInviteHintsSize)
		}
		hb, err := decodeCrockford(hints, n)
		if err != nil {
			return nil, fmt.Errorf("invite link: hints: %w", err)
		}
		if inv.Hints, err = parseInviteHints(hb); err != nil {
			return nil, err
		}
	}
	if !now.Before(inv.Expires) {
		return nil, errorf(ErrExpired, "invite %s expired at %s", inv.ID(), inv.Expires.UTC().Format(time.RFC3339))
	}
	return inv, nil
}

func parseInviteCode(s string) (*Invite, error) {
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != inviteCodeLen {
		return nil, errorf(ErrMalformed, "invite code of %d characters, want %d: %s", len(s), inviteCodeLen, inviteFormsExpected)
	}
	b, err := decodeCrockford(s, inviteCodePayloadSize)
	if err != nil {
		return nil, fmt.Errorf("invite code: %w", err)
	}
	secret, sum := b[:InviteSecretSize], b[InviteSecretSize:]
	if !bytes.Equal(checksum(labelInviteCode, secret), sum) {
		return nil, errorf(ErrChecksum, "invite code: checksum mismatch (a typo?)")
	}
	return &Invite{Secret: InviteSecret(secret)}, nil
}

// decodeCrockford decodes Crockford base32 of exactly n bytes, mapping
// lowercase to capitals, I and L to 1, O to 0, and refusing non-canonical
// trailing bits.
func decodeCrockford(s string, n int) ([]byte, error) {
	if want := crockford.EncodedLen(n); len(s) != want {
		return nil, errorf(ErrMalformed, "%d characters, want %d", len(s), want)
	}
	norm := []byte(s)
	for i, c := range norm {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
			norm[i] = c
		}
		switch c {
		case 'I', 'L':
			norm[i] = '1'
		case 'O':
			norm[i] = '0'
		}
		if strings.IndexByte(crockfordAlphabet, norm[i]) < 0 {
			return nil, errorf(ErrMalformed, "character %q is not a letter or digit of the invite alphabet", s[i])
		}
	}
	b := make([]byte, n)
	if _, err := crockford.Decode(b, norm); err != nil {
		return nil, errorf(ErrMalformed, "%v", err)
	}
	if crockford.EncodeToString(b) != string(norm) {
		// The last character carries unused bits that must be zero; a
		// changed character there is a typo the checksum cannot see.
		return nil, errorf(ErrChecksum, "last character %q is not a possible one (a typo?)", s[len(s)-1])
	}
	return b, nil
}

// Locator returns what a member publishes under the invite ID (with a
// relay, in the DHT) so that a device holding only the short code can find
// the space: the space ID and expiry sealed under the invite's request key,
//
//	SealContent(request key, space ID (32) ‖ expiry (uint64 BE, 8),
//	            additional data = "mycel/v1/invite-locator" ‖ 0x00 ‖ invite ID)
//
// Whoever stores it learns that some space has an open invite, nothing
// more. Nonce from rand (crypto/rand when nil).
func (inv *Invite) Locator(rand io.Reader) ([]byte, error) {
	if !inv.KnowsSpace() || inv.Expires.IsZero() {
		return nil, errorf(ErrMalformed, "invite locator: the invite names no space or expiry")
	}
	pt := make([]byte, 0, inviteLocatorPlainSize)
	pt = append(pt, inv.Space[:]...)
	pt = binary.BigEndian.AppendUint64(pt, uint64(inv.Expires.Unix()))
	rk := inv.RequestKey()
	return SealContent(rk.Key, pt, locatorAD(rk.ID), rand)
}

func locatorAD(id InviteID) []byte {
	return append(append([]byte(labelInviteLocator), 0), id[:]...)
}

// Locate opens a locator found under the invite's ID and returns the
// invite with its space and expiry filled in. A locator of another invite
// does not open (ErrDecrypt); an invite past its expiry at now is
// ErrExpired; one that already names a different space ErrMismatch.
func (inv *Invite) Locate(locator []byte, now time.Time) (*Invite, error) {
	if len(locator) != InviteLocatorSize {
		return nil, errorf(ErrMalformed, "invite locator of %d bytes, want %d", len(locator), InviteLocatorSize)
	}
	rk := inv.RequestKey()
	pt, err := OpenContent(rk.Key, locator, locatorAD(rk.ID))
	if err != nil {
		return nil, fmt.Errorf("invite locator: %w", err)
	}
	out := *inv
	space := SpaceID(pt[:SpaceIDSize])
	if inv.KnowsSpace() && inv.Space != space {
		return nil, errorf(ErrMismatch, "invite locator names space %s, the invite %s", space, inv.Space)
	}
	exp := binary.BigEndian.Uint64(pt[SpaceIDSize:])
	if exp == 0 || exp > 1<<62 {
		return nil, errorf(ErrMalformed, "invite locator: expiry %d", exp)
	}
	out.Space, out.Expires = space, time.Unix(int64(exp), 0)
	if !now.Before(out.Expires) {
		return nil, errorf(ErrExpired, "invite %s expired at %s", out.ID(), out.Expires.UTC().Format(time.RFC3339))
	}
	return &out, nil
}

// InviteRecord is what members keep of an invite: enough to recognise and
// open the join requests made with it, and to refuse them once it is
// spent or expired. It holds the request key, not the secret, so that it
// cannot make the link or code again. The inviting member writes it into
// its feed (sealed, like every op); marking it used is a later op with the
// record updated.
type InviteRecord struct {
	ID      InviteID
	Key     [KeySize]byte
	Expires time.Time // whole seconds
	Used    bool
	// UsedBy is the feed key of the device whose request spent the invite;
	// zero unless Used.
	UsedBy [32]byte
}

// String hides the key.
func (r InviteRecord) String() string {
	return fmt.Sprintf("InviteRecord{ID: %s, Expires: %s, Used: %t, Key: <redacted>}",
		r.ID, r.Expires.UTC().Format(time.RFC3339), r.Used)
}

// GoString hides the key from %#v too.
func (r InviteRecord) GoString() string { return r.String() }

// RequestKey returns the key that opens join requests made with the
// invite.
func (r InviteRecord) RequestKey() RequestKey {
	return RequestKey{Kind: RequestByInvite, ID: r.ID, Key: r.Key}
}

// Check reports whether a join request made with the invite may still be
// shown to a person at now: ErrExpired past its expiry, ErrUsed once
// spent.
func (r InviteRecord) Check(now time.Time) error {
	if r.Used {
		return errorf(ErrUsed, "invite %s", r.ID)
	}
	if !now.Before(r.Expires) {
		return errorf(ErrExpired, "invite %s expired at %s", r.ID, r.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// MarkUsed spends the invite on the request of the device whose feed is
// feed: when a member approves or denies it (a denied request may come
// from whoever stole the invite, so the invite is spent either way).
// Marking it again for the same feed is a no-op (a second member answers
// the same request); for another feed it is ErrUsed.
func (r *InviteRecord) MarkUsed(feed [32]byte) error {
	if r.Used {
		if subtle.ConstantTimeCompare(r.UsedBy[:], feed[:]) == 1 {
			return nil
		}
		return errorf(ErrUsed, "invite %s", r.ID)
	}
	r.Used, r.UsedBy = true, feed
	return nil
}

// MarshalBinary encodes the record as an authpb.InviteRecord.
func (r InviteRecord) MarshalBinary() ([]byte, error) {
	m := &authpb.InviteRecord{Id: r.ID[:], Key: r.Key[:], Expires: r.Expires.Unix(), Used: r.Used}
	if r.Used {
		m.UsedBy = r.UsedBy[:]
	}
	return m.Marshal()
}

// UnmarshalBinary decodes a record encoded by MarshalBinary, refusing
// anything larger than MaxInviteRecordSize, a field of the wrong size, an
// expiry not after 1970, and a used_by without used or the other way
// round.
func (r *InviteRecord) UnmarshalBinary(b []byte) error {
	if len(b) > MaxInviteRecordSize {
		return errorf(ErrTooLarge, "invite record of %d bytes, limit %d", len(b), MaxInviteRecordSize)
	}
	var m authpb.InviteRecord
	if err := m.Unmarshal(b); err != nil {
		return errorf(ErrMalformed, "invite record: %v", err)
	}
	switch {
	case len(m.Id) != InviteIDSize:
		return errorf(ErrMalformed, "invite record: ID of %d bytes, want %d", len(m.Id), InviteIDSize)
	case len(m.Key) != KeySize:
		return errorf(ErrMalformed, "invite record: key of %d bytes, want %d", len(m.Key), KeySize)
	case m.Expires <= 0 || m.Expires > 1<<62:
		return errorf(ErrMalformed, "invite record: expiry %d", m.Expires)
	case m.Used && len(m.UsedBy) != 32:
		return errorf(ErrMalformed, "invite record: used_by of %d bytes, want 32", len(m.UsedBy))
	case !m.Used && len(m.UsedBy) != 0:
		return errorf(ErrMalformed, "invite record: used_by on an unused invite")
	}
	*r = InviteRecord{ID: InviteID(m.Id), Key: [KeySize]byte(m.Key), Expires: time.Unix(m.Expires, 0), Used: m.Used}
	if m.Used {
		r.UsedBy = [32]byte(m.UsedBy)
	}
	return nil
}
