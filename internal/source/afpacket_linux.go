package source

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// ringFrameSize only has to divide the block size: TPACKET_V3 packs
// packets of any size into a block.
const ringFrameSize = 4096

// afSource reads a TPACKET_V3 ring through gopacket's afpacket.
type afSource struct {
	// mu is held by Next while it reads the ring, so that Close cannot
	// unmap the ring under it.
	mu     sync.Mutex
	tp     *afpacket.TPacket
	closed atomic.Bool
	recv   atomic.Uint64
	iface  string

	// A packet drain found that passed the filter, returned by the first Next.
	pending     bool
	pendingData []byte
	pendingCI   gopacket.CaptureInfo

	// statsMu serialises socket statistics reads with Close; the kernel
	// resets its counters on every read, afpacket accumulates them, and
	// last keeps the final values once the socket is gone.
	statsMu sync.Mutex
	last    Stats
}

// OpenAFPacket captures the mirror traffic arriving on iface, which needs
// no IP address. The kernel filter of KernelFilter(o) runs on the socket
// before the socket is bound, so nothing else ever enters the ring.
// Packets are Ethernet frames with any VLAN tag the kernel stripped put
// back; timestamps come from the ring in nanoseconds.
func OpenAFPacket(iface string, o Options) (Source, error) {
	return openAFPacket(iface, o, o.Fanout != 0)
}

// openAFPacket is OpenAFPacket, joining fanout group o.Fanout if fanout
// is set: a group the kernel allocates may have id 0.
func openAFPacket(iface string, o Options, fanout bool) (Source, error) {
	o = o.withDefaults()
	if _, err := net.InterfaceByName(iface); err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	if o.RingBlockSize%unix.Getpagesize() != 0 || o.RingBlockSize%ringFrameSize != 0 {
		return nil, fmt.Errorf("open %s: ring block size %d is not a multiple of the page size", iface, o.RingBlockSize)
	}
	filter, err := KernelFilter(o)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(iface),
		afpacket.TPacketVersion3,
		afpacket.OptFrameSize(ringFrameSize),
		afpacket.OptBlockSize(o.RingBlockSize),
		afpacket.OptNumBlocks(o.RingBlocks),
		afpacket.OptBlockTimeout(10*time.Millisecond),
		afpacket.OptPollTimeout(o.PollTimeout),
		afpacket.OptAddVLANHeader(true),
	)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	s := &afSource{tp: tp, iface: iface}
	if err := tp.SetBPF(filter); err != nil {
		tp.Close()
		return nil, fmt.Errorf("open %s: attach kernel filter: %w", iface, err)
	}
	// afpacket binds the socket before the filter can be attached, so the
	// ring may already hold unfiltered packets: drop them.
	if err := s.drain(time.Now()); err != nil {
		tp.Close()
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	if o.Promisc {
		if err := tp.SetPromiscuous(true); err != nil {
			tp.Close()
			return nil, fmt.Errorf("open %s: promiscuous mode: %w", iface, err)
		}
	}
	if fanout {
		if err := tp.SetFanout(afpacket.FanoutHash, o.Fanout); err != nil {
			tp.Close()
			return nil, fmt.Errorf("open %s: fanout group %d: %w", iface, o.Fanout, err)
		}
	}
	// Drops counted before the filter was in place are not ours.
	if err := tp.InitSocketStats(); err != nil {
		tp.Close()
		return nil, fmt.Errorf("open %s: socket stats: %w", iface, err)
	}
	return s, nil
}

// drain discards the packets in the ring that the kernel stamped before
// filtered, the time the filter was in place (or, for a group, the time
// every socket had joined it). The ring stamps packets after
// the filter ran, with the wall clock, so anything later passed the filter;
// the first such packet is kept for Next. On a quiet link drain returns
// after one poll timeout.
func (s *afSource) drain(filtered time.Time) error {
	if s.pending {
		if !s.pendingCI.Timestamp.Before(filtered) {
			return nil
		}
		s.pending, s.pendingData = false, nil
	}
	for {
		data, ci, err := s.tp.ZeroCopyReadPacketData()
		if errors.Is(err, afpacket.ErrTimeout) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("drain ring: %w", err)
		}
		if !ci.Timestamp.Before(filtered) {
			s.pending, s.pendingData, s.pendingCI = true, data, ci
			return nil
		}
	}
}

func (s *afSource) Next(p *mirror.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() {
			return ErrClosed
		}
		var (
			data []byte
			ci   gopacket.CaptureInfo
			err  error
		)
		if s.pending {
			data, ci = s.pendingData, s.pendingCI
			s.pending, s.pendingData = false, nil
		} else {
			data, ci, err = s.tp.ZeroCopyReadPacketData()
		}
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				continue
			}
			if s.closed.Load() {
				return ErrClosed
			}
			return fmt.Errorf("read %s: %w", s.iface, ifaceState(s.iface, err))
		}
		p.Timestamp = ci.Timestamp
		p.LinkType = layers.LinkTypeEthernet
		p.Data = data
		p.WireLen = ci.Length
		p.Interface = 0
		s.recv.Add(1)
		return nil
	}
}

func (s *afSource) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if !s.closed.Load() {
		s.readSocketStats()
	}
	st := s.last
	st.Received = s.recv.Load()
	return st
}

// readSocketStats updates s.last; s.statsMu is held.
func (s *afSource) readSocketStats() {
	_, v3, err := s.tp.SocketStats()
	if err == nil {
		s.last.Dropped = uint64(v3.Drops())
		s.last.QueueFreezes = uint64(v3.QueueFreezes())
	}
}

// Close stops the source. A Next blocked in another goroutine returns
// ErrClosed within the poll timeout; Close waits for it, then releases the
// ring, after which Data from earlier packets must not be used.
func (s *afSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.readSocketStats()
	s.tp.Close()
	return nil
}

// ifaceState explains err, a failed read, by the interface's state: the
// socket reports an interface deleted or set down only as a poll error.
func ifaceState(iface string, err error) error {
	ifi, ierr := net.InterfaceByName(iface)
	switch {
	case ierr != nil:
		return fmt.Errorf("the interface is gone (%w)", err)
	case ifi.Flags&net.FlagUp == 0:
		return fmt.Errorf("the interface is down (%w)", err)
	}
	return err
}
