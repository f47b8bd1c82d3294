package replication

import (
	"cmp"
	"crypto/cipher"
	"crypto/ed25519"
	"slices"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/replication/syncpb"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes and bounds of message fields. See FORMAT.md.
const (
	NonceSize = 32
	ProofSize = 32
	// MaxProofs bounds the capability proofs of one Prove: the newest
	// epochs a prover holds, and epoch 0.
	MaxProofs = 8
	// MaxHeadsPerMessage bounds the heads of one Heads message.
	MaxHeadsPerMessage = 1024
	// MaxRangesPerWant bounds the ranges of one Want.
	MaxRangesPerWant = 256
	// MaxReasonSize bounds a Refuse reason.
	MaxReasonSize = 256
	// SealedWriterSize is the size of a sealed writer: feed key and
	// signature, with the AEAD's tag.
	SealedWriterSize = feed.KeySize + ed25519.SignatureSize + chacha20poly1305.Overhead
)

// Refuse reasons.
const (
	ReasonNotHeld     = "not-held"
	ReasonUnknownFeed = "unknown-feed"
	ReasonFrozen      = "frozen"
	ReasonBusy        = "busy"
	ReasonError       = "error"
)

// bindingLabel starts every proof binding; writerLabel the bytes a
// writer's signature covers, before the binding; sealLabel the input,
// before the binding, of the capability's HMAC that makes the key sealing
// the writer (never a binding, so never a proof sent on the wire).
const (
	bindingLabel = "mycel/sync/2\x00"
	writerLabel  = "mycel/sync/2 writer\x00"
	sealLabel    = "mycel/sync/2 seal\x00"
)

// Credentials are what one side proves in the opening.
type Credentials struct {
	// Caps are the replication capabilities of the epochs this side holds.
	// The newest MaxProofs-1 are proven, and epoch 0's if held.
	Caps []auth.ReplicationCapability
	// Writer, if set, is this device's feed key in the space: it signs the
	// binding, which lets a peer that knows the writer set accept a member
	// behind on key rotations.
	Writer ed25519.PrivateKey
}

// EpochProof is a proof of one epoch's replication capability.
type EpochProof struct {
	Epoch uint32
	Proof []byte // ProofSize bytes
}

// Proof is what the peer proved in the opening. Writer is set only when its
// signature of the binding verified.
type Proof struct {
	Epochs []EpochProof
	Writer *feed.PublicKey
}

// VerifyCap returns a Config.Verify that accepts a proof of c alone.
func VerifyCap(c auth.ReplicationCapability) func(binding []byte, p Proof) bool {
	return func(binding []byte, p Proof) bool {
		for _, ep := range p.Epochs {
			if ep.Epoch == c.Epoch && c.Verify(binding, ep.Proof) {
				return true
			}
		}
		return false
	}
}

// prove builds this side's Prove over binding.
func (c Credentials) prove(binding []byte) *syncpb.Prove {
	caps := slices.Clone(c.Caps)
	slices.SortFunc(caps, func(a, b auth.ReplicationCapability) int { return cmp.Compare(b.Epoch, a.Epoch) })
	caps = slices.CompactFunc(caps, func(a, b auth.ReplicationCapability) bool { return a.Epoch == b.Epoch })
	if len(caps) > MaxProofs {
		if last := caps[len(caps)-1]; last.Epoch == 0 {
			caps = append(caps[:MaxProofs-1], last)
		} else {
			caps = caps[:MaxProofs]
		}
	}
	var writer []byte // feed key ‖ signature, sealed under each capability
	if c.Writer != nil {
		writer = append(slices.Clone([]byte(c.Writer.Public().(ed25519.PublicKey))), ed25519.Sign(c.Writer, writerMessage(binding))...)
	}
	p := &syncpb.Prove{}
	for _, c := range caps {
		proof := c.Proof(binding)
		ep := &syncpb.EpochProof{Epoch: c.Epoch, Proof: proof[:]}
		if writer != nil {
			ep.SealedWriter = sealAEAD(c, binding).Seal(nil, zeroNonce[:], writer, binding)
		}
		p.Proofs = append(p.Proofs, ep)
	}
	return p
}

var zeroNonce [chacha20poly1305.NonceSize]byte

// sealAEAD returns the AEAD that seals the writer under capability c for
// one binding. Its key, an HMAC of c's key over the binding and the
// peers' fresh nonces, seals one message only: the zero nonce is safe.
func sealAEAD(c auth.ReplicationCapability, binding []byte) cipher.AEAD {
	key := c.Proof(append([]byte(sealLabel), binding...))
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		panic("sync: " + err.Error()) // the key has the right size
	}
	return aead
}

func writerMessage(binding []byte) []byte {
	return append([]byte(writerLabel), binding...)
}

// Binding returns the bytes a prover's capability proof covers:
//
//	"mycel/sync/2" ‖ 0x00 ‖ prover ID ‖ verifier ID ‖ prover nonce ‖ verifier nonce
//
// Peer IDs are length-prefixed (uvarint) so that no two pairs of IDs give
// the same bytes.
func Binding(prover, verifier []byte, proverNonce, verifierNonce [NonceSize]byte) []byte {
	b := make([]byte, 0, len(bindingLabel)+len(prover)+len(verifier)+2*NonceSize+4)
	b = append(b, bindingLabel...)
	b = appendBytes(b, prover)
	b = appendBytes(b, verifier)
	b = append(b, proverNonce[:]...)
	b = append(b, verifierNonce[:]...)
	return b
}

func appendBytes(b, v []byte) []byte {
	for n := uint64(len(v)); ; n >>= 7 {
		if n < 0x80 {
			b = append(b, byte(n))
			break
		}
		b = append(b, byte(n)|0x80)
	}
	return append(b, v...)
}

// parseHello checks a Hello and returns the peer's nonce.
func parseHello(h *syncpb.Hello) ([NonceSize]byte, error) {
	var nonce [NonceSize]byte
	if h.GetVersion() != Version {
		return nonce, errorf(ErrVersion, "peer speaks version %d, want %d", h.GetVersion(), Version)
	}
	if len(h.GetNonce()) != NonceSize {
		return nonce, errorf(ErrMalformed, "hello: nonce of %d bytes", len(h.GetNonce()))
	}
	return [NonceSize]byte(h.GetNonce()), nil
}

// parseProve decodes a Prove and opens the writer sealed under each proof
// that one of caps (this side's capabilities) verifies: each must open, all
// must name the same writer, and its signature of binding must verify.
// Sealed writers under proofs this side cannot check are not looked at.
func parseProve(p *syncpb.Prove, binding []byte, caps []auth.ReplicationCapability) (Proof, error) {
	var out Proof
	if n := len(p.GetProofs()); n == 0 || n > MaxProofs {
		return out, errorf(ErrMalformed, "prove: %d proofs, want 1 to %d", n, MaxProofs)
	}
	seen := make(map[uint32]bool)
	for _, ep := range p.GetProofs() {
		if len(ep.GetProof()) != ProofSize {
			return out, errorf(ErrMalformed, "prove: proof of %d bytes", len(ep.GetProof()))
		}
		if n := len(ep.GetSealedWriter()); n != 0 && n != SealedWriterSize {
			return out, errorf(ErrMalformed, "prove: sealed writer of %d bytes", n)
		}
		if seen[ep.GetEpoch()] {
			return out, errorf(ErrMalformed, "prove: epoch %d twice", ep.GetEpoch())
		}
		seen[ep.GetEpoch()] = true
		out.Epochs = append(out.Epochs, EpochProof{Epoch: ep.GetEpoch(), Proof: ep.GetProof()})
	}
	for _, ep := range p.GetProofs() {
		if len(ep.GetSealedWriter()) == 0 {
			continue
		}
		for _, c := range caps {
			if c.Epoch != ep.GetEpoch() || !c.Verify(binding, ep.GetProof()) {
				continue
			}
			plain, err := sealAEAD(c, binding).Open(nil, zeroNonce[:], ep.GetSealedWriter(), binding)
			if err != nil {
				return Proof{}, errorf(ErrUnauthorized, "prove: sealed writer of epoch %d does not open", c.Epoch)
			}
			k := feed.PublicKey(plain[:feed.KeySize])
			switch {
			case out.Writer != nil && *out.Writer != k:
				return Proof{}, errorf(ErrUnauthorized, "prove: two writers")
			case out.Writer == nil && !ed25519.Verify(ed25519.PublicKey(k[:]), writerMessage(binding), plain[feed.KeySize:]):
				return Proof{}, errorf(ErrUnauthorized, "prove: writer signature does not verify")
			}
			out.Writer = &k
		}
	}
	return out, nil
}

// parseHeads decodes and verifies the signature of every head.
func parseHeads(h *syncpb.Heads) ([]feed.SignedHead, error) {
	if len(h.GetHeads()) > MaxHeadsPerMessage {
		return nil, errorf(ErrMalformed, "heads: %d heads, limit %d", len(h.GetHeads()), MaxHeadsPerMessage)
	}
	out := make([]feed.SignedHead, len(h.GetHeads()))
	for i, b := range h.GetHeads() {
		if err := out[i].UnmarshalBinary(b); err != nil {
			return nil, errorf(ErrMalformed, "heads[%d]: %v", i, err)
		}
		if err := out[i].Verify(); err != nil {
			return nil, errorf(ErrProtocol, "heads[%d]: %v", i, err)
		}
	}
	return out, nil
}

// wantMsg is a checked Want.
type wantMsg struct {
	id       uint32
	feed     feed.PublicKey
	ranges   []feed.Range
	base     uint64
	maxBytes uint32
}

// parseWant checks a Want: key size, ranges ascending, disjoint, non-empty
// and below feed.MaxLength.
func parseWant(w *syncpb.Want) (wantMsg, error) {
	var out wantMsg
	if len(w.GetFeed()) != feed.KeySize {
		return out, errorf(ErrMalformed, "want: feed key of %d bytes", len(w.GetFeed()))
	}
	if len(w.GetRanges()) > MaxRangesPerWant {
		return out, errorf(ErrMalformed, "want: %d ranges, limit %d", len(w.GetRanges()), MaxRangesPerWant)
	}
	if w.GetBase() > feed.MaxLength {
		return out, errorf(ErrMalformed, "want: base %d beyond %d", w.GetBase(), uint64(feed.MaxLength))
	}
	out = wantMsg{id: w.GetId(), feed: feed.PublicKey(w.GetFeed()), base: w.GetBase(), maxBytes: w.GetMaxBytes()}
	var prev uint64
	for i, r := range w.GetRanges() {
		s, e := r.GetStart(), r.GetEnd()
		if s >= e || e > feed.MaxLength || (i > 0 && s <= prev) {
			return wantMsg{}, errorf(ErrMalformed, "want: range %d [%d, %d) out of order or bounds", i, s, e)
		}
		prev = e
		out.ranges = append(out.ranges, feed.Range{Start: s, End: e})
	}
	return out, nil
}

// parseData decodes the batch of a Data message (shape only; Feed.Ingest
// verifies it).
func parseData(d *syncpb.Data) (*feed.Batch, error) {
	b := new(feed.Batch)
	if err := b.UnmarshalBinary(d.GetBatch()); err != nil {
		return nil, errorf(ErrMalformed, "data %d: %v", d.GetId(), err)
	}
	return b, nil
}

// parseRefuse checks the reason's size.
func parseRefuse(r *syncpb.Refuse) error {
	if len(r.GetReason()) > MaxReasonSize {
		return errorf(ErrMalformed, "refuse: reason of %d bytes", len(r.GetReason()))
	}
	return nil
}

// parseFork decodes and verifies fork evidence.
func parseFork(f *syncpb.Fork) (*feed.ForkEvidence, error) {
	ev := new(feed.ForkEvidence)
	if err := ev.UnmarshalBinary(f.GetEvidence()); err != nil {
		return nil, errorf(ErrMalformed, "fork: %v", err)
	}
	if err := feed.VerifyEvidence(ev); err != nil {
		return nil, errorf(ErrProtocol, "fork: %v", err)
	}
	return ev, nil
}

func pbRanges(rs []feed.Range) []*syncpb.Range {
	out := make([]*syncpb.Range, len(rs))
	for i, r := range rs {
		out[i] = &syncpb.Range{Start: r.Start, End: r.End}
	}
	return out
}
