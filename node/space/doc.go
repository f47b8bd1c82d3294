// Package space is mycel's multiwriter database: the feeds of one space,
// read together as a key-value map that every authorised device can write.
//
// It builds for the browser node (GOOS=js GOARCH=wasm): no sockets, no
// timers, no badger. The parts, from the inside out:
//
//   - Resolve (writers.go) applies the writer-set rules of DESIGN.md to the
//     membership ops: who may write, which ops count, and how concurrent
//     removals are decided (seniority). A View applies most adds to the
//     writer set alone (WriterSet.Add) and resolves anew only for the
//     others.
//   - View (view.go) is a pure state machine. Apply takes decrypted ops in any
//     order, holds each until its causal past has arrived, and keeps one
//     multi-value register per key: the put and delete ops that no other
//     counting op on the key follows. Get returns them winner first (highest
//     hybrid logical clock, then feed key). When a removal voids ops that had
//     counted, the registers they touched are recomputed, which brings back
//     the values they had replaced. Views given the same ops have the same
//     Digest, whatever the order.
//   - The entry codec (entry.go, FORMAT.md) turns an op into the bytes of a
//     feed entry: a clear header (key ID; for add-writer and remove-writer
//     the target feed; for add-writer the keyring sealed to the new device)
//     and the op sealed with XChaCha20-Poly1305 under the epoch's content
//     key, bound to its space, feed and position.
//   - Space (space.go) is a device's handle on a space: it writes ops to the
//     device's own feed with their causal delta and clock, reads the feeds it
//     holds into the view, opens the keys sealed to the device (its keyring
//     on approval, new secrets on rotation) and keeps them at rest sealed to
//     the device's key, and tells watchers what changed. A writer approved
//     concurrently with a rotation lacks the new secret; ShareDue says
//     which holder is to share it and ShareKeys does (FORMAT.md "Sharing a
//     secret"), never to a removed device.
//
// Feeds (space.go) are the feeds the space reads, serves and accepts: the
// origin, this device's, the writers whose adds count (removed writers
// too) and every feed in those writers' causal past; before the device
// holds a key, the feeds add-writer headers name. An add that does not
// count names no feed of the space.
//
// The view is kept in the device's storage (kvstore.go, kvlog.go,
// kvregisters.go, kvcheckpoint.go), sealed under the
// device's local key of the space (auth.DeviceKey.LocalKey): an append-only
// log of the applied ops, many to a sealed page, and a snapshot of each
// key's register written at checkpoints. Reopening a space reads the log's
// tail since the last checkpoint instead of replaying the feeds, and reads
// again only the entries applied after the last flush. FORMAT.md documents
// the records.
package space
