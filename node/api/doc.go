// Package api is the daemon's local HTTP API: the types it speaks (JSON),
// the Backend it serves, the server with its token, Host and Origin checks,
// and the client the CLI uses.
//
// The daemon serves it:
//
//	token, err := api.LoadOrCreateToken(dataDir) // api.token, 0600
//	ln, err := net.Listen("tcp", "127.0.0.1:4103")
//	srv := &http.Server{Handler: api.NewServer(api.ServerConfig{
//		Backend: node, Token: token, Metrics: registry, Logger: log, Version: version})}
//	go srv.Serve(ln)
//	api.WriteEndpoint(dataDir, ln.Addr().String()) // api.addr, for the CLI
//	...
//	api.RemoveEndpoint(dataDir) // at a clean stop
//
// Streams (watch, requests, messages) stay open: at most MaxStreams at once
// (default 64; one more is 429 too_many), and closing ServerConfig.Closing
// before srv.Shutdown ends each with its last event, an error of code
// unavailable, so that a client learns that the daemon stopped.
//
// A client finds it from the data directory:
//
//	c, err := api.Dial(dataDir)            // errors.Is(err, api.ErrNotRunning)
//	err = c.Put(ctx, spaceID, "k", []byte("v"))
//	changes, why, err := c.Watch(ctx, spaceID, "prefix/")
//
// The routes are in routes.go, one table that the server's mux and the
// test of the OpenAPI document (openapi.json, served at GET
// /v1/openapi.json) share. Errors become status codes and stable codes
// (Error.Code) in one place, errorBody in server.go; the client turns
// them back into *APIError, which errors.Is matches against the sentinels
// of types.go.
//
// Signing devices in, the one way a device joins a space (the SignIn part
// of the Backend, signin.go), has its routes in signin_server.go:
// invites, the space's password, joining
// (POST /v1/join, then GET /v1/spaces/{space} follows the request),
// the requests waiting for a member's answer (also as server-sent
// events), approve and deny. The password is never logged nor repeated
// in an error.
//
// The web UI (ServerConfig.UI, the embedded webui.Dist) is served at /
// outside the route table (ui.go): a browser signs in with a one-time
// login link that whoever holds the token mints (LoginLink, `mycel ui`)
// and gets a session cookie, which the routes take as they take the
// token, but only from the page's own origin. /node is the same page as
// a browser node (a device of its own, dialling the relay ?relay= names),
// without a session and without this daemon's data.
//
// Package apitest has an in-memory Backend that records its calls, for
// tests of the server, the client and the CLI.
package api
