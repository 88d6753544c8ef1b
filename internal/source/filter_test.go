package source

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// runFilter runs the kernel filter over a frame as the kernel does. With
// offload the first VLAN tag, if any, is taken out of the frame into the
// packet's metadata, as Linux does on receive; x/net/bpf's VM has no VLAN
// extensions, so their loads become constants for this one frame.
func runFilter(t testing.TB, o Options, frame []byte, offload bool) int {
	t.Helper()
	prog, err := filterProgram(o.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	present, tci := uint32(0), uint32(0)
	if offload && len(frame) >= 18 && isVLAN(binary.BigEndian.Uint16(frame[12:])) {
		present, tci = 1, uint32(binary.BigEndian.Uint16(frame[14:]))
		frame = append(append([]byte{}, frame[:12]...), frame[16:]...)
	}
	prog = append([]bpf.Instruction(nil), prog...)
	for i, in := range prog {
		if ext, ok := in.(bpf.LoadExtension); ok {
			switch ext.Num {
			case bpf.ExtVLANTagPresent:
				prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: present}
			case bpf.ExtVLANTag:
				prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: tci}
			default:
				t.Fatalf("unexpected extension %v", ext.Num)
			}
		}
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func isVLAN(t uint16) bool { return t == 0x8100 || t == 0x88a8 || t == 0x9100 }

func TestKernelFilter(t *testing.T) {
	o := Options{Traffic: mirror.Traffic{MirrorVLAN: 100}}
	for _, c := range filterCases() {
		for _, offload := range []bool{false, true} {
			n := runFilter(t, o, c.frame, offload)
			if got := n > 0; got != c.keep {
				t.Errorf("%s (offload %v): kept %v, want %v", c.name, offload, got, c.keep)
			}
			if c.keep && n < len(c.frame)-4 {
				t.Errorf("%s (offload %v): kept %d of %d bytes", c.name, offload, n, len(c.frame))
			}
		}
	}
}

func TestKernelFilterOptions(t *testing.T) {
	jun := juniperPayload(innerFrame(1))
	to := func(port uint16) []byte { return ether(nil, 0x0800, ipv4(17, 0, nil, udp(1, port, jun))) }
	vlan100 := ether([]tag{{0x8100, 100}}, 0x0806, arp()[14:])
	o := Options{Traffic: mirror.Traffic{Ports: []uint16{9000, 9001}, VXLANPorts: []uint16{4790}}, SnapLen: 96}
	for _, c := range []struct {
		frame []byte
		want  int
	}{
		{to(9000), 96}, {to(9001), 96}, {to(4790), 96}, {to(8099), 0}, {to(4789), 0},
		{vlan100, 0}, // no mirror VLAN configured
	} {
		if n := runFilter(t, o, c.frame, false); n != c.want {
			t.Errorf("dport %d: filter returned %d, want %d", binary.BigEndian.Uint16(c.frame[36:]), n, c.want)
		}
	}

	ports := func(n int) []uint16 {
		ps := make([]uint16, n)
		for i := range ps {
			ps[i] = uint16(10000 + i)
		}
		return ps
	}
	if _, err := KernelFilter(Options{Traffic: mirror.Traffic{Ports: ports(maxFilterPorts + 1)}}); err == nil {
		t.Error("KernelFilter accepted too many ports")
	}
	for _, bad := range []mirror.Traffic{{MirrorVLAN: 4095}, {MirrorVLAN: 4096}, {Ports: []uint16{9000, 9000}}, {VXLANPorts: []uint16{mirror.DefaultPort}}} {
		if _, err := KernelFilter(Options{Traffic: bad}); err == nil || !strings.HasPrefix(err.Error(), "kernel filter: --") {
			t.Errorf("KernelFilter(%+v): %v, want the Traffic refused", bad, err)
		}
	}
	// The most ports: the Juniper ones beside the default VXLAN and overlay ports.
	raw, err := KernelFilter(Options{Traffic: mirror.Traffic{Ports: ports(maxFilterPorts - 3), MirrorVLAN: 4094}})
	if err != nil || len(raw) == 0 {
		t.Errorf("KernelFilter with the most ports: %v", err)
	}
}

// keepRef is what the kernel filter must decide, written as plain Go.
func keepRef(o Options, frame []byte, offloaded bool, tci uint16) bool {
	o = o.withDefaults()
	if len(frame) < 14 {
		return false
	}
	first, hasFirst := tci&0xfff, offloaded
	off, tags := 12, 0
	if offloaded {
		tags = 1
	}
	for tags < 2 && len(frame) >= off+4 && isVLAN(binary.BigEndian.Uint16(frame[off:])) {
		if !hasFirst {
			first, hasFirst = binary.BigEndian.Uint16(frame[off+2:])&0xfff, true
		}
		off += 4
		tags++
	}
	if v := o.Traffic.MirrorVLAN; v != 0 && hasFirst && first == v {
		return true
	}
	if len(frame) < off+2 {
		return false
	}
	et, ip := binary.BigEndian.Uint16(frame[off:]), frame[off+2:]
	var l4 []byte
	switch et {
	case 0x0800:
		if len(ip) < 8 {
			return false
		}
		if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return true
		}
		if len(ip) < 10 || ip[9] != 17 {
			return false
		}
		l4 = ip[min(len(ip), int(ip[0]&0xf)*4):]
	case 0x86dd:
		if len(ip) < 7 {
			return false
		}
		nh, off := ip[6], 40
		for ext := 0; ; ext++ {
			if nh == 44 {
				return true
			}
			if nh == 17 {
				break
			}
			if ext == maxIPv6Ext || (nh != 0 && nh != 43 && nh != 60) || len(ip) < off+2 {
				return false
			}
			nh, off = ip[off], off+(int(ip[off+1])+1)*8
		}
		l4 = ip[min(len(ip), off):]
	default:
		return false
	}
	if len(l4) < 4 {
		return false
	}
	dport := binary.BigEndian.Uint16(l4[2:])
	for _, p := range append(append(o.Traffic.Ports, o.Traffic.VXLANPorts...), o.OverlayPorts...) {
		if p == dport {
			return true
		}
	}
	return false
}

// FuzzKernelFilter checks the BPF program against keepRef on arbitrary
// frames, with and without a tag moved out of the frame.
func FuzzKernelFilter(f *testing.F) {
	for _, c := range filterCases() {
		f.Add(c.frame, false)
		f.Add(c.frame, true)
	}
	o := Options{Traffic: mirror.Traffic{MirrorVLAN: 100}}
	f.Fuzz(func(t *testing.T, frame []byte, offload bool) {
		n := runFilter(t, o, frame, offload)
		offloaded, tci := false, uint16(0)
		ref := frame
		if offload && len(frame) >= 18 && isVLAN(binary.BigEndian.Uint16(frame[12:])) {
			offloaded, tci = true, binary.BigEndian.Uint16(frame[14:])
			ref = append(append([]byte{}, frame[:12]...), frame[16:]...)
		}
		if want := keepRef(o, ref, offloaded, tci); (n > 0) != want {
			t.Fatalf("filter kept %v, reference %v (offload %v): % x", n > 0, want, offload, frame)
		}
	})
}
