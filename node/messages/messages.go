// Package messages is the codec of what members put in their space's
// ephemeral channel (node/EPHEMERAL.md, "Body"): presence, apps' messages
// and the evidence of a removal, sealed in an ephemeral envelope under
// the members' key of an epoch (KeyKindEpoch). Sign-in's bodies, sealed
// under request keys, are node/signin's.
//
// It does no I/O and builds for js/wasm: the browser node speaks the same
// bodies.
package messages

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/mycelsync/mycel/internal/flatjson"
	"github.com/mycelsync/mycel/node/space"
)

// KeyKindEpoch is the envelope key kind of members' messages
// (ephemeral/FORMAT.md).
const KeyKindEpoch = 1

// KeyKindKept is the envelope key kind of members' app messages that the
// relays' mailboxes keep for devices that are offline (node/EPHEMERAL.md,
// "Kept messages"): sealed under the same key as KeyKindEpoch, told apart
// in the clear so that a relay keeps them and receivers hold their IDs
// for as long as a mailbox may hand them over. Only KindApp bodies are
// accepted under it.
const KeyKindKept = 4

// Body kinds.
const (
	KindPresence = "presence"
	KindApp      = "app"
	KindRemoved  = "removed" // to a removed device: the evidence of its removal
)

// Bounds of an app's message (the API's are the same: api.MaxMessageTopic,
// api.MaxMessageData).
const (
	MaxTopic = 64       // bytes of UTF-8, at least 1
	MaxData  = 16 << 10 // bytes
)

// Body is the plaintext of a member's envelope. Its JSON is the wire
// format: field names and omitempty are part of it. Encode and Decode
// write and read it with internal/flatjson, as encoding/json would (the
// core leaves encoding/json out of the browser node's wasm).
type Body struct {
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`  // presence: the sender's device name
	Topic string `json:"topic,omitempty"` // app: the app's topic
	Data  []byte `json:"data,omitempty"`  // app: the payload (base64 in JSON)
	// removed: a feed.Batch of the remove-writer entry (space.LearnRemoval,
	// space.LearnApproverRemoval)
	Evidence []byte `json:"evidence,omitempty"`
	// presence: the feed of the writer whose add of the sender counts in
	// its view (none for the origin), so that a member that knows that
	// writer was removed shows the sender the removal.
	By []byte `json:"by,omitempty"`
}

// Encode returns the body's wire form.
func (b Body) Encode() ([]byte, error) {
	o := flatjson.NewObject()
	o.String("kind", b.Kind)
	if b.Name != "" {
		o.String("name", b.Name)
	}
	if b.Topic != "" {
		o.String("topic", b.Topic)
	}
	if len(b.Data) != 0 {
		o.Bytes("data", b.Data)
	}
	if len(b.Evidence) != 0 {
		o.Bytes("evidence", b.Evidence)
	}
	if len(b.By) != 0 {
		o.Bytes("by", b.By)
	}
	return o.End(), nil
}

// Decode decodes a member's body and bounds what it carries (the envelope
// bounds its size: ephemeral.MaxPlaintextSize). What a kind's fields must
// hold beyond that is checked by CheckPresence and CheckApp.
func Decode(plain []byte) (Body, error) {
	var b Body
	err := flatjson.Decode(plain, []flatjson.Field{
		{Name: "kind", String: &b.Kind},
		{Name: "name", String: &b.Name},
		{Name: "topic", String: &b.Topic},
		{Name: "data", Bytes: &b.Data},
		{Name: "evidence", Bytes: &b.Evidence},
		{Name: "by", Bytes: &b.By},
	})
	if err != nil {
		return b, fmt.Errorf("body: %w", err)
	}
	if len(b.Evidence) > space.MaxRemovalEvidence {
		return b, fmt.Errorf("body: evidence of %d bytes", len(b.Evidence))
	}
	if len(b.By) != 0 && len(b.By) != 32 {
		return b, fmt.Errorf("body: approver of %d bytes", len(b.By))
	}
	return b, nil
}

// CheckPresence checks a presence's name.
func CheckPresence(b Body) error {
	if len(b.Name) > space.MaxNameSize || !utf8.ValidString(b.Name) {
		return errors.New("presence: bad name")
	}
	return nil
}

// ErrBadTopic and ErrTooLarge say why CheckApp refused a message.
var (
	ErrBadTopic = fmt.Errorf("a topic is 1 to %d bytes of UTF-8", MaxTopic)
	ErrTooLarge = errors.New("message data too large")
)

// CheckApp checks an app's message: its topic, and its data's size.
func CheckApp(topic string, data []byte) error {
	if topic == "" || len(topic) > MaxTopic || !utf8.ValidString(topic) {
		return ErrBadTopic
	}
	if len(data) > MaxData {
		return fmt.Errorf("%w: message data of %d bytes, limit %d", ErrTooLarge, len(data), MaxData)
	}
	return nil
}
