package auth

import "fmt"

const (
	labelJoinRequestInvite   = "mycel/v1/join-request-invite"
	labelJoinRequestPassword = "mycel/v1/join-request-password"
)

// RequestKind says what a join request was sealed with.
type RequestKind uint8

const (
	// RequestByInvite: sealed under an invite's key (Invite.RequestKey,
	// InviteRecord.RequestKey).
	RequestByInvite RequestKind = 1
	// RequestByPassword: sealed under the space's password key
	// (PasswordRequestKey).
	RequestByPassword RequestKind = 2
)

// String names the kind.
func (k RequestKind) String() string {
	switch k {
	case RequestByInvite:
		return "invite"
	case RequestByPassword:
		return "password"
	}
	return fmt.Sprintf("RequestKind(%d)", uint8(k))
}

// RequestKey seals and opens join requests. Both the new device and the
// members hold it: the device from the invite or password it was given,
// members from the invite record or password key kept in the feeds. ID
// names it in public (the key_id of the envelope that carries a request),
// so that members know which key to try.
type RequestKey struct {
	Kind RequestKind
	ID   [KeyIDSize]byte
	Key  [KeySize]byte
}

// String hides the key.
func (k RequestKey) String() string {
	return fmt.Sprintf("RequestKey{Kind: %s, ID: %x, Key: <redacted>}", k.Kind, k.ID)
}

// GoString hides the key from %#v too.
func (k RequestKey) GoString() string { return k.String() }

// ad is the additional data of requests sealed under the key: a label per
// kind ‖ 0x00 ‖ key ID, so that a request sealed under one kind of key, or
// under one key ID, never opens as another.
func (k RequestKey) ad() ([]byte, error) {
	var label string
	switch k.Kind {
	case RequestByInvite:
		label = labelJoinRequestInvite
	case RequestByPassword:
		label = labelJoinRequestPassword
	default:
		return nil, errorf(ErrMalformed, "request key of unknown kind %d", k.Kind)
	}
	return append(append([]byte(label), 0), k.ID[:]...), nil
}
