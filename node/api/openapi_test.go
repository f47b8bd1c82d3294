package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

type operation struct {
	OperationID string                     `json:"operationId"`
	Security    *[]map[string][]string     `json:"security"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

// docPath is a route's path as the OpenAPI document writes it.
func docPath(muxPath string) string { return strings.ReplaceAll(muxPath, "...}", "}") }

// TestOpenAPIMatchesRoutes holds the document to the route table both
// ways, and checks that the server's mux takes each documented operation
// to its route and answers it with a documented status.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	byOp := map[string]api.Route{}
	for _, rt := range api.Routes() {
		op := rt.Method + " " + docPath(rt.Path)
		if _, dup := byOp[op]; dup {
			t.Errorf("route %s twice", op)
		}
		byOp[op] = rt
	}
	documented := map[string]bool{}
	ids := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			op := strings.ToUpper(method) + " " + path
			documented[op] = true
			if _, ok := byOp[op]; !ok {
				t.Errorf("documented %s is not a route", op)
				continue
			}
			var o operation
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			if o.OperationID == "" || ids[o.OperationID] {
				t.Errorf("%s: operationId %q missing or repeated", op, o.OperationID)
			}
			ids[o.OperationID] = true
			public := o.Security != nil && len(*o.Security) == 0
			if public != byOp[op].Public {
				t.Errorf("%s: documented public=%v, served public=%v", op, public, byOp[op].Public)
			}
			if _, ok := o.Responses["403"]; !ok {
				t.Errorf("%s: 403 undocumented", op)
			}
			if _, ok := o.Responses["401"]; !ok && !public {
				t.Errorf("%s: 401 undocumented", op)
			}
		}
	}
	for op := range byOp {
		if !documented[op] {
			t.Errorf("route %s is not documented", op)
		}
	}

	// Served: the mux routes a concrete request of each operation to its
	// pattern, and the answer to a good request is a documented status.
	fake := apitest.New()
	sp := fake.AddSpace("s")
	fake.Put(t.Context(), sp, "a/b", []byte("v"))
	h := api.NewServer(api.ServerConfig{Backend: fake, Token: testToken, Metrics: emptyGatherer{}})
	// Approve and deny each take a request of their own.
	reqIDs := map[string]string{
		"POST /v1/requests/{id}/approve": fake.AddRequest(api.Request{Space: sp}).ID,
		"POST /v1/requests/{id}/deny":    fake.AddRequest(api.Request{Space: sp}).ID,
	}
	bodies := map[string]string{
		"POST /v1/spaces":                   `{"name":"n"}`,
		"POST /v1/spaces/{space}/join":      `{"name":"n"}`,
		"POST /v1/accept":                   `{"token":"welcome:` + sp + `"}`,
		"PUT /v1/spaces/{space}/keys/{key}": `{"value":"djI="}`,
		"POST /v1/spaces/{space}/members":   `{"feed":"` + apitest.HexID(0x77) + `","name":"n","device":"AAAA"}`,
		"POST /v1/spaces/{space}/messages":  `{"topic":"t","data":"aGk="}`,
		"POST /v1/spaces/{space}/relays":    `{"addr":"/ip4/127.0.0.1/tcp/4111/p2p/12D3KooWrelay"}`,
		"POST /v1/spaces/{space}/invites":   `{"ttl":"1h"}`,
		"PUT /v1/spaces/{space}/password":   `{"password":"correct horse"}`,
		"PUT /v1/spaces/{space}/alias":      `{"name":"family"}`,
		"POST /v1/join":                     `{"invite":"` + apitest.InviteLink(apitest.HexID(0xcafe), 1) + `"}`,
	}
	ops := slices.Sorted(func(yield func(string) bool) {
		for op := range byOp {
			if !yield(op) {
				return
			}
		}
	})
	// Watch, listen and the requests' events stream until their context
	// ends: only their routing is checked.
	for _, op := range ops {
		rt := byOp[op]
		method, path, _ := strings.Cut(op, " ")
		space := sp
		if op == "DELETE /v1/spaces/{space}" {
			space = fake.AddSpace("left") // leaving deletes it
		}
		sample := strings.NewReplacer("{space}", space, "{key}", "a/b", "{feed}", apitest.HexID(0xf001), "{id}", reqIDs[op], "{name}", "family")
		var body *strings.Reader
		if b, ok := bodies[op]; ok {
			body = strings.NewReader(b)
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest(method, "http://127.0.0.1:4103"+sample.Replace(path), body)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if got := api.MatchedPattern(h, req); got != rt.Method+" "+rt.Path {
			t.Errorf("%s is routed to %q", op, got)
			continue
		}
		if strings.HasSuffix(path, "/watch") || op == "GET /v1/spaces/{space}/messages" || op == "GET /v1/requests/events" {
			continue
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var o operation
		json.Unmarshal(doc.Paths[path][strings.ToLower(method)], &o)
		if _, ok := o.Responses[strconv.Itoa(rec.Code)]; !ok || rec.Code >= 300 {
			t.Errorf("%s answered %d (%s); documented %v", op, rec.Code, rec.Body, keys(o.Responses))
		}
		if rec.Code == http.StatusOK && rt.Path != "/metrics" && rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: Content-Type %q", op, rec.Header().Get("Content-Type"))
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
