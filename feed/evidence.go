package feed

import (
	"github.com/mycelsync/mycel/feed/feedpb"
)

// ForkEvidence is proof, checkable by anyone who knows only the feed's key,
// that the writer signed two heads that cannot both be true.
//
// With A.Length == B.Length the roots differ. With A.Length < B.Length, Left
// and Right are the compact range hashes of [0, A.Length) and [A.Length,
// B.Length): merged they give B.Root, so B commits to them, yet Left's own
// root is not A.Root. No honest writer signs both.
type ForkEvidence struct {
	A, B  SignedHead
	Left  [][]byte
	Right [][]byte
}

// VerifyEvidence checks fork evidence on its own: both signatures, one key,
// and the conflict.
func VerifyEvidence(ev *ForkEvidence) error {
	if ev == nil {
		return errorf(ErrMalformed, "no evidence")
	}
	if ev.A.Key != ev.B.Key {
		return errorf(ErrInvalidProof, "evidence heads of two feeds")
	}
	if err := ev.A.Verify(); err != nil {
		return err
	}
	if err := ev.B.Verify(); err != nil {
		return err
	}
	a, b := ev.A.Length, ev.B.Length
	switch {
	case a > b:
		return errorf(ErrMalformed, "evidence heads out of order")
	case a == b:
		if ev.A.Root == ev.B.Root {
			return errorf(ErrInvalidProof, "evidence heads agree")
		}
		return nil
	}
	left, err := newRange(0, a, ev.Left)
	if err != nil {
		return err
	}
	right, err := newRange(a, b, ev.Right)
	if err != nil {
		return err
	}
	if rangeRoot(left) == ev.A.Root {
		return errorf(ErrInvalidProof, "evidence is consistent with head A")
	}
	if err := left.AppendRange(right, nil); err != nil {
		return errorf(ErrInvalidProof, "%v", err)
	}
	if rangeRoot(left) != ev.B.Root {
		return errorf(ErrInvalidProof, "evidence hashes do not reproduce head B")
	}
	return nil
}

// MarshalBinary encodes the evidence as a feedpb.ForkEvidence.
func (ev *ForkEvidence) MarshalBinary() ([]byte, error) {
	return (&feedpb.ForkEvidence{A: ev.A.toProto(), B: ev.B.toProto(), Left: ev.Left, Right: ev.Right}).Marshal()
}

// UnmarshalBinary decodes evidence; call VerifyEvidence to check it.
func (ev *ForkEvidence) UnmarshalBinary(data []byte) error {
	if len(data) > MaxEvidenceBytes {
		return errorf(ErrTooLarge, "evidence of %d bytes", len(data))
	}
	var p feedpb.ForkEvidence
	if err := p.Unmarshal(data); err != nil {
		return errorf(ErrMalformed, "evidence: %v", err)
	}
	a, err := headFromProto(p.A)
	if err != nil {
		return err
	}
	b, err := headFromProto(p.B)
	if err != nil {
		return err
	}
	if len(p.Left) > maxRangeHashes || len(p.Right) > maxRangeHashes {
		return errorf(ErrMalformed, "evidence has too many hashes")
	}
	*ev = ForkEvidence{A: a, B: b, Left: p.Left, Right: p.Right}
	return nil
}
