// Package auth holds mycel's keys: space IDs and discovery keys, the epoch
// secrets of a space and everything derived from them, the keyring of all
// epochs so far, device HPKE keys, and the sealed boxes that carry secrets
// to a device on approval and on key rotation; and the pieces of sign-in:
// invites, password keys, join requests, safety codes, approvals and
// denials. (The writer set lives with the space's view, in node/space.)
//
// It is plain code over plain inputs: no I/O, no clock, no goroutines, no
// libp2p or badger. Randomness comes in as an io.Reader (crypto/rand when
// nil), except inside crypto/hpke, which draws its own. It builds with
// GOOS=js GOARCH=wasm for the browser node.
//
// # Key hierarchy
//
// Byte layouts, sizes and test vectors are in FORMAT.md.
//
//	space ID (Ed25519 public key of the origin feed; public)
//	 └─ HKDF "mycel/v1/discovery-key" ─► discovery key: names the space on the
//	                                      network without revealing its ID
//
//	epoch secret n (32 random bytes; members only; travels only in sealed boxes)
//	 ├─ HKDF "mycel/v1/content-key"   ─► content key: XChaCha20-Poly1305 key of
//	 │                                   feed entry payloads written in epoch n
//	 ├─ HKDF "mycel/v1/ephemeral-key" ─► ephemeral key: AEAD key of the members'
//	 │                                   ephemeral messages in epoch n
//	 ├─ HKDF "mycel/v1/key-id"        ─► key ID (16 bytes): names the secret in
//	 │                                   public, e.g. beside a sealed secret
//	 └─ HKDF "mycel/v1/mirror-token"  ─► mirror token: members, and the relays
//	      │                              they hand it to
//	      └─ HKDF "mycel/v1/replication-cap" ─► replication capability
//	           └─ HMAC "mycel/v1/replication-proof" ‖ binding ─► proof, per
//	                                                            connection
//
// Every HKDF is HKDF-SHA256 (RFC 5869) with no salt and a 32-byte output.
// The discovery key's info is the bare label. Every epoch-bound
// derivation's info is
//
//	label ‖ 0x00 ‖ space ID (32 bytes) ‖ epoch (uint32, big-endian)
//
// so the keys of two spaces, two epochs or two purposes never coincide,
// even if a secret were reused. Labels are ASCII without NUL, which makes
// the encoding injective.
//
// # Mirror token and replication capability
//
// Opening replication proves, bound to the connection, that the peer holds
// the space's current replication capability. Members and the relay that
// mirrors the space must produce the same proof, yet the relay must decrypt
// nothing. So the capability is not derived from the epoch secret directly
// but through the mirror token:
//
//	mirror token = HKDF(epoch secret, "mycel/v1/mirror-token")
//	capability   = HKDF(mirror token, "mycel/v1/replication-cap")
//	proof        = HMAC-SHA256(capability, "mycel/v1/replication-proof" ‖ 0x00 ‖ binding)
//
// A member derives the token from the secret, then the capability from the
// token (EpochSecret.ReplicationCapability); a relay is handed the token
// (MirrorToken, encoded with MarshalBinary) and derives the capability from
// it (MirrorToken.ReplicationCapability). HKDF is one-way, so the token
// yields neither the secret nor the content or ephemeral keys, which are
// derived from the secret beside it, not below it. Because the token
// belongs to one epoch, a rotation cuts off a removed device, and the
// relay, until a member hands the relay the new epoch's token. The binding
// is the sync protocol's to define; it must name the protocol, the prover
// and the verifier in that order, and fresh nonces of both ends (or a
// channel binding), so that a proof is useless on any other connection or
// in the other direction. A relay checks the same capability before it
// opens a space's mailbox to a peer.
//
// # Sealing
//
// Secrets travel to a device only in sealed boxes: single-shot HPKE (RFC
// 9180, Go's crypto/hpke, base mode) to the device's public key. The suite
// is fixed and named by the box's first byte:
//
//	suite 1: KEM  MLKEM768-X25519 (X-Wing; hybrid post-quantum, 0x647a)
//	         KDF  HKDF-SHA256
//	         AEAD ChaCha20-Poly1305
//	box    = suite (1) ‖ enc (1120) ‖ ciphertext ‖ tag (16)
//
// The hybrid KEM stays secure while either ML-KEM-768 or X25519 does: a
// keyring sealed today is recorded by whoever relays it, and should not
// open to a quantum computer later. Its cost is size: a 1,217-byte public
// key in a join request and 1,137 bytes of overhead per box.
//
// The HPKE info binds the box to its purpose, space and recipient:
//
//	info = label ‖ 0x00 ‖ space ID (32) ‖ recipient feed key (32)
//
// with label "mycel/v1/seal-keyring" for SealKeyring (an approval: the
// whole keyring, every epoch, since a new device must read the whole
// database) and "mycel/v1/seal-epoch-secret" for SealEpochSecret (a
// rotation: one fresh secret per remaining member, whose epoch number is
// sealed with it). A box does not open for another space, another feed or
// as the other kind of box, and the KEM binds it to the recipient's key.
// HPKE base mode does not authenticate the sender: sealed boxes travel
// inside signed feed entries or signed ephemeral envelopes, whose
// signatures say who sealed them.
//
// # Usage
//
// Creating a space:
//
//	kr, err := auth.NewKeyring(auth.SpaceID(originFeedKey), nil)
//	es, _ := kr.Current()
//	sealed, err := auth.SealContent(es.ContentKey(kr.Space), payload, ad, nil)
//
// Approving a device whose join request carried pubBytes and feedKey:
//
//	pub, err := auth.ParseDevicePublicKey(pubBytes)
//	box, err := auth.SealKeyring(pub, kr, auth.Binding{Space: kr.Space, Feed: feedKey})
//
// On the new device, with the DeviceKey it generated and stored:
//
//	kr, err := auth.OpenKeyring(deviceKey, box, auth.Binding{Space: space, Feed: myFeedKey})
//
// Rotating after a removal: es, err := auth.NewEpochSecret(n+1, nil), one
// SealEpochSecret per remaining member, and kr.Add(es) once the rotation op
// is written. A member that was offline opens its box from the feeds later
// and Adds it; Add ignores a secret it already holds.
//
// Two members that rotate concurrently create two different secrets for the
// same epoch number. The keyring keeps both (the second in Concurrent) so
// that entries written under either stay readable; the key ID tells them
// apart, and the space decides which one to write with.
//
// # Sign-in
//
// A new device asks to join with an invite or with the space's ID and
// password; either gives it a RequestKey, which seals its JoinRequest and
// whose ID names it in public. Members recognise the ID (from the
// InviteRecord or password key kept in the feeds), open the request, and
// show its name with SafetyCode; the new device shows the same code. Wire
// formats and their trade-offs are in FORMAT.md, "Sign-in".
//
// On the new device, with an invite (link, code or QR text):
//
//	inv, err := auth.ParseInvite(text, now)
//	// a code names no space: inv.Locate(locatorFoundUnder(inv.ID()), now)
//	// or inv.WithSpace(spaceFromFlag)
//	req, err := auth.NewJoinRequest(inv.Space, name, feedKey, deviceKey.Public(), now, nil)
//	sealed, err := auth.SealJoinRequest(inv.RequestKey(), req, nil)
//	show(auth.SafetyCode(req))
//
// or with a password: key := auth.PasswordRequestKey(auth.PasswordKey(pw, space), space).
//
// On a member, for an envelope whose key ID names a kept invite:
//
//	if err := rec.Check(now); err != nil { ... } // expired or spent
//	req, err := auth.OpenJoinRequest(rec.RequestKey(), sealed)
//	// req.Space must be this space; show req.Name and auth.SafetyCode(req),
//	// or auth.CheckSafetyCode(req, typed) for `mycel approve --code`.
//	// Approving: write the add-writer op for req.Feed, rec.MarkUsed(req.Feed), then
//	a, err := auth.NewApproval(req, kr, myFeedKey, addWriterIndex)
//	// Denying: rec.MarkUsed(req.Feed); auth.NewDenial(req, myFeedKey)
//
// Back on the new device:
//
//	kr, a, err := auth.OpenApproval(deviceKey, req, approvalBytes)
package auth
