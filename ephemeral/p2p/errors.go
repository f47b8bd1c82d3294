package p2p

import "errors"

// Errors of Send, from the receiver's answer, and of the Service.
var (
	// ErrClosed: the Service or Subscription was closed.
	ErrClosed = errors.New("ephemeral/p2p: closed")
	// ErrJoined: the topic already has a Subscription in this Service.
	ErrJoined = errors.New("ephemeral/p2p: topic already subscribed")
	// ErrNotJoined: the receiver of a direct message is not subscribed to
	// the envelope's topic.
	ErrNotJoined = errors.New("ephemeral/p2p: peer not subscribed to the topic")
	// ErrRejected: the receiver refused the envelope as invalid (malformed,
	// forged or outside its time window).
	ErrRejected = errors.New("ephemeral/p2p: envelope rejected")
	// ErrBusy: the receiver could not take the envelope now (its
	// application did not read in time, or its seen-set is full).
	ErrBusy = errors.New("ephemeral/p2p: peer busy")
	// ErrWrongTopic: publishing an envelope on another topic's
	// Subscription.
	ErrWrongTopic = errors.New("ephemeral/p2p: envelope of another topic")
)
