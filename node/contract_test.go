package node

import (
	"testing"

	"github.com/mycelsync/mycel/node/api"
	"github.com/mycelsync/mycel/node/api/apitest"
)

// TestNodeContract runs the api.Backend contract that the API's fake
// meets too (apitest.Contract) against a real node.
func TestNodeContract(t *testing.T) {
	apitest.Contract(t, func(t *testing.T) api.Backend { return startNode(t, loopbackConfig(t)) })
}
