// Package space is mycel's multiwriter database: the feeds of one space,
// read together as a key-value map that every authorised device can write.
//
// It is protocol logic without I/O — no sockets, no timers, no badger — so
// that it builds for the browser node (GOOS=js GOARCH=wasm).
//
// Work in progress (issue 3): the writer-set rules (Resolve) are here; the
// op format, encryption, the key-value view and its persistence follow.
package space
