package node

import (
	"context"
	"sync"

	"github.com/mycelsync/mycel/node/api"
)

// An owner starts and counts goroutines (and holds: work that runs in its
// caller's goroutine, such as an API call in flight), and refuses both
// once it is closed. The count and the closed flag are under one mutex,
// so that nothing is added to the count after the owner closed and its
// waiters saw it reach zero: a goroutine either starts before close, and
// is waited for, or never starts.
//
// Owners nest: a child's goroutines count in the child and in every
// owner above it, its context ends with its parent's, and it refuses
// when any owner above it refuses. The node has one root owner (Node.life)
// with children for the API's streams and calls, and one per open space,
// which leaving the space closes.
type owner struct {
	parent *owner
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool          // refusing: no start or hold succeeds
	n       int           // goroutines and holds running
	idle    chan struct{} // closed once closed && n == 0
	started uint64        // starts and holds granted, in all
	refused uint64        // starts and holds refused
}

func newOwner(parent *owner) *owner {
	o := &owner{parent: parent, idle: make(chan struct{})}
	base := context.Background()
	if parent != nil {
		base = parent.ctx
	}
	o.ctx, o.cancel = context.WithCancel(base)
	return o
}

// acquire counts one more unit of work in o and every owner above it, or
// reports false (counting nothing) when any of them refuses. Locks are
// taken child first, parent after: a parent never locks its children.
func (o *owner) acquire() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || (o.parent != nil && !o.parent.acquire()) {
		o.refused++
		return false
	}
	o.n++
	o.started++
	return true
}

// release ends one unit of work counted by acquire.
func (o *owner) release() {
	o.mu.Lock()
	o.n--
	if o.closed && o.n == 0 {
		close(o.idle)
	}
	o.mu.Unlock()
	if o.parent != nil {
		o.parent.release()
	}
}

// start runs fn in a new goroutine with the owner's context, counted until
// fn returns. It reports false, and runs nothing, once the owner (or one
// above it) is closed.
func (o *owner) start(fn func(ctx context.Context)) bool {
	if !o.acquire() {
		return false
	}
	go func() {
		defer o.release()
		fn(o.ctx)
	}()
	return true
}

// hold counts work that runs in the caller's goroutine (an API call in
// flight) until done is called. Its context ends with ctx or when the
// owner's ends. ok is false once the owner is closed.
func (o *owner) hold(ctx context.Context) (hctx context.Context, done func(), ok bool) {
	if !o.acquire() {
		return nil, nil, false
	}
	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(o.ctx, cancel)
	return hctx, func() {
		stop()
		cancel()
		o.release()
	}, true
}

// refuse closes the owner to new work without ending the work running:
// the first stage of a drain.
func (o *owner) refuse() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		o.closed = true
		if o.n == 0 {
			close(o.idle)
		}
	}
}

// close refuses new work and cancels the context of the work running.
func (o *owner) close() {
	o.refuse()
	o.cancel()
}

// isClosed reports whether the owner refuses new work.
func (o *owner) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// wait waits, once the owner is closed (refuse or close), until nothing it
// counts runs, or until ctx ends (returning its error).
func (o *owner) wait(ctx context.Context) error {
	select {
	case <-o.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ownerStats is what an owner counted, for tests and diagnostics.
type ownerStats struct {
	Running  int    // goroutines and holds running now
	Started  uint64 // granted in all
	Refused  uint64 // refused in all (after close)
	Closed   bool
	Finished bool // closed and nothing runs
}

func (o *owner) stats() ownerStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return ownerStats{Running: o.n, Started: o.started, Refused: o.refused, Closed: o.closed,
		Finished: o.closed && o.n == 0}
}

// call counts an API call in flight (n.calls), so that Shutdown waits for
// it and Close for whatever it does until it sees its context end. It
// fails with api.ErrClosed once the node is closing. ctx ends with the
// caller's context or when the node closes.
func (n *Node) call(ctx context.Context) (context.Context, func(), error) {
	hctx, done, ok := n.calls.hold(ctx)
	if !ok {
		return nil, nil, api.ErrClosed
	}
	return hctx, done, nil
}

// callOn is call for an API call on one open space: the space named id
// (n.opened) and the call counted, or an error with nothing counted.
func (n *Node) callOn(ctx context.Context, id string) (context.Context, *openSpace, func(), error) {
	ctx, done, err := n.call(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := n.opened(id)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return ctx, m, done, nil
}
