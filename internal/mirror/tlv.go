package mirror

import (
	"encoding/binary"
	"net/netip"
)

// The metadata TLV list (spec: vrouter-mirror.md, "Mode 1"): u8 type, u8
// length, value, until type 255 with length 0. Names are bytes as the
// vRouter agent sent them. Known types with an unexpected length are kept
// raw and counted, never cost the frame.
//
// The agent writes a VN name's length into one byte, so a name of L + 256k
// bytes arrives with length byte L, and the list read as written is wrong
// from that name on. The rule (docs/decoding.md, "Wrapped name lengths"):
//   - the list as written is taken when every TLV in it has a known type
//     (1 to 4) and it ends in FF 00 within the datagram: the agent writes
//     only those, and the rest of a cut name would read as unknown types;
//   - otherwise every reading in which each name TLV has length L + 256k
//     is tried; a reading counts when it ends in FF 00 and a plausible
//     Ethernet frame follows (plausibleFrame). Exactly one reading counts:
//     it is taken and Meta.NameRecovered set when it differs from the list
//     as written. None or several: ErrTLV, never a frame with a cut name;
//   - the search stops after maxTLVSteps TLVs read (ErrTLV): the number of
//     readings grows with the product of the name candidates.

const (
	maxNameTLVs = 8    // name TLVs a reading may have
	maxTLVSteps = 4096 // TLVs read over all readings of one list
)

// parseTLVs parses the metadata list starting at data[i] up to the
// datagram end; data holds what was captured. It returns the offset just
// after the end marker, or why and where the list is malformed.
func parseTLVs(m *Meta, data []byte, i, end int) (int, Reason, int) {
	next, r, off, unknown := walkTLVs(m, data, i, end, nil)
	if r == OK && !unknown {
		return next, OK, 0
	}
	if r == ErrTruncated && !unknown {
		return 0, r, off
	}
	s := tlvSearch{data: data, end: end}
	s.walk(i, 0)
	if s.found != 1 {
		if r == ErrTruncated {
			return 0, r, off // the readings cannot be checked past the capture
		}
		if r == OK {
			off = i
		}
		return 0, ErrTLV, off
	}
	recovered := s.best != [maxNameTLVs]uint8{}
	keep := Meta{Legacy: m.Legacy, RecordTime: m.RecordTime, Overlay: m.Overlay}
	*m = keep
	next, r, off, _ = walkTLVs(m, data, i, end, &s.best)
	m.NameRecovered = recovered
	return next, r, off
}

// walkTLVs reads the list once, name TLV n having length L + 256·ks[n]
// (ks nil: as written), and fills m. unknown reports types other than
// 1 to 4 and 255.
func walkTLVs(m *Meta, data []byte, i, end int, ks *[maxNameTLVs]uint8) (next int, r Reason, off int, unknown bool) {
	names := 0
	for {
		if i+2 > end {
			return 0, ErrTLV, i, unknown // no end marker before the datagram ends
		}
		if i+2 > len(data) {
			return 0, ErrTruncated, i, unknown
		}
		t, l := data[i], int(data[i+1])
		if t == 255 {
			if l != 0 {
				return 0, ErrTLV, i, unknown
			}
			return i + 2, OK, 0, unknown
		}
		if (t == 3 || t == 4) && ks != nil && names < maxNameTLVs {
			l += 256 * int(ks[names])
		}
		v := i + 2
		if v+l > end {
			return 0, ErrTLV, i, unknown // the value runs past the datagram: a wrapped length
		}
		if v+l > len(data) {
			return 0, ErrTruncated, i, unknown
		}
		val := data[v : v+l : v+l]
		switch t {
		case 1:
			switch l {
			case 4:
				m.Host = netip.AddrFrom4([4]byte(val))
			case 16:
				m.Host = netip.AddrFrom16([16]byte(val))
			default:
				m.OddTLVs++
			}
		case 2:
			switch l {
			case 4:
				m.Flags, m.FlagBits = binary.BigEndian.Uint32(val), 32
			case 2:
				m.Flags, m.FlagBits = uint32(binary.BigEndian.Uint16(val)), 16
			default:
				m.OddTLVs++
			}
		case 3:
			m.SrcVN = val
			names++
		case 4:
			m.DstVN = val
			names++
		default:
			unknown = true
		}
		i = v + l
	}
}

// tlvSearch enumerates the readings of a list with wrapped name lengths.
type tlvSearch struct {
	data  []byte
	end   int
	steps int
	found int // readings that count, up to 2
	ks    [maxNameTLVs]uint8
	best  [maxNameTLVs]uint8
}

func (s *tlvSearch) walk(i, n int) {
	for s.found < 2 {
		if s.steps++; s.steps > maxTLVSteps {
			s.found = 2 // too many readings to tell: malformed
			return
		}
		if i+2 > s.end || i+2 > len(s.data) {
			return
		}
		t, l := s.data[i], int(s.data[i+1])
		if t == 255 {
			if l == 0 && plausibleFrame(s.data[i+2:], s.end-i-2) {
				if s.found++; s.found == 1 {
					s.best = s.ks
				}
			}
			return
		}
		if t == 3 || t == 4 {
			if n == maxNameTLVs {
				return
			}
			for k := 0; k < 256 && i+2+l+256*k <= s.end && s.found < 2; k++ {
				s.ks[n] = uint8(k)
				s.walk(i+2+l+256*k, n+1)
			}
			s.ks[n] = 0
			return
		}
		i += 2 + l
	}
}

// plausibleFrame reports whether f, the captured start of a frame of n
// bytes, reads as an Ethernet frame a VM sent: IPv4 or IPv6 (behind up to
// two tags) whose header length matches the bytes that follow, short
// frames padded to 60 bytes allowed; ARP of at least 28 bytes; an 802.3
// length that fits; any other EtherType. What the capture cut cannot be
// checked and is taken as plausible.
func plausibleFrame(f []byte, n int) bool {
	if n < 14 {
		return false
	}
	et := 12
	for tags := 0; tags < 2 && len(f) >= et+2 && isVLAN(be16(f[et:])); tags++ {
		et += 4
	}
	if len(f) < et+2 {
		return true
	}
	typ, off := be16(f[et:]), et+2
	rest := n - off
	ipLen := func(l int) bool { return l == rest || (l < rest && n <= 64) }
	switch {
	case typ == 0x0800 || typ == 0x86dd:
		if len(f) < off+6 {
			return true
		}
		switch f[off] >> 4 {
		case 4:
			return f[off]&0x0f >= 5 && ipLen(int(be16(f[off+2:])))
		case 6:
			return ipLen(40 + int(be16(f[off+4:])))
		}
		return false
	case typ == 0x0806:
		return rest >= 28
	case typ >= 0x0600:
		return true
	}
	return int(typ) <= rest // 802.3: a length
}
