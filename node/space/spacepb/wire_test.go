package spacepb_test

import (
	"testing"

	"github.com/mycelsync/mycel/internal/pbwire/pbtest"
	"github.com/mycelsync/mycel/node/space/spacepb"
)

// messages makes a new message of each type, by its name in the golden
// vectors.
var messages = map[string]func() pbtest.Codec{
	"Entry":        func() pbtest.Codec { return new(spacepb.Entry) },
	"Membership":   func() pbtest.Codec { return new(spacepb.Membership) },
	"OpBody":       func() pbtest.Codec { return new(spacepb.OpBody) },
	"Seen":         func() pbtest.Codec { return new(spacepb.Seen) },
	"Put":          func() pbtest.Codec { return new(spacepb.Put) },
	"Delete":       func() pbtest.Codec { return new(spacepb.Delete) },
	"AddWriter":    func() pbtest.Codec { return new(spacepb.AddWriter) },
	"RemoveWriter": func() pbtest.Codec { return new(spacepb.RemoveWriter) },
	"Rotation":     func() pbtest.Codec { return new(spacepb.Rotation) },
	"SealedSecret": func() pbtest.Codec { return new(spacepb.SealedSecret) },
}

// TestGolden: the codecs decode, refuse and encode testdata/golden.txt as
// the protoc-gen-go code they replaced did (recorded by internal/pbold at commit 6365b44).
func TestGolden(t *testing.T) {
	pbtest.Golden(t, "testdata/golden.txt", messages)
}

// FuzzSpaceDecode: decoding any bytes does not panic, and what decodes re-encodes
// canonically, no larger than its input.
func FuzzSpaceDecode(f *testing.F) {
	pbtest.Fuzz(f, "testdata/golden.txt", messages)
}
