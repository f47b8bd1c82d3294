package listencheck

import (
	"errors"
	"fmt"
	"net"
	"testing"
)

func TestLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:4103": true, "[::1]:1": true, "localhost:80": true, "127.8.9.1:2": true,
		"0.0.0.0:4103": false, "192.168.1.2:4103": false, "example.org:80": false,
		"127.0.0.1": false, "127.0.0.1:99999": false, "": false,
	} {
		if err := Loopback(addr, "127.0.0.1:1"); (err == nil) != ok {
			t.Errorf("Loopback(%q): %v", addr, err)
		}
	}
}

func TestPortsFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	held := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
	err = PortsFree([]string{"/ip4/127.0.0.1/tcp/0", "/dns4/x/tcp/1", held})
	var inUse *InUse
	if !errors.As(err, &inUse) || !errors.Is(err, ErrAddrInUse) || inUse.Listen != held || inUse.Network != "TCP" || inUse.Port != fmt.Sprint(port) {
		t.Fatalf("held port: %v", err)
	}
	ln.Close()
	if err := PortsFree([]string{held}); err != nil {
		t.Fatalf("freed port: %v", err)
	}
}
