// Package api is the daemon's local HTTP API: the types it speaks (JSON),
// the Backend it serves, the server with its token, Host and Origin checks,
// and the client the CLI uses.
package api
