package api

import "net/http"

// route is one operation of the API. The server's mux and the test that
// holds the OpenAPI document to the server are both built from routes, so
// that neither can drift from the other.
type route struct {
	method string
	// path is a net/http.ServeMux path pattern: {name} is one segment,
	// {key...} the rest of the path (keys may contain slashes). The
	// OpenAPI document writes {key...} as {key}.
	path string
	// public routes need no token (the Host and Origin checks still
	// apply): the OpenAPI document.
	public bool
	// stream routes answer with a text/event-stream that stays open: they
	// take one of ServerConfig.MaxStreams.
	stream bool
	handle func(s *server, w http.ResponseWriter, r *http.Request) error
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// routes is the API, in the order of the OpenAPI document.
var routes = []route{
	{method: "GET", path: "/v1/status", handle: (*server).status},

	{method: "GET", path: "/v1/spaces", handle: (*server).spaces},
	{method: "POST", path: "/v1/spaces", handle: (*server).createSpace},
	{method: "GET", path: "/v1/spaces/{space}", handle: (*server).space},
	{method: "DELETE", path: "/v1/spaces/{space}", handle: (*server).leaveSpace},

	{method: "GET", path: "/v1/spaces/{space}/keys", handle: (*server).list},
	{method: "GET", path: "/v1/spaces/{space}/keys/{key...}", handle: (*server).get},
	{method: "PUT", path: "/v1/spaces/{space}/keys/{key...}", handle: (*server).put},
	{method: "DELETE", path: "/v1/spaces/{space}/keys/{key...}", handle: (*server).delete},
	{method: "GET", path: "/v1/spaces/{space}/watch", stream: true, handle: (*server).watch},

	{method: "GET", path: "/v1/spaces/{space}/members", handle: (*server).members},
	{method: "DELETE", path: "/v1/spaces/{space}/members/{feed}", handle: (*server).removeMember},
	{method: "GET", path: "/v1/spaces/{space}/devices", handle: (*server).devices},
	{method: "GET", path: "/v1/spaces/{space}/relays", handle: (*server).spaceRelays},
	{method: "POST", path: "/v1/spaces/{space}/relays", handle: (*server).handRelay},
	{method: "DELETE", path: "/v1/spaces/{space}/relays/{peer}", handle: (*server).dropRelay},

	{method: "POST", path: "/v1/spaces/{space}/invites", handle: (*server).createInvite},
	{method: "PUT", path: "/v1/spaces/{space}/password", handle: (*server).setPassword},
	{method: "PUT", path: "/v1/spaces/{space}/alias", handle: (*server).setAlias},
	{method: "DELETE", path: "/v1/spaces/{space}/alias/{name}", handle: (*server).dropAlias},
	{method: "POST", path: "/v1/join", handle: (*server).join},
	{method: "GET", path: "/v1/requests", handle: (*server).requests},
	{method: "GET", path: "/v1/requests/events", stream: true, handle: (*server).watchRequests},
	{method: "POST", path: "/v1/requests/{id}/approve", handle: (*server).approve},
	{method: "POST", path: "/v1/requests/{id}/deny", handle: (*server).deny},

	{method: "POST", path: "/v1/spaces/{space}/messages", handle: (*server).send},
	{method: "GET", path: "/v1/spaces/{space}/messages", stream: true, handle: (*server).listen},

	{method: "GET", path: "/v1/peers", handle: (*server).peers},
	{method: "GET", path: "/v1/progress", handle: (*server).progress},

	{method: "GET", path: "/v1/openapi.json", public: true, handle: (*server).openapi},
	{method: "GET", path: "/metrics", handle: (*server).metrics},
}
