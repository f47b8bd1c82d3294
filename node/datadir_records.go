package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// A space record is what the node keeps of each space it belongs to or
// asked to join, under "ns" ‖ space ID in the store, sealed under the
// device's local key of the space: the local name and the seed of this
// device's feed key in the space.
type spaceRecord struct {
	Name   string      `json:"name"`
	Writer []byte      `json:"writer"`         // Ed25519 seed
	Join   *joinRecord `json:"join,omitempty"` // this device's request to join, if it made one
	// Leaving: the device left the space and its copy is being deleted;
	// an open finishes the deletion (spaces_leave.go).
	Leaving bool `json:"leaving,omitempty"`
	// Password is the space's password when this device set it, kept to
	// derive the password key's next generation after a removal
	// (signin_password.go). Only in this sealed local record, never in the feeds.
	Password string `json:"password,omitempty"`
}

func recordKey(id auth.SpaceID) []byte { return append([]byte("ns"), id[:]...) }

func recordAD(id auth.SpaceID) []byte {
	return append([]byte("mycel node space record\x00"), id[:]...)
}

// recordedSpaces lists the spaces whose records the store holds.
func (n *Node) recordedSpaces() ([]auth.SpaceID, error) {
	var ids []auth.SpaceID
	err := n.store.Scan([]byte("ns"), feed.PrefixEnd([]byte("ns")), func(key, _ []byte) error {
		id, err := auth.SpaceIDFromBytes(key[2:])
		if err != nil {
			return fmt.Errorf("node: space record %x: %w", key, err)
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

func (n *Node) readRecord(id auth.SpaceID) (*spaceRecord, error) {
	sealed, err := n.store.Get(recordKey(id))
	if err != nil {
		return nil, err
	}
	local := n.device.LocalKey(id)
	data, err := auth.OpenContent(local, sealed, recordAD(id))
	if err != nil {
		return nil, fmt.Errorf("node: space record %s: %w", id, err)
	}
	rec := new(spaceRecord)
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("node: space record %s: %w", id, err)
	}
	if len(rec.Writer) != ed25519.SeedSize {
		return nil, fmt.Errorf("node: space record %s: writer seed of %d bytes", id, len(rec.Writer))
	}
	return rec, nil
}

func (n *Node) writeRecord(id auth.SpaceID, rec *spaceRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	sealed, err := auth.SealContent(n.device.LocalKey(id), data, recordAD(id), rand.Reader)
	if err != nil {
		return err
	}
	return n.kept.Commit([]feed.Write{{Key: recordKey(id), Value: sealed}})
}

// spacePrefix is the namespace of a space in the store: "S" ‖ space ID.
// Everything of the space but its record lives under it — its feeds, its
// keyring, its view — so that one store holds many spaces apart, and
// leaving a space deletes one prefix.
func spacePrefix(id auth.SpaceID) []byte { return append([]byte("S"), id[:]...) }
