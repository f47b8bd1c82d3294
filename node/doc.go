// Package node is the mycel daemon: the libp2p host, the spaces this device
// holds, replication, discovery and (later) the local HTTP API that the CLI
// and the web UI use.
//
// Protocol logic lives in sub-packages free of sockets, timers and badger,
// so that the browser node can run it compiled to WebAssembly: node/space
// (the multiwriter database) and node/sync (the replication state machine).
// This package is the I/O around them.
//
// Built so far: the data directory (identity key, config file), settings
// with flags over environment over config file over defaults, and the
// libp2p host with its transports, hole punching, relay client, mDNS and
// static peers with reconnection. Replication, the spaces' wiring and the
// API follow (issue 4).
package node
