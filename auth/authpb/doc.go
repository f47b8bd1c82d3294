// Package authpb holds the protobuf messages of package auth (keyrings,
// mirror tokens, invite records, join requests, approvals and denials):
// the messages of auth.proto, the schema of record, with hand-written
// codecs over protowire (internal/pbwire) that write the bytes
// protoc-gen-go's code wrote, without protobuf's reflection runtime.
// Decode them only through package auth, which bounds and checks every
// field; see ../FORMAT.md.
package authpb
