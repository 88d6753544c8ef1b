package mirror

import (
	"strconv"
)

// AppendComment appends the packet's metadata in the one-line form vrsniff
// puts into pcapng comments, logs and listings:
//
//	src_vn=default-domain:admin:vn-a dst_vn=default-domain:admin:vn-b dir=ingress host=10.1.1.3 action=pass,mirror
//
// Fields the packet does not carry are left out. It appends to dst and does
// not allocate when dst has room, so it can run for every packet.
func AppendComment(dst []byte, p *Packet) []byte {
	start := len(dst)
	m := &p.Meta
	if p.Mode != ModeJuniper && p.Mode != ModeNone {
		dst = append(dst, "mode="...)
		dst = append(dst, p.Mode.String()...)
	}
	if m.SrcVN != nil {
		dst = append(field(dst, start, "src_vn="), m.SrcVN...)
	}
	if m.DstVN != nil {
		dst = append(field(dst, start, "dst_vn="), m.DstVN...)
	}
	if m.Direction != DirUnknown {
		dst = append(field(dst, start, "dir="), m.Direction.String()...)
	}
	if m.Host.IsValid() {
		dst = m.Host.AppendTo(field(dst, start, "host="))
	}
	if m.HasFlags() {
		dst = AppendActions(field(dst, start, "action="), m.Flags)
	}
	if m.HasVNI {
		dst = strconv.AppendUint(field(dst, start, "vni="), uint64(m.VNI), 10)
	}
	if p.Mode == ModeVLAN {
		dst = strconv.AppendUint(field(dst, start, "vlan="), uint64(m.VLAN), 10)
	}
	if m.Legacy {
		dst = field(dst, start, "legacy_header=1")
	}
	if p.Truncated {
		dst = strconv.AppendInt(field(dst, start, "truncated="), int64(p.FrameLen), 10)
	}
	return dst
}

// field appends key, after a space unless it is the first since start.
func field(dst []byte, start int, key string) []byte {
	if len(dst) > start {
		dst = append(dst, ' ')
	}
	return append(dst, key...)
}

// AppendActions appends the names of the action bits set in flags, comma
// separated; unnamed bits other than the direction bit appear as "bitN".
func AppendActions(dst []byte, flags uint32) []byte {
	n := 0
	for _, a := range ActionNames {
		if flags&a.Bit != 0 {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, a.Name...)
			n++
		}
	}
	if extra := flags &^ knownFlags; extra != 0 {
		for bit := 0; bit < 32; bit++ {
			if extra&(1<<bit) != 0 {
				if n > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, "bit"...)
				dst = strconv.AppendInt(dst, int64(bit), 10)
				n++
			}
		}
	}
	if n == 0 {
		dst = append(dst, "none"...)
	}
	return dst
}

// knownFlags has the bits AppendActions names, and the direction bit.
var knownFlags = func() uint32 {
	k := uint32(FlagIngress)
	for _, a := range ActionNames {
		k |= a.Bit
	}
	return k
}()
