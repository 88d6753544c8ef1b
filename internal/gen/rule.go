package gen

import (
	"encoding/binary"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// How a decoder reads a metadata TLV list whose VN name lengths may have
// wrapped (docs/mirror.md, "Wrapped name lengths"), restated here from
// the contract so that the expected results do not come from the decoder:
//
//   - the list read with the lengths as written is taken when every TLV
//     in it has a known type (1 to 4) and it ends in FF 00 within the
//     datagram;
//   - otherwise every reading in which each name TLV (3, 4) with length
//     byte L has length L + 256k (k >= 0, within the datagram) is tried; a
//     reading counts when it ends in FF 00 and a plausible Ethernet frame
//     follows. Exactly one reading that counts is decoded (its names
//     recovered when one of them is longer than written); none or
//     several is ErrTLV.
//
// Where the contract leaves a detail open (how many TLV steps the search
// may take, a frame padded to between 60 and 64 bytes, an 802.3 length,
// a third VLAN tag, an IP version nibble that contradicts the EtherType),
// the reading is reported as unsure and the generator builds another
// case: every case it keeps has one right answer.

const (
	// maxSearchSteps bounds the TLVs read over all readings of a list the
	// generator keeps; a decoder's budget must be at least this.
	maxSearchSteps = 1000
	// maxSearchNames bounds the name TLVs in one reading.
	maxSearchNames = 8
)

// tlvVerdict is how a decoder reads a TLV list.
type tlvVerdict struct {
	ok   bool // decoded; false: ErrTLV
	sure bool // the contract settles the outcome
	end  int  // offset after FF 00
	// ks[n] is the wrap count of the n-th name TLV in the reading taken.
	ks        [maxSearchNames]int
	recovered bool
}

// readTLVs applies the rule to a Juniper payload p: the TLVs from offset
// 0, then the frame, to the end of the UDP payload.
func readTLVs(p []byte) tlvVerdict {
	if end, ok := asWritten(p); ok {
		return tlvVerdict{ok: true, sure: true, end: end}
	}
	s := search{p: p, sure: true}
	s.walk(0, 0)
	v := tlvVerdict{sure: s.sure && s.steps <= maxSearchSteps}
	if s.found >= 2 {
		// Several readings count: malformed whatever else the search
		// would have met.
		return tlvVerdict{sure: true}
	}
	if s.found == 1 {
		v.ok, v.end, v.ks = true, s.end, s.best
		for _, k := range s.best {
			v.recovered = v.recovered || k > 0
		}
	}
	return v
}

// asWritten walks p with the lengths as written: it reports the end of
// the list when every TLV has a known type and the list ends in FF 00.
func asWritten(p []byte) (int, bool) {
	for i := 0; ; {
		if i+2 > len(p) {
			return 0, false
		}
		t, l := p[i], int(p[i+1])
		switch {
		case t == tlvEnd:
			return i + 2, l == 0
		case t < tlvHost || t > tlvDstVN:
			return 0, false
		case i+2+l > len(p):
			return 0, false
		}
		i += 2 + l
	}
}

type search struct {
	p     []byte
	steps int
	found int
	sure  bool
	end   int
	ks    [maxSearchNames]int
	best  [maxSearchNames]int
}

func (s *search) walk(i, n int) {
	for s.found < 2 {
		if s.steps++; s.steps > maxSearchSteps {
			s.sure = false
			return
		}
		if i+2 > len(s.p) {
			return
		}
		t, l := s.p[i], int(s.p[i+1])
		if t == tlvEnd {
			if l != 0 {
				return
			}
			ok, sure := plausible(s.p[i+2:])
			s.sure = s.sure && sure
			if ok {
				if s.found++; s.found == 1 {
					s.best, s.end = s.ks, i+2
				}
			}
			return
		}
		if t == tlvSrcVN || t == tlvDstVN {
			if n == maxSearchNames {
				s.sure = false
				return
			}
			for k := 0; i+2+l+256*k <= len(s.p) && s.found < 2; k++ {
				s.ks[n] = k
				s.walk(i+2+l+256*k, n+1)
			}
			s.ks[n] = 0
			return
		}
		if i+2+l > len(s.p) {
			return
		}
		i += 2 + l
	}
}

// plausible reports whether f reads as a mirrored Ethernet frame: at least
// 14 bytes; IPv4 or IPv6 behind up to two tags whose length field matches
// the bytes that follow (padding to 60 bytes allowed); ARP of at least 28
// bytes; another EtherType of 0x0600 or more. sure is false where decoders
// keeping to the contract may differ.
func plausible(f []byte) (ok, sure bool) {
	if len(f) < 14 {
		return false, true
	}
	off := 12
	for tags := 0; ; tags++ {
		if len(f) < off+2 {
			return false, false
		}
		if !isTag(binary.BigEndian.Uint16(f[off:])) {
			break
		}
		if tags == 2 {
			return false, false
		}
		off += 4
	}
	et := binary.BigEndian.Uint16(f[off:])
	off += 2
	rest := len(f) - off
	ipLen := func(l int) (bool, bool) {
		switch {
		case l == rest:
			return true, true
		case l < rest && len(f) == 60:
			return true, true
		case l < rest && len(f) <= 64:
			return false, false // padded to 60 in one reading, to 64 in another
		}
		return false, true
	}
	switch et {
	case 0x0800:
		if rest < 20 || f[off]>>4 != 4 || f[off]&0x0f < 5 {
			return false, false
		}
		return ipLen(int(binary.BigEndian.Uint16(f[off+2:])))
	case 0x86dd:
		if rest < 40 || f[off]>>4 != 6 {
			return false, false
		}
		return ipLen(40 + int(binary.BigEndian.Uint16(f[off+4:])))
	case 0x0806:
		if rest >= 28 {
			return true, true
		}
		return false, len(f) < 28 // 28 bytes of frame or of ARP
	}
	if et >= 0x0600 {
		return true, true
	}
	return false, false // an 802.3 length: not in the contract
}

func isTag(et uint16) bool { return et == 0x8100 || et == 0x88a8 || et == 0x9100 }

// direction is the direction a decoder reports: from the ingress bit of
// 32-bit flags, else from the one VN name present.
func direction(e *Expect, src, dst bool) mirror.Direction {
	switch {
	case e.FlagBits == 32:
		if e.Flags&mirror.FlagIngress != 0 {
			return mirror.DirIngress
		}
		return mirror.DirEgress
	case src && !dst:
		return mirror.DirIngress
	case dst && !src:
		return mirror.DirEgress
	}
	return mirror.DirUnknown
}
