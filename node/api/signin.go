package api

import (
	"context"
	"time"
)

// SignIn is the part of the Backend that signs devices in: invites, the
// space's password, join requests and their approval (DESIGN.md, "Joining
// and approving devices").
type SignIn interface {
	// CreateInvite makes a one-time invite to the space, valid for ttl
	// (0: 24 h), and records it in this device's feed.
	CreateInvite(ctx context.Context, id string, ttl time.Duration) (Invite, error)
	// SetPassword sets the space's password: members keep the key derived
	// from it, never the password.
	SetPassword(ctx context.Context, id, password string) error
	// Join asks to join a space with an invite or its password. The
	// device is read-only until a member approves the request; the
	// returned state carries the safety code to compare. Space(id).Join
	// follows the request afterwards.
	Join(ctx context.Context, req JoinWith) (JoinState, error)
	// Requests returns the join requests waiting for a person's answer in
	// the spaces this device is a member of, oldest first.
	Requests() []Request
	// WatchRequests streams requests as they arrive (those waiting first)
	// until ctx ends; the channel is closed then.
	WatchRequests(ctx context.Context) (<-chan Request, error)
	// Approve approves a waiting request: the device is added as a writer
	// and the space's keys are sealed to it. A non-empty code must equal
	// the request's safety code (ErrSafetyCode otherwise).
	Approve(ctx context.Context, requestID, code string) error
	// Deny refuses a waiting request; an invite it used is spent.
	Deny(ctx context.Context, requestID string) error
}

// Invite is a new invite: one link, code and QR code for one device.
type Invite struct {
	Space   string    `json:"space"`
	ID      string    `json:"id"`
	Link    string    `json:"link"`    // mycel://join/…, carries the space
	Code    string    `json:"code"`    // XXXX-XXXX-XXXX-XXXX-XXXX, for typing
	QR      string    `json:"qr"`      // the link as a QR code in Unicode half blocks
	Expires time.Time `json:"expires"` // it works once, until then
}

// InviteParams are the body of POST /v1/spaces/{space}/invites.
type InviteParams struct {
	// TTL is how long the invite works, as a Go duration ("24h"); at
	// most 30 days. Empty: 24 h.
	TTL string `json:"ttl,omitempty"`
}

// PasswordParams are the body of PUT /v1/spaces/{space}/password.
type PasswordParams struct {
	Password string `json:"password"` // 8 to 1024 bytes of UTF-8
}

// JoinWith says how to ask to join a space: with an invite (link or
// code), or with a space ID and its password.
type JoinWith struct {
	Invite   string `json:"invite,omitempty"`   // link or code
	Space    string `json:"space,omitempty"`    // ID or name@relay alias; with a code that does not name it, or with a password
	Password string `json:"password,omitempty"` // the space's password
	Name     string `json:"name,omitempty"`     // local label of the space (default "joined")
}

// Join states.
const (
	JoinWaiting  = "waiting"  // asked; no member has answered
	JoinApproved = "approved" // a member approved: the device holds the keys
	JoinDenied   = "denied"   // a member denied the request
	JoinRefused  = "refused"  // the invite was used or expired, or the password is wrong
)

// JoinState is where a device's request to join a space stands.
type JoinState struct {
	Space  string    `json:"space"`
	Code   string    `json:"code"`  // safety code: the approving member must see the same
	State  string    `json:"state"` // waiting, approved, denied or refused
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"` // when the request was made
}

// Request is a device asking to join a space this device is a member of.
type Request struct {
	ID        string    `json:"id"` // 16 hex digits naming the request
	Space     string    `json:"space"`
	SpaceName string    `json:"space_name"`
	Name      string    `json:"name"` // the device's name, as it gives it
	Feed      string    `json:"feed"` // its feed key in the space
	Code      string    `json:"code"` // the safety code it shows
	Via       string    `json:"via"`  // "invite <id>" or "password"
	Time      time.Time `json:"time"` // when it asked
}

// ApproveParams are the body of POST /v1/requests/{id}/approve.
type ApproveParams struct {
	// Code, if set, must be the request's safety code.
	Code string `json:"code,omitempty"`
}
