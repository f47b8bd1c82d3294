package api

import _ "embed"

// openAPIDocument describes the API (OpenAPI 3.0), served at GET
// /v1/openapi.json without a token. A test holds it to routes both ways.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the API's OpenAPI 3.0 document (JSON).
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }
