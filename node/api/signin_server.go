package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/auth/inviteqr"
)

// Bounds of the sign-in routes' inputs.
const (
	// DefaultInviteTTL is how long an invite works when InviteParams.TTL
	// is empty; MinInviteTTL and MaxInviteTTL bound a TTL given.
	DefaultInviteTTL = 24 * time.Hour
	MinInviteTTL     = time.Minute
	MaxInviteTTL     = 30 * 24 * time.Hour
	// MinPassword and MaxPassword bound a space's password, in bytes of
	// UTF-8.
	MinPassword = 8
	MaxPassword = 1024
	// maxInvite bounds an invite as typed (a link is under 100 bytes
	// without hints, under 1 KiB with the largest).
	maxInvite = 2048
	// maxJoinSpace bounds JoinWith.Space: a space ID, or an alias at a
	// relay (name@relay, the relay a multiaddr).
	maxJoinSpace = 1024
	// hintDialTimeout bounds the dial of an invite link's hints before
	// the request is sent.
	hintDialTimeout = 10 * time.Second
	// maxSafetyCode bounds ApproveParams.Code ("482-193", spaces allowed).
	maxSafetyCode = 64
)

// InviteTTL parses InviteParams.TTL: empty is DefaultInviteTTL, anything
// else a Go duration from MinInviteTTL to MaxInviteTTL.
func InviteTTL(s string) (time.Duration, error) {
	if s == "" {
		return DefaultInviteTTL, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badRequest("ttl %q: want a duration such as 24h or 30m", s)
	}
	if d < MinInviteTTL || d > MaxInviteTTL {
		return 0, badRequest("ttl %s: an invite works from %s to %s (720h)", d, MinInviteTTL, MaxInviteTTL)
	}
	return d, nil
}

// checkPassword refuses a password out of bounds; its message never
// holds the password.
func checkPassword(pw string) error {
	if len(pw) < MinPassword || len(pw) > MaxPassword || !utf8.ValidString(pw) {
		return badRequest("a password is %d to %d bytes of UTF-8", MinPassword, MaxPassword)
	}
	return nil
}

// MinRequestPrefix is the fewest hex digits of a request's ID (16) that
// name it in a path; the Backend refuses a prefix that names several.
const MinRequestPrefix = 6

// requestParam returns the path parameter id: a join request's ID, 16 hex
// digits, or a prefix of it of at least MinRequestPrefix; lowercased.
func requestParam(r *http.Request) (string, error) {
	v := strings.ToLower(r.PathValue("id"))
	if len(v) < MinRequestPrefix || len(v) > 16 || strings.Trim(v, "0123456789abcdef") != "" {
		return "", badRequest("request ID %q: want its 16 hex digits, or %d or more of them (GET /v1/requests lists them)", r.PathValue("id"), MinRequestPrefix)
	}
	return v, nil
}

func (s *server) createInvite(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	var p InviteParams
	if err := s.decodeOptional(w, r, &p); err != nil {
		return err
	}
	ttl, err := InviteTTL(p.TTL)
	if err != nil {
		return err
	}
	inv, err := s.b.CreateInvite(r.Context(), id, ttl)
	if err != nil {
		return err
	}
	if h, ok := s.b.(InviteHinter); ok {
		if inv, err = withHints(inv, h.InviteHints()); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusCreated, inv)
	return nil
}

// withHints adds to an invite's link (and its QR code) where to reach
// this device: a link a device outside the LAN can join with.
func withHints(inv Invite, hints auth.InviteHints) (Invite, error) {
	if hints.IsZero() {
		return inv, nil
	}
	parsed, err := auth.ParseInvite(inv.Link, time.Now())
	if err != nil {
		return inv, fmt.Errorf("api: the invite's own link: %w", err)
	}
	parsed.Hints = hints
	link, err := parsed.Link()
	if err != nil {
		return inv, fmt.Errorf("api: invite hints: %w", err)
	}
	text, err := inviteqr.Text(parsed)
	if err != nil {
		return inv, err
	}
	qr, err := inviteqr.Terminal(text, false)
	if err != nil {
		return inv, err
	}
	inv.Link, inv.QR = link, qr
	return inv, nil
}

func (s *server) setPassword(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	var p PasswordParams
	if err := s.decode(w, r, &p); err != nil {
		return hidePassword(err)
	}
	if err := checkPassword(p.Password); err != nil {
		return err
	}
	if err := s.b.SetPassword(r.Context(), id, p.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// hidePassword replaces the message of a body's JSON error, which can
// quote a piece of the body, with one that quotes nothing.
func hidePassword(err error) error {
	var he *httpError
	if errors.As(err, &he) && he.code == "bad_json" && he.status == http.StatusBadRequest {
		return &httpError{he.status, he.code, "body: want one JSON object with the fields of the request (its text is not repeated here: it holds a password)"}
	}
	return err
}

func (s *server) join(w http.ResponseWriter, r *http.Request) error {
	var p JoinWith
	if err := s.decode(w, r, &p); err != nil {
		return hidePassword(err)
	}
	p.Invite = strings.TrimSpace(p.Invite)
	switch {
	case p.Invite == "" && p.Password == "":
		return badRequest("join with an invite (link or code), or with a space ID and its password")
	case p.Invite != "" && p.Password != "":
		return badRequest("join with an invite or with a password, not both")
	case len(p.Invite) > maxInvite:
		return badRequest("invite of %d bytes: an invite is a link or a code", len(p.Invite))
	case p.Password != "" && p.Space == "":
		return badRequest("a password sign-in needs the space's ID")
	}
	switch {
	case len(p.Space) > maxJoinSpace:
		return badRequest("space of %d bytes: want 64 hex digits or name@relay", len(p.Space))
	case strings.Contains(p.Space, "@"):
		// An alias at a relay (name@relay): the backend resolves it.
		if name, _, _ := strings.Cut(p.Space, "@"); name == "" || len(name) > 32 {
			return badRequest("space %.40q: an alias is name@relay, the name 1 to 32 characters", p.Space)
		}
	case p.Space != "":
		p.Space = strings.ToLower(p.Space)
		if b, err := hex.DecodeString(p.Space); err != nil || len(b) != 32 {
			return badRequest("space %q: want 64 hex digits, or an alias name@relay", p.Space)
		}
	}
	if p.Password != "" {
		if err := checkPassword(p.Password); err != nil {
			return err
		}
	}
	if d, ok := s.b.(HintDialer); ok && p.Invite != "" {
		// A link says where to reach the space: dial it first, so that
		// the request finds a member without mDNS or --peer. A link that
		// does not parse is Join's to refuse; a dial that fails leaves
		// the request to the peers there are.
		if inv, err := auth.ParseInvite(p.Invite, time.Now()); err == nil && !inv.Hints.IsZero() {
			ctx, cancel := context.WithTimeout(r.Context(), hintDialTimeout)
			if err := d.DialHints(ctx, inv.Hints); err != nil {
				s.log.Info("api: join: the invite's hints did not answer", "err", err)
			}
			cancel()
		}
	}
	st, err := s.b.Join(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, st)
	return nil
}

func (s *server) requests(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, nonNil(s.b.Requests()))
	return nil
}

// The requests stream is text/event-stream, like the watch stream:
//
//	: mycel requests         a comment once the stream is in place
//
//	event: request           one per join request waiting for an answer:
//	data: {Request}          those waiting already first, then new ones
//
//	: keepalive              every KeepAlive while nothing arrives
//
//	event: error             last, when the stream ends for a reason other
//	data: {Error}            than the client going (unavailable: the daemon
//	                         stops)
func (s *server) watchRequests(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ch, err := s.b.WatchRequests(ctx)
	if err != nil {
		return err
	}
	return stream(s, w, r, "mycel requests", "request", ch, nil, nil, "the request stream ended")
}

func (s *server) approve(w http.ResponseWriter, r *http.Request) error {
	id, err := requestParam(r)
	if err != nil {
		return err
	}
	var p ApproveParams
	if err := s.decodeOptional(w, r, &p); err != nil {
		return err
	}
	if len(p.Code) > maxSafetyCode {
		return badRequest("safety code of %d bytes: it is six digits, 482-193", len(p.Code))
	}
	if err := s.b.Approve(r.Context(), id, strings.TrimSpace(p.Code)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) deny(w http.ResponseWriter, r *http.Request) error {
	id, err := requestParam(r)
	if err != nil {
		return err
	}
	if err := s.b.Deny(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decodeOptional is decode for a body that may be left out: an empty body
// (or only spaces) leaves v as it is.
func (s *server) decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > s.cfg.MaxBody {
		return tooLarge(s.cfg.MaxBody)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return tooLarge(s.cfg.MaxBody)
	}
	if err != nil {
		return &httpError{http.StatusBadRequest, "bad_json", "body: " + err.Error()}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return s.decode(w, r, v)
}
