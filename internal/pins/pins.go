//go:build pins

// Package pins records dependencies the design fixes before the code that
// uses them exists, so that `go mod tidy` keeps them at the versions
// DESIGN.md lists (go-libp2p-pubsub and pion/webrtc must be pinned by hand:
// newer ones need modules the proxy does not serve). The build tag keeps
// this file out of every build.
package pins

import (
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-pubsub"
	_ "github.com/multiformats/go-multiaddr"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "pgregory.net/rapid"
)
