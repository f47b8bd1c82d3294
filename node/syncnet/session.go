package syncnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/replication"
	"github.com/mycelsync/mycel/node/replication/syncpb"
)

// session is one running replication.Session and its stream. The goroutine in run
// owns the replication.Session; others reach it through channels.
type session struct {
	r        *Replicator
	key      sessionKey
	sp       Space
	outbound bool

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when run returns
	stopped chan struct{} // closed once the session's goroutine let it go (Replicator.remove)
	stop    sync.Once
	// established is when the peer's proof verified (Unix nanoseconds; 0:
	// not yet): the peer runs this session too, so a new stream it opens
	// later replaces it (handle).
	established atomic.Int64
	wake        chan struct{} // cap 1: appends pending
	progq       chan chan []Progress

	mu      sync.Mutex
	conn    network.Conn            // the stream's connection, once run started
	pending map[feed.PublicKey]bool // appended, not yet handed to the session
	refresh bool                    // the space's feeds changed: Session.Refresh
	recheck bool                    // what the space accepts changed: verify the peer's proof again

	// Owned by the run goroutine.
	dl          *readDeadline
	outstanding int                  // our Wants not yet answered
	queue       []replication.Ingest // verified batches for the ingester, in order
	rates       map[feed.PublicKey][]sample
}

type sample struct {
	at    time.Time
	bytes int
}

func (r *Replicator) newSession(key sessionKey, sp Space, outbound bool) *session {
	ctx, cancel := context.WithCancel(r.ctx)
	return &session{
		r: r, key: key, sp: sp, outbound: outbound,
		ctx: ctx, cancel: cancel,
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		progq:   make(chan chan []Progress),
		pending: make(map[feed.PublicKey]bool),
		rates:   make(map[feed.PublicKey][]sample),
	}
}

// relayed reports whether the session runs over a relayed connection (a
// circuit, or one libp2p marks Limited), and whether it runs at all.
func (s *session) relayed() (relayed, running bool) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return false, false
	}
	return relayedConn(c), true
}

// relayedConn reports whether c is a relayed connection.
func relayedConn(c network.Conn) bool {
	if c.Stat().Limited {
		return true
	}
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// post records work for the run goroutine under s.mu and wakes it,
// without blocking.
func (s *session) post(record func()) {
	s.mu.Lock()
	record()
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// appended queues a local append for the session.
func (s *session) appended(k feed.PublicKey) { s.post(func() { s.pending[k] = true }) }

// refreshFeeds queues a Session.Refresh.
func (s *session) refreshFeeds() { s.post(func() { s.refresh = true }) }

// recheckProof queues a check of the peer's proof.
func (s *session) recheckProof() { s.post(func() { s.recheck = true }) }

// takeRecheck reports whether a recheck was queued since the last call.
func (s *session) takeRecheck() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recheck
	s.recheck = false
	return r
}

// takeAppended returns the feeds appended since the last call and whether
// the space's feeds changed.
func (s *session) takeAppended() ([]feed.PublicKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]feed.PublicKey, 0, len(s.pending))
	for k := range s.pending {
		out = append(out, k)
	}
	clear(s.pending)
	refresh := s.refresh
	s.refresh = false
	return out, refresh
}

// progressNow asks the session goroutine for its progress.
func (s *session) progressNow() []Progress {
	reply := make(chan []Progress, 1)
	select {
	case s.progq <- reply:
	case <-s.done:
		return nil
	case <-s.ctx.Done():
		return nil
	case <-time.After(time.Second): // still opening, or busy ingesting
		return nil
	}
	select {
	case p := <-reply:
		return p
	case <-s.done:
		return nil
	}
}

// run drives the session over st until it ends; it resets st and waits for
// its reader before returning.
func (s *session) run(st network.Stream) {
	defer close(s.done)
	r := s.r
	s.mu.Lock()
	s.conn = st.Conn()
	s.mu.Unlock()
	sess := replication.New(replication.Config{
		LocalID:           []byte(r.h.ID()),
		RemoteID:          []byte(s.key.peer),
		Nonce:             newNonce(),
		Creds:             s.sp.Credentials(),
		Verify:            s.sp.Verify,
		Model:             s.sp.Model(),
		Sparse:            r.cfg.Session.Sparse,
		MaxInflightWants:  r.cfg.Session.MaxInflightWants,
		MaxInflightBytes:  r.cfg.Session.MaxInflightBytes,
		MaxBatchBytes:     r.cfg.Session.MaxBatchBytes,
		WantEntries:       r.cfg.Session.WantEntries,
		MaxPendingAnswers: r.cfg.Session.MaxPendingAnswers,
		MaxFeeds:          r.cfg.Session.MaxFeeds,
	})

	s.dl = &readDeadline{st: st}
	frames := make(chan *syncpb.Message)
	readErr := make(chan error, 1)
	authed := make(chan struct{}) // closed once the peer's proof verified
	readerStop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.read(st, frames, readErr, authed, readerStop)
	}()
	defer func() {
		close(readerStop)
		st.Reset() // unblocks the reader
		<-readerDone
	}()

	// The ingester stores batches one at a time, in order, while this
	// goroutine goes on reading frames and verifying the next batches.
	ingestq := make(chan replication.Ingest)
	results := make(chan ingested)
	stopIngest := make(chan struct{})
	ingesterDone := make(chan struct{})
	go func() {
		defer close(ingesterDone)
		s.ingester(ingestq, results, stopIngest)
	}()
	var stopOnce sync.Once
	stopIngester := func() {
		stopOnce.Do(func() {
			close(stopIngest)
			<-ingesterDone // a running Ingest finishes first
		})
	}
	defer stopIngester()

	// Small buffers until the peer's proof verified: an outsider holds
	// little of this node's memory.
	bw := bufio.NewWriterSize(st, replication.MaxOpeningFrameSize)
	sess.Start()
	err := s.drain(sess, st, bw)
	for err == nil {
		var next chan<- replication.Ingest
		var head replication.Ingest
		if len(s.queue) > 0 {
			next, head = ingestq, s.queue[0]
		}
		select {
		case <-s.ctx.Done():
			return
		case next <- head:
			s.queue[0] = replication.Ingest{}
			s.queue = s.queue[1:]
		case res := <-results:
			sess.Ingested(res.Feed, res.err)
			if res.err == nil || errors.Is(res.err, feed.ErrFork) {
				// Grown, or frozen: the other sessions push the head, or
				// the evidence.
				r.each(s.key.space, s, func(o *session) { o.appended(res.Feed) })
			}
			err = s.drain(sess, st, bw)
		case m := <-frames:
			if m.GetData() != nil || m.GetRefuse() != nil {
				s.outstanding = max(0, s.outstanding-1)
			}
			if err = sess.Step(m); err == nil {
				if m.GetProve() != nil && sess.Authenticated() {
					// The peer proved the capability: full-size frames
					// and buffers from now on (bw is empty: drain
					// flushes).
					close(authed)
					s.established.Store(time.Now().UnixNano())
					bw = bufio.NewWriterSize(st, 64<<10)
				}
				err = s.drain(sess, st, bw)
			}
		case err = <-readErr:
		case <-s.wake:
			if s.takeRecheck() && sess.Authenticated() {
				if binding, proof := sess.PeerProof(); !s.sp.Verify(binding, proof) {
					err = errNoLongerAuthorised
					break
				}
			}
			appended, refresh := s.takeAppended()
			if refresh {
				sess.Refresh()
			}
			for _, k := range appended {
				sess.Appended(k)
			}
			err = s.drain(sess, st, bw)
		case reply := <-s.progq:
			reply <- s.progress(sess)
		}
	}
	// Forget the session before the deferred reset tells the peer, so that
	// the peer's next stream is not taken for a duplicate — but after its
	// running Ingest finished, so that a session that starts once it is
	// forgotten asks only for what is not stored.
	stopIngester()
	r.forget(s)
	if s.ctx.Err() != nil {
		return
	}
	s.ended(err)
}

// errNoLongerAuthorised ends a session whose peer's proof the space no
// longer accepts (Recheck): a device was removed.
var errNoLongerAuthorised = errors.New("syncnet: the peer's proof is no longer accepted")

// ended logs why a session ended and lowers the peer's standing if it was
// the peer's fault.
func (s *session) ended(err error) {
	r := s.r
	switch {
	case errors.Is(err, replication.ErrUnauthorized):
		r.log.Info("sync: session refused, stream reset", "peer", s.key.peer, "space", s.key.space.String()[:16], "reason", err)
		r.failedProof(s.key.peer)
	case peerFault(err):
		r.log.Info("sync: session refused, stream reset", "peer", s.key.peer, "space", s.key.space.String()[:16], "reason", err)
		r.strike(s.key.peer)
	case errors.Is(err, replication.ErrMisuse):
		r.log.Error("sync: driver bug", "peer", s.key.peer, "err", err)
	case errors.Is(err, errNoLongerAuthorised):
		r.log.Info("sync: session closed, the peer is no longer authorised", "peer", s.key.peer, "space", s.key.space.String()[:16])
	case errors.Is(err, io.EOF):
		r.log.Debug("sync: peer closed the session", "peer", s.key.peer)
	case timedOut(err):
		r.log.Debug("sync: peer stalled, session dropped", "peer", s.key.peer, "err", err)
		r.mu.Lock()
		r.tracer.Drop(DropStalled)
		r.mu.Unlock()
	default:
		r.log.Debug("sync: session ended", "peer", s.key.peer, "err", err)
	}
}

// timedOut reports whether err is a deadline that passed (IdleTimeout,
// FrameTimeout, WriteTimeout).
func timedOut(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

// ingested is the result of one Space.Ingest.
type ingested struct {
	replication.Ingest
	err error
}

// ingester ingests the batches it receives, in order, and returns each
// result, until stop is closed.
func (s *session) ingester(in <-chan replication.Ingest, out chan<- ingested, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case b := <-in:
			res := ingested{b, s.sp.Ingest(b.Feed, b.Batch)}
			select {
			case out <- res:
			case <-stop:
				return
			}
		}
	}
}

// read hands frames to the session goroutine until the stream fails or
// stop is closed. Until the peer's proof verified (authed is closed) it
// reads only frames of up to replication.MaxOpeningFrameSize, and after handing
// over the peer's Prove it reads nothing more until the session goroutine
// has verified it. Waiting for the start of a frame is bounded by the
// session's idle deadline, if any; once a frame's first byte arrived, the
// rest must arrive within Config.FrameTimeout.
func (s *session) read(st network.Stream, frames chan<- *syncpb.Message, errc chan<- error, authed, stop <-chan struct{}) {
	br := bufio.NewReaderSize(st, replication.MaxOpeningFrameSize)
	limit := replication.MaxOpeningFrameSize
	for {
		if _, err := br.Peek(1); err == nil {
			s.dl.setFrame(time.Now().Add(s.r.cfg.FrameTimeout))
		}
		m, err := replication.ReadFrame(br, limit)
		s.dl.setFrame(time.Time{})
		if err != nil {
			errc <- err
			return
		}
		select {
		case frames <- m:
		case <-stop:
			return
		case <-s.ctx.Done():
			return
		}
		if m.GetProve() != nil && limit < replication.MaxFrameSize {
			select {
			case <-authed:
				limit = replication.MaxFrameSize
				// Large reads pass the small buffer by when it is empty.
				br = bufio.NewReaderSize(br, 64<<10)
			case <-stop:
				return
			case <-s.ctx.Done():
				return
			}
		}
	}
}

// readDeadline is a stream's read deadline, set by two goroutines: the
// session goroutine's idle deadline (while it waits for the peer) and the
// reader's frame deadline (while a frame is arriving). The stream's
// deadline is the earlier of those set.
type readDeadline struct {
	st          network.Stream
	mu          sync.Mutex
	idle, frame time.Time // zero: none
}

func (d *readDeadline) setIdle(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.idle = t
	d.apply()
}

func (d *readDeadline) setFrame(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frame = t
	d.apply()
}

func (d *readDeadline) apply() {
	t := d.idle
	if !d.frame.IsZero() && (t.IsZero() || d.frame.Before(t)) {
		t = d.frame
	}
	d.st.SetReadDeadline(t)
}

// drain carries out the session's outputs until it has none, then sets the
// read deadline: IdleTimeout while this side waits for the peer.
func (s *session) drain(sess *replication.Session, st network.Stream, bw *bufio.Writer) error {
	r := s.r
	for sess.HasReady() {
		rd := sess.Ready()
		if rd.Err != nil {
			return rd.Err
		}
		if len(rd.Send) > 0 {
			st.SetWriteDeadline(time.Now().Add(r.cfg.WriteTimeout))
			for _, m := range rd.Send {
				if m.GetWant() != nil {
					s.outstanding++
				}
				if err := replication.WriteFrame(bw, m); err != nil {
					return err
				}
			}
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		ingest, evidence := rd.Ingest, rd.Evidence
		sess.Advance()
		now := r.now()
		for _, in := range ingest {
			s.record(now, in.Feed, in.Batch)
			// Verified here, while the ingester may be storing an earlier
			// batch; Ingest reuses the result. A batch that fails is
			// queued all the same: Ingest fails it again, in its turn.
			_ = in.Batch.Verify()
			s.queue = append(s.queue, in)
		}
		for _, ev := range evidence {
			if err := s.sp.ImportEvidence(ev); err != nil {
				r.log.Info("sync: fork evidence not imported", "peer", s.key.peer, "err", err)
			} else {
				r.log.Warn("sync: fork evidence imported", "peer", s.key.peer, "feed", fmt.Sprintf("%x", ev.A.Key[:8]))
				// Frozen here now: the other sessions pass the evidence on.
				r.each(s.key.space, s, func(o *session) { o.appended(ev.A.Key) })
			}
		}
	}
	if err := sess.Err(); err != nil {
		return err
	}
	var deadline time.Time
	if !sess.Authenticated() || s.outstanding > 0 {
		deadline = time.Now().Add(r.cfg.IdleTimeout)
	}
	s.dl.setIdle(deadline)
	return nil
}

// record counts the entry bytes of a received batch for the rate.
func (s *session) record(now time.Time, k feed.PublicKey, b *feed.Batch) {
	n := 0
	for _, run := range b.Runs {
		for _, e := range run.Entries {
			n += len(e)
		}
	}
	s.rates[k] = append(s.prune(now, s.rates[k]), sample{now, n})
}

func (s *session) prune(now time.Time, samples []sample) []sample {
	i := 0
	for i < len(samples) && now.Sub(samples[i].at) > s.r.cfg.RateWindow {
		i++
	}
	return samples[i:]
}

func (s *session) progress(sess *replication.Session) []Progress {
	now := s.r.now()
	var out []Progress
	for k, fp := range sess.Progress() {
		s.rates[k] = s.prune(now, s.rates[k])
		n := 0
		for _, smp := range s.rates[k] {
			n += smp.bytes
		}
		out = append(out, Progress{
			Peer: s.key.peer, Space: s.key.space, Feed: k, FeedProgress: fp,
			Rate: float64(n) / s.r.cfg.RateWindow.Seconds(),
		})
	}
	return out
}
