package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// RelayHander is a Backend that can list a relay (`mycel relay`) in a
// space, handing it the space's mirror token, so that the relay mirrors
// the space's encrypted feeds (relay/FORMAT.md, "Mirror handover") and
// every device of the space uses it. Without it, POST
// /v1/spaces/{space}/relays answers 404.
type RelayHander interface {
	// HandToRelay connects to the relay at addr (a multiaddr with
	// /p2p/<peer ID>), hands it the newest mirror token of space id and
	// lists it in the space. ErrReadOnly if this device is not a writer
	// of the space (the relay believes only a writer's token);
	// ErrConflict if the relay cannot be reached or refuses the token, or
	// the space lists the most relays a device uses (the message says
	// why).
	HandToRelay(ctx context.Context, id, addr string) error
}

// SpaceRelayer is a RelayHander that also lists a space's relays and
// takes them off the list. Without it, GET /v1/spaces/{space}/relays and
// DELETE /v1/spaces/{space}/relays/{peer} answer 404.
type SpaceRelayer interface {
	RelayHander
	// SpaceRelays returns the relays space id lists, with this device's
	// use of each.
	SpaceRelays(id string) ([]SpaceRelay, error)
	// DropRelay takes relay peer (a peer ID) off space id's list.
	// ErrNotFound if the space does not list it; ErrReadOnly if this
	// device is not a writer.
	DropRelay(ctx context.Context, id, peer string) error
}

// HandRelayRequest is the body of POST /v1/spaces/{space}/relays.
type HandRelayRequest struct {
	// Addr is the relay's multiaddr with /p2p/<peer ID>, as `mycel relay`
	// prints it.
	Addr string `json:"addr"`
}

// SpaceRelay is one relay a space lists, and this device's use of it.
type SpaceRelay struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs,omitempty"` // as listed
	// InUse: this device uses the relay for the space (its list is read
	// every few seconds, so a relay just listed may not be in use yet).
	InUse     bool `json:"in_use"`
	Connected bool `json:"connected"`
	// ReservedUntil is when this device's reservation expires; absent
	// while it holds none.
	ReservedUntil *time.Time `json:"reserved_until,omitempty"`
	Circuit       []string   `json:"circuit,omitempty"`
	// MirrorHanded: this device handed the relay the space's mirror token
	// (since its reservation began), of epoch MirrorEpoch.
	MirrorHanded bool   `json:"mirror_handed"`
	MirrorEpoch  uint32 `json:"mirror_epoch"`
	// MirrorError is why the last handover of the token failed (it is
	// tried again after a while).
	MirrorError string `json:"mirror_error,omitempty"`
	// Error is the last failure to connect or reserve.
	Error string `json:"error,omitempty"`
	// Problem says why the device does not use the entry at all: it does
	// not decode, or it is beyond the most relays a device uses.
	Problem string `json:"problem,omitempty"`
}

func (s *server) handRelay(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	var req HandRelayRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Addr == "" {
		return badRequest(`a relay needs an address: {"addr": "/ip4/…/tcp/4111/p2p/<peer ID>"}`)
	}
	h, ok := s.b.(RelayHander)
	if !ok {
		return ErrNotFound
	}
	if err := h.HandToRelay(r.Context(), id, req.Addr); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) spaceRelays(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	h, ok := s.b.(SpaceRelayer)
	if !ok {
		return ErrNotFound
	}
	rs, err := h.SpaceRelays(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(rs))
	return nil
}

// maxPeerParam bounds a peer ID in a path (52 characters for Ed25519).
const maxPeerParam = 128

func (s *server) dropRelay(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	p := r.PathValue("peer")
	if p == "" || len(p) > maxPeerParam {
		return badRequest("relay peer ID of %d bytes", len(p))
	}
	h, ok := s.b.(SpaceRelayer)
	if !ok {
		return ErrNotFound
	}
	if err := h.DropRelay(r.Context(), id, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// HandToRelay lists the relay at addr in space id and hands it the space's
// mirror token.
func (c *Client) HandToRelay(ctx context.Context, id, addr string) error {
	return c.do(ctx, "POST", spacePath(id)+"/relays", nil, HandRelayRequest{Addr: addr}, nil)
}

// SpaceRelays lists the relays of space id.
func (c *Client) SpaceRelays(ctx context.Context, id string) ([]SpaceRelay, error) {
	var out []SpaceRelay
	return out, c.do(ctx, "GET", spacePath(id)+"/relays", nil, nil, &out)
}

// DropRelay takes relay peer off space id's list.
func (c *Client) DropRelay(ctx context.Context, id, peer string) error {
	return c.do(ctx, "DELETE", spacePath(id)+"/relays/"+url.PathEscape(peer), nil, nil, nil)
}
