// Package signin is sign-in as a state machine without I/O: a new device
// asking to join a space over the space's ephemeral channel, and the
// members keeping, showing and answering its request. FORMAT.md describes
// the bodies on the wire and what the protocol guarantees.
//
// Two sides, each plain state that takes decoded envelopes and the time
// as a value and returns what to publish, what to store and what to show;
// neither reads a clock, starts a goroutine, touches storage or the
// network, so both build for js/wasm (the browser node runs them):
//
//   - Device is this device's own request to join one space. The caller
//     steps it when it is woken or when the previous Step said so
//     (Step: follow a password generation, give up, publish the request),
//     hands it the envelopes sealed under its key ID (Mine, Receive: an
//     approval becomes a candidate, a denial or refusal ends it), runs
//     the trials of candidate approvals it asks for (NextTrial, Tried) and
//     tells it when its own add-writer op counts (Approved). Record is
//     what to store so that a restart goes on asking (Restore).
//   - Members is the member side for every space of a node: Receive keeps
//     a verified request for a person within the bounds (per space and
//     per peer and key), answers again what it answered, refuses spent
//     invites and unknown password keys at the allowed rate; Approve and
//     Deny answer a request a person decided on; Current lists those
//     still to show. It reaches a space through the small Space interface.
//
// Limits holds every bound and timing, with documented defaults.
//
// Usage, as node's driver does it (node/signin.go):
//
//	d, _ := signin.Ask(lim, deviceKey, req, key, expires, password)
//	store(d.Record())
//	for each wake-up at now: // timer at st.Next, or an answer woke it
//		if kr, _ := d.NextTrial(now); kr != nil { d.Tried(trySessions(kr)) }
//		st := d.Step(now, peersOnTopic)
//		if st.Store { store(d.Record()) }
//		if st.Publish != nil { seal and publish st.Publish }
//	for each envelope e of a sign-in key kind:
//		if d.Mine(keyID(e)) { u, _ := d.Receive(now, e); ... }
//		else { out, _ := members.Receive(now, space, e, fromPeer); publish out.Publish; show out.Shown }
//
// Neither side is safe for concurrent use; the caller holds its own lock.
//
// The transcripts in testdata are golden: each test plays a scenario
// between members and devices over one simulated topic with real sealed
// envelopes and a clock it moves (harness_test.go); run the tests with
// -update to rewrite them after checking a change.
package signin
