package api_test

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

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
