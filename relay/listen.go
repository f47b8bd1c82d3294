package relay

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// The checks below are the relay's copy of the daemon's (node/config.go):
// the relay does not import node. They belong in one shared helper once
// node's reshaping settles.

// ErrAddrInUse is what New returns when a listen address's port is taken
// by another process.
var ErrAddrInUse = errors.New("address already in use")

// checkLoopback refuses an address that is not host:port on loopback: what
// it serves must not be reachable from other machines.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w (want host:port, e.g. 127.0.0.1:4113)", addr, err)
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

// checkPortsFree binds each TCP and UDP port of listen for a moment, the
// plain way, and fails if another process holds one. libp2p binds its TCP
// ports with SO_REUSEPORT (for hole punching), so a second relay on the
// same port would start and share the port with the first; a plain bind
// without SO_REUSEPORT is refused while any socket holds it. Port 0 and
// addresses that do not parse are left to libp2p, and so are errors other
// than "in use".
func checkPortsFree(listen []string) error {
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
			return fmt.Errorf("relay: listen on %s: %w: another process (another mycel relay or daemon?) holds %s port %s; stop it, or choose other addresses with --listen (MYCEL_RELAY_LISTEN)",
				s, ErrAddrInUse, strings.ToUpper(network), addr[strings.LastIndex(addr, ":")+1:])
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
