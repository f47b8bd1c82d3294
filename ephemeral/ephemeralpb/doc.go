// Package ephemeralpb holds the protobuf encoding of ephemeral envelopes:
// the message of ephemeral.proto, the schema of record, with a hand-written
// codec over protowire (internal/pbwire) that writes the bytes
// protoc-gen-go's code wrote, without protobuf's reflection runtime.
// Decode them only through ephemeral.Parse, which bounds every field and
// checks the signature; see ../FORMAT.md.
package ephemeralpb
