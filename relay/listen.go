package relay

import (
	"errors"
	"fmt"

	"github.com/mycelsync/mycel/internal/listencheck"
)

// ErrAddrInUse is what New returns when a listen address's port is taken
// by another process.
var ErrAddrInUse = listencheck.ErrAddrInUse

// checkLoopback refuses an address that is not host:port on loopback: what
// it serves must not be reachable from other machines.
func checkLoopback(addr string) error { return listencheck.Loopback(addr, "127.0.0.1:4113") }

// checkPortsFree fails, naming the flag and the variable to change, when
// another process holds a port of listen (listencheck.PortsFree).
func checkPortsFree(listen []string) error {
	var inUse *listencheck.InUse
	if err := listencheck.PortsFree(listen); errors.As(err, &inUse) {
		return fmt.Errorf("relay: %w (another mycel relay or daemon?); stop it, or choose other addresses with --listen (MYCEL_RELAY_LISTEN)", err)
	}
	return nil
}
