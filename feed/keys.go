package feed

import (
	"encoding/binary"

	"github.com/transparency-dev/merkle/compact"
)

// Storage key layout (see FORMAT.md). Every key starts with 'f' so that a
// Storage can be shared with other packages that use other first bytes.
const (
	tagHead     = 'h' // "fh" key → HeadRecord
	tagEntry    = 'e' // "fe" key index → entry bytes
	tagNode     = 'n' // "fn" key level index → 32-byte node hash
	tagRange    = 'r' // "fr" key start → end (uint64 BE): ranges held
	tagEvidence = 'x' // "fx" key → ForkEvidence
)

func feedKey(tag byte, key PublicKey, extra int) []byte {
	b := make([]byte, 2+KeySize, 2+KeySize+extra)
	b[0], b[1] = 'f', tag
	copy(b[2:], key[:])
	return b
}

func headKey(k PublicKey) []byte     { return feedKey(tagHead, k, 0) }
func evidenceKey(k PublicKey) []byte { return feedKey(tagEvidence, k, 0) }

func entryKey(k PublicKey, i uint64) []byte {
	return binary.BigEndian.AppendUint64(feedKey(tagEntry, k, 8), i)
}

func nodeKey(k PublicKey, id compact.NodeID) []byte {
	b := append(feedKey(tagNode, k, 9), byte(id.Level))
	return binary.BigEndian.AppendUint64(b, id.Index)
}

func rangeKey(k PublicKey, start uint64) []byte {
	return binary.BigEndian.AppendUint64(feedKey(tagRange, k, 8), start)
}

// PrefixEnd returns the smallest key greater than every key with prefix p
// (nil when there is none): the end of a Storage.Scan over a prefix.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
