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
	sep := func() {
		if len(dst) > start {
			dst = append(dst, ' ')
		}
	}
	m := &p.Meta
	if p.Mode != ModeJuniper && p.Mode != ModeNone {
		dst = append(dst, "mode="...)
		dst = append(dst, p.Mode.String()...)
	}
	if m.SrcVN != nil {
		sep()
		dst = append(dst, "src_vn="...)
		dst = append(dst, m.SrcVN...)
	}
	if m.DstVN != nil {
		sep()
		dst = append(dst, "dst_vn="...)
		dst = append(dst, m.DstVN...)
	}
	if m.Direction != DirUnknown {
		sep()
		dst = append(dst, "dir="...)
		dst = append(dst, m.Direction.String()...)
	}
	if m.HasHost {
		sep()
		dst = append(dst, "host="...)
		dst = appendIPv4(dst, m.Host)
	}
	if m.HasFlags {
		sep()
		dst = append(dst, "action="...)
		dst = AppendActions(dst, m.Flags)
	}
	if m.HasVNI {
		sep()
		dst = append(dst, "vni="...)
		dst = strconv.AppendUint(dst, uint64(m.VNI), 10)
	}
	if p.Mode == ModeVLAN {
		sep()
		dst = append(dst, "vlan="...)
		dst = strconv.AppendUint(dst, uint64(m.VLAN), 10)
	}
	if m.Legacy {
		sep()
		dst = append(dst, "legacy_header=1"...)
	}
	if p.Truncated {
		sep()
		dst = append(dst, "truncated="...)
		dst = strconv.AppendInt(dst, int64(p.FrameLen), 10)
	}
	return dst
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

func appendIPv4(dst []byte, ip [4]byte) []byte {
	for i, b := range ip {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendUint(dst, uint64(b), 10)
	}
	return dst
}
