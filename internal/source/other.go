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
