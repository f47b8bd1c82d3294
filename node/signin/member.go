package signin

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
)

// Space is what the member side asks of a space it answers requests of:
// a narrow face of the node's open space (space.Space), so that the state
// here stays free of storage and network.
type Space interface {
	ID() auth.SpaceID
	// IsWriter: this device is a writer of the space (and was not shown
	// its removal). Only writers keep or answer requests.
	IsWriter() bool
	// IsDevice: feed is a device (a writer whose add counts) of the space.
	IsDevice(feed [32]byte) bool
	// Invite is the record of an invite of the space, if it holds one.
	Invite(id auth.InviteID) (auth.InviteRecord, bool)
	// PasswordRequestKey is the request key of the space's password key.
	PasswordRequestKey() (auth.RequestKey, bool)
	// PasswordGeneration is the generation of the space's password key,
	// ok false when it has none.
	PasswordGeneration() (gen uint32, ok bool)
	// Approval seals the space's keyring to req's device: an
	// auth.Approval, encoded. The device must be a writer already.
	Approval(req *auth.JoinRequest) ([]byte, error)
	// Feed is this device's feed key in the space (a denial names it).
	Feed() [32]byte
}

// Message is a body to publish on the space's topic, sealed under Key and
// signed by this device's feed key in the space.
type Message struct {
	Key  auth.RequestKey
	Body Body
}

// Request is a request a member keeps for a person's answer.
type Request struct {
	Space   auth.SpaceID
	Req     *auth.JoinRequest
	Key     auth.RequestKey
	Via     string // "password" or "invite <id>"
	ID      string // RequestID of its hash
	From    string // the peer that handed the request over first
	Last    time.Time
	replied time.Time
}

type answered struct {
	body Body
	key  auth.RequestKey
	at   time.Time
}

// Members is the member side of sign-in, for every space of a node: the
// requests waiting for a person, the answers sent (to send again to a
// device that missed them) and the rate of password refusals. It does no
// I/O and reads no clock; it is not safe for concurrent use.
type Members struct {
	lim      Limits
	waiting  map[[32]byte]*Request // by request hash
	answered map[[32]byte]answered
	refused  map[string]time.Time // password key IDs refused, and spaces: rate limit
	// Crowded counts the requests not kept for the bounds, Evicted those
	// pushed out by a request from a peer holding fewer.
	Crowded, Evicted int
}

// NewMembers returns an empty member side with lim (zero fields take
// their defaults).
func NewMembers(lim Limits) *Members {
	return &Members{lim: lim.WithDefaults(), waiting: map[[32]byte]*Request{},
		answered: map[[32]byte]answered{}, refused: map[string]time.Time{}}
}

// Output is what a step of the member side asks the caller to do.
type Output struct {
	// Publish: bodies to seal and publish on the space's topic, in order.
	Publish []Message
	// Shown: a request newly kept for a person (tell the watchers).
	Shown *Request
}

// ErrNotRequest is returned for an envelope that does not carry a join
// request this member can verify (another member's answer, a request of
// another space); the caller drops it.
var ErrNotRequest = errors.New("signin: not a join request for this space")

// Receive takes an envelope of a sign-in key kind on sp's topic that is
// not for this device's own request; from names the peer that handed it
// over (for gossip, the neighbour that forwarded it). A request made with
// a password key sp lacks is refused at the allowed rate; a verified
// request is answered again if it was answered, approved again if its
// device is a writer already, refused if its invite is spent or expired,
// else kept for a person within the bounds.
func (ms *Members) Receive(now time.Time, sp Space, e *ephemeral.Envelope, from string) (Output, error) {
	if len(e.KeyID) != auth.KeyIDSize {
		return Output{}, fmt.Errorf("key ID of %d bytes", len(e.KeyID))
	}
	if !sp.IsWriter() {
		return Output{}, nil // only writers answer
	}
	kid := [auth.KeyIDSize]byte(e.KeyID)
	var key auth.RequestKey
	var via string
	switch e.KeyKind {
	case KeyKindInvite:
		rec, ok := sp.Invite(auth.InviteID(kid))
		if !ok {
			return Output{}, nil // not an invite of this space (yet)
		}
		key, via = rec.RequestKey(), "invite "+rec.ID.String()
	case KeyKindPassword:
		pk, ok := sp.PasswordRequestKey()
		if !ok || pk.ID != kid {
			return ms.refusePassword(now, sp, kid), nil
		}
		key, via = pk, "password"
	default:
		return Output{}, fmt.Errorf("key kind %d", e.KeyKind)
	}
	plain, err := e.Open(key.Key)
	if err != nil {
		return Output{}, err
	}
	b, err := DecodeBody(plain)
	if err != nil {
		return Output{}, err
	}
	if b.Kind != KindJoinRequest {
		return Output{}, nil // answers of other members
	}
	req, err := auth.UnmarshalJoinRequest(b.Request)
	if err != nil {
		return Output{}, err
	}
	if req.Space != sp.ID() || req.Feed != [32]byte(e.Sender) {
		return Output{}, fmt.Errorf("%w: for another space, or not signed by its feed", ErrNotRequest)
	}
	return ms.onRequest(now, sp, req, key, via, from)
}

// onRequest keeps a verified request for a person, or answers it again if
// it was answered already.
func (ms *Members) onRequest(now time.Time, sp Space, req *auth.JoinRequest, key auth.RequestKey, via, from string) (Output, error) {
	h := req.Hash()
	if a, ok := ms.answered[h]; ok {
		if now.Sub(a.at) < ms.lim.AnswerInterval {
			return Output{}, nil
		}
		a.at = now
		ms.answered[h] = a
		return Output{Publish: []Message{{Key: a.key, Body: a.body}}}, nil
	}
	if sp.IsDevice(req.Feed) {
		// Approved by another member, whose approval it missed: any
		// member can seal the keyring to it again.
		msg, err := ms.approve(now, sp, req, key)
		if err != nil {
			return Output{}, err
		}
		return Output{Publish: []Message{msg}}, nil
	}
	if key.Kind == auth.RequestByInvite {
		rec, _ := sp.Invite(auth.InviteID(key.ID))
		if rec.Used && rec.UsedBy == req.Feed {
			// Spent on this very request: a member is answering it (its
			// answer, approval or denial, is on its way or in the
			// feeds), so this is no stranger to refuse.
			return Output{}, nil
		}
		if err := rec.Check(now); err != nil {
			reason := "the invite expired"
			if rec.Used {
				reason = "the invite was used already"
			}
			if !ms.mayRefuse(now, sp, key.ID) {
				return Output{}, nil
			}
			b := Body{Kind: KindRefusal, Hash: h[:], Reason: reason}
			ms.remember(now, h, key, b)
			return Output{Publish: []Message{{Key: key, Body: b}}}, nil
		}
	}
	p, ack, err := ms.keep(now, sp.ID(), req, key, via, from)
	if err != nil {
		return Output{}, err
	}
	var out Output
	if p != nil {
		out.Shown = p
	}
	if ack {
		out.Publish = []Message{{Key: key, Body: Body{Kind: KindPending, Hash: h[:]}}}
	}
	return out, nil
}

// keep adds a request to those waiting for a person, or notes that it was
// asked again; it returns the request if it is new, and whether to tell
// the device it is shown.
//
// The bounds share the room out by the peer that handed a request over,
// since anyone with the invite or the password can make requests at will:
// at most MaxPerPeerKey per key and peer, so that requests from one peer
// do not keep out those from another; and when the space holds
// MaxRequests, a new request pushes out the least recently asked one of
// the peer holding the most, if that peer holds more than the newcomer's
// would. A request kept is never pushed out by one from a peer holding as
// many or fewer. (Peers behind one forwarder — a relay — share its room;
// see FORMAT.md.)
func (ms *Members) keep(now time.Time, space auth.SpaceID, req *auth.JoinRequest, key auth.RequestKey, via, from string) (*Request, bool, error) {
	h := req.Hash()
	if p := ms.waiting[h]; p != nil {
		p.Last = now
		if now.Sub(p.replied) < ms.lim.AnswerInterval {
			return nil, false, nil
		}
		p.replied = now
		return nil, true, nil
	}
	perSpace, perPeerKey := 0, 0
	byPeer := map[string][]*Request{}
	for _, p := range ms.waiting {
		if p.Space != space {
			continue
		}
		perSpace++
		byPeer[p.From] = append(byPeer[p.From], p)
		if p.From == from && p.Key.ID == key.ID {
			perPeerKey++
		}
	}
	if perPeerKey >= ms.lim.MaxPerPeerKey {
		ms.Crowded++
		return nil, false, fmt.Errorf("too many requests waiting from peer %s with this key (%d)", from, perPeerKey)
	}
	if perSpace >= ms.lim.MaxRequests {
		var top []*Request
		for _, ps := range byPeer {
			if len(ps) > len(top) {
				top = ps
			}
		}
		if len(top) <= len(byPeer[from])+1 {
			ms.Crowded++
			return nil, false, fmt.Errorf("too many requests waiting (%d in the space)", perSpace)
		}
		victim := top[0]
		for _, p := range top[1:] {
			if p.Last.Before(victim.Last) {
				victim = p
			}
		}
		delete(ms.waiting, victim.Req.Hash())
		ms.Evicted++
	}
	p := &Request{Space: space, Req: req, Key: key, Via: via, ID: RequestID(h), From: from, Last: now, replied: now}
	ms.waiting[h] = p
	return p, true, nil
}

// mayRefuse reports whether a refusal of a request made with key ID kid
// may be sent now — at most once per key ID per AnswerInterval and once
// per space per RefusalSpaceInterval, since anyone holding a spent invite
// or making up password key IDs can make requests at will and must not
// make every member publish (nor remember) an answer to each — and notes
// it. The rate state is forgotten after RequestTTL.
func (ms *Members) mayRefuse(now time.Time, sp Space, kid [auth.KeyIDSize]byte) bool {
	space := sp.ID().String()
	k := space + hex.EncodeToString(kid[:])
	if t, ok := ms.refused[k]; ok && now.Sub(t) < ms.lim.AnswerInterval || now.Sub(ms.refused[space]) < ms.lim.RefusalSpaceInterval {
		return false
	}
	ms.refused[k], ms.refused[space] = now, now
	for k, t := range ms.refused {
		if now.Sub(t) > ms.lim.RequestTTL {
			delete(ms.refused, k)
		}
	}
	return true
}

// refusePassword tells a device that asked with a password whose key no
// member holds, at the rate mayRefuse allows.
func (ms *Members) refusePassword(now time.Time, sp Space, kid [auth.KeyIDSize]byte) Output {
	if !ms.mayRefuse(now, sp, kid) {
		return Output{}
	}
	b := Body{Kind: KindRefusal, Password: true, Reason: "wrong password, or the space has no password"}
	if gen, ok := sp.PasswordGeneration(); ok {
		b.Generation = gen
	}
	return Output{Publish: []Message{{Key: RefusalKey(kid), Body: b}}}
}

// remember keeps an answer sent, to send it again, and forgets answers
// older than RequestTTL.
func (ms *Members) remember(now time.Time, h [32]byte, key auth.RequestKey, b Body) {
	ms.answered[h] = answered{body: b, key: key, at: now}
	delete(ms.waiting, h)
	for k, a := range ms.answered {
		if now.Sub(a.at) > ms.lim.RequestTTL {
			delete(ms.answered, k)
		}
	}
}

// approve seals the keyring to the request's device and returns the
// approval to publish.
func (ms *Members) approve(now time.Time, sp Space, req *auth.JoinRequest, key auth.RequestKey) (Message, error) {
	raw, err := sp.Approval(req)
	if err != nil {
		return Message{}, err
	}
	b := Body{Kind: KindApproval, Answer: raw}
	ms.remember(now, req.Hash(), key, b)
	return Message{Key: key, Body: b}, nil
}

// Approve answers a waiting request with an approval, once the caller
// has spent its invite and appended the device's add-writer op (the
// approval seals the keyring with it), and returns it to publish.
func (ms *Members) Approve(now time.Time, sp Space, r *Request) (Message, error) {
	return ms.approve(now, sp, r.Req, r.Key)
}

// Deny answers a waiting request with a denial and returns it to publish.
func (ms *Members) Deny(now time.Time, sp Space, r *Request) (Message, error) {
	raw, err := auth.NewDenial(r.Req, sp.Feed()).MarshalBinary()
	if err != nil {
		return Message{}, err
	}
	b := Body{Kind: KindDenial, Answer: raw}
	ms.remember(now, r.Req.Hash(), r.Key, b)
	return Message{Key: r.Key, Body: b}, nil
}

// Current drops the requests that were answered elsewhere (their device
// is a writer now), that stopped asking, whose invite was spent, of a
// space this device can no longer write (it was removed) or no longer has
// (lookup returns nil), and returns the others.
func (ms *Members) Current(now time.Time, lookup func(auth.SpaceID) Space) []*Request {
	var out []*Request
	for h, p := range ms.waiting {
		sp := lookup(p.Space)
		gone := sp == nil || now.Sub(p.Last) > ms.lim.RequestTTL
		if !gone {
			gone = sp.IsDevice(p.Req.Feed) || !sp.IsWriter()
		}
		if !gone && p.Key.Kind == auth.RequestByInvite {
			rec, _ := sp.Invite(auth.InviteID(p.Key.ID))
			gone = rec.Check(now) != nil
		}
		if gone {
			delete(ms.waiting, h)
			continue
		}
		out = append(out, p)
	}
	return out
}

// Waiting returns the request of hash h if it is kept, without checking
// that it is current.
func (ms *Members) Waiting(h [32]byte) *Request { return ms.waiting[h] }
