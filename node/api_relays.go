package node

import (
	"github.com/mycelsync/mycel/node/api"
)

// The API of the space's relays (list, add, remove) is in relays_space.go.
var _ api.RelayHander = (*Node)(nil)
