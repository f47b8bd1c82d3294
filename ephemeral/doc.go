// Package ephemeral will hold mycel's ephemeral messages: envelopes that are
// encrypted, signed by the sender's node key and deduplicated (a seen-set that
// survives a restart and outlives the ±5-minute timestamp window), and their
// delivery over a gossipsub topic named by the space's discovery key, over
// direct streams and through the relay's mailbox for members that are offline.
// Join requests, approvals, presence, "new data" nudges and apps' own messages
// travel this way.
//
// Not built yet: this file only reserves the package. See DESIGN.md,
// "Ephemeral messages".
package ephemeral
