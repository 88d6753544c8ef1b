// Command sendmirror replays the frames of a pcap file on an interface at a
// given packet rate, for the capture benchmark.
//
// tcpreplay sends one frame per system call and tops out well below 1 Mpps
// on a small machine; sendmirror hands the kernel batches of frames with
// sendmmsg(2) on AF_PACKET sockets that bypass the queueing discipline, from
// several workers, so that the offered rate is set by the capture side and
// not by the sender.
package main

import (
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
	sent, elapsed, err := send(*iface, frames, *count, *pps, *workers, *batch)
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

func send(ifname string, frames [][]byte, count, pps, workers, batch int) (uint64, time.Duration, error) {
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
			sent, err := worker(ifi, frames, w, n, float64(pps)/float64(workers), batch)
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
// at rate frames per second (0: unpaced) one batch at a time.
func worker(ifi int, frames [][]byte, id, n int, rate float64, batch int) (uint64, error) {
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
