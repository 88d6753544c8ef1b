package flowindex

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// IP protocol numbers the flow key looks into.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// tuple is the inner 5-tuple of a frame as seen. The parser is written by
// hand, not with gopacket's layers: decoding layers costs several hundred
// nanoseconds and allocations per packet, and the index needs a dozen
// bytes at fixed offsets.
type tuple struct {
	src, dst [16]byte // IPv4 in the first 4 bytes
	family   uint8    // 0: no IP, 4 or 6
	proto    uint8
	// hasL4 says sport and dport were read: TCP/UDP/SCTP ports, or the
	// ICMP type and code; false for other protocols, non-first
	// fragments and headers cut short.
	hasL4        bool
	sport, dport uint16
	// arp marks an ARP or RARP frame over IPv4: src and dst are its
	// sender and target protocol addresses, the ones tcpdump's host and
	// net read in such a frame, and family is 4 with proto 0.
	arp bool
}

// maxExtHeaders bounds the IPv6 extension headers walked before giving up
// on the transport header.
const maxExtHeaders = 8

// parseFrame reads the tuple of an Ethernet frame (VLAN tags skipped) and
// returns its TCP flags. A frame that is not IP, or too short for its IP
// header, leaves family 0.
func parseFrame(f []byte, t *tuple) (tcpFlags uint8) {
	*t = tuple{}
	if len(f) < 14 {
		return
	}
	et, off := binary.BigEndian.Uint16(f[12:]), 14
	for i := 0; i < 2 && (et == 0x8100 || et == 0x88a8 || et == 0x9100); i++ {
		if len(f) < off+4 {
			return
		}
		et, off = binary.BigEndian.Uint16(f[off+2:]), off+4
	}
	var l4 []byte
	switch et {
	case uint16(layers.EthernetTypeIPv4):
		l4 = parseIPv4(f[off:], t)
	case uint16(layers.EthernetTypeIPv6):
		l4 = parseIPv6(f[off:], t)
	case uint16(layers.EthernetTypeARP), 0x8035: // ARP, RARP
		parseARP(f[off:], t)
	}
	if t.proto == protoTCP && t.hasL4 && len(l4) >= 14 {
		return l4[13]
	}
	return 0
}

// parseARP fills in t from an ARP or RARP packet for IPv4 over Ethernet.
func parseARP(b []byte, t *tuple) {
	if len(b) < 28 || binary.BigEndian.Uint16(b[0:]) != 1 || binary.BigEndian.Uint16(b[2:]) != 0x0800 || b[4] != 6 || b[5] != 4 {
		return
	}
	t.family, t.arp = 4, true
	copy(t.src[:4], b[14:18])
	copy(t.dst[:4], b[24:28])
}

// parseIPv4 and parseIPv6 fill in t and return the transport header
// (nil when there is none to read).
func parseIPv4(b []byte, t *tuple) []byte {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil
	}
	ihl := int(b[0]&0xf) * 4
	if ihl < 20 || len(b) < ihl {
		return nil
	}
	// Ethernet pads short frames: the transport header ends where the
	// datagram does (a frame cut by the snap length ends first).
	if n := int(binary.BigEndian.Uint16(b[2:])); n >= ihl && n < len(b) {
		b = b[:n]
	}
	t.family, t.proto = 4, b[9]
	copy(t.src[:4], b[12:16])
	copy(t.dst[:4], b[16:20])
	if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
		return nil // a later fragment: no transport header
	}
	parseL4(b[ihl:], t, protoICMP)
	return b[ihl:]
}

func parseIPv6(b []byte, t *tuple) []byte {
	if len(b) < 40 || b[0]>>4 != 6 {
		return nil
	}
	if n := 40 + int(binary.BigEndian.Uint16(b[4:])); n > 40 && n < len(b) {
		b = b[:n] // Ethernet padding; 0 is a jumbogram's
	}
	t.family = 6
	copy(t.src[:], b[8:24])
	copy(t.dst[:], b[24:40])
	next, b := b[6], b[40:]
	for range maxExtHeaders {
		var n int
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < 8 {
				t.proto = next
				return nil
			}
			n = (int(b[1]) + 1) * 8
		case 44: // fragment
			if len(b) < 8 {
				t.proto = next
				return nil
			}
			if binary.BigEndian.Uint16(b[2:])>>3 != 0 {
				t.proto = b[0]
				return nil // a later fragment
			}
			n = 8
		case 51: // authentication header
			if len(b) < 8 {
				t.proto = next
				return nil
			}
			n = (int(b[1]) + 2) * 4
		default:
			t.proto = next
			parseL4(b, t, protoICMPv6)
			return b
		}
		if len(b) < n {
			t.proto = next
			return nil
		}
		next, b = b[0], b[n:]
	}
	t.proto = next
	return nil
}

// parseL4 reads ports, or the type and code of the family's ICMP.
func parseL4(b []byte, t *tuple, icmp uint8) {
	switch t.proto {
	case protoTCP, protoUDP, protoSCTP:
		if len(b) >= 4 {
			t.sport, t.dport, t.hasL4 = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]), true
		}
	case icmp:
		if len(b) >= 2 {
			t.sport, t.dport, t.hasL4 = uint16(b[0]), uint16(b[1]), true
		}
	}
}

// innerFrame is the Ethernet frame of p the index describes: the decoded
// inner frame, or a packet kept as captured when it is Ethernet.
func innerFrame(p *mirror.Packet) (frame []byte, length int) {
	if p.Frame != nil && p.Mode != mirror.ModeOther && p.Mode != mirror.ModeNone {
		return p.Frame, max(p.FrameLen, len(p.Frame))
	}
	length = max(p.WireLen, len(p.Data))
	if p.LinkType == layers.LinkTypeEthernet {
		return p.Data, length
	}
	return nil, length
}
