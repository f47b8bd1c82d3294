package signin

import "time"

// Limits are sign-in's bounds and timings. A zero field takes its default
// (DefaultLimits); the daemon, the relay and the browser node may set
// their own.
type Limits struct {
	// MaxRequests bounds the requests a member keeps per space, and
	// MaxPerPeerKey those made with one invite or password key that one
	// peer handed over: anyone holding the invite or the password can make
	// requests at will, so the room is shared out by the peer they came
	// from (Members.Receive), not first come first served. Defaults 64, 4.
	MaxRequests   int
	MaxPerPeerKey int
	// RequestTTL is how long a member keeps a request the device stopped
	// asking with, an answer it sent (to send it again), and a password
	// refusal's rate state. Default 2 min.
	RequestTTL time.Duration
	// AnswerInterval is the least time between two answers a member sends
	// to one request, and between two password refusals of one key ID.
	// Default 4 s (a device asks every AskInterval).
	AnswerInterval time.Duration
	// RefusalSpaceInterval is the least time between two password refusals
	// a member sends in one space, whatever the key ID: envelopes with
	// made-up key IDs must not make every member publish. Default 1 s.
	RefusalSpaceInterval time.Duration

	// AskInterval is how often a waiting device publishes its request
	// again: for members that come online, and in case an answer was lost.
	// It first asks sooner — 0.5, 1, 2, 4 s, capped by AskInterval — since
	// a request published before the topic's mesh formed may reach nobody.
	// Default 5 s.
	AskInterval time.Duration
	// AskRetry is how soon a device asks again when no peer was on the
	// space's topic yet. Default 200 ms.
	AskRetry time.Duration
	// PasswordLifetime is how long a device asks with a password before it
	// gives up. Default 1 h. (An invite's request lives as long as the
	// invite.)
	PasswordLifetime time.Duration
	// MaxCandidates bounds the approvals a waiting device keeps to try,
	// and TrialFor is how long it tries one before the next. Defaults 8,
	// 5 s.
	MaxCandidates int
	TrialFor      time.Duration
	// RefusalGrace is how long a device that asked with a password waits,
	// after a member said no member holds its key, for another member to
	// show the request (one that has not replicated the password yet
	// refuses a right one). Default 10 s.
	RefusalGrace time.Duration
	// MaxGenerationSwitches bounds how often a device asking with the
	// password moves to a later key generation on a refusal's word (each
	// costs one Argon2id, and refusals can be forged). Default 4.
	MaxGenerationSwitches int
}

// DefaultLimits are the limits the daemon uses.
func DefaultLimits() Limits {
	return Limits{
		MaxRequests:           64,
		MaxPerPeerKey:         4,
		RequestTTL:            2 * time.Minute,
		AnswerInterval:        4 * time.Second,
		RefusalSpaceInterval:  time.Second,
		AskInterval:           5 * time.Second,
		AskRetry:              200 * time.Millisecond,
		PasswordLifetime:      time.Hour,
		MaxCandidates:         8,
		TrialFor:              5 * time.Second,
		RefusalGrace:          10 * time.Second,
		MaxGenerationSwitches: 4,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxRequests, d.MaxRequests)
	set(&l.MaxPerPeerKey, d.MaxPerPeerKey)
	set(&l.MaxCandidates, d.MaxCandidates)
	set(&l.MaxGenerationSwitches, d.MaxGenerationSwitches)
	setD(&l.RequestTTL, d.RequestTTL)
	setD(&l.AnswerInterval, d.AnswerInterval)
	setD(&l.RefusalSpaceInterval, d.RefusalSpaceInterval)
	setD(&l.AskInterval, d.AskInterval)
	setD(&l.AskRetry, d.AskRetry)
	setD(&l.PasswordLifetime, d.PasswordLifetime)
	setD(&l.TrialFor, d.TrialFor)
	setD(&l.RefusalGrace, d.RefusalGrace)
	return l
}
