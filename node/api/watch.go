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
//	                         read too slowly; unavailable: the daemon stops)
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
	if !send(": mycel watch\n\n") {
		return nil
	}
	tick := time.NewTicker(s.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil // the client went
				}
				werr := errf()
				if werr == nil {
					werr = fmt.Errorf("%w: the watch ended", ErrClosed)
				}
				_, body := errorBody(werr)
				data, _ := json.Marshal(body)
				send("event: error\ndata: %s\n\n", data)
				return nil
			}
			e.Versions = nonNil(e.Versions)
			data, err := json.Marshal(e)
			if err != nil {
				return nil
			}
			if !send("event: change\ndata: %s\n\n", data) {
				return nil // the client went; ctx ends the Backend's watch
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
