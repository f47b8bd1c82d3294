package feed

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The tree is RFC 6962's: leaf hash SHA-256(0x00 || entry), interior node
// SHA-256(0x01 || left || right), empty tree SHA-256("").
var (
	hasher    = rfc6962.DefaultHasher
	factory   = &compact.RangeFactory{Hash: hasher.HashChildren}
	emptyRoot = Hash(sha256.Sum256(nil))
)

// LeafHash returns the RFC 6962 leaf hash of an entry.
func LeafHash(entry []byte) Hash {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	h.Write(entry)
	var out Hash
	h.Sum(out[:0])
	return out
}

// leafHashes returns the leaf hashes of entries, backed by one array. Large
// lists are hashed on every core.
func leafHashes(entries [][]byte) [][]byte {
	out := make([][]byte, len(entries))
	backing := make([]byte, len(entries)*HashSize)
	for i := range out {
		out[i] = backing[i*HashSize : (i+1)*HashSize : (i+1)*HashSize]
	}
	hashRange := func(lo, hi int) {
		h := sha256.New()
		prefix := []byte{rfc6962.RFC6962LeafHashPrefix}
		for i := lo; i < hi; i++ {
			h.Reset()
			h.Write(prefix)
			h.Write(entries[i])
			h.Sum(out[i][:0])
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(entries) < 256 || workers == 1 {
		hashRange(0, len(entries))
		return out
	}
	var wg sync.WaitGroup
	per := (len(entries) + workers - 1) / workers
	for lo := 0; lo < len(entries); lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			hashRange(lo, hi)
		}(lo, min(lo+per, len(entries)))
	}
	wg.Wait()
	return out
}

// Root returns the RFC 6962 root of a list of entries. It is meant for tests
// and small lists; feeds compute roots incrementally.
func Root(entries [][]byte) Hash {
	r := factory.NewEmptyRange(0)
	for _, e := range entries {
		lh := LeafHash(e)
		_ = r.Append(lh[:], nil)
	}
	return rangeRoot(r)
}

// rangeRoot returns the root of a compact range that starts at 0.
func rangeRoot(r *compact.Range) Hash {
	root, err := r.GetRootHash(nil)
	if err != nil {
		panic(err) // only ranges starting at 0 are passed
	}
	if root == nil {
		return emptyRoot
	}
	return Hash(root)
}

// newRange builds a compact range from peer-supplied hashes, checking their
// number and size.
func newRange(begin, end uint64, hashes [][]byte) (*compact.Range, error) {
	if end < begin {
		return nil, errorf(ErrMalformed, "range [%d, %d)", begin, end)
	}
	if want := compact.RangeSize(begin, end); len(hashes) != want {
		return nil, errorf(ErrInvalidProof, "%d hashes for range [%d, %d), want %d", len(hashes), begin, end, want)
	}
	for _, h := range hashes {
		if len(h) != HashSize {
			return nil, errorf(ErrInvalidProof, "hash of %d bytes", len(h))
		}
	}
	r, err := factory.NewRange(begin, end, cloneHashes(hashes))
	if err != nil {
		return nil, errorf(ErrInvalidProof, "%v", err)
	}
	return r, nil
}

// cloneRange deep-copies a compact range, which otherwise shares its slice.
func cloneRange(r *compact.Range) *compact.Range {
	c, err := factory.NewRange(r.Begin(), r.End(), cloneHashes(r.Hashes()))
	if err != nil {
		panic(err)
	}
	return c
}

func cloneHashes(hs [][]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = append([]byte(nil), h...)
	}
	return out
}

// VerifyInclusion checks an RFC 6962 inclusion proof (as made by
// Feed.InclusionProof) of entry at index in a tree of the given size and root.
func VerifyInclusion(index, size uint64, entry []byte, proofHashes [][]byte, root Hash) error {
	if size == 0 || index >= size {
		return errorf(ErrInvalidProof, "index %d outside tree of size %d", index, size)
	}
	lh := LeafHash(entry)
	if err := proof.VerifyInclusion(hasher, index, size, lh[:], proofHashes, root[:]); err != nil {
		return errorf(ErrInvalidProof, "inclusion of %d in %d: %v", index, size, err)
	}
	return nil
}

// VerifyConsistency checks an RFC 6962 consistency proof (as made by
// Feed.ConsistencyProof) that the tree (size1, root1) is a prefix of the tree
// (size2, root2).
func VerifyConsistency(size1, size2 uint64, proofHashes [][]byte, root1, root2 Hash) error {
	if size1 > size2 {
		return errorf(ErrInvalidProof, "consistency from %d to smaller %d", size1, size2)
	}
	if size1 == 0 && root1 != emptyRoot {
		return errorf(ErrInvalidProof, "size 0 with non-empty root")
	}
	if err := proof.VerifyConsistency(hasher, size1, size2, proofHashes, root1[:], root2[:]); err != nil {
		return errorf(ErrInvalidProof, "consistency %d→%d: %v", size1, size2, err)
	}
	return nil
}

// nodeStoreLevel is the lowest tree level whose perfect-subtree hashes are
// stored. Lower nodes are recomputed from at most 2^nodeStoreLevel entries
// when a proof needs them, which keeps the stored tree to about one node per
// eight entries.
const nodeStoreLevel = 4

func nodeName(id compact.NodeID) string { return fmt.Sprintf("(%d,%d)", id.Level, id.Index) }
