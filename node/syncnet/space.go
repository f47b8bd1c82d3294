package syncnet

import (
	"encoding/hex"

	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/replication"
)

// Space is what the driver needs of one space it replicates.
type Space interface {
	// ID names the space; its protocol is ProtocolFor(ID()).
	ID() auth.SpaceID
	// Model is the sessions' read-only view of the space's feeds.
	Model() replication.Model
	// Credentials are what this node proves in a session's opening.
	Credentials() replication.Credentials
	// Verify decides whether a peer's proof over binding opens a session.
	// It is asked again of the open sessions after Recheck.
	Verify(binding []byte, p replication.Proof) bool
	// Ingest verifies and stores a batch of feed k from a peer
	// (feed.Feed.Ingest).
	Ingest(k feed.PublicKey, b *feed.Batch) error
	// ImportEvidence stores verified fork evidence (feed.Feed.ImportEvidence).
	ImportEvidence(ev *feed.ForkEvidence) error
}

// ProtocolFor returns the libp2p protocol of a space's replication:
// replication.ProtocolID/<hex of the first 16 bytes of auth.DiscoveryKey(id)>. A
// peer that does not serve the space has no handler for it, so multistream
// refuses the stream and the opener learns nothing more; the discovery key
// does not reveal the space ID.
func ProtocolFor(id auth.SpaceID) protocol.ID {
	dk := auth.DiscoveryKey(id)
	return protocol.ID(replication.ProtocolID + "/" + hex.EncodeToString(dk[:16]))
}

// FeedSpace is a Space over a feed.DB with a fixed list of feeds and one
// capability: enough for tests and for the daemon until node/space drives
// replication.
type FeedSpace struct {
	id    auth.SpaceID
	db    *feed.DB
	feeds []feed.PublicKey
	cap   auth.ReplicationCapability
}

// NewFeedSpace returns the space id made of the given feeds of db, proving
// and accepting cap.
func NewFeedSpace(id auth.SpaceID, db *feed.DB, feeds []feed.PublicKey, cap auth.ReplicationCapability) *FeedSpace {
	return &FeedSpace{id: id, db: db, feeds: append([]feed.PublicKey(nil), feeds...), cap: cap}
}

// ID implements Space.
func (s *FeedSpace) ID() auth.SpaceID { return s.id }

// Model implements Space.
func (s *FeedSpace) Model() replication.Model {
	return NewDBModel(s.db, func() []feed.PublicKey { return s.feeds })
}

// Credentials implements Space: the one capability.
func (s *FeedSpace) Credentials() replication.Credentials {
	return replication.Credentials{Caps: []auth.ReplicationCapability{s.cap}}
}

// Verify implements Space: only the one capability is accepted.
func (s *FeedSpace) Verify(binding []byte, p replication.Proof) bool {
	return replication.VerifyCap(s.cap)(binding, p)
}

// Ingest implements Space.
func (s *FeedSpace) Ingest(k feed.PublicKey, b *feed.Batch) error {
	f, err := s.db.Feed(k)
	if err != nil {
		return err
	}
	return f.Ingest(b)
}

// ImportEvidence implements Space.
func (s *FeedSpace) ImportEvidence(ev *feed.ForkEvidence) error {
	f, err := s.db.Feed(ev.A.Key)
	if err != nil {
		return err
	}
	return f.ImportEvidence(ev)
}

// NewDBModel returns the replication.Model of the feeds of db that feeds lists
// (called again by Session.Refresh). A feed that cannot be loaded reads as
// empty: the session then neither offers nor answers for it.
func NewDBModel(db *feed.DB, feeds func() []feed.PublicKey) replication.Model {
	return dbModel{db, feeds}
}

type dbModel struct {
	db    *feed.DB
	feeds func() []feed.PublicKey
}

func (m dbModel) Feeds() []feed.PublicKey { return m.feeds() }

func (m dbModel) Head(k feed.PublicKey) (feed.SignedHead, bool) {
	f, err := m.db.Feed(k)
	if err != nil {
		return feed.SignedHead{}, false
	}
	return f.Head()
}

func (m dbModel) Missing(k feed.PublicKey) []feed.Range {
	f, err := m.db.Feed(k)
	if err != nil {
		return nil
	}
	return f.Missing()
}

func (m dbModel) Length(k feed.PublicKey) uint64 {
	f, err := m.db.Feed(k)
	if err != nil {
		return 0
	}
	return f.Length()
}

func (m dbModel) Evidence(k feed.PublicKey) *feed.ForkEvidence {
	f, err := m.db.Feed(k)
	if err != nil {
		return nil
	}
	return f.Evidence()
}

func (m dbModel) Batch(k feed.PublicKey, req feed.BatchRequest) (*feed.Batch, error) {
	f, err := m.db.Feed(k)
	if err != nil {
		return nil, err
	}
	return f.Batch(req)
}
