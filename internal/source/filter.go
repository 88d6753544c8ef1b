package source

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Ethernet types of VLAN tags the filter walks through.
var vlanTPIDs = []uint32{0x8100, 0x88a8, 0x9100}

// maxFilterPorts keeps every jump of the program within the 8-bit
// displacement of classic BPF.
const maxFilterPorts = 64

// maxIPv6Ext is how many IPv6 extension headers the filter walks.
const maxIPv6Ext = 4

// KernelFilter returns the classic BPF program OpenAFPacket attaches to its
// socket, so that only mirror traffic reaches user space. It keeps
//   - IPv4 or IPv6 UDP datagrams to one of the ports of o.Traffic or
//     o.OverlayPorts, or any with o.Traffic.AutoPorts (IPv6:
//     behind up to maxIPv6Ext hop-by-hop, routing or destination options
//     headers),
//   - every IPv4 fragment (MF set or a non-zero offset) and every IPv6
//     packet with a fragment header (after those same headers): mirror
//     datagrams of full-size frames exceed the MTU, and fragments after the
//     first carry no UDP header to match,
//   - frames whose first 802.1Q VID is o.Traffic.MirrorVLAN (when non-zero),
//
// with 0, 1 or 2 VLAN tags before the IP header. On receive, Linux moves
// the first tag out of the frame into the packet's metadata before packet
// sockets see it; the program reads it through the kernel's VLAN
// extensions and also handles tags still in the frame (sent packets,
// stacked tags). Kept packets are cut to o.SnapLen bytes. An invalid
// o.Traffic (mirror.Traffic.Validate) is an error.
func KernelFilter(o Options) ([]bpf.RawInstruction, error) {
	ins, err := filterProgram(o.withDefaults())
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(ins)
	if err != nil {
		return nil, fmt.Errorf("assemble kernel filter: %w", err)
	}
	return raw, nil
}

// filterProgram builds the program of KernelFilter (o has its defaults).
func filterProgram(o Options) ([]bpf.Instruction, error) {
	t := o.Traffic
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("kernel filter: %w", err)
	}
	if n := len(t.Ports) + len(t.VXLANPorts) + len(o.OverlayPorts); n > maxFilterPorts {
		return nil, fmt.Errorf("kernel filter: %d ports, at most %d", n, maxFilterPorts)
	}
	var a asm
	isTPID := func(yes string) {
		for _, t := range vlanTPIDs {
			a.jeq(t, yes)
		}
	}
	matchVID := func() {
		if t.MirrorVLAN != 0 {
			a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xfff})
			a.jeq(uint32(t.MirrorVLAN), "accept")
		}
	}

	// Tag moved out of the frame by the kernel: it is the first tag, and
	// at most one more may follow in the frame.
	a.add(bpf.LoadExtension{Num: bpf.ExtVLANTagPresent})
	a.jeq(0, "inband")
	a.add(bpf.LoadExtension{Num: bpf.ExtVLANTag})
	matchVID()
	a.add(bpf.LoadAbsolute{Off: 12, Size: 2})
	isTPID("x4")
	a.jmp("x0")

	// All tags, if any, are in the frame.
	a.label("inband")
	a.add(bpf.LoadAbsolute{Off: 12, Size: 2})
	isTPID("tag1")
	a.jmp("x0")
	a.label("tag1")
	a.add(bpf.LoadAbsolute{Off: 14, Size: 2})
	matchVID()
	a.add(bpf.LoadAbsolute{Off: 16, Size: 2})
	isTPID("x8")
	a.jmp("x4")

	// X holds the bytes of in-frame tags before the Ethernet type.
	a.label("x8")
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 8})
	a.jmp("l3")
	a.label("x4")
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 4})
	a.jmp("l3")
	a.label("x0")
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 0})

	a.label("l3")
	a.add(bpf.LoadIndirect{Off: 12, Size: 2})
	a.jeq(0x0800, "ip4")
	a.jeq(0x86dd, "ip6")
	a.jmp("reject")

	// IPv4 header at X+14.
	a.label("ip4")
	a.add(bpf.LoadIndirect{Off: 20, Size: 2})
	a.jset(0x3fff, "accept") // MF or fragment offset
	a.add(bpf.LoadIndirect{Off: 23, Size: 1})
	a.jne(17, "reject")
	// X += IHL*4; MSH cannot be used here as it only takes a fixed offset.
	a.add(bpf.LoadIndirect{Off: 14, Size: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.add(bpf.TAX{})
	a.add(bpf.LoadIndirect{Off: 14 + 2, Size: 2})
	a.jmp("ports")

	// IPv6 header at X+14, fixed 40 bytes, then up to maxIPv6Ext
	// hop-by-hop, routing or destination options headers before UDP or a
	// fragment header. Classic BPF has no loops: the walk is unrolled, with
	// the next header value in M[0] and X at the header being looked at.
	a.label("ip6")
	a.add(bpf.LoadIndirect{Off: 14 + 6, Size: 1})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.add(bpf.TXA{})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 40})
	a.add(bpf.TAX{})
	for i := 0; i <= maxIPv6Ext; i++ {
		next := fmt.Sprintf("ext%d", i)
		a.add(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
		a.jeq(44, "accept") // fragment header
		a.jeq(17, "udp6")
		if i == maxIPv6Ext {
			a.jmp("reject")
			break
		}
		a.jeq(0, next)
		a.jeq(43, next)
		a.jeq(60, next)
		a.jmp("reject")
		a.label(next)
		a.add(bpf.LoadIndirect{Off: 14, Size: 1})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
		a.add(bpf.LoadIndirect{Off: 14 + 1, Size: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 3})
		a.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
		a.add(bpf.TAX{})
	}
	a.label("udp6")
	a.add(bpf.LoadIndirect{Off: 14 + 2, Size: 2})

	a.label("ports")
	if t.AutoPorts {
		a.add(bpf.RetConstant{Val: uint32(o.SnapLen)})
	}
	for _, ps := range [][]uint16{t.Ports, t.VXLANPorts, o.OverlayPorts} {
		for _, p := range ps {
			a.jeq(uint32(p), "accept")
		}
	}
	a.label("reject")
	a.add(bpf.RetConstant{Val: 0})
	a.label("accept")
	a.add(bpf.RetConstant{Val: uint32(o.SnapLen)})
	return a.resolve()
}

// asm assembles a program whose jumps name labels.
type asm struct {
	ins    []bpf.Instruction
	jumps  map[int]jump
	labels map[string]int
}

type jump struct {
	cond   bpf.JumpTest // 0 with always for ja
	always bool
	val    uint32
	target string
}

func (a *asm) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) addJump(j jump) {
	if a.jumps == nil {
		a.jumps = map[int]jump{}
	}
	a.jumps[len(a.ins)] = j
	a.ins = append(a.ins, nil)
}

func (a *asm) jeq(v uint32, target string) {
	a.addJump(jump{cond: bpf.JumpEqual, val: v, target: target})
}
func (a *asm) jne(v uint32, target string) {
	a.addJump(jump{cond: bpf.JumpNotEqual, val: v, target: target})
}
func (a *asm) jset(v uint32, target string) {
	a.addJump(jump{cond: bpf.JumpBitsSet, val: v, target: target})
}
func (a *asm) jmp(target string) { a.addJump(jump{always: true, target: target}) }

func (a *asm) resolve() ([]bpf.Instruction, error) {
	for i, j := range a.jumps {
		t, ok := a.labels[j.target]
		if !ok {
			return nil, fmt.Errorf("kernel filter: no label %q", j.target)
		}
		skip := t - i - 1
		if skip < 0 || (!j.always && skip > 255) {
			return nil, fmt.Errorf("kernel filter: jump to %q out of range", j.target)
		}
		if j.always {
			a.ins[i] = bpf.Jump{Skip: uint32(skip)}
		} else {
			a.ins[i] = bpf.JumpIf{Cond: j.cond, Val: j.val, SkipTrue: uint8(skip)}
		}
	}
	return a.ins, nil
}
