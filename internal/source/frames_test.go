package source

import (
	"encoding/binary"
)

// Hand-built frames for the tests: every header is written out so that the
// tests do not depend on the code they check.

var (
	macA = []byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = []byte{0x02, 0, 0, 0, 0, 0x0b}
)

type tag struct {
	tpid uint16
	tci  uint16
}

// ether builds an Ethernet header with VLAN tags and the given type.
func ether(tags []tag, etherType uint16, payload []byte) []byte {
	f := append([]byte{}, macA...)
	f = append(f, macB...)
	for _, t := range tags {
		f = binary.BigEndian.AppendUint16(f, t.tpid)
		f = binary.BigEndian.AppendUint16(f, t.tci)
	}
	f = binary.BigEndian.AppendUint16(f, etherType)
	return append(f, payload...)
}

// ipv4 builds an IPv4 packet; opts are extra header bytes (a multiple of 4).
func ipv4(proto byte, flagsFrag uint16, opts, payload []byte) []byte {
	hl := 20 + len(opts)
	h := make([]byte, hl)
	h[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(h[2:], uint16(hl+len(payload)))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	binary.BigEndian.PutUint16(h[6:], flagsFrag)
	h[8] = 64
	h[9] = proto
	copy(h[12:], []byte{10, 0, 0, 1})
	copy(h[16:], []byte{10, 0, 0, 2})
	copy(h[20:], opts)
	var sum uint32
	for i := 0; i < hl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	return append(h, payload...)
}

// ipv6 builds an IPv6 packet with the given next header.
func ipv6(next byte, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = next
	h[7] = 64
	h[8], h[23] = 0xfd, 1
	h[24], h[39] = 0xfd, 2
	return append(h, payload...)
}

// udp builds a UDP header (checksum zero, as vRouters may send it).
func udp(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

// ip6frag builds an IPv6 fragment header.
func ip6frag(next byte, offset uint16, more bool, payload []byte) []byte {
	h := make([]byte, 8)
	h[0] = next
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(h[2:], v)
	binary.BigEndian.PutUint32(h[4:], 0xabcd)
	return append(h, payload...)
}

// innerFrame is a 64-byte mirrored Ethernet frame; seq makes it unique.
func innerFrame(seq int) []byte {
	p := make([]byte, 64-14-20)
	binary.BigEndian.PutUint32(p, uint32(seq))
	return ether(nil, 0x0800, ipv4(1, 0, nil, p))
}

// juniperPayload is a current vRouter mirror payload: ACL-mirroring TLVs,
// the end marker, then the frame.
func juniperPayload(frame []byte) []byte {
	src, dst := "default-domain:admin:vn-left", "default-domain:admin:vn-right"
	p := []byte{1, 4, 10, 1, 1, 3, 2, 4, 0x40, 0, 0, 0xa0}
	p = append(p, 3, byte(len(src)))
	p = append(p, src...)
	p = append(p, 4, byte(len(dst)))
	p = append(p, dst...)
	p = append(p, 0xff, 0)
	return append(p, frame...)
}

func vxlanPayload(vni uint32, frame []byte) []byte {
	h := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	return append(h, frame...)
}

func arp() []byte {
	p := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	p = append(p, macA...)
	p = append(p, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2)
	return ether(nil, 0x0806, append(p, make([]byte, 18)...))
}

func tcp(dport uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], 40000)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = 5 << 4
	return h
}

type filterCase struct {
	name  string
	frame []byte
	keep  bool
}

// filterCases are frames with what the filter must do with them, under
// Options{Traffic: mirror.Traffic{MirrorVLAN: 100}} (ports 8099 and 4789).
func filterCases() []filterCase {
	jun := juniperPayload(innerFrame(1))
	q := func(vid uint16) tag { return tag{0x8100, vid} }
	ad := func(vid uint16) tag { return tag{0x88a8, vid} }
	return []filterCase{
		{"juniper ipv4", ether(nil, 0x0800, ipv4(17, 0, nil, udp(49152, 8099, jun))), true},
		{"juniper ipv4 DF", ether(nil, 0x0800, ipv4(17, 0x4000, nil, udp(49152, 8099, jun))), true},
		{"juniper ipv4 options", ether(nil, 0x0800, ipv4(17, 0, []byte{1, 1, 1, 0}, udp(49152, 8099, jun))), true},
		{"juniper ipv4 1 tag", ether([]tag{q(20)}, 0x0800, ipv4(17, 0, nil, udp(49152, 8099, jun))), true},
		{"juniper ipv4 qinq", ether([]tag{ad(30), q(20)}, 0x0800, ipv4(17, 0, nil, udp(49152, 8099, jun))), true},
		{"juniper ipv4 3 tags", ether([]tag{ad(30), q(20), q(21)}, 0x0800, ipv4(17, 0, nil, udp(49152, 8099, jun))), false},
		{"juniper ipv6", ether(nil, 0x86dd, ipv6(17, udp(49152, 8099, jun))), true},
		{"juniper ipv6 1 tag", ether([]tag{q(20)}, 0x86dd, ipv6(17, udp(49152, 8099, jun))), true},
		{"vxlan ipv4", ether(nil, 0x0800, ipv4(17, 0, nil, udp(50000, 4789, vxlanPayload(5001, innerFrame(2))))), true},
		{"vxlan ipv6 qinq", ether([]tag{ad(30), q(20)}, 0x86dd, ipv6(17, udp(50000, 4789, vxlanPayload(5001, innerFrame(2))))), true},
		{"ipv4 first fragment", ether(nil, 0x0800, ipv4(17, 0x2000, nil, udp(49152, 8099, jun))), true},
		{"ipv4 later fragment", ether(nil, 0x0800, ipv4(17, 185, nil, jun)), true},
		{"ipv4 last fragment 1 tag", ether([]tag{q(20)}, 0x0800, ipv4(17, 370, nil, jun)), true},
		{"ipv6 fragment", ether(nil, 0x86dd, ipv6(44, ip6frag(17, 0, true, udp(49152, 8099, jun)))), true},
		{"ipv6 later fragment", ether(nil, 0x86dd, ipv6(44, ip6frag(17, 181, false, jun))), true},
		{"mirror vlan", ether([]tag{q(100)}, 0x0800, ipv4(6, 0, nil, tcp(80))), true},
		{"mirror vlan with priority", ether([]tag{q(5<<13 | 100)}, 0x0806, arp()[14:]), true},
		{"mirror vlan 802.1ad", ether([]tag{ad(100), q(7)}, 0x0806, arp()[14:]), true},
		{"mirror vlan as second tag", ether([]tag{ad(7), q(100)}, 0x0806, arp()[14:]), false},
		{"other vlan arp", ether([]tag{q(101)}, 0x0806, arp()[14:]), false},
		{"arp", arp(), false},
		{"tcp to 8099", ether(nil, 0x0800, ipv4(6, 0, nil, tcp(8099))), false},
		{"dns", ether(nil, 0x0800, ipv4(17, 0, nil, udp(53000, 53, make([]byte, 30)))), false},
		{"dns ipv6", ether(nil, 0x86dd, ipv6(17, udp(53000, 53, make([]byte, 30)))), false},
		{"udp from 8099", ether(nil, 0x0800, ipv4(17, 0, nil, udp(8099, 8098, jun))), false},
		{"ipv6 hop-by-hop", ether(nil, 0x86dd, ipv6(0, append([]byte{17, 0, 1, 4, 0, 0, 0, 0}, udp(49152, 53, nil)...))), false},
		{"runt", ether(nil, 0x0800, []byte{0x45, 0}), false},
		{"empty", nil, false},
	}
}
