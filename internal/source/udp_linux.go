package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// maxDatagram is the largest UDP payload over IPv4 or IPv6 without jumbograms.
const maxDatagram = 65535

// controlSize holds one SCM_TIMESTAMPNS and one SO_RXQ_OVFL message.
var controlSize = unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))) + unix.CmsgSpace(4)

// udpSource reads mirror datagrams with recvmmsg. It calls recvmmsg itself
// rather than through x/net's ipv4.PacketConn.ReadBatch, which allocates a
// net.Addr for every datagram; the sender's address is not needed.
type udpSource struct {
	conn *net.UDPConn
	rc   syscall.RawConn
	addr string

	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	bufs    [][]byte
	control []byte
	n, next int // datagrams in the batch, next one to return
	errno   syscall.Errno
	readFn  func(fd uintptr) bool

	recv    atomic.Uint64
	dropped atomic.Uint64
}

// ListenUDP receives Juniper-header mirror datagrams sent to addr
// ("host:port", e.g. "[::]:8099" or "10.0.0.5:8099"). Each packet is a
// datagram's payload, metadata TLVs then the Ethernet frame, with link
// type mirror.LinkTypeJuniperVN. Datagrams longer than o.SnapLen are cut, with
// WireLen telling their full length. Only o.SnapLen, o.ReadBuffer and
// o.Batch apply.
func ListenUDP(addr string, o Options) (Source, error) {
	return listenUDP(addr, o, false)
}

// ListenUDPGroup opens n sockets on addr, as ListenUDP does, bound with
// SO_REUSEPORT: the kernel gives each datagram to one of them by the hash
// of its addresses and ports, so that n goroutines share the traffic. A
// datagram the kernel reassembled from IP fragments reaches one socket
// whole. With port 0, all take the port the first one got. The receive
// buffer (o.ReadBuffer) is per socket.
func ListenUDPGroup(addr string, o Options, n int) ([]Source, error) {
	if n < 1 {
		return nil, fmt.Errorf("listen %s: %d sockets", addr, n)
	}
	srcs := make([]Source, 0, n)
	for range n {
		s, err := listenUDP(addr, o, true)
		if err != nil {
			closeAll(srcs)
			return nil, err
		}
		srcs = append(srcs, s)
		addr = s.(*udpSource).conn.LocalAddr().String()
	}
	return srcs, nil
}

func listenUDP(addr string, o Options, reusePort bool) (Source, error) {
	o = o.withDefaults()
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("SO_REUSEPORT: %w", serr)
			}
			return nil
		}
	}
	conn, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	uc := conn.(*net.UDPConn)
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = setUDPOptions(int(fd), o.ReadBuffer)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}

	size := min(o.SnapLen, maxDatagram)
	s := &udpSource{
		conn:    uc,
		rc:      rc,
		addr:    addr,
		hdrs:    make([]unix.Mmsghdr, o.Batch),
		iovs:    make([]unix.Iovec, o.Batch),
		bufs:    make([][]byte, o.Batch),
		control: make([]byte, o.Batch*controlSize),
	}
	mem := make([]byte, o.Batch*size)
	for i := range s.hdrs {
		s.bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
		s.iovs[i].Base = &s.bufs[i][0]
		s.iovs[i].SetLen(size)
		h := &s.hdrs[i].Hdr
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
		h.Control = &s.control[i*controlSize]
	}
	// A method value made once: building it per read would allocate.
	s.readFn = s.recvmmsg
	return s, nil
}

func setUDPOptions(fd, rcvbuf int) error {
	// SO_RCVBUFFORCE goes beyond net.core.rmem_max but needs CAP_NET_ADMIN.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return fmt.Errorf("set receive buffer: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("enable timestamps: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		return fmt.Errorf("enable drop counter: %w", err)
	}
	return nil
}

// recvmmsg runs under RawConn.Read; it returns false to wait for the socket
// to become readable.
func (s *udpSource) recvmmsg(fd uintptr) bool {
	for i := range s.hdrs {
		s.hdrs[i].Hdr.SetControllen(controlSize)
		s.hdrs[i].Hdr.Flags = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])),
		uintptr(len(s.hdrs)), unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
	switch errno {
	case 0:
		s.n, s.next, s.errno = int(n), 0, 0
		return true
	case unix.EAGAIN, unix.EINTR:
		return false
	}
	s.n, s.next, s.errno = 0, 0, errno
	return true
}

func (s *udpSource) Next(p *mirror.Packet) error {
	for s.next >= s.n {
		if err := s.rc.Read(s.readFn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return ErrClosed
			}
			return fmt.Errorf("read %s: %w", s.addr, err)
		}
		if s.errno != 0 {
			return fmt.Errorf("read %s: recvmmsg: %w", s.addr, s.errno)
		}
	}
	i := s.next
	s.next++
	h := &s.hdrs[i]
	n := int(h.Len)
	p.Data = s.bufs[i][:min(n, len(s.bufs[i]))]
	p.WireLen = n
	p.LinkType = mirror.LinkTypeJuniperVN
	p.Interface = 0
	p.Timestamp = s.parseControl(s.control[i*controlSize : i*controlSize+int(h.Hdr.Controllen)])
	s.recv.Add(1)
	return nil
}

// parseControl reads the timestamp and the drop counter from the control
// messages of one datagram. It walks them by hand because
// unix.ParseSocketControlMessage allocates.
func (s *udpSource) parseControl(b []byte) time.Time {
	var ts time.Time
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(b) {
			break
		}
		data := b[unix.SizeofCmsghdr:l]
		if h.Level == unix.SOL_SOCKET {
			switch h.Type {
			case unix.SCM_TIMESTAMPNS:
				if len(data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					t := (*unix.Timespec)(unsafe.Pointer(&data[0]))
					ts = time.Unix(int64(t.Sec), int64(t.Nsec))
				}
			case unix.SO_RXQ_OVFL:
				if len(data) >= 4 {
					// The kernel reports the socket's cumulative drop count.
					s.dropped.Store(uint64(*(*uint32)(unsafe.Pointer(&data[0]))))
				}
			}
		}
		l = unix.CmsgSpace(l - unix.SizeofCmsghdr)
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	return ts
}

// Stats reports the datagrams received and dropped. SO_RXQ_OVFL only
// comes with a received datagram, so drops after the last one of a burst
// would wait for the next; the socket's own count (SO_MEMINFO) is read
// too, and the larger taken.
func (s *udpSource) Stats() Stats {
	dropped := s.dropped.Load()
	var mem [unix.SK_MEMINFO_VARS]uint32
	_ = s.rc.Control(func(fd uintptr) {
		l := uint32(unsafe.Sizeof(mem))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&l)), 0)
		if errno == 0 {
			dropped = max(dropped, uint64(mem[unix.SK_MEMINFO_DROPS]))
		}
	})
	return Stats{Received: s.recv.Load(), Dropped: dropped}
}

// Close stops the source and wakes up a blocked Next.
func (s *udpSource) Close() error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close %s: %w", s.addr, err)
	}
	return nil
}
