// Package syncpb holds the messages of the replication protocol
// /mycel/sync/2.0.0: the messages of sync.proto, the schema of record, with
// hand-written codecs over protowire (internal/pbwire) that write the bytes
// protoc-gen-go's code wrote, without protobuf's reflection runtime. Each
// message on the stream is a uvarint length followed by one Message; see
// ../FORMAT.md for the sequence, the proof binding and the bounds a
// receiver enforces. Unknown fields are skipped, so fields may be added
// later without a new protocol ID.
package syncpb

// Message is one frame's payload: exactly one body must be set.
type Message struct {
	// Body is one of *Message_Hello, *Message_Prove, *Message_Heads,
	// *Message_Want, *Message_Data, *Message_Refuse, *Message_Fork,
	// *Message_Done.
	Body isMessage_Body
}

type isMessage_Body interface {
	isMessage_Body()
}

type Message_Hello struct {
	Hello *Hello
}

type Message_Prove struct {
	Prove *Prove
}

type Message_Heads struct {
	Heads *Heads
}

type Message_Want struct {
	Want *Want
}

type Message_Data struct {
	Data *Data
}

type Message_Refuse struct {
	Refuse *Refuse
}

type Message_Fork struct {
	Fork *Fork
}

type Message_Done struct {
	Done *Done
}

func (*Message_Hello) isMessage_Body()  {}
func (*Message_Prove) isMessage_Body()  {}
func (*Message_Heads) isMessage_Body()  {}
func (*Message_Want) isMessage_Body()   {}
func (*Message_Data) isMessage_Body()   {}
func (*Message_Refuse) isMessage_Body() {}
func (*Message_Fork) isMessage_Body()   {}
func (*Message_Done) isMessage_Body()   {}

// Hello is the first message each side sends.
type Hello struct {
	Version uint32 // protocol version: 2
	Nonce   []byte // 32 fresh random bytes, never reused
}

// Prove is the second message each side sends, after the peer's Hello
// (sync.proto): proofs of the space's replication capabilities.
type Prove struct {
	Proofs []*EpochProof // 1 to 8, distinct epochs
}

// EpochProof is one capability's proof.
type EpochProof struct {
	Epoch uint32
	Proof []byte // 32 bytes: auth.ReplicationCapability.Proof(binding)
	// Empty, or 112 bytes: the writer's feed key and signature of the
	// binding, sealed under the capability (sync.proto).
	SealedWriter []byte
}

// Heads announces the latest signed heads of feeds of the space.
type Heads struct {
	Heads [][]byte // feed.SignedHead encodings (feedpb.SignedHead), at most 1024
}

// Range is the half-open interval [Start, End) of entry indices.
type Range struct {
	Start uint64
	End   uint64
}

// Want asks for entries of one feed; the answer is Data or Refuse with the
// same Id.
type Want struct {
	Feed     []byte   // 32-byte feed key
	Ranges   []*Range // ascending, disjoint, non-empty; at most 256
	Base     uint64   // the asker's head length: prove consistency from here
	Id       uint32   // chosen by the asker, unique among its open wants
	MaxBytes uint32   // entry bytes the asker accepts in the answer (0: responder's default)
}

// Data answers a Want with a batch of entries and proofs.
type Data struct {
	Id    uint32
	Batch []byte // feed.Batch encoding (feedpb.Batch)
}

// Refuse answers a Want the responder cannot serve.
type Refuse struct {
	Id     uint32
	Reason string // short code, e.g. "not-held", "unknown-feed", "busy"; at most 256 bytes
}

// Fork passes on evidence that a feed's writer signed conflicting heads.
type Fork struct {
	Evidence []byte // feed.ForkEvidence encoding (feedpb.ForkEvidence)
}

// Done says the sender will send nothing more. Optional.
type Done struct{}

func (x *Message) GetBody() isMessage_Body {
	if x != nil {
		return x.Body
	}
	return nil
}

func (x *Message) GetHello() *Hello {
	if x, ok := x.GetBody().(*Message_Hello); ok {
		return x.Hello
	}
	return nil
}

func (x *Message) GetProve() *Prove {
	if x, ok := x.GetBody().(*Message_Prove); ok {
		return x.Prove
	}
	return nil
}

func (x *Message) GetHeads() *Heads {
	if x, ok := x.GetBody().(*Message_Heads); ok {
		return x.Heads
	}
	return nil
}

func (x *Message) GetWant() *Want {
	if x, ok := x.GetBody().(*Message_Want); ok {
		return x.Want
	}
	return nil
}

func (x *Message) GetData() *Data {
	if x, ok := x.GetBody().(*Message_Data); ok {
		return x.Data
	}
	return nil
}

func (x *Message) GetRefuse() *Refuse {
	if x, ok := x.GetBody().(*Message_Refuse); ok {
		return x.Refuse
	}
	return nil
}

func (x *Message) GetFork() *Fork {
	if x, ok := x.GetBody().(*Message_Fork); ok {
		return x.Fork
	}
	return nil
}

func (x *Message) GetDone() *Done {
	if x, ok := x.GetBody().(*Message_Done); ok {
		return x.Done
	}
	return nil
}

func (x *Hello) GetVersion() uint32 {
	if x != nil {
		return x.Version
	}
	return 0
}

func (x *Hello) GetNonce() []byte {
	if x != nil {
		return x.Nonce
	}
	return nil
}

func (x *Prove) GetProofs() []*EpochProof {
	if x != nil {
		return x.Proofs
	}
	return nil
}

func (x *EpochProof) GetEpoch() uint32 {
	if x != nil {
		return x.Epoch
	}
	return 0
}

func (x *EpochProof) GetProof() []byte {
	if x != nil {
		return x.Proof
	}
	return nil
}

func (x *EpochProof) GetSealedWriter() []byte {
	if x != nil {
		return x.SealedWriter
	}
	return nil
}

func (x *Heads) GetHeads() [][]byte {
	if x != nil {
		return x.Heads
	}
	return nil
}

func (x *Range) GetStart() uint64 {
	if x != nil {
		return x.Start
	}
	return 0
}

func (x *Range) GetEnd() uint64 {
	if x != nil {
		return x.End
	}
	return 0
}

func (x *Want) GetFeed() []byte {
	if x != nil {
		return x.Feed
	}
	return nil
}

func (x *Want) GetRanges() []*Range {
	if x != nil {
		return x.Ranges
	}
	return nil
}

func (x *Want) GetBase() uint64 {
	if x != nil {
		return x.Base
	}
	return 0
}

func (x *Want) GetId() uint32 {
	if x != nil {
		return x.Id
	}
	return 0
}

func (x *Want) GetMaxBytes() uint32 {
	if x != nil {
		return x.MaxBytes
	}
	return 0
}

func (x *Data) GetId() uint32 {
	if x != nil {
		return x.Id
	}
	return 0
}

func (x *Data) GetBatch() []byte {
	if x != nil {
		return x.Batch
	}
	return nil
}

func (x *Refuse) GetId() uint32 {
	if x != nil {
		return x.Id
	}
	return 0
}

func (x *Refuse) GetReason() string {
	if x != nil {
		return x.Reason
	}
	return ""
}

func (x *Fork) GetEvidence() []byte {
	if x != nil {
		return x.Evidence
	}
	return nil
}
