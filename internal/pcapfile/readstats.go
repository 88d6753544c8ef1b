package pcapfile

import (
	"encoding/binary"
	"time"
)

// InterfaceStats are the statistics of one interface over a span of a
// capture, as a pcapng Interface Statistics Block holds them (pcapng
// §4.6), in packets: Received is isb_ifrecv, the packets the interface
// received; IfDropped isb_ifdrop, those it dropped for want of room (the
// kernel's drops); OSDropped isb_osdrop, those the capturing program lost
// after reading. Has* say whether the block gives each.
//
// Time is when the statistics were taken, Start and End bound the span
// they cover (isb_starttime, isb_endtime). Encoder.AppendISB writes them
// (zero Start and End are left out); Reader.Stats gives the counters only.
type InterfaceStats struct {
	Time, Start, End                        time.Time
	Received, IfDropped, OSDropped          uint64
	HasReceived, HasIfDropped, HasOSDropped bool
}

// Stats returns the statistics the input gave for interface i (a
// Packet.Interface index) in the statistics blocks read so far, and
// whether it gave any. Counters are cumulative: each block replaces the
// one before for its interface.
func (r *Reader) Stats(i int) (InterfaceStats, bool) {
	if i < 0 || i >= len(r.stats) {
		return InterfaceStats{}, false
	}
	s := r.stats[i]
	return s, s.HasReceived || s.HasIfDropped || s.HasOSDropped
}

// parseISB keeps the counters of a statistics block. A block that does not
// parse, or names an interface not described, is passed over: it is not
// needed to read packets.
func (r *Reader) parseISB(body []byte) {
	if len(body) < 12 {
		return
	}
	id := int(r.u32(body))
	if id >= len(r.ids) {
		return
	}
	// isb_* option codes (pcapng §4.6).
	const ifRecv, ifDrop, osDrop = 4, 5, 7
	var s InterfaceStats
	for opts := body[12:]; len(opts) >= 4; {
		code, l := r.u16(opts), int(r.u16(opts[2:]))
		if code == optEnd || 4+l > len(opts) {
			break
		}
		if l == 8 {
			v := binary.LittleEndian.Uint64(opts[4:])
			if r.be {
				v = binary.BigEndian.Uint64(opts[4:])
			}
			switch code {
			case ifRecv:
				s.Received, s.HasReceived = v, true
			case ifDrop:
				s.IfDropped, s.HasIfDropped = v, true
			case osDrop:
				s.OSDropped, s.HasOSDropped = v, true
			}
		}
		opts = opts[min(4+(l+3)&^3, len(opts)):]
	}
	g := int(r.ids[id])
	for len(r.stats) <= g {
		r.stats = append(r.stats, InterfaceStats{})
	}
	r.stats[g] = s
}
