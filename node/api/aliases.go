package api

import (
	"context"
	"net/http"
	"net/url"
)

// Aliases name a space at a relay (name@relay), so that a device joins by
// password with `mycel join --password … family@<relay>` instead of the
// space's ID. A writer registers one at the daemon's relays; the first
// space to take a name at a relay holds it there (relay/FORMAT.md,
// "Locators and aliases").

// Aliaser is a Backend that registers aliases at its relays. A server
// whose backend is not one answers 404 on the alias routes.
type Aliaser interface {
	// SetAlias registers name for space at relay (a multiaddr ending in
	// /p2p/<peer ID>, or a relay's peer ID), or at every relay of the
	// daemon when relay is empty. It fails when no relay took it.
	SetAlias(ctx context.Context, space, name, relay string) (AliasState, error)
	// DropAlias drops name at relay, or at every relay of the daemon.
	DropAlias(ctx context.Context, space, name, relay string) (AliasState, error)
}

// AliasParams are the body of PUT /v1/spaces/{space}/alias.
type AliasParams struct {
	Name  string `json:"name"`            // 1 to 32 of a-z, 0-9 and inner single hyphens; upper case is folded
	Relay string `json:"relay,omitempty"` // one relay; empty: every relay of the daemon
}

// AliasState says which relays hold an alias.
type AliasState struct {
	Name   string       `json:"name"` // normalised
	Space  string       `json:"space"`
	Relays []AliasRelay `json:"relays"`
}

// AliasRelay is one relay's answer.
type AliasRelay struct {
	ID    string `json:"id"`
	Error string `json:"error,omitempty"` // empty when the relay took the request
	// Absent: a drop at a relay that holds no such alias (a mistyped
	// name, or one dropped already); nothing was dropped there.
	Absent bool `json:"absent,omitempty"`
}

// maxAliasParam bounds the name and relay of an alias request.
const maxAliasParam = 1024

func (s *server) setAlias(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	a, ok := s.b.(Aliaser)
	if !ok {
		return &httpError{http.StatusNotFound, "not_found", "this daemon registers no aliases"}
	}
	var p AliasParams
	if err := s.decode(w, r, &p); err != nil {
		return err
	}
	if p.Name == "" || len(p.Name) > maxAliasParam || len(p.Relay) > maxAliasParam {
		return badRequest("alias: a name of 1 to 32 characters, and a relay address")
	}
	st, err := a.SetAlias(r.Context(), id, p.Name, p.Relay)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *server) dropAlias(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	a, ok := s.b.(Aliaser)
	if !ok {
		return &httpError{http.StatusNotFound, "not_found", "this daemon registers no aliases"}
	}
	name, relay := r.PathValue("name"), r.URL.Query().Get("relay")
	if name == "" || len(name) > maxAliasParam || len(relay) > maxAliasParam {
		return badRequest("alias: a name of 1 to 32 characters, and a relay address")
	}
	st, err := a.DropAlias(r.Context(), id, name, relay)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// SetAlias registers name for space id at relay, or at every relay of the
// daemon when relay is empty.
func (c *Client) SetAlias(ctx context.Context, id, name, relay string) (AliasState, error) {
	var out AliasState
	return out, c.do(ctx, "PUT", spacePath(id)+"/alias", nil, AliasParams{Name: name, Relay: relay}, &out)
}

// DropAlias drops name at relay, or at every relay of the daemon.
func (c *Client) DropAlias(ctx context.Context, id, name, relay string) (AliasState, error) {
	var out AliasState
	var q url.Values
	if relay != "" {
		q = url.Values{"relay": {relay}}
	}
	return out, c.do(ctx, "DELETE", spacePath(id)+"/alias/"+url.PathEscape(name), q, nil, &out)
}
