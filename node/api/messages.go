package api

import (
	"fmt"
	"net/http"
	"unicode/utf8"
)

// Bounds of an app message (POST /v1/spaces/{space}/messages).
const (
	MaxMessageTopic = 64       // bytes of UTF-8, at least 1
	MaxMessageData  = 16 << 10 // bytes
)

func checkMessage(topic string, data []byte) error {
	if topic == "" || len(topic) > MaxMessageTopic || !utf8.ValidString(topic) {
		return badRequest("a topic is 1 to %d bytes of UTF-8", MaxMessageTopic)
	}
	if len(data) > MaxMessageData {
		return &httpError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("message data of %d bytes, limit %d", len(data), MaxMessageData)}
	}
	return nil
}

func (s *server) devices(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	ds, err := s.b.Devices(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(ds))
	return nil
}

func (s *server) send(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	var req SendRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := checkMessage(req.Topic, req.Data); err != nil {
		return err
	}
	if req.Data == nil {
		req.Data = []byte{}
	}
	if req.Keep {
		ks, ok := s.b.(KeepSender)
		if !ok {
			return badRequest("this node cannot keep messages")
		}
		if err := ks.SendKept(r.Context(), id, req.Topic, req.Data); err != nil {
			return err
		}
	} else if err := s.b.Send(r.Context(), id, req.Topic, req.Data); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// The messages stream is text/event-stream, like the watch stream:
//
//	: mycel listen           a comment once the listener is in place
//
//	event: message           one per app message another device sent; a
//	data: {Message}          kept one from a relay's mailbox has "stored":
//	                         true and its sender's time, maybe days ago
//	                         (held for the first listener of its topic if
//	                         it came while none was there)
//
//	: keepalive              every KeepAlive while nothing arrives
//
//	event: error             last, when the stream ends for a reason other
//	data: {Error}            than the client going (behind, unavailable)
func (s *server) listen(w http.ResponseWriter, r *http.Request) error {
	id, err := spaceParam(r)
	if err != nil {
		return err
	}
	topic := r.URL.Query().Get("topic")
	if topic != "" {
		if err := checkMessage(topic, nil); err != nil {
			return err
		}
	}
	ctx := r.Context()
	ch, errf, err := s.b.Listen(ctx, id, topic)
	if err != nil {
		return err
	}
	return stream(s, w, r, "mycel listen", "message", ch, func(m *Message) {
		if m.Data == nil {
			m.Data = []byte{}
		}
	}, errf, "the listener ended")
}
