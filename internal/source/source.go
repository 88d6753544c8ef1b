// Package source provides the live packet sources of vrsniff: an AF_PACKET
// TPACKET_V3 ring that captures mirror traffic at layer 2 on an interface
// that may have no IP address, and a UDP socket for hosts where the analyzer
// address is local.
//
// A Source fills only the source fields of a mirror.Packet (Timestamp,
// LinkType, Data, WireLen, Interface); decoding happens downstream.
package source

import (
	"errors"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// ErrClosed is returned by Next once the source has been closed.
var ErrClosed = errors.New("capture: source closed")

// Source is a stream of captured packets.
type Source interface {
	// Next fills the source fields of p. Data is not copied: it is valid
	// until the next call to Next or Close. Next blocks until a packet
	// arrives and returns ErrClosed after Close, which may be called from
	// another goroutine.
	Next(p *mirror.Packet) error
	// Stats returns cumulative counters. It may be called concurrently
	// with Next.
	Stats() Stats
	// Close releases the source and wakes up a blocked Next.
	Close() error
}

// Stats are the cumulative counters of a Source.
type Stats struct {
	// Received counts the packets Next returned.
	Received uint64
	// Dropped counts the packets the kernel accepted for this source (they
	// passed the kernel filter) but dropped because the ring or the socket
	// buffer was full.
	Dropped uint64
	// QueueFreezes counts how often the kernel found the ring full
	// (AF_PACKET only).
	QueueFreezes uint64
}

// Defaults used for zero Options fields.
const (
	DefaultSnapLen       = 262144
	DefaultRingBlockSize = 1 << 20
	DefaultRingBlocks    = 64
	DefaultPollTimeout   = 100 * time.Millisecond
	DefaultReadBuffer    = 32 << 20
	DefaultBatch         = 64
)

// Options configure a Source. The zero value selects the defaults.
type Options struct {
	// Traffic is the mirror traffic the kernel filter keeps (see
	// KernelFilter): its ports, every UDP datagram with AutoPorts, and
	// frames tagged with its mirror VLAN.
	Traffic mirror.Traffic
	// OverlayPorts are UDP destination ports of fabric tunnels that may
	// carry mirror datagrams (default 6635 and 51234, MPLSoUDP). MPLSoGRE
	// is not kept by the kernel filter.
	OverlayPorts []uint16
	// SnapLen caps the bytes kept of each packet (default 262144).
	SnapLen int
	// RingBlockSize and RingBlocks size the TPACKET_V3 ring (defaults
	// 1 MiB and 64). The block size must be a multiple of the page size.
	RingBlockSize, RingBlocks int
	// Promisc puts the interface into promiscuous mode for as long as the
	// source is open, so that frames to other MAC addresses are seen.
	Promisc bool
	// Fanout, when non-zero, joins the AF_PACKET fanout group with this id:
	// sockets in one group share the traffic by flow hash, and the
	// fragments of one datagram stay together because fragments hash by
	// their addresses only.
	Fanout uint16
	// PollTimeout bounds how long Next waits before it notices Close
	// (default 100ms).
	PollTimeout time.Duration
	// ReadBuffer is the UDP socket's receive buffer (default 32 MiB).
	ReadBuffer int
	// Batch is the number of datagrams the UDP source reads per system
	// call (default 64).
	Batch int
}

func (o Options) withDefaults() Options {
	o.Traffic = o.Traffic.WithDefaults()
	if len(o.OverlayPorts) == 0 {
		o.OverlayPorts = []uint16{mirror.MPLSoUDPPort, mirror.MPLSoUDPPortOld}
	}
	if o.SnapLen <= 0 {
		o.SnapLen = DefaultSnapLen
	}
	if o.RingBlockSize <= 0 {
		o.RingBlockSize = DefaultRingBlockSize
	}
	if o.RingBlocks <= 0 {
		o.RingBlocks = DefaultRingBlocks
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = DefaultPollTimeout
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = DefaultReadBuffer
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	return o
}
