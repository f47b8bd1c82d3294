// Package listencheck holds the checks the daemon and the relay make of
// the addresses they are told to listen on, before libp2p or net/http bind
// them.
package listencheck

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// ErrAddrInUse: a listen address's port is held by another process.
var ErrAddrInUse = errors.New("address already in use")

// Loopback refuses an address that is not host:port on loopback (127.0.0.0/8,
// ::1 or localhost): what is served there must not be reachable from other
// machines. example is an address to show in the error.
func Loopback(addr, example string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w (want host:port, e.g. %s)", addr, err, example)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: bad port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1, ::1 or localhost)", addr)
	}
	return nil
}

// InUse is the error PortsFree returns: which listen address, and its
// network and port, another process holds. It wraps ErrAddrInUse.
type InUse struct {
	Listen, Network, Port string
}

func (e *InUse) Error() string {
	return fmt.Sprintf("listen on %s: %v: another process holds %s port %s", e.Listen, ErrAddrInUse, e.Network, e.Port)
}

func (e *InUse) Unwrap() error { return ErrAddrInUse }

// PortsFree binds each TCP and UDP port of the listen multiaddrs for a
// moment, the plain way, and returns an *InUse if another process holds
// one. libp2p binds its TCP ports with SO_REUSEPORT (for hole punching), so
// a second process on the same port would start and share it with the
// first, each getting some of the connections; a plain bind without
// SO_REUSEPORT is refused while any socket holds the port. Port 0 and
// addresses that do not parse are left to libp2p; so are errors other than
// "in use" (no IPv6, say), for which libp2p listens on the others.
func PortsFree(listen []string) error {
	seen := map[string]bool{}
	for _, s := range listen {
		network, addr, ok := bindAddr(s)
		if !ok || seen[network+" "+addr] {
			continue
		}
		seen[network+" "+addr] = true
		var err error
		if network == "tcp" {
			var ln net.Listener
			if ln, err = net.Listen("tcp", addr); err == nil {
				ln.Close()
			}
		} else {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				pc.Close()
			}
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return &InUse{Listen: s, Network: strings.ToUpper(network), Port: addr[strings.LastIndex(addr, ":")+1:]}
		}
	}
	return nil
}

// bindAddr returns the socket a listen multiaddr binds: "tcp" or "udp"
// and host:port, from its leading /ip4|ip6/<ip>/tcp|udp/<port>.
func bindAddr(s string) (network, addr string, ok bool) {
	f := strings.Split(strings.TrimPrefix(s, "/"), "/")
	if len(f) < 4 || (f[0] != "ip4" && f[0] != "ip6") || (f[2] != "tcp" && f[2] != "udp") || f[3] == "0" {
		return "", "", false
	}
	if net.ParseIP(f[1]) == nil {
		return "", "", false
	}
	if _, err := strconv.ParseUint(f[3], 10, 16); err != nil {
		return "", "", false
	}
	return f[2], net.JoinHostPort(f[1], f[3]), true
}
