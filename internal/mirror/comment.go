package mirror

import (
	"encoding/binary"
	"strconv"
	"unicode"
	"unicode/utf8"
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
		dst = AppendName(field(dst, start, "src_vn="), m.SrcVN)
	}
	if m.DstVN != nil {
		dst = AppendName(field(dst, start, "dst_vn="), m.DstVN)
	}
	if m.Direction != DirUnknown {
		dst = append(field(dst, start, "dir="), m.Direction.String()...)
	}
	if m.Host.Is4() {
		dst = appendIPv4(field(dst, start, "host="), m.Host.As4())
	} else if m.Host.IsValid() {
		dst = m.Host.AppendTo(field(dst, start, "host="))
	}
	if m.HasFlags() {
		dst = AppendActions(field(dst, start, "action="), m.Flags)
		if m.FlagBits != 32 {
			dst = strconv.AppendUint(field(dst, start, "flags_len="), uint64(m.FlagBits/8), 10)
		}
	}
	if m.OddTLVs > 0 {
		dst = strconv.AppendUint(field(dst, start, "odd_tlvs="), uint64(m.OddTLVs), 10)
	}
	if m.NameRecovered {
		dst = field(dst, start, "name_recovered=1")
	}
	if m.Overlay != OverlayNone {
		dst = append(field(dst, start, "overlay="), m.Overlay.String()...)
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

// AppendName appends a VN name as comments, logs and listings show it:
// bare when it is printable UTF-8 without spaces and does not start with a
// quote, as most are; otherwise as a Go string literal (strconv.Unquote gives the
// name's bytes back), so a space, a control byte or invalid UTF-8 never
// breaks the key=value form. It does not allocate when dst has room.
func AppendName(dst, name []byte) []byte {
	if bare(name) {
		return append(dst, name...)
	}
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(name); {
		r, n := utf8.DecodeRune(name[i:])
		switch {
		case r == utf8.RuneError && n == 1, r < 0x80 && (r < 0x20 || r == 0x7f):
			dst = append(dst, '\\', 'x', hex[name[i]>>4], hex[name[i]&15])
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r >= 0x80 && !unicode.IsGraphic(r):
			dst = append(dst, '\\', 'U')
			for shift := 28; shift >= 0; shift -= 4 {
				dst = append(dst, hex[r>>shift&15])
			}
		default:
			dst = append(dst, name[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

// bare reports whether a name can be shown as it is: printable, without
// spaces, and not starting with a quote (which starts a quoted name).
func bare(name []byte) bool {
	if len(name) > 0 && name[0] == '"' {
		return false
	}
	if printableASCII(name) {
		return true
	}
	for i := 0; i < len(name); {
		r, n := utf8.DecodeRune(name[i:])
		switch {
		case r < 0x80:
			if r < 0x21 || r > 0x7e {
				return false
			}
		case r == utf8.RuneError && n == 1 || !unicode.IsGraphic(r) || unicode.IsSpace(r):
			return false
		}
		i += n
	}
	return true
}

// printableASCII reports whether b holds only bytes 0x21 to 0x7e, as most
// VN names do. It looks at eight bytes at a time: names are long and this
// runs twice a packet.
func printableASCII(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		// A byte below 0x21 borrows into its high bit when 0x21 is
		// subtracted; a byte above 0x7e has or gets its high bit when 1 is
		// added. Carries and borrows only start at a byte already caught.
		if ((x-0x21*ones)&^x|x|(x+ones))&highs != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func appendIPv4(dst []byte, ip [4]byte) []byte {
	for i, b := range ip {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, decimal[b]...)
	}
	return dst
}

// decimal holds the byte values in decimal: an address is four look-ups.
var decimal = func() (t [256]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()
