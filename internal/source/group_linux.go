package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// OpenAFPacketGroup opens n AF_PACKET sockets on iface, as OpenAFPacket
// does, joined in one fanout group in hash mode, so that each packet is
// read by exactly one of them and n goroutines can share the traffic. The
// kernel hashes a packet by its flow; an IP fragment by its addresses only
// (the flow dissector reads no ports from a fragment, the first one
// included), so all fragments of a mirror datagram reach the same socket
// and can be reassembled there.
//
// The group is o.Fanout when set, so that other processes may join it;
// otherwise the kernel allocates an id no group on the host uses
// (PACKET_FANOUT_FLAG_UNIQUEID), so the sockets share the traffic with no
// one else; it may be 0. The ring (o.RingBlockSize × o.RingBlocks) is per
// socket. The returned id is the group's.
//
// A socket receives every packet from its bind until it joins the group,
// so the first ones opened would see copies of what the others see: once
// all have joined, each drops what it received before, and every packet
// after that is read once.
func OpenAFPacketGroup(iface string, o Options, n int) (_ []Source, id uint16, err error) {
	if n < 1 {
		return nil, 0, fmt.Errorf("open %s: %d sockets", iface, n)
	}
	id = o.Fanout
	holder := -1 // a socket that keeps a kernel-allocated id alive
	if o.Fanout == 0 {
		if holder, id, err = uniqueFanout(iface); err != nil {
			return nil, 0, fmt.Errorf("open %s: fanout group: %w", iface, err)
		}
		// It leaves the group once the others are in: it would take its
		// share of the packets and drop them.
		defer func() {
			if holder >= 0 {
				unix.Close(holder)
			}
		}()
	}
	o.Fanout = id
	srcs := make([]Source, n)
	errs := make([]error, n)
	each(n, func(i int) { srcs[i], errs[i] = openAFPacket(iface, o, true) })
	if err := errors.Join(errs...); err != nil {
		closeAll(srcs)
		return nil, 0, err
	}
	if holder >= 0 {
		unix.Close(holder)
		holder = -1
	}
	joined := time.Now()
	each(n, func(i int) { errs[i] = srcs[i].(*afSource).drain(joined) })
	if err := errors.Join(errs...); err != nil {
		closeAll(srcs)
		return nil, 0, fmt.Errorf("open %s: %w", iface, err)
	}
	return srcs, id, nil
}

// each runs f(0) … f(n-1) at once and waits for them: a socket's drain
// waits a poll timeout on a quiet link, and n of them need not add up.
func each(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}

func closeAll(srcs []Source) {
	for _, s := range srcs {
		if s != nil {
			s.Close()
		}
	}
}

// uniqueFanout creates a hash-mode fanout group on iface with an id the
// kernel picks among those no group uses, and returns the socket holding
// it and the id. The socket is bound as the capture sockets are (every
// protocol, the same interface), which the kernel requires of the members
// of one group, and drops every packet it is given.
func uniqueFanout(iface string) (fd int, id uint16, err error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return 0, 0, err
	}
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	drop, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return 0, 0, err
	}
	prog := unix.SockFprog{Len: uint16(len(drop)), Filter: (*unix.SockFilter)(unsafe.Pointer(&drop[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return 0, 0, fmt.Errorf("attach filter: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return 0, 0, fmt.Errorf("bind: %w", err)
	}
	// The kernel drops the unique-id flag once the group exists, so the
	// group's mode is plain hash, which the capture sockets then join.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT,
		(unix.PACKET_FANOUT_HASH|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16); err != nil {
		return 0, 0, err
	}
	v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		return 0, 0, err
	}
	return fd, uint16(v), nil
}

// htons puts v in network byte order, as a sockaddr wants it.
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}
