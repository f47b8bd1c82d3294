// Package feedpb holds the wire and storage encoding of mycel feeds: the
// messages of feed.proto (the schema of record) with hand-written codecs
// over protowire (internal/pbwire), byte for byte what protoc-gen-go's code
// wrote, without protobuf's reflection runtime. See ../FORMAT.md for what is
// hashed and signed: the signed bytes of a head are NOT this encoding.
package feedpb

// SignedHead commits a writer to the first Length entries of its feed.
type SignedHead struct {
	Key       []byte // 32-byte Ed25519 public key of the feed
	Length    uint64 // number of entries covered
	Root      []byte // 32-byte RFC 6962 SHA-256 Merkle root over them
	TimeMs    int64  // writer's clock, Unix milliseconds
	Signature []byte // 64-byte Ed25519 signature of the signed bytes
}

// Run is a contiguous run of entries [start, start+len(entries)) with the
// compact-range hashes that prove it against a head of length N (feed.proto).
type Run struct {
	Start   uint64
	Entries [][]byte
	Left    [][]byte
	Right   [][]byte
}

// Consistency proves that a head of length Base is a prefix of a longer
// head (feed.proto).
type Consistency struct {
	Base  uint64
	Left  [][]byte
	Right [][]byte
}

// Batch is what a peer sends to extend or fill in a replica.
type Batch struct {
	Head        *SignedHead
	Runs        []*Run
	Consistency *Consistency
}

// ForkEvidence holds two heads of one feed that cannot both be true.
type ForkEvidence struct {
	A     *SignedHead
	B     *SignedHead
	Left  [][]byte
	Right [][]byte
}

// HeadRecord is the stored state of one feed's tree.
type HeadRecord struct {
	Head     *SignedHead
	Length   uint64
	Frontier [][]byte
}

func (x *SignedHead) GetKey() []byte {
	if x != nil {
		return x.Key
	}
	return nil
}

func (x *SignedHead) GetLength() uint64 {
	if x != nil {
		return x.Length
	}
	return 0
}

func (x *SignedHead) GetRoot() []byte {
	if x != nil {
		return x.Root
	}
	return nil
}

func (x *SignedHead) GetTimeMs() int64 {
	if x != nil {
		return x.TimeMs
	}
	return 0
}

func (x *SignedHead) GetSignature() []byte {
	if x != nil {
		return x.Signature
	}
	return nil
}

func (x *Run) GetStart() uint64 {
	if x != nil {
		return x.Start
	}
	return 0
}

func (x *Run) GetEntries() [][]byte {
	if x != nil {
		return x.Entries
	}
	return nil
}

func (x *Run) GetLeft() [][]byte {
	if x != nil {
		return x.Left
	}
	return nil
}

func (x *Run) GetRight() [][]byte {
	if x != nil {
		return x.Right
	}
	return nil
}

func (x *Consistency) GetBase() uint64 {
	if x != nil {
		return x.Base
	}
	return 0
}

func (x *Consistency) GetLeft() [][]byte {
	if x != nil {
		return x.Left
	}
	return nil
}

func (x *Consistency) GetRight() [][]byte {
	if x != nil {
		return x.Right
	}
	return nil
}

func (x *Batch) GetHead() *SignedHead {
	if x != nil {
		return x.Head
	}
	return nil
}

func (x *Batch) GetRuns() []*Run {
	if x != nil {
		return x.Runs
	}
	return nil
}

func (x *Batch) GetConsistency() *Consistency {
	if x != nil {
		return x.Consistency
	}
	return nil
}

func (x *ForkEvidence) GetA() *SignedHead {
	if x != nil {
		return x.A
	}
	return nil
}

func (x *ForkEvidence) GetB() *SignedHead {
	if x != nil {
		return x.B
	}
	return nil
}

func (x *ForkEvidence) GetLeft() [][]byte {
	if x != nil {
		return x.Left
	}
	return nil
}

func (x *ForkEvidence) GetRight() [][]byte {
	if x != nil {
		return x.Right
	}
	return nil
}

func (x *HeadRecord) GetHead() *SignedHead {
	if x != nil {
		return x.Head
	}
	return nil
}

func (x *HeadRecord) GetLength() uint64 {
	if x != nil {
		return x.Length
	}
	return 0
}

func (x *HeadRecord) GetFrontier() [][]byte {
	if x != nil {
		return x.Frontier
	}
	return nil
}
