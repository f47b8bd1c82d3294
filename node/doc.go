// Package node will hold the mycel daemon: the libp2p host, a space's
// key-value view over its feeds, replication, discovery and the local HTTP
// API that the CLI and the web UI use. Sub-packages (such as node/space,
// node/sync and node/api) will split it as it grows; the protocol logic in
// them stays free of sockets, timers and badger so that the browser node can
// run it compiled to WebAssembly.
//
// Not built yet: this file only reserves the package. See DESIGN.md,
// "Spaces: the multiwriter database", "Replication" and "The daemon's surface".
package node
