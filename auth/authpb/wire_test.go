package authpb_test

import (
	"testing"

	"github.com/mycelsync/mycel/auth/authpb"
	"github.com/mycelsync/mycel/internal/pbwire/pbtest"
)

// messages makes a new message of each type, by its name in the golden
// vectors.
var messages = map[string]func() pbtest.Codec{
	"Keyring":          func() pbtest.Codec { return new(authpb.Keyring) },
	"ConcurrentSecret": func() pbtest.Codec { return new(authpb.ConcurrentSecret) },
	"MirrorToken":      func() pbtest.Codec { return new(authpb.MirrorToken) },
	"InviteRecord":     func() pbtest.Codec { return new(authpb.InviteRecord) },
	"JoinRequest":      func() pbtest.Codec { return new(authpb.JoinRequest) },
	"Approval":         func() pbtest.Codec { return new(authpb.Approval) },
	"Denial":           func() pbtest.Codec { return new(authpb.Denial) },
}

// TestGolden: the codecs decode, refuse and encode testdata/golden.txt as
// the protoc-gen-go code they replaced did (recorded by internal/pbold at commit 6365b44).
func TestGolden(t *testing.T) {
	pbtest.Golden(t, "testdata/golden.txt", messages)
}

// FuzzAuthDecode: decoding any bytes does not panic, and what decodes re-encodes
// canonically, no larger than its input.
func FuzzAuthDecode(f *testing.F) {
	pbtest.Fuzz(f, "testdata/golden.txt", messages)
}
