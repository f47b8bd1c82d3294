package ephemeral

import (
	"fmt"
	"sync"
	"time"
)

// Time bounds of delivery (DESIGN.md, "Ephemeral messages").
const (
	// Window: an envelope is delivered only if |now − its time| ≤ Window
	// by the receiver's clock.
	Window = 5 * time.Minute
	// Retention: the seen-set keeps an ID until its envelope's time plus
	// Retention. Window would be enough (an older envelope is stale
	// anyway); twice the window leaves room for clocks that step.
	Retention = 2 * Window
	// DefaultMaxSeen is Config.MaxSeen's default: 262,144 IDs, about 24 MiB
	// of memory at most (measured), or 437 messages a second sustained for Retention.
	DefaultMaxSeen = 1 << 18
	// KeptFor is the longest a relay's mailbox keeps an envelope
	// (relay.MailboxExpiry's default, a week). An envelope that Config.Kept
	// marks may be handed again by a mailbox until then, so its ID is kept
	// until its time + KeptFor + Window + Retention, and one that comes
	// from a mailbox (DeliverStored) is accepted up to KeptFor + Window
	// after its time.
	KeptFor = 7 * 24 * time.Hour
)

// Defaults of Config.PruneEvery and Config.FullRetry.
const (
	pruneEvery = time.Minute
	fullRetry  = time.Second
)

// Config configures a Filter. The zero value is usable.
type Config struct {
	// Now is the clock; time.Now when nil. Tests inject their own.
	Now func() time.Time
	// MaxSeen bounds the IDs held (DefaultMaxSeen when ≤ 0). When the set
	// is full, Deliver refuses new envelopes with ErrSeenFull until IDs
	// expire: an unexpired ID is never evicted, since forgetting it would
	// let its envelope be replayed. The budgets below keep any one sender,
	// and all untrusted senders together, from filling it.
	MaxSeen int
	// Trusted reports whether sender is trusted on topic: for a node, a
	// writer of the topic's space. Anyone can sign envelopes with a key of
	// their own, so IDs of untrusted senders are bounded together by
	// MaxUntrusted, and a flood of them leaves room for trusted senders'.
	// It is called without the Filter's lock held, once per envelope.
	// Nil trusts every sender (only MaxPerSender then limits a flood).
	Trusted func(topic Topic, sender PublicKey) bool
	// MaxUntrusted bounds the IDs held of all untrusted senders together.
	// Default MaxSeen/4; at least 1.
	MaxUntrusted int
	// MaxPerSender bounds the IDs held of one sender, trusted or not.
	// Default MaxSeen/16 (16,384: 27 messages a second for Retention); at
	// least 1.
	MaxPerSender int
	// Kept reports whether e is an envelope that relays' mailboxes keep
	// for devices that are offline (for a node: members' kept app
	// messages, key kind 4): its ID is then kept for KeptFor (plus Window
	// and Retention) rather than Retention, and DeliverStored accepts it
	// up to KeptFor + Window after its time. Only envelopes of senders
	// Trusted vouches for are treated so (anyone can sign with a key of
	// their own; a week-long ID of a throwaway key would be a week of
	// memory). Nil: none is.
	Kept func(e *Envelope) bool
	// MaxKept bounds the kept envelopes' IDs held, all senders together.
	// Default MaxSeen/4; at least 1.
	MaxKept int
	// MaxKeptPerSender bounds the kept envelopes' IDs held of one sender.
	// They are held for a week, apart from MaxPerSender (a member that
	// keeps many messages does not silence its own presence). Default
	// MaxSeen/64 (4,096 kept messages a week per sender); at least 1.
	MaxKeptPerSender int
	// PruneEvery is how often Deliver drops expired IDs from memory (the
	// store is pruned by Prune). Default 1 minute.
	PruneEvery time.Duration
	// FullRetry: while the set is full, Deliver looks for expired IDs at
	// most this often. Default 1 second.
	FullRetry time.Duration
}

// Filter decides which envelopes are delivered: those with a timestamp
// within Window of its clock whose ID (for their topic and sender) was not
// delivered before. Signatures are Parse's to check; Accept does both.
//
// The seen-set lives in memory and is written through to a SeenStore
// before an envelope is reported delivered, so a new Filter over the same
// store — after a restart — refuses what the old one delivered. A Filter
// is safe for concurrent use; among concurrent Deliver calls for the same
// envelope, exactly one succeeds. It has no goroutine: its owner calls
// Prune now and then (every minute, say) to drop expired IDs from the
// store.
type Filter struct {
	store        SeenStore
	now          func() time.Time
	max          int
	trusted      func(Topic, PublicKey) bool
	maxUntrusted int
	maxPerSender int
	kept         func(*Envelope) bool
	maxKept      int
	maxKeptPer   int
	pruneEvery   time.Duration
	fullRetry    time.Duration

	mu        sync.Mutex
	seen      map[SeenKey]seenEntry
	untrusted int            // IDs of untrusted senders in seen
	perSender map[uint64]int // IDs per sender bucket in seen
	nKept     int            // IDs of kept envelopes in seen
	perKept   map[uint64]int // IDs of kept envelopes per sender bucket
	lastPrune time.Time
	lastFull  time.Time
}

// seenEntry is what the seen-set holds of one ID: its expiry, and whom it
// counts against.
type seenEntry struct {
	exp    int64  // unix milliseconds
	sender uint64 // sender bucket: the first 8 bytes of its key
	class  uint8  // classUncounted, classTrusted, classUntrusted or classKept
}

// Classes of seen IDs. IDs loaded from the store (their sender is not
// stored) and this node's own count against no budget but MaxSeen.
const (
	classUncounted = iota
	classTrusted
	classUntrusted
	classKept // a trusted sender's envelope that Config.Kept marks
)

func senderBucket(k PublicKey) uint64 {
	var b uint64
	for _, c := range k[:8] {
		b = b<<8 | uint64(c)
	}
	return b
}

// NewFilter returns a Filter over store, loading every unexpired ID from
// it. If the store holds more than MaxSeen of them (MaxSeen was lowered),
// all are kept and new envelopes are refused until enough expire.
func NewFilter(store SeenStore, cfg Config) (*Filter, error) {
	f := &Filter{store: store, now: cfg.Now, max: cfg.MaxSeen, trusted: cfg.Trusted,
		maxUntrusted: cfg.MaxUntrusted, maxPerSender: cfg.MaxPerSender,
		kept: cfg.Kept, maxKept: cfg.MaxKept, maxKeptPer: cfg.MaxKeptPerSender,
		pruneEvery: cfg.PruneEvery, fullRetry: cfg.FullRetry,
		seen: make(map[SeenKey]seenEntry), perSender: make(map[uint64]int), perKept: make(map[uint64]int)}
	if f.now == nil {
		f.now = time.Now
	}
	if f.max <= 0 {
		f.max = DefaultMaxSeen
	}
	if f.maxUntrusted <= 0 {
		f.maxUntrusted = max(1, f.max/4)
	}
	if f.maxPerSender <= 0 {
		f.maxPerSender = max(1, f.max/16)
	}
	if f.maxKept <= 0 {
		f.maxKept = max(1, f.max/4)
	}
	if f.maxKeptPer <= 0 {
		f.maxKeptPer = max(1, f.max/64)
	}
	if f.pruneEvery <= 0 {
		f.pruneEvery = pruneEvery
	}
	if f.fullRetry <= 0 {
		f.fullRetry = fullRetry
	}
	now := f.now()
	f.lastPrune = now
	err := store.Load(now, func(k SeenKey, exp time.Time) error {
		if e := exp.UnixMilli(); e > f.seen[k].exp {
			f.seen[k] = seenEntry{exp: e}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ephemeral: load seen-set: %w", err)
	}
	return f, nil
}

// Now returns the Filter's clock.
func (f *Filter) Now() time.Time { return f.now() }

// Check reports whether Deliver would deliver e now, without recording
// anything: ErrStale or ErrDuplicate, or nil. Routers use it to decide
// whether to forward. A full seen-set is not Check's concern: a node that
// cannot deliver can still forward.
func (f *Filter) Check(e *Envelope) error {
	if err := inWindow(e, f.now()); err != nil {
		return err
	}
	k := e.SeenKey()
	f.mu.Lock()
	_, seen := f.seen[k]
	f.mu.Unlock()
	if seen {
		return fmt.Errorf("%w: %s from %s", ErrDuplicate, e.ID, e.Sender)
	}
	return nil
}

// Deliver records e as delivered, durably, and returns nil if the caller
// should hand it on: exactly once per envelope while its ID is kept. It
// returns ErrStale, ErrDuplicate, ErrSeenFull, or the store's error (the
// envelope is then not recorded and not delivered). e must come from
// Parse, which checked its signature.
func (f *Filter) Deliver(e *Envelope) error {
	return f.record([]*Envelope{e}, modeLive)[0]
}

// DeliverStored is DeliverMany for envelopes a relay's mailbox handed
// over: those that Config.Kept marks (of a trusted sender) are accepted
// up to KeptFor + Window after their time (ErrStale beyond), the others
// within Window as by Deliver. Either way an ID delivered before — live
// or from another mailbox, also before a restart — is ErrDuplicate.
func (f *Filter) DeliverStored(envs []*Envelope) []error {
	return f.record(envs, modeStored)
}

// DeliverMany is Deliver for a batch, with one write to the store (one
// fsync) for all the envelopes it accepts: a receiver that has several
// waiting pays for one. It returns one error per envelope, in order: nil
// for those the caller should hand on. An envelope that repeats an
// earlier one of the batch is ErrDuplicate. If the store fails, none of
// the batch is delivered: each envelope that would have been gets the
// store's error and is forgotten, so that a later copy can be.
func (f *Filter) DeliverMany(envs []*Envelope) []error {
	return f.record(envs, modeLive)
}

// Remember records an envelope this node sends, so that it is never
// delivered back to it. Unlike Deliver, an envelope already recorded is
// not an error.
func (f *Filter) Remember(e *Envelope) error {
	return f.record([]*Envelope{e}, modeOwn)[0]
}

// Accept parses b (Parse: size, fields, signature) and delivers it
// (Deliver).
func (f *Filter) Accept(b []byte) (*Envelope, error) {
	e, err := Parse(b)
	if err != nil {
		return nil, err
	}
	if err := f.Deliver(e); err != nil {
		return nil, err
	}
	return e, nil
}

// Modes of record: envelopes from the network, from a mailbox, or this
// node's own.
const (
	modeLive = iota
	modeStored
	modeOwn
)

// record checks envs, reserves the IDs of those it accepts in memory, and
// stores them with one AddMany. errs[i] is envs[i]'s result.
func (f *Filter) record(envs []*Envelope, mode int) []error {
	own := mode == modeOwn
	errs := make([]error, len(envs))
	now := f.now()
	var (
		keys    = make([]SeenKey, len(envs))
		entries []Seen
		took    []int // indexes of envs in entries
	)
	classes := make([]uint8, len(envs))
	kept := make([]bool, len(envs)) // IDs held for KeptFor
	for i, e := range envs {
		k := f.kept != nil && f.kept(e)
		switch {
		case own:
			classes[i] = classUncounted
			kept[i] = k
		case f.trusted == nil || f.trusted(e.Topic, e.Sender):
			classes[i] = classTrusted
			if k {
				classes[i], kept[i] = classKept, true
			}
		default:
			classes[i] = classUntrusted
		}
		if mode == modeStored && kept[i] && !own {
			errs[i] = inStoredWindow(e, now)
		} else {
			errs[i] = inWindow(e, now)
		}
		if errs[i] == nil {
			keys[i] = e.SeenKey()
		}
	}

	f.mu.Lock()
	if now.Sub(f.lastPrune) >= f.pruneEvery {
		f.pruneLocked(now)
	}
	for i, e := range envs {
		if errs[i] != nil {
			continue
		}
		k := keys[i]
		if _, seen := f.seen[k]; seen {
			if !own {
				errs[i] = fmt.Errorf("%w: %s from %s", ErrDuplicate, e.ID, e.Sender)
			}
			continue
		}
		en := seenEntry{sender: senderBucket(e.Sender), class: classes[i]}
		if f.overLocked(en) != nil && now.Sub(f.lastFull) >= f.fullRetry {
			f.lastFull = now
			f.pruneLocked(now)
		}
		if errs[i] = f.overLocked(en); errs[i] != nil {
			continue
		}
		// Held in memory while being stored, so that a concurrent Deliver
		// of the same envelope, or a copy later in the batch, sees it and
		// refuses.
		exp := e.Timestamp().Add(Retention)
		if kept[i] {
			exp = exp.Add(KeptFor + Window)
		}
		en.exp = exp.UnixMilli()
		f.addLocked(k, en)
		entries = append(entries, Seen{Key: k, Expires: exp})
		took = append(took, i)
	}
	f.mu.Unlock()
	if len(entries) == 0 {
		return errs
	}

	if err := f.store.AddMany(entries); err != nil {
		f.mu.Lock()
		for _, en := range entries {
			f.removeLocked(en.Key)
		}
		f.mu.Unlock()
		for _, i := range took {
			errs[i] = fmt.Errorf("ephemeral: record %s: %w", envs[i].ID, err)
		}
	}
	return errs
}

// Prune drops expired IDs from memory and from the store.
func (f *Filter) Prune() error {
	now := f.now()
	f.mu.Lock()
	f.pruneLocked(now)
	f.mu.Unlock()
	if err := f.store.Prune(now); err != nil {
		return fmt.Errorf("ephemeral: prune seen-set: %w", err)
	}
	return nil
}

func (f *Filter) pruneLocked(now time.Time) {
	f.lastPrune = now
	ms := now.UnixMilli()
	for k, en := range f.seen {
		if en.exp <= ms {
			f.removeLocked(k)
		}
	}
}

// overLocked returns why an ID of entry en's sender and class cannot be
// added now: the set is full, or a budget is spent.
func (f *Filter) overLocked(en seenEntry) error {
	switch {
	case len(f.seen) >= f.max:
		return fmt.Errorf("%w: %d IDs unexpired", ErrSeenFull, f.max)
	case en.class == classUncounted:
		return nil
	case en.class == classKept && f.perKept[en.sender] >= f.maxKeptPer:
		return fmt.Errorf("%w: %d kept IDs of one sender unexpired", ErrSeenFull, f.maxKeptPer)
	case en.class == classKept && f.nKept >= f.maxKept:
		return fmt.Errorf("%w: %d kept IDs unexpired", ErrSeenFull, f.maxKept)
	case en.class == classKept:
		return nil
	case f.perSender[en.sender] >= f.maxPerSender:
		return fmt.Errorf("%w: %d IDs of one sender unexpired", ErrSeenFull, f.maxPerSender)
	case en.class == classUntrusted && f.untrusted >= f.maxUntrusted:
		return fmt.Errorf("%w: %d IDs of untrusted senders unexpired", ErrSeenFull, f.maxUntrusted)
	}
	return nil
}

func (f *Filter) addLocked(k SeenKey, en seenEntry) {
	f.seen[k] = en
	switch en.class {
	case classUncounted:
		return
	case classKept:
		f.perKept[en.sender]++
		f.nKept++
		return
	}
	f.perSender[en.sender]++
	if en.class == classUntrusted {
		f.untrusted++
	}
}

func (f *Filter) removeLocked(k SeenKey) {
	en, ok := f.seen[k]
	if !ok {
		return
	}
	delete(f.seen, k)
	switch en.class {
	case classUncounted:
		return
	case classKept:
		if f.perKept[en.sender]--; f.perKept[en.sender] <= 0 {
			delete(f.perKept, en.sender)
		}
		f.nKept--
		return
	}
	if f.perSender[en.sender]--; f.perSender[en.sender] <= 0 {
		delete(f.perSender, en.sender)
	}
	if en.class == classUntrusted {
		f.untrusted--
	}
}

// Len returns how many IDs the seen-set holds.
func (f *Filter) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// inWindow checks |now − e.Time| ≤ Window, in milliseconds, without
// overflowing on a hostile timestamp.
func inWindow(e *Envelope, now time.Time) error {
	n, w := now.UnixMilli(), Window.Milliseconds()
	if e.Time < n-w || e.Time > n+w {
		return fmt.Errorf("%w: %s is %v from now", ErrStale, e.ID, e.Timestamp().Sub(now).Round(time.Second))
	}
	return nil
}

// inStoredWindow checks that e, handed over by a mailbox, is at most
// KeptFor + Window old and at most Window ahead.
func inStoredWindow(e *Envelope, now time.Time) error {
	n, w, k := now.UnixMilli(), Window.Milliseconds(), KeptFor.Milliseconds()
	if e.Time < n-k-w || e.Time > n+w {
		return fmt.Errorf("%w: %s is %v from now, beyond a mailbox's expiry", ErrStale, e.ID, e.Timestamp().Sub(now).Round(time.Second))
	}
	return nil
}
