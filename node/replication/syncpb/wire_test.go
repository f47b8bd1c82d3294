package syncpb_test

import (
	"testing"

	"github.com/mycelsync/mycel/internal/pbwire/pbtest"
	"github.com/mycelsync/mycel/node/replication/syncpb"
)

// messages makes a new message of each type, by its name in the golden
// vectors.
var messages = map[string]func() pbtest.Codec{
	"Message":    func() pbtest.Codec { return new(syncpb.Message) },
	"Hello":      func() pbtest.Codec { return new(syncpb.Hello) },
	"Prove":      func() pbtest.Codec { return new(syncpb.Prove) },
	"EpochProof": func() pbtest.Codec { return new(syncpb.EpochProof) },
	"Heads":      func() pbtest.Codec { return new(syncpb.Heads) },
	"Range":      func() pbtest.Codec { return new(syncpb.Range) },
	"Want":       func() pbtest.Codec { return new(syncpb.Want) },
	"Data":       func() pbtest.Codec { return new(syncpb.Data) },
	"Refuse":     func() pbtest.Codec { return new(syncpb.Refuse) },
	"Fork":       func() pbtest.Codec { return new(syncpb.Fork) },
	"Done":       func() pbtest.Codec { return new(syncpb.Done) },
}

// TestGolden: the codecs decode, refuse and encode testdata/golden.txt as
// the protoc-gen-go code they replaced did (recorded by internal/pbold at commit 6365b44).
func TestGolden(t *testing.T) {
	pbtest.Golden(t, "testdata/golden.txt", messages)
}

// FuzzSyncDecode: decoding any bytes does not panic, and what decodes re-encodes
// canonically, no larger than its input.
func FuzzSyncDecode(f *testing.F) {
	pbtest.Fuzz(f, "testdata/golden.txt", messages)
}
