package node

import (
	"fmt"

	"github.com/mycelsync/mycel/auth"
)

// MirrorToken returns the mirror token of the space's newest epoch, to hand
// to a relay that mirrors the space (relay.HandMirrorToken): it lets the
// relay replicate the space's feeds and decrypts nothing. The space is
// named by its hex ID or a prefix of at least 8 digits.
func (n *Node) MirrorToken(spaceID string) (auth.MirrorToken, error) {
	m, err := n.opened(spaceID)
	if err != nil {
		return auth.MirrorToken{}, err
	}
	kr, err := m.sp.Keyring()
	if err != nil {
		return auth.MirrorToken{}, fmt.Errorf("node: mirror token: %w", err)
	}
	newest := kr.Epochs[len(kr.Epochs)-1]
	return newest.MirrorToken(m.sp.ID()), nil
}
