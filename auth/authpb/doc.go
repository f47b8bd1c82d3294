// Package authpb holds the protobuf messages of package auth (keyrings and
// mirror tokens). Decode them only through package auth, which bounds and
// checks every field; see ../FORMAT.md.
package authpb
