// Command sendmirror replays the frames of a pcap file on an interface at a
// given packet rate, for the capture benchmark.
//
// tcpreplay sends one frame per system call and tops out well below 1 Mpps
// on a small machine; sendmirror hands the kernel batches of frames with
// sendmmsg(2) on AF_PACKET sockets that bypass the queueing discipline, from
// several workers, so that the offered rate is set by the capture side and
// not by the sender.
//
// With -vary-ip every frame leaves with its own outer IPv4 source address
// and ID (a counter; the header checksum is fixed), so that a few fragments
// in the file become an endless flood of distinct datagrams.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

func main() {
	iface := flag.String("i", "", "send on `interface`")
	file := flag.String("r", "", "pcap `file` of Ethernet frames, sent in a loop")
	count := flag.Int("n", 1000000, "frames to send in all")
	pps := flag.Int("pps", 0, "frames per second in all (0: as fast as possible)")
	workers := flag.Int("workers", 1, "sending threads, each with its own socket")
	batch := flag.Int("batch", 64, "frames per sendmmsg call")
	vary := flag.Bool("vary-ip", false, "give every IPv4 frame sent its own outer source address (in 10.128.0.0/9) and IP ID")
	flag.Parse()
	if *iface == "" || *file == "" || *count <= 0 || *workers <= 0 || *batch <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	frames, err := load(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sendmirror:", err)
		os.Exit(1)
	}
	sent, elapsed, err := send(*iface, frames, *count, *pps, *workers, *batch, *vary)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sendmirror:", err)
		os.Exit(1)
	}
	fmt.Printf("sent %d in %.3fs = %.0f pps\n", sent, elapsed.Seconds(), float64(sent)/elapsed.Seconds())
}

func load(name string) ([][]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var frames [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		frames = append(frames, data)
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%s: no frames", name)
	}
	return frames, nil
}

// mmsghdr is struct mmsghdr of <sys/socket.h>, which x/sys/unix lacks.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func send(ifname string, frames [][]byte, count, pps, workers, batch int, vary bool) (uint64, time.Duration, error) {
	ifi, err := ifindex(ifname)
	if err != nil {
		return 0, 0, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total uint64
		errs  []error
	)
	start := time.Now()
	for w := range workers {
		n := count / workers
		if w < count%workers {
			n++
		}
		wg.Go(func() {
			runtime.LockOSThread()
			var v *varier
			if vary {
				v = &varier{next: uint64(w), step: uint64(workers)}
			}
			sent, err := worker(ifi, frames, w, n, float64(pps)/float64(workers), batch, v)
			mu.Lock()
			total += sent
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return total, time.Since(start), errors.Join(errs...)
}

func ifindex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	req, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, req); err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return int(req.Uint32()), nil
}

// worker sends n frames, starting at a different frame per worker, paced
// at rate frames per second (0: unpaced) one batch at a time. With v, each
// frame is sent from a copy that v rewrites.
func worker(ifi int, frames [][]byte, id, n int, rate float64, batch int, v *varier) (uint64, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return 0, fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi}); err != nil {
		return 0, fmt.Errorf("bind: %w", err)
	}
	iov := make([]unix.Iovec, batch)
	msgs := make([]mmsghdr, batch)
	for i := range msgs {
		msgs[i].hdr.Iov = &iov[i]
		msgs[i].hdr.Iovlen = 1
	}
	next := id * len(frames) / max(1, runtime.NumCPU())
	var sent uint64
	start := time.Now()
	for int(sent) < n {
		k := min(batch, n-int(sent))
		for i := range k {
			f := frames[next%len(frames)]
			next++
			if v != nil {
				f = v.vary(i, f)
			}
			iov[i].Base = &f[0]
			iov[i].SetLen(len(f))
		}
		done := 0
		for done < k {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[done])), uintptr(k-done), 0, 0, 0)
			switch {
			case errno == unix.ENOBUFS || errno == unix.EAGAIN:
				// The device queue is full: let it drain without
				// spinning on a CPU the capturers need.
				time.Sleep(20 * time.Microsecond)
			case errno != 0:
				return sent, fmt.Errorf("sendmmsg: %w", errno)
			default:
				done += int(r)
				sent += uint64(r)
			}
		}
		runtime.KeepAlive(frames)
		if rate > 0 {
			due := start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
	}
	return sent, nil
}

// varier rewrites copies of frames so that no two it sends share an outer
// IPv4 source address and ID: frame number c of all workers (workers take
// c = w, w+step, ...) comes from 10.128.0.0 + c mod 2^23 with ID c / 2^23,
// distinct for the first 2^39 frames.
type varier struct {
	next, step uint64
	bufs       [][]byte // one per batch slot: the kernel reads them after the loop
}

func (v *varier) vary(slot int, f []byte) []byte {
	for len(v.bufs) <= slot {
		v.bufs = append(v.bufs, nil)
	}
	b := append(v.bufs[slot][:0], f...)
	v.bufs[slot] = b
	// Ethernet, then an IPv4 header; anything else leaves untouched.
	if len(b) < 34 || b[12] != 0x08 || b[13] != 0x00 || b[14]>>4 != 4 {
		return b
	}
	ihl := int(b[14]&0x0f) * 4
	if ihl < 20 || len(b) < 14+ihl {
		return b
	}
	c := v.next
	v.next += v.step
	ip := b[14 : 14+ihl]
	binary.BigEndian.PutUint16(ip[4:], uint16(c>>23))
	binary.BigEndian.PutUint32(ip[12:], 10<<24|128<<16|uint32(c&(1<<23-1)))
	ip[10], ip[11] = 0, 0
	var sum uint32
	for i := 0; i < ihl; i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	return b
}
