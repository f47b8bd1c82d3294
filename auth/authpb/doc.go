// Package authpb holds the protobuf messages of package auth (keyrings,
// mirror tokens, invite records, join requests, approvals and denials).
// Decode them only through package auth, which bounds and checks every
// field; see ../FORMAT.md.
package authpb
