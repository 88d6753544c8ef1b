package testenv

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSendArrivesOnCaptureEnd(t *testing.T) {
	e := NewNetns(t)
	ifi, err := net.InterfaceByName(e.CaptureIf)
	if err != nil {
		t.Fatal(err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		t.Errorf("%s is not up", e.CaptureIf)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 0 {
		t.Errorf("%s has addresses %v, want none", e.CaptureIf, addrs)
	}
	if _, err := net.InterfaceByName(e.SenderIf); err == nil {
		t.Errorf("sender end %s is visible outside its namespace", e.SenderIf)
	}

	const etherType = 0x88b5 // IEEE local experimental
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(etherType)))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: ifi.Index}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}

	var frames [][]byte
	for i := range 3 {
		f := make([]byte, 60)
		copy(f, e.CaptureMAC)
		copy(f[6:], e.SenderMAC)
		f[12], f[13] = etherType>>8, etherType&0xff
		f[14] = byte(i)
		frames = append(frames, f)
	}
	e.Send(t, frames)
	buf := make([]byte, 2048)
	for i, want := range frames {
		n, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], want) {
			t.Fatalf("frame %d: got % x, want % x", i, buf[:n], want)
		}
	}
	if out := e.Exec(t, "ip", "-o", "link", "show", e.SenderIf); !bytes.Contains([]byte(out), []byte(e.SenderIf)) {
		t.Errorf("Exec in namespace: %q", out)
	}
}

func TestNamesDoNotCollide(t *testing.T) {
	a, b := NewNetns(t), NewNetns(t)
	if a.NS == b.NS || a.CaptureIf == b.CaptureIf {
		t.Fatalf("two environments share names: %+v %+v", a, b)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
