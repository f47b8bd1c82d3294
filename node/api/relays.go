package api

import (
	"context"
	"net/http"
)

// RelayHander is a Backend that can hand a space's mirror token to a
// relay (`mycel relay`), so that the relay mirrors the space's encrypted
// feeds (relay/FORMAT.md, "Mirror handover"). Without it, POST
// /v1/spaces/{space}/relays answers 404.
type RelayHander interface {
	// HandToRelay connects to the relay at addr (a multiaddr with
	// /p2p/<peer ID>) and hands it the newest mirror token of space id.
	// ErrReadOnly if this device is not a writer of the space (the relay
	// believes only a writer's token); ErrConflict if the relay cannot be
	// reached or refuses the token (the message says why).
	HandToRelay(ctx context.Context, id, addr string) error
}

// HandRelayRequest is the body of POST /v1/spaces/{space}/relays.
type HandRelayRequest struct {
	// Addr is the relay's multiaddr with /p2p/<peer ID>, as `mycel relay`
	// prints it.
	Addr string `json:"addr"`
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

// HandToRelay hands the mirror token of space id to the relay at addr.
func (c *Client) HandToRelay(ctx context.Context, id, addr string) error {
	return c.do(ctx, "POST", spacePath(id)+"/relays", nil, HandRelayRequest{Addr: addr}, nil)
}
