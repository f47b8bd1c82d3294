package api

import "net/http"

// Route is a row of the route table, for the tests of package api_test.
type Route struct {
	Method, Path string
	Public       bool
}

// Routes returns the route table.
func Routes() []Route {
	var out []Route
	for _, rt := range routes {
		out = append(out, Route{rt.method, rt.path, rt.public})
	}
	return out
}

// MatchedPattern returns the pattern the mux of h (a NewServer) routes r
// to, "" when none.
func MatchedPattern(h http.Handler, r *http.Request) string {
	_, p := h.(*server).mux.Handler(r)
	return p
}
