package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/p2p"
	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/messages"
)

// checkMessage checks an app's message as messages.CheckApp does, with
// the API's error codes.
func checkMessage(topic string, data []byte) error {
	switch err := messages.CheckApp(topic, data); {
	case errors.Is(err, messages.ErrTooLarge):
		return fmt.Errorf("%w: %v", api.ErrTooLarge, err)
	case err != nil:
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	return nil
}

// servedChannel returns the ephemeral channel of the space id, or
// api.ErrNoKeys while it is not served.
func (n *Node) servedChannel(id string) (*openSpace, *channel, error) {
	m, err := n.opened(id)
	if err != nil {
		return nil, nil, err
	}
	c := m.channel()
	if c == nil {
		return nil, nil, fmt.Errorf("%w: this device does not hold the space's keys yet", api.ErrNoKeys)
	}
	return m, c, nil
}

// Send implements api.Backend.
func (n *Node) Send(ctx context.Context, id, topic string, data []byte) error {
	return n.send(ctx, id, topic, data, false)
}

// SendKept implements api.KeepSender: the message is sealed under key
// kind messages.KeyKindKept, published, and deposited with every relay
// this node holds a reservation on (relays_mailbox.go), which keep it for
// the devices offline.
func (n *Node) SendKept(ctx context.Context, id, topic string, data []byte) error {
	return n.send(ctx, id, topic, data, true)
}

var _ api.KeepSender = (*Node)(nil)

func (n *Node) send(ctx context.Context, id, topic string, data []byte, keep bool) error {
	if err := checkMessage(topic, data); err != nil {
		return err
	}
	ctx, done, err := n.call(ctx)
	if err != nil {
		return err
	}
	defer done()
	m, c, err := n.servedChannel(id)
	if err != nil {
		return err
	}
	kind := uint32(messages.KeyKindEpoch)
	if keep {
		kind = messages.KeyKindKept
	}
	e, err := c.publishKind(ctx, messages.Body{Kind: messages.KindApp, Topic: topic, Data: data}, kind)
	if e != nil && keep && (err == nil || !errors.Is(err, p2p.ErrClosed)) {
		// Kept even if no peer took it live: that is what the mailbox is for.
		n.depositMailbox(m.sp.ID(), e)
	}
	if err != nil {
		if errors.Is(err, p2p.ErrClosed) {
			return fmt.Errorf("%w: %v", api.ErrClosed, err)
		}
		return spaceError(err)
	}
	return nil
}

// Listen implements api.Backend.
func (n *Node) Listen(ctx context.Context, id, topic string) (<-chan api.Message, func() error, error) {
	if topic != "" {
		if err := checkMessage(topic, nil); err != nil {
			return nil, nil, err
		}
	}
	_, c, err := n.servedChannel(id)
	if err != nil {
		return nil, nil, err
	}
	l := &listener{topic: topic, ch: make(chan api.Message, n.limits.Ephemeral.ListenBuffer)}
	c.mu.Lock()
	if c.listeners == nil {
		c.mu.Unlock()
		return nil, nil, api.ErrClosed
	}
	c.listeners[l] = struct{}{}
	c.handHeldLocked(l)
	c.mu.Unlock()
	// The stream ends with the caller's context, or with api.ErrClosed when
	// the node shuts down (n.streams) or the space closes (read ends every
	// listener).
	ok := n.streams.start(func(sctx context.Context) {
		select {
		case <-ctx.Done():
		case <-sctx.Done():
		}
		c.mu.Lock()
		if c.listeners != nil {
			c.endLocked(l, api.ErrClosed)
		}
		c.mu.Unlock()
	})
	if !ok {
		c.mu.Lock()
		if c.listeners != nil {
			c.endLocked(l, api.ErrClosed)
		}
		c.mu.Unlock()
		return nil, nil, api.ErrClosed
	}
	return l.ch, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		return l.err
	}, nil
}

// Devices implements api.Backend.
func (n *Node) Devices(id string) ([]api.Device, error) {
	m, err := n.opened(id)
	if err != nil {
		return nil, err
	}
	c := m.channel()
	own := m.sp.Feed()
	now := n.clock.Now()
	var out []api.Device
	for _, d := range m.sp.Devices() {
		dev := api.Device{Feed: hex.EncodeToString(d.Feed[:]), Name: d.Name, Self: d.Feed == own}
		if dev.Self {
			dev.Online = c != nil
			if c != nil {
				t := now.UTC()
				dev.LastSeen = &t
			}
		} else if c != nil {
			k := ephemeral.PublicKey(d.Feed)
			if t, online, ok := c.lastSeen(k, now); ok {
				t = t.UTC()
				dev.LastSeen = &t
				dev.Online = online
			}
			if dev.Name == "" {
				c.mu.Lock()
				dev.Name = c.names[k]
				c.mu.Unlock()
			}
		}
		out = append(out, dev)
	}
	return out, nil
}
