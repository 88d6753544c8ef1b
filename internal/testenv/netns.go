package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is an isolated layer-2 path for one test: a veth pair whose sender
// end lives in a fresh network namespace and whose capture end sits in the
// test's own namespace, up and without any IP address. Frames injected on
// the sender end arrive on the capture end and go nowhere else.
type Netns struct {
	// NS is the name of the namespace holding the sender end.
	NS string
	// CaptureIf is the capture end, in the test's own namespace.
	CaptureIf string
	// SenderIf is the sender end, inside NS.
	SenderIf string
	// SenderMAC and CaptureMAC are the two ends' hardware addresses.
	SenderMAC, CaptureMAC net.HardwareAddr

	fd      int // AF_PACKET socket bound to SenderIf, opened inside NS
	ifindex int // of SenderIf, inside NS
}

// NewNetns creates the namespace and veth pair, and removes them when the
// test ends. Names carry a random suffix so that concurrent tests do not
// collide. It needs root and the ip command (iproute2).
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("netns: needs root")
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("netns: random name: %v", err)
	}
	id := hex.EncodeToString(b[:])
	e := &Netns{
		NS:        "vrsniff-test-" + id,
		CaptureIf: "vrc" + id, // interface names have at most 15 bytes
		SenderIf:  "vrs" + id,
		fd:        -1,
	}
	runNetns(t, "ip", "netns", "add", e.NS)
	t.Cleanup(func() { runQuiet("ip", "netns", "delete", e.NS) })
	runNetns(t, "ip", "link", "add", e.CaptureIf, "type", "veth", "peer", "name", e.SenderIf, "netns", e.NS)
	// Deleting one end deletes the pair; deleting the namespace does too.
	t.Cleanup(func() { runQuiet("ip", "link", "delete", e.CaptureIf) })

	// No IPv6 either: a link-local address would make the ends send
	// neighbour discovery traffic of their own.
	sysctlIPv6Off(t, e.CaptureIf)
	runNetns(t, "ip", "netns", "exec", e.NS, "sysctl", "-qw", "net.ipv6.conf."+e.SenderIf+".disable_ipv6=1")
	runNetns(t, "ip", "link", "set", e.CaptureIf, "up")
	runNetns(t, "ip", "-n", e.NS, "link", "set", e.SenderIf, "up")

	ci, err := net.InterfaceByName(e.CaptureIf)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	e.CaptureMAC = ci.HardwareAddr
	if err := e.openSender(); err != nil {
		t.Fatalf("netns: %v", err)
	}
	t.Cleanup(func() { unix.Close(e.fd) })
	return e
}

func sysctlIPv6Off(t testing.TB, ifname string) {
	t.Helper()
	p := "/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6"
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !os.IsNotExist(err) {
		t.Fatalf("netns: disable IPv6 on %s: %v", ifname, err)
	}
}

// openSender opens an AF_PACKET socket inside the namespace. A socket stays
// in the namespace it was created in, so only its creation needs to run
// there: on a locked OS thread that enters the namespace and comes back.
func (e *Netns) openSender() error {
	done := make(chan sender, 1)
	go func() {
		runtime.LockOSThread()
		r, restored := e.openInNS()
		if restored {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread stays locked and dies with this goroutine,
		// so no other goroutine runs in the wrong namespace.
		done <- r
	}()
	r := <-done
	if r.err != nil {
		return r.err
	}
	e.fd, e.ifindex, e.SenderMAC = r.fd, r.ifindex, r.mac
	return nil
}

// sender is what openInNS opened.
type sender struct {
	fd, ifindex int
	mac         net.HardwareAddr
	err         error
}

// openInNS runs on a locked thread; restored reports whether the thread is
// back in its own namespace.
func (e *Netns) openInNS() (r sender, restored bool) {
	r.fd = -1
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.err = fmt.Errorf("open own namespace: %w", err)
		return r, true
	}
	defer unix.Close(self)
	target, err := unix.Open("/run/netns/"+e.NS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.err = fmt.Errorf("open namespace %s: %w", e.NS, err)
		return r, true
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		r.err = fmt.Errorf("enter namespace %s: %w", e.NS, err)
		return r, true
	}
	defer func() {
		restored = unix.Setns(self, unix.CLONE_NEWNET) == nil
		if !restored && r.err == nil {
			r.err = fmt.Errorf("return from namespace %s", e.NS)
		}
	}()
	ifi, err := net.InterfaceByName(e.SenderIf)
	if err != nil {
		r.err = fmt.Errorf("sender interface: %w", err)
		return r, false
	}
	// Protocol 0: the socket only sends, it receives nothing.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.err = fmt.Errorf("packet socket: %w", err)
		return r, false
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		r.err = fmt.Errorf("bind packet socket to %s: %w", e.SenderIf, err)
		return r, false
	}
	r.fd, r.ifindex, r.mac = fd, ifi.Index, ifi.HardwareAddr
	return r, false
}

// Send injects raw Ethernet frames, as they are, on the sender end; they
// arrive on CaptureIf in order.
func (e *Netns) Send(t testing.TB, frames [][]byte) {
	t.Helper()
	for i, f := range frames {
		if err := e.send(f); err != nil {
			t.Fatalf("netns: send frame %d (%d bytes): %v", i, len(f), err)
		}
	}
}

func (e *Netns) send(f []byte) error {
	for {
		_, err := unix.Write(e.fd, f)
		if err == unix.ENOBUFS || err == unix.EAGAIN {
			// The device queue is full: let it drain.
			runtime.Gosched()
			continue
		}
		return err
	}
}

// Exec runs a command inside the namespace and returns its combined output.
func (e *Netns) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	return runNetns(t, "ip", append([]string{"netns", "exec", e.NS, name}, args...)...)
}

func runNetns(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("netns: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func runQuiet(name string, args ...string) {
	_ = exec.Command(name, args...).Run()
}
