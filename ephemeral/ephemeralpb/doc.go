// Package ephemeralpb holds the protobuf encoding of ephemeral envelopes.
// Decode them only through ephemeral.Parse, which bounds every field and
// checks the signature; see ../FORMAT.md.
package ephemeralpb
