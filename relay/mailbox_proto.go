package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/feed"
)

// MailboxTimeout bounds a whole mailbox exchange on either side.
const MailboxTimeout = 10 * time.Second

// maxMailboxStreams bounds the mailbox requests served at once, all peers
// together: a deposit request is read whole (up to about 1 MiB) before it
// is checked, so this bounds that memory (32 MiB).
const maxMailboxStreams = 32

// mailboxServer serves MailboxProtocol on a host and sweeps the mailbox;
// Close removes the handler, then waits for the sweeper.
type mailboxServer struct {
	mb     *Mailbox
	h      host.Host
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{} // requests being served
	// routed holds the sign-in and kept envelopes the router accepted, on their way
	// to Keep (offer); full, the next is left to the deposits.
	routed chan *ephemeral.Envelope
}

// routedBacklog bounds the router's envelopes waiting for the mailbox.
const routedBacklog = 256

// serveMailbox serves mb on h and starts its sweeper (every
// MailboxLimits.SweepEvery).
func serveMailbox(mb *Mailbox, h host.Host) *mailboxServer {
	ctx, cancel := context.WithCancel(context.Background())
	s := &mailboxServer{mb: mb, h: h, cancel: cancel, sem: make(chan struct{}, maxMailboxStreams), routed: make(chan *ephemeral.Envelope, routedBacklog)}
	h.SetStreamHandler(MailboxProtocol, s.handle)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-s.routed:
				// Refusals (quota, shares) are the mailbox's own, counted
				// there; the envelope was forwarded live anyway.
				_ = s.mb.Keep(e)
			}
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(mb.lim.SweepEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := mb.Sweep(); err != nil {
					mb.log.Warn("relay: mailbox: sweep", "err", err)
				}
			}
		}
	}()
	return s
}

// offer is the router's hook (Router.OnEnvelope): a sign-in envelope or
// a members' kept app message (key kind 4) it accepted is kept for the
// devices that are offline, so that a device that only publishes on
// gossipsub (a browser) reaches a member that comes back later. Members'
// other messages (key kind 1: presence, app messages not kept) are not:
// receivers drop them once older than the ephemeral window. It never
// blocks: with routedBacklog waiting the envelope is not kept (it was
// forwarded live).
func (s *mailboxServer) offer(a Accepted) {
	if !isSignin(a.Envelope.KeyKind) && a.Envelope.KeyKind != kindKept {
		return
	}
	select {
	case s.routed <- a.Envelope:
	default:
	}
}

func (s *mailboxServer) Close() error {
	s.h.RemoveStreamHandler(MailboxProtocol)
	s.cancel()
	s.wg.Wait()
	return s.mb.Close()
}

// handle serves one stream: the relay's hello (version ‖ challenge), one
// request, one reply.
func (s *mailboxServer) handle(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(MailboxTimeout))
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.mb.stats.busy.Inc()
		st.Reset()
		return
	}
	var hello [1 + ChallengeSize]byte
	hello[0] = mailboxVersion
	rand.Read(hello[1:])
	if _, err := st.Write(hello[:]); err != nil {
		st.Reset()
		return
	}
	from := st.Conn().RemotePeer()
	req, err := decodeMailboxRequest(st)
	var reply []byte
	switch {
	case err != nil:
	case req.op == opDeposit:
		var errs []error
		if errs, err = s.mb.Deposit(from, req.space, req.envs); err == nil {
			codes := make([]byte, len(errs))
			for i, e := range errs {
				codes[i] = mailboxCode(e)
			}
			reply = encodeDepositReply(codes)
		}
	case req.op == opFetch:
		err = s.mb.admit(from)
		if err == nil && !verifyFetch(req, s.h.ID(), from, [ChallengeSize]byte(hello[1:])) {
			err = fmt.Errorf("%w: the signature does not verify", ErrMailboxForbidden)
			s.mb.stats.fetches.WithLabelValues("forbidden").Inc()
		}
		var res FetchResult
		if err == nil {
			res, err = s.mb.Fetch(req.space, feed.PublicKey(req.key))
		}
		if err == nil {
			reply = encodeFetchReply(res.Envelopes, res.More)
		}
	}
	if err != nil {
		reply = []byte{mailboxCode(err)}
	}
	if _, err := st.Write(reply); err != nil {
		st.Reset()
	}
}

// openMailbox opens a mailbox stream to relay and reads its hello.
func openMailbox(ctx context.Context, h host.Host, relay peer.ID) (network.Stream, [ChallengeSize]byte, error) {
	var ch [ChallengeSize]byte
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "mailbox"), relay, MailboxProtocol)
	if err != nil {
		return nil, ch, fmt.Errorf("relay: mailbox: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	var hello [1 + ChallengeSize]byte
	if _, err := io.ReadFull(st, hello[:]); err != nil {
		st.Reset()
		return nil, ch, fmt.Errorf("relay: mailbox: hello: %w", err)
	}
	if hello[0] != mailboxVersion {
		st.Reset()
		return nil, ch, fmt.Errorf("%w: relay speaks version %d", ErrMailboxMalformed, hello[0])
	}
	return st, [ChallengeSize]byte(hello[1:]), nil
}

// DepositMailbox hands relay envelopes (encoded, at most MaxDepositCount)
// of space id to keep for its devices that are offline. It returns one
// error per envelope: nil when kept (or kept already), else the refusal
// (wrapping ErrMailboxRefused).
func DepositMailbox(ctx context.Context, h host.Host, relay peer.ID, id auth.SpaceID, envs [][]byte) ([]error, error) {
	req, err := encodeDeposit(id, envs)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, MailboxTimeout)
	defer cancel()
	st, _, err := openMailbox(ctx, h, relay)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := st.Write(req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("relay: mailbox: deposit: %w", err)
	}
	st.CloseWrite()
	out, err := decodeDepositReply(st, len(envs))
	if err != nil {
		st.Reset()
	}
	return out, err
}

// FetchMailbox fetches from relay what it kept of space id for the
// device whose key is key (its feed key in the space; a device waiting to
// sign in, the key that signs its requests): the envelopes, encoded and
// not yet parsed, and whether the relay holds more (fetch again).
func FetchMailbox(ctx context.Context, h host.Host, relay peer.ID, id auth.SpaceID, key ed25519.PrivateKey) ([][]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, MailboxTimeout)
	defer cancel()
	st, ch, err := openMailbox(ctx, h, relay)
	if err != nil {
		return nil, false, err
	}
	defer st.Close()
	if _, err := st.Write(encodeFetch(id, key, relay, h.ID(), ch)); err != nil {
		st.Reset()
		return nil, false, fmt.Errorf("relay: mailbox: fetch: %w", err)
	}
	st.CloseWrite()
	envs, more, err := decodeFetchReply(st)
	if err != nil {
		st.Reset()
	}
	return envs, more, err
}

// Writers implements MailboxSpaces: the feeds the mirror follows for the
// space minus those it saw removed.
func (m *Mirror) Writers(id auth.SpaceID) ([]feed.PublicKey, bool) {
	m.mu.Lock()
	ms := m.spaces[id]
	m.mu.Unlock()
	if ms == nil {
		return nil, false
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := make([]feed.PublicKey, 0, len(ms.feeds))
	for _, k := range ms.feeds {
		if !ms.removed[k] {
			out = append(out, k)
		}
	}
	return out, true
}

// mailboxStats are the mailbox's aggregate metrics: none names a peer or
// a space.
type mailboxStats struct {
	kept      prometheus.Gauge
	deposits  *prometheus.CounterVec
	fetches   *prometheus.CounterVec
	delivered *fcounter
	taken     *counter
	expired   *counter
	busy      *counter
	full      *counter
}

// fcounter is a Prometheus counter added to in steps, whose total the
// mailbox reads back.
type fcounter struct {
	prometheus.Counter
	n atomic.Uint64
}

func (c *fcounter) Add(v float64) {
	c.n.Add(uint64(v))
	c.Counter.Add(v)
}

func newMailboxStats(reg prometheus.Registerer) mailboxStats {
	c := func(name, help string) *counter {
		return &counter{Counter: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_relay_mailbox_" + name, Help: help})}
	}
	s := mailboxStats{
		kept: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mycel_relay_mailbox_envelopes", Help: "Envelopes the mailbox keeps."}),
		deposits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_relay_mailbox_deposits_total",
			Help: "Envelopes deposited, by reply (ok, malformed, unknown, forbidden, full, stale, duplicate, internal)."}, []string{"reply"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_relay_mailbox_fetches_total",
			Help: "Fetches, by reply (ok, forbidden)."}, []string{"reply"}),
		delivered: &fcounter{Counter: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_relay_mailbox_delivered_total",
			Help: "Envelopes handed to fetching devices."})},
		taken:   c("taken_total", "Envelopes deleted once every current device took them."),
		expired: c("expired_total", "Envelopes deleted at expiry."),
		busy:    c("busy_total", "Requests refused because their peer made too many."),
		full:    c("full_total", "Envelopes refused because the space's mailbox (or its share for devices signing in) is full."),
	}
	if reg != nil {
		reg.MustRegister(s.kept, s.deposits, s.fetches, s.delivered, s.taken, s.expired, s.busy, s.full)
	}
	return s
}
