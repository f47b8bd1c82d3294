package authpb

// Keyring holds the secret of every epoch of one space so far. It is the
// plaintext of a sealed keyring (an approval) and what a device stores.
type Keyring struct {
	Space   []byte   // 32-byte space ID (Ed25519 key of the origin feed)
	Secrets [][]byte // 32 bytes each; Secrets[n] is epoch n's secret
	// Secrets of rotations made concurrently with the one in Secrets for
	// the same epoch number (two members rotating at once).
	Concurrent []*ConcurrentSecret
}

// ConcurrentSecret is the secret of a concurrent rotation.
type ConcurrentSecret struct {
	Epoch  uint32 // < len(Secrets)
	Secret []byte // 32 bytes
}

// MirrorToken is what a member hands a relay so that it can mirror a space
// for one epoch: it opens replication and decrypts nothing.
type MirrorToken struct {
	Space []byte // 32-byte space ID
	Epoch uint32 // epoch the token belongs to
	Token []byte // 32-byte token
}

// InviteRecord is what the inviting member keeps of an invite (auth.proto).
type InviteRecord struct {
	Id      []byte // 16-byte invite ID (names the invite in public)
	Key     []byte // 32-byte invite key (opens join requests made with it)
	Expires int64  // Unix seconds; requests after it are refused
	Used    bool   // spent: a request made with it was approved or denied
	UsedBy  []byte // 32-byte feed key of that request's device; empty unless used
}

// JoinRequest is a new device asking to join a space: the plaintext that
// auth.SealJoinRequest seals under an invite key or a password key.
type JoinRequest struct {
	Space  []byte // 32-byte space ID the device asks to join
	Name   string // device name shown to the approver: 1..128 bytes of UTF-8
	Feed   []byte // 32-byte Ed25519 key of the device's new feed in the space
	Device []byte // the device's HPKE public key (auth.DevicePublicKey, 1217 bytes)
	Nonce  []byte // 16 random bytes: two requests are never the same
	Time   int64  // Unix milliseconds when the device asked
}

// Approval is a member's answer to a join request that it approved.
type Approval struct {
	Request        []byte // 32-byte hash of the approved request (auth.JoinRequest.Hash)
	Approver       []byte // 32-byte feed key of the approving member
	AddWriterIndex uint64 // index of the add-writer entry in the approver's feed
	Keyring        []byte // the keyring sealed to the request's device key, bound to its hash
}

// Denial is a member's answer to a join request that it refused.
type Denial struct {
	Request []byte // 32-byte hash of the refused request
	Denier  []byte // 32-byte feed key of the refusing member
}

func (x *Keyring) GetSpace() []byte {
	if x != nil {
		return x.Space
	}
	return nil
}

func (x *Keyring) GetSecrets() [][]byte {
	if x != nil {
		return x.Secrets
	}
	return nil
}

func (x *Keyring) GetConcurrent() []*ConcurrentSecret {
	if x != nil {
		return x.Concurrent
	}
	return nil
}

func (x *ConcurrentSecret) GetEpoch() uint32 {
	if x != nil {
		return x.Epoch
	}
	return 0
}

func (x *ConcurrentSecret) GetSecret() []byte {
	if x != nil {
		return x.Secret
	}
	return nil
}

func (x *MirrorToken) GetSpace() []byte {
	if x != nil {
		return x.Space
	}
	return nil
}

func (x *MirrorToken) GetEpoch() uint32 {
	if x != nil {
		return x.Epoch
	}
	return 0
}

func (x *MirrorToken) GetToken() []byte {
	if x != nil {
		return x.Token
	}
	return nil
}

func (x *InviteRecord) GetId() []byte {
	if x != nil {
		return x.Id
	}
	return nil
}

func (x *InviteRecord) GetKey() []byte {
	if x != nil {
		return x.Key
	}
	return nil
}

func (x *InviteRecord) GetExpires() int64 {
	if x != nil {
		return x.Expires
	}
	return 0
}

func (x *InviteRecord) GetUsed() bool {
	if x != nil {
		return x.Used
	}
	return false
}

func (x *InviteRecord) GetUsedBy() []byte {
	if x != nil {
		return x.UsedBy
	}
	return nil
}

func (x *JoinRequest) GetSpace() []byte {
	if x != nil {
		return x.Space
	}
	return nil
}

func (x *JoinRequest) GetName() string {
	if x != nil {
		return x.Name
	}
	return ""
}

func (x *JoinRequest) GetFeed() []byte {
	if x != nil {
		return x.Feed
	}
	return nil
}

func (x *JoinRequest) GetDevice() []byte {
	if x != nil {
		return x.Device
	}
	return nil
}

func (x *JoinRequest) GetNonce() []byte {
	if x != nil {
		return x.Nonce
	}
	return nil
}

func (x *JoinRequest) GetTime() int64 {
	if x != nil {
		return x.Time
	}
	return 0
}

func (x *Approval) GetRequest() []byte {
	if x != nil {
		return x.Request
	}
	return nil
}

func (x *Approval) GetApprover() []byte {
	if x != nil {
		return x.Approver
	}
	return nil
}

func (x *Approval) GetAddWriterIndex() uint64 {
	if x != nil {
		return x.AddWriterIndex
	}
	return 0
}

func (x *Approval) GetKeyring() []byte {
	if x != nil {
		return x.Keyring
	}
	return nil
}

func (x *Denial) GetRequest() []byte {
	if x != nil {
		return x.Request
	}
	return nil
}

func (x *Denial) GetDenier() []byte {
	if x != nil {
		return x.Denier
	}
	return nil
}
