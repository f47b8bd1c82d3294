package api_test

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

func sampleRequest() api.JoinRequest {
	dev := bytes.Repeat([]byte{0xd5}, 1217)
	return api.JoinRequest{Space: apitest.HexID(0xabc), Feed: apitest.HexID(0xdef), Name: "Laptop ü", Device: dev}
}

func TestJoinToken(t *testing.T) {
	req := sampleRequest()
	tok := api.EncodeJoinRequest(req)
	if tok == "" || len(tok) > api.MaxJoinToken {
		t.Fatalf("token of %d bytes", len(tok))
	}
	got, err := api.DecodeJoinRequest(tok)
	if err != nil || got.Space != req.Space || got.Feed != req.Feed || got.Name != req.Name || !bytes.Equal(got.Device, req.Device) || got.Token != tok {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Wrapped over lines, with spaces around.
	wrapped := " " + tok[:50] + "\n" + tok[50:100] + "\r\n\t" + tok[100:] + "\n"
	if got, err := api.DecodeJoinRequest(wrapped); err != nil || got.Token != tok {
		t.Errorf("wrapped token: %v", err)
	}
	for name, bad := range map[string]api.JoinRequest{
		"short space": {Space: "ab", Feed: req.Feed, Name: "n", Device: req.Device},
		"bad feed":    {Space: req.Space, Feed: strings.Repeat("z", 64), Name: "n", Device: req.Device},
		"no device":   {Space: req.Space, Feed: req.Feed, Name: "n"},
		"bad name":    {Space: req.Space, Feed: req.Feed, Name: "\xff", Device: req.Device},
	} {
		if tok := api.EncodeJoinRequest(bad); tok != "" {
			t.Errorf("%s: encoded as %q", name, tok)
		}
	}
	for name, bad := range map[string]string{
		"empty":       "",
		"not base64":  "!!!!",
		"version 2":   "Ag",
		"truncated":   tok[:60],
		"no device":   api.EncodeJoinRequest(req)[:(1+64+1+len(req.Name))*4/3],
		"padded":      tok + "==",
		"huge":        strings.Repeat("A", api.MaxJoinToken+1),
		"welcome-ish": "AAAA",
	} {
		_, err := api.DecodeJoinRequest(bad)
		if !errors.Is(err, api.ErrBadRequest) && !errors.Is(err, api.ErrTooLarge) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeJoinRequest(f *testing.F) {
	f.Add(api.EncodeJoinRequest(sampleRequest()))
	f.Add(api.EncodeJoinRequest(api.JoinRequest{Space: apitest.HexID(1), Feed: apitest.HexID(2), Device: []byte{1}}))
	f.Add("AQ")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		req, err := api.DecodeJoinRequest(tok)
		if err != nil {
			if !errors.Is(err, api.ErrBadRequest) && !errors.Is(err, api.ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if len(tok) > api.MaxJoinToken || len(req.Device) == 0 || len(req.Device) > api.MaxJoinDevice || len(req.Name) > api.MaxJoinName {
			t.Fatalf("out of bounds: %d-byte token, %+v", len(tok), req)
		}
		// What decodes encodes back to a token of the same request.
		again, err := api.DecodeJoinRequest(api.EncodeJoinRequest(req))
		if err != nil || again.Space != req.Space || again.Feed != req.Feed || again.Name != req.Name || !bytes.Equal(again.Device, req.Device) {
			t.Fatalf("re-encoding %+v: %+v %v", req, again, err)
		}
	})
}

// freeAddr returns a loopback address nobody listens on (it did a moment
// ago).
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type emptyGatherer struct{}

func (emptyGatherer) Gather() ([]*dto.MetricFamily, error) { return nil, nil }

var _ prometheus.Gatherer = emptyGatherer{}
