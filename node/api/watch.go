package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The watch stream is text/event-stream (server-sent events):
//
//	: mycel watch            a comment once the watch is in place
//
//	event: change            one per change of a key with the prefix
//	data: {Entry}
//
//	: keepalive              every KeepAlive while nothing changes
//
//	event: error             last, when the stream ends for a reason other
//	data: {Error}            than the client going (code behind: the client
//	                         read too slowly; unavailable: the daemon stops,
//	                         ServerConfig.Closing)
//
// Changes made after the response's headers arrive are in the stream.
func (s *server) watch(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ch, errf, err := s.b.Watch(ctx, id, r.URL.Query().Get("prefix"))
	if err != nil {
		return err
	}
	return stream(s, w, r, "mycel watch", "change", ch, func(e *Entry) { e.Versions = nonNil(e.Versions) }, errf, "the watch ended")
}

// stream serves ch as server-sent events named event, each item as JSON
// (after prepare, when not nil), with keepalive comments, until ch is
// closed or the client goes (its context ends the Backend's stream). When
// ch is closed while the client is still there, a last event "error" says
// why: end's error, or ErrClosed with ended. When the daemon stops
// (s.cfg.Closing), the last event is ErrClosed too.
func stream[T any](s *server, w http.ResponseWriter, r *http.Request, comment, event string, ch <-chan T, prepare func(*T), end func() error, ended string) error {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	send := func(format string, args ...any) bool {
		fmt.Fprintf(w, format, args...)
		return rc.Flush() == nil
	}
	if !send(": %s\n\n", comment) {
		return nil
	}
	last := func(err error) {
		_, body := errorBody(err)
		data, _ := json.Marshal(body)
		send("event: error\ndata: %s\n\n", data)
	}
	tick := time.NewTicker(s.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-s.cfg.Closing:
			last(fmt.Errorf("%w: %s", ErrClosed, ended))
			return nil
		case item, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil // the client went
				}
				var err error
				if end != nil {
					err = end()
				}
				if err == nil {
					err = fmt.Errorf("%w: %s", ErrClosed, ended)
				}
				last(err)
				return nil
			}
			if prepare != nil {
				prepare(&item)
			}
			data, err := json.Marshal(item)
			if err != nil {
				return nil
			}
			if !send("event: %s\ndata: %s\n\n", event, data) {
				return nil
			}
		case <-tick.C:
			if !send(": keepalive\n\n") {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}
