package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotRunning is what a Client's calls wrap when no daemon answers: no
// api.addr in the data directory, or nobody listening at its address.
var ErrNotRunning = errors.New("mycel daemon is not running")

// NotRunningError says where the client looked for the daemon.
type NotRunningError struct {
	Addr    string // the address tried, or ""
	DataDir string // the data directory without api.addr, or ""
	Err     error
}

func (e *NotRunningError) Error() string {
	where := "no API at " + e.Addr
	if e.Addr == "" {
		where = "no " + EndpointFile + " in " + e.DataDir
	}
	return fmt.Sprintf("%v (%s); start it with `mycel daemon`", ErrNotRunning, where)
}

func (e *NotRunningError) Is(target error) bool { return target == ErrNotRunning }
func (e *NotRunningError) Unwrap() error        { return e.Err }

// APIError is an error response of the API. errors.Is matches it against
// the sentinels of its code (ErrNotFound for not_found...).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	}
	return e.Message
}

func (e *APIError) Is(target error) bool {
	for _, c := range codes {
		if c.code == e.Code {
			return target == c.err
		}
	}
	return false
}

// maxResponse bounds a JSON response the client reads (a page of 1000
// entries with large values is the largest).
const maxResponse = 1 << 30

// maxEvent bounds one event of a watch stream.
const maxEvent = 64 << 20

// Client calls a daemon's API.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	addr  string
}

// NewClient returns a client of the API at baseURL (http://host:port)
// with token. hc nil means a client without timeouts: calls end with
// their context.
func NewClient(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: base URL %q: want http://host:port", baseURL)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, token: token, hc: hc, addr: u.Host}, nil
}

// Dial returns a client of the daemon whose data directory is dataDir,
// from its api.addr and api.token. Its error wraps ErrNotRunning when
// there is no api.addr.
func Dial(dataDir string) (*Client, error) {
	addr, err := ReadEndpoint(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &NotRunningError{DataDir: dataDir, Err: err}
	}
	if err != nil {
		return nil, err
	}
	return DialAddr(dataDir, addr)
}

// DialAddr is Dial with the API's address given (host:port): the token
// still comes from dataDir.
func DialAddr(dataDir, addr string) (*Client, error) {
	tok, err := ReadToken(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("api: no %s in %s: has a daemon run with this data directory? %w",
			TokenFile, dataDir, &NotRunningError{Addr: addr, Err: err})
	}
	if err != nil {
		return nil, err
	}
	return NewClient("http://"+addr, tok, nil)
}

// Addr is the host:port the client calls.
func (c *Client) Addr() string { return c.addr }

// endpoint is the URL of path (segments already escaped) with query q.
func (c *Client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.RawPath = c.base.Path + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends a request with body in as JSON, and decodes a 2xx response into
// out (nil: ignore it). Other responses become *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	resp, err := c.send(ctx, method, path, q, in, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("api: %s %s: response: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns a 2xx response; the caller closes its
// body.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, in any, accept string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, q), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", accept)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &NotRunningError{Addr: c.addr, Err: err}
		}
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &APIError{Status: resp.StatusCode}
	var body2 Error
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body2); err == nil && body2.Code != "" {
		e.Code, e.Message = body2.Code, body2.Message
	} else {
		e.Code, e.Message = "internal", fmt.Sprintf("%s %s: HTTP %s", method, path, resp.Status)
	}
	return nil, e
}

// EscapeKey escapes a key as one path segment: every "/" too, and a key
// "." or ".." whole, which the server would otherwise see as a path step.
func EscapeKey(key string) string {
	switch key {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(key)
}

func spacePath(id string) string { return "/v1/spaces/" + url.PathEscape(id) }

// Status returns the daemon's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, "GET", "/v1/status", nil, nil, &st)
}

// Spaces lists the spaces of this device.
func (c *Client) Spaces(ctx context.Context) ([]SpaceInfo, error) {
	var out []SpaceInfo
	return out, c.do(ctx, "GET", "/v1/spaces", nil, nil, &out)
}

// CreateSpace makes a new space with this device as its first writer.
func (c *Client) CreateSpace(ctx context.Context, name string) (SpaceInfo, error) {
	var out SpaceInfo
	return out, c.do(ctx, "POST", "/v1/spaces", nil, CreateSpaceRequest{Name: name}, &out)
}

// Space describes one space.
func (c *Client) Space(ctx context.Context, id string) (SpaceInfo, error) {
	var out SpaceInfo
	return out, c.do(ctx, "GET", spacePath(id), nil, nil, &out)
}

// List returns a page of the keys with prefix after `after`; limit 0 is
// the server's default (100).
func (c *Client) List(ctx context.Context, id, prefix, after string, limit int) (Page, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out Page
	return out, c.do(ctx, "GET", spacePath(id)+"/keys", q, nil, &out)
}

// Get returns a key's versions, the winner first; ErrNotFound when it was
// never written. A deleted key has Versions[0].Deleted.
func (c *Client) Get(ctx context.Context, id, key string) (Entry, error) {
	var out Entry
	return out, c.do(ctx, "GET", spacePath(id)+"/keys/"+EscapeKey(key), nil, nil, &out)
}

// Put sets a key; it returns once the write is durable.
func (c *Client) Put(ctx context.Context, id, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return c.do(ctx, "PUT", spacePath(id)+"/keys/"+EscapeKey(key), nil, PutRequest{Value: value}, nil)
}

// Delete deletes a key.
func (c *Client) Delete(ctx context.Context, id, key string) error {
	return c.do(ctx, "DELETE", spacePath(id)+"/keys/"+EscapeKey(key), nil, nil, nil)
}

// Members lists the writers of a space.
func (c *Client) Members(ctx context.Context, id string) ([]Member, error) {
	var out []Member
	return out, c.do(ctx, "GET", spacePath(id)+"/members", nil, nil, &out)
}

// LeaveSpace deletes this device's copy of a space (after writing its own
// removal, when it is a writer), or gives up its request to join.
func (c *Client) LeaveSpace(ctx context.Context, id string) (Left, error) {
	var out Left
	return out, c.do(ctx, "DELETE", spacePath(id), nil, nil, &out)
}

// RemoveMember removes a writer.
func (c *Client) RemoveMember(ctx context.Context, id, feed string) error {
	return c.do(ctx, "DELETE", spacePath(id)+"/members/"+url.PathEscape(feed), nil, nil, nil)
}

// Peers lists the connected peers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out []Peer
	return out, c.do(ctx, "GET", "/v1/peers", nil, nil, &out)
}

// Progress returns the replication state per space, peer and feed.
func (c *Client) Progress(ctx context.Context) ([]Progress, error) {
	var out []Progress
	return out, c.do(ctx, "GET", "/v1/progress", nil, nil, &out)
}

// OpenAPI returns the daemon's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	return c.read(ctx, "/v1/openapi.json", "application/json")
}

// Metrics returns the daemon's metrics (Prometheus text format).
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	return c.read(ctx, "/metrics", "text/plain")
}

// read returns the body of GET path.
func (c *Client) read(ctx context.Context, path, accept string) ([]byte, error) {
	resp, err := c.send(ctx, "GET", path, nil, nil, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxResponse))
}

// Watch streams the changes of the keys with prefix, from the moment it
// returns, until ctx ends or the stream does: the channel is closed then,
// and the function returns why (nil when ctx ended it; an *APIError with
// code behind when this client read too slowly).
func (c *Client) Watch(ctx context.Context, id, prefix string) (<-chan Entry, func() error, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	resp, err := c.send(ctx, "GET", spacePath(id)+"/watch", q, nil, "text/event-stream")
	if err != nil {
		return nil, nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("api: watch: response of type %q", ct)
	}
	out := make(chan Entry)
	done := make(chan struct{})
	var werr error
	// The goroutine ends when the stream does; ctx ending closes the
	// stream (the request is bound to it).
	go func() {
		defer close(out)
		defer close(done)
		defer resp.Body.Close()
		werr = readEvents(resp.Body, func(event string, data []byte) error {
			switch event {
			case "change":
				var e Entry
				if err := json.Unmarshal(data, &e); err != nil {
					return fmt.Errorf("api: watch: %w", err)
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return ctx.Err()
				}
			case "error":
				var e Error
				if err := json.Unmarshal(data, &e); err != nil {
					return fmt.Errorf("api: watch: %w", err)
				}
				return &APIError{Status: http.StatusOK, Code: e.Code, Message: e.Message}
			}
			return nil
		})
		if ctx.Err() != nil {
			werr = nil
		} else if werr == nil {
			werr = fmt.Errorf("api: watch: the stream ended: %w", io.ErrUnexpectedEOF)
		}
	}()
	return out, func() error {
		select {
		case <-done:
			return werr
		default:
			return nil
		}
	}, nil
}

// readEvents reads a text/event-stream, calling f with each event's name
// ("message" when it has none) and data, until f fails or the stream ends
// (nil at its end).
func readEvents(r io.Reader, f func(event string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEvent)
	var event string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if data != nil {
				if event == "" {
					event = "message"
				}
				if err := f(event, data); err != nil {
					return err
				}
			}
			event, data = "", nil
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			if data != nil {
				data = append(data, '\n')
			} else {
				data = []byte{}
			}
			data = append(data, value...)
		}
	}
	return sc.Err()
}

// Devices returns the writers of a space and whether they are online.
func (c *Client) Devices(ctx context.Context, id string) ([]Device, error) {
	var out []Device
	err := c.do(ctx, "GET", spacePath(id)+"/devices", nil, nil, &out)
	return out, err
}

// Send publishes an app message to the space's devices that are online.
func (c *Client) Send(ctx context.Context, id, topic string, data []byte) error {
	return c.do(ctx, "POST", spacePath(id)+"/messages", nil, SendRequest{Topic: topic, Data: data}, nil)
}

// SendKept is Send with keep: the relays' mailboxes keep the message for
// the devices that are offline (SendRequest.Keep).
func (c *Client) SendKept(ctx context.Context, id, topic string, data []byte) error {
	return c.do(ctx, "POST", spacePath(id)+"/messages", nil, SendRequest{Topic: topic, Data: data, Keep: true}, nil)
}

// Listen streams the app messages other devices send on topic (every
// topic when ""), from the moment it returns, until ctx ends or the
// stream does: the channel is closed then, and the function returns why
// (nil when ctx ended it; an *APIError with code behind when this client
// read too slowly).
func (c *Client) Listen(ctx context.Context, id, topic string) (<-chan Message, func() error, error) {
	q := url.Values{}
	if topic != "" {
		q.Set("topic", topic)
	}
	resp, err := c.send(ctx, "GET", spacePath(id)+"/messages", q, nil, "text/event-stream")
	if err != nil {
		return nil, nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("api: listen: response of type %q", ct)
	}
	out := make(chan Message)
	done := make(chan struct{})
	var lerr error
	go func() {
		defer close(out)
		defer close(done)
		defer resp.Body.Close()
		lerr = readEvents(resp.Body, func(event string, data []byte) error {
			switch event {
			case "message":
				var m Message
				if err := json.Unmarshal(data, &m); err != nil {
					return fmt.Errorf("api: listen: %w", err)
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return ctx.Err()
				}
			case "error":
				var e Error
				if err := json.Unmarshal(data, &e); err != nil {
					return fmt.Errorf("api: listen: %w", err)
				}
				return &APIError{Status: http.StatusOK, Code: e.Code, Message: e.Message}
			}
			return nil
		})
		if ctx.Err() != nil {
			lerr = nil
		} else if lerr == nil {
			lerr = fmt.Errorf("api: listen: the stream ended: %w", io.ErrUnexpectedEOF)
		}
	}()
	return out, func() error {
		select {
		case <-done:
			return lerr
		default:
			return nil
		}
	}, nil
}

// CreateInvite makes a one-time invite to space id that works for ttl (0:
// the server's default, 24 h; at most 30 days).
func (c *Client) CreateInvite(ctx context.Context, id string, ttl time.Duration) (Invite, error) {
	var p InviteParams
	if ttl != 0 {
		p.TTL = ttl.String()
	}
	var out Invite
	return out, c.do(ctx, "POST", spacePath(id)+"/invites", nil, p, &out)
}

// SetPassword sets the password with which a device may ask to join space
// id (a member still approves it).
func (c *Client) SetPassword(ctx context.Context, id, password string) error {
	return c.do(ctx, "PUT", spacePath(id)+"/password", nil, PasswordParams{Password: password}, nil)
}

// Join asks to join a space with an invite or a password. The returned
// state carries the safety code; Space(ctx, state.Space).Join follows the
// request afterwards.
func (c *Client) Join(ctx context.Context, with JoinWith) (JoinState, error) {
	var out JoinState
	return out, c.do(ctx, "POST", "/v1/join", nil, with, &out)
}

// Requests lists the join requests waiting for an answer, oldest first.
func (c *Client) Requests(ctx context.Context) ([]Request, error) {
	var out []Request
	return out, c.do(ctx, "GET", "/v1/requests", nil, nil, &out)
}

// WatchRequests streams the join requests waiting for an answer (those
// waiting already first, then new ones) until ctx ends or the stream does:
// the channel is closed then, and the function returns why (nil when ctx
// ended it).
func (c *Client) WatchRequests(ctx context.Context) (<-chan Request, func() error, error) {
	resp, err := c.send(ctx, "GET", "/v1/requests/events", nil, nil, "text/event-stream")
	if err != nil {
		return nil, nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("api: requests: response of type %q", ct)
	}
	out := make(chan Request)
	done := make(chan struct{})
	var rerr error
	go func() {
		defer close(out)
		defer close(done)
		defer resp.Body.Close()
		rerr = readEvents(resp.Body, func(event string, data []byte) error {
			switch event {
			case "request":
				var req Request
				if err := json.Unmarshal(data, &req); err != nil {
					return fmt.Errorf("api: requests: %w", err)
				}
				select {
				case out <- req:
				case <-ctx.Done():
					return ctx.Err()
				}
			case "error":
				var e Error
				if err := json.Unmarshal(data, &e); err != nil {
					return fmt.Errorf("api: requests: %w", err)
				}
				return &APIError{Status: http.StatusOK, Code: e.Code, Message: e.Message}
			}
			return nil
		})
		if ctx.Err() != nil {
			rerr = nil
		} else if rerr == nil {
			rerr = fmt.Errorf("api: requests: the stream ended: %w", io.ErrUnexpectedEOF)
		}
	}()
	return out, func() error {
		select {
		case <-done:
			return rerr
		default:
			return nil
		}
	}, nil
}

// Approve approves a waiting join request. A non-empty code must be the
// request's safety code (errors.Is(err, ErrSafetyCode) otherwise).
func (c *Client) Approve(ctx context.Context, requestID, code string) error {
	return c.do(ctx, "POST", "/v1/requests/"+url.PathEscape(requestID)+"/approve", nil, ApproveParams{Code: code}, nil)
}

// Deny refuses a waiting join request.
func (c *Client) Deny(ctx context.Context, requestID string) error {
	return c.do(ctx, "POST", "/v1/requests/"+url.PathEscape(requestID)+"/deny", nil, nil, nil)
}
