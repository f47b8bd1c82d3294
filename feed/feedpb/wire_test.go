package feedpb_test

import (
	"testing"

	"github.com/mycelsync/mycel/feed/feedpb"
	"github.com/mycelsync/mycel/internal/pbwire/pbtest"
)

// messages makes a new message of each type, by its name in the golden
// vectors.
var messages = map[string]func() pbtest.Codec{
	"SignedHead":   func() pbtest.Codec { return new(feedpb.SignedHead) },
	"Run":          func() pbtest.Codec { return new(feedpb.Run) },
	"Consistency":  func() pbtest.Codec { return new(feedpb.Consistency) },
	"Batch":        func() pbtest.Codec { return new(feedpb.Batch) },
	"ForkEvidence": func() pbtest.Codec { return new(feedpb.ForkEvidence) },
	"HeadRecord":   func() pbtest.Codec { return new(feedpb.HeadRecord) },
}

// TestGolden: the codecs decode, refuse and encode testdata/golden.txt as
// the protoc-gen-go code they replaced did (recorded by internal/pbold at commit 6365b44).
func TestGolden(t *testing.T) {
	pbtest.Golden(t, "testdata/golden.txt", messages)
}

// FuzzFeedDecode: decoding any bytes does not panic, and what decodes re-encodes
// canonically, no larger than its input.
func FuzzFeedDecode(f *testing.F) {
	pbtest.Fuzz(f, "testdata/golden.txt", messages)
}
