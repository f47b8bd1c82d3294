package apitest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mycelsync/mycel/node/api"
)

// fakeListeners are the Fake's app-message listeners.
type fakeListeners struct {
	mu  sync.Mutex
	all map[*fakeListener]struct{}
}

type fakeListener struct {
	space, topic string
	ch           chan api.Message
	err          error
}

func (f *Fake) listeners() *fakeListeners {
	ls := &f.lsn
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.all == nil {
		ls.all = map[*fakeListener]struct{}{}
	}
	return ls
}

// FakeSender is the sender's feed of the messages the Fake loops back.
var FakeSender = HexID(0x5e4d)

// Devices implements api.Backend: the members, this device online.
func (f *Fake) Devices(id string) ([]api.Device, error) {
	f.record("Devices")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return nil, err
	}
	var out []api.Device
	for _, m := range sp.members {
		d := api.Device{Feed: m.Feed, Name: m.Name, Self: m.Self, Online: m.Self}
		if m.Self {
			t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			d.LastSeen = &t
		}
		out = append(out, d)
	}
	return out, nil
}

// Send implements api.Backend: the message comes back to the space's
// listeners as if FakeSender had sent it.
func (f *Fake) Send(ctx context.Context, id, topic string, data []byte) error {
	f.record("Send")
	f.mu.Lock()
	_, err := f.find(id)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	msg := api.Message{Sender: FakeSender, Name: "fake", Time: time.Now().UTC(), Topic: topic, Data: data}
	ls := f.listeners()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for l := range ls.all {
		if l.space != id || (l.topic != "" && l.topic != topic) {
			continue
		}
		select {
		case l.ch <- msg:
		default:
			l.err = fmt.Errorf("%w: listener full", api.ErrBehind)
			delete(ls.all, l)
			close(l.ch)
		}
	}
	return nil
}

// Listen implements api.Backend.
func (f *Fake) Listen(ctx context.Context, id, topic string) (<-chan api.Message, func() error, error) {
	f.record("Listen")
	f.mu.Lock()
	_, err := f.find(id)
	buf := f.WatchBuf
	f.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	ls := f.listeners()
	l := &fakeListener{space: id, topic: topic, ch: make(chan api.Message, buf)}
	ls.mu.Lock()
	ls.all[l] = struct{}{}
	ls.mu.Unlock()
	context.AfterFunc(ctx, func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		if _, ok := ls.all[l]; ok {
			delete(ls.all, l)
			close(l.ch)
		}
	})
	return l.ch, func() error {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		return l.err
	}, nil
}

// ActiveListeners counts the listeners not ended yet.
func (f *Fake) ActiveListeners() int {
	ls := f.listeners()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.all)
}
