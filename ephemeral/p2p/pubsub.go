package p2p

import (
	"crypto/sha256"
	"encoding/hex"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"

	"github.com/mycelsync/mycel/ephemeral"
)

// TopicPrefix starts the gossipsub topic of every space's ephemeral
// messages; the version is that of this package's use of the topic.
const TopicPrefix = "/mycel/eph/1/"

// TopicName returns the gossipsub topic of a space's ephemeral messages:
// TopicPrefix ‖ hex of its discovery key.
func TopicName(t ephemeral.Topic) string { return TopicPrefix + hex.EncodeToString(t[:]) }

// PubSubOptions are the gossipsub options every mycel node uses (they must
// agree: a node that signs would refuse the others' unsigned messages):
// no gossipsub signature, no author and no sequence number — messages that
// carry any of them are refused — and MessageID as the message ID
// everywhere. Add pubsub.WithSeenMessagesTTL and the like after them.
func PubSubOptions() []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(MessageID),
	}
}

// MessageID is the gossipsub message ID of an ephemeral topic's messages:
// SHA-256 of the message's data (the encoded envelope). Gossipsub computes
// it and marks it seen before any validator runs, so it must not be
// something a forwarder can copy onto a forgery — the envelope's own ID
// would be: a router that rewrote the body of a genuine envelope and
// forwarded it first would get the genuine one dropped as a duplicate
// everywhere the forgery arrived first. A hash of the bytes cannot be
// shadowed. Another encoding of the same envelope gets another message ID;
// the Filter's seen-set, keyed by the envelope's ID and sender, still
// delivers it once.
func MessageID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}
