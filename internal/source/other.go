//go:build !linux

package source

import (
	"errors"
	"fmt"
)

var errNotLinux = errors.New("live capture needs Linux")

// OpenAFPacket captures on iface; it needs Linux.
func OpenAFPacket(iface string, o Options) (Source, error) {
	return nil, fmt.Errorf("open %s: %w", iface, errNotLinux)
}

// ListenUDP receives mirror datagrams on addr; it needs Linux.
func ListenUDP(addr string, o Options) (Source, error) {
	return nil, fmt.Errorf("listen %s: %w", addr, errNotLinux)
}

// OpenAFPacketGroup captures on iface with n sockets; it needs Linux.
func OpenAFPacketGroup(iface string, o Options, n int) ([]Source, uint16, error) {
	return nil, 0, fmt.Errorf("open %s: %w", iface, errNotLinux)
}

// ListenUDPGroup receives mirror datagrams on addr with n sockets; it
// needs Linux.
func ListenUDPGroup(addr string, o Options, n int) ([]Source, error) {
	return nil, fmt.Errorf("listen %s: %w", addr, errNotLinux)
}
