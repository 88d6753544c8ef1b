package gen

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// The helpers below parse outer packets independently of the encoder, by
// the wire format alone, to check the structure of what it built.

// l3 returns the offset of the IP header in a record.
func l3(t *testing.T, lt layers.LinkType, d []byte) int {
	t.Helper()
	switch lt {
	case layers.LinkTypeEthernet:
		off := 12
		for {
			et := binary.BigEndian.Uint16(d[off:])
			off += 2
			if et != 0x8100 && et != 0x88a8 && et != 0x9100 {
				return off
			}
			off += 2
		}
	case layers.LinkTypeLinuxSLL:
		return 16
	case layers.LinkTypeLinuxSLL2:
		return 20
	case layers.LinkTypeRaw:
		return 0
	}
	t.Fatalf("link type %s", lt)
	return 0
}

// ipInfo describes an outer IP header.
type ipInfo struct {
	v6        bool
	hdr       int  // offset of the transport header (or of the fragment data)
	end       int  // end of the IP packet
	proto     byte // next header after the IP header and its extensions
	fragOff   int  // fragment offset in bytes
	more      bool // more fragments
	fragment  bool
	fragIdent uint32
	src, dst  []byte
}

func parseIP(t *testing.T, d []byte, off int) ipInfo {
	t.Helper()
	var in ipInfo
	switch d[off] >> 4 {
	case 4:
		ihl := int(d[off]&0x0f) * 4
		in.hdr = off + ihl
		in.end = off + int(binary.BigEndian.Uint16(d[off+2:]))
		in.proto = d[off+9]
		fo := binary.BigEndian.Uint16(d[off+6:])
		in.fragOff, in.more = int(fo&0x1fff)*8, fo&0x2000 != 0
		in.fragment = in.fragOff != 0 || in.more
		in.fragIdent = uint32(binary.BigEndian.Uint16(d[off+4:]))
		in.src, in.dst = d[off+12:off+16], d[off+16:off+20]
	case 6:
		in.v6 = true
		in.src, in.dst = d[off+8:off+24], d[off+24:off+40]
		in.end = off + 40 + int(binary.BigEndian.Uint16(d[off+4:]))
		nh, p := d[off+6], off+40
		for nh == 0 || nh == 44 {
			if nh == 44 {
				fo := binary.BigEndian.Uint16(d[p+2:])
				in.fragOff, in.more, in.fragment = int(fo&^7), fo&1 != 0, true
				in.fragIdent = binary.BigEndian.Uint32(d[p+4:])
				nh, p = d[p], p+8
				break
			}
			nh, p = d[p], p+8*(1+int(d[p+1]))
		}
		if !in.fragment && nh == 60 {
			nh, p = d[p], p+8*(1+int(d[p+1]))
		}
		in.proto, in.hdr = nh, p
	default:
		t.Fatalf("IP version %d", d[off]>>4)
	}
	return in
}

// udpPayload returns the UDP destination port and payload (per the UDP
// length) of a whole single-record case.
func udpPayload(t *testing.T, w Wire) (uint16, []byte) {
	t.Helper()
	in := parseIP(t, w.Data, l3(t, w.LinkType, w.Data))
	if in.proto != 17 || in.fragment {
		t.Fatalf("not a whole UDP datagram: proto %d fragment %v", in.proto, in.fragment)
	}
	u := w.Data[in.hdr:]
	return binary.BigEndian.Uint16(u[2:]), u[8:binary.BigEndian.Uint16(u[4:])]
}

var errTLV = errors.New("bad TLV")

// reading is one way to read a TLV list with wrapped name lengths: the
// wrap count of each name TLV, and where the list ends.
type reading struct {
	ks  []int
	end int
}

// readings lists the readings of the TLV list at the start of p (a Juniper
// payload) that end in FF 00 followed by a frame of at least 14 bytes that
// is plausible where the contract is definite, by brute force; it stops at
// two. complete is false when it gave up before finding two.
func readings(p []byte) (rs []reading, complete bool) {
	steps := 0
	var walk func(i int, ks []int)
	walk = func(i int, ks []int) {
		for i+2 <= len(p) && len(rs) < 2 {
			if steps++; steps > 200_000 {
				return
			}
			t, l := p[i], int(p[i+1])
			if t == 255 {
				if l == 0 && plausibleRef(p[i+2:]) {
					rs = append(rs, reading{slices.Clone(ks), i + 2})
				}
				return
			}
			if t == 3 || t == 4 {
				for k := 0; i+2+l+256*k <= len(p); k++ {
					walk(i+2+l+256*k, append(ks, k))
				}
				return
			}
			i += 2 + l
		}
	}
	walk(0, nil)
	return rs, steps <= 200_000 || len(rs) == 2
}

// plausibleRef is the plausible-frame test of the contract for the frames
// the generator builds: IPv4 or IPv6 behind up to two tags with a length
// that matches, ARP, or another EtherType from 0x0600.
func plausibleRef(f []byte) bool {
	if len(f) < 14 {
		return false
	}
	off := 12
	for n := 0; n < 2 && len(f) >= off+2 && isTag(binary.BigEndian.Uint16(f[off:])); n++ {
		off += 4
	}
	if len(f) < off+2 {
		return false
	}
	et := binary.BigEndian.Uint16(f[off:])
	ip := f[off+2:]
	switch et {
	case 0x0800:
		return len(ip) >= 20 && paddedRef(f, ip, int(binary.BigEndian.Uint16(ip[2:])))
	case 0x86dd:
		return len(ip) >= 40 && paddedRef(f, ip, 40+int(binary.BigEndian.Uint16(ip[4:])))
	case 0x0806:
		return len(ip) >= 28
	}
	return et >= 0x0600 && !isTag(et)
}

// paddedRef reports whether an IP length of l matches ip, the bytes after
// the EtherType of f: exactly, or shorter when f is padded to 60 bytes.
func paddedRef(f, ip []byte, l int) bool {
	return l == len(ip) || l < len(ip) && len(f) == 60
}

// walkTLVs validates a current-format metadata block strictly and returns
// the offset of the inner frame.
func walkTLVs(p []byte) (int, error) {
	i := 0
	for {
		if i+2 > len(p) {
			return 0, fmt.Errorf("%w: no end marker", errTLV)
		}
		typ, n := p[i], int(p[i+1])
		if i+2+n > len(p) {
			return 0, fmt.Errorf("%w: type %d runs past the end", errTLV, typ)
		}
		v := p[i+2 : i+2+n]
		switch typ {
		case 1, 2:
			if n != 4 {
				return 0, fmt.Errorf("%w: type %d length %d", errTLV, typ, n)
			}
		case 3, 4:
			for _, b := range v {
				if b < 0x20 || b > 0x7e {
					return 0, fmt.Errorf("%w: non-printable VN", errTLV)
				}
			}
		case 255:
			if n != 0 {
				return 0, fmt.Errorf("%w: end with length %d", errTLV, n)
			}
			return i + 2, nil
		}
		i += 2 + n
	}
}

func cases(t *testing.T, opts Options, n int) []*Case {
	t.Helper()
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var cs []*Case
	for range n {
		cs = append(cs, g.Next().Clone())
	}
	return cs
}

func writeAll(t *testing.T, opts Options, n int, f Format) ([]byte, []byte) {
	t.Helper()
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var capture, truth bytes.Buffer
	if _, err := Write(&capture, &truth, g, n, f); err != nil {
		t.Fatal(err)
	}
	return capture.Bytes(), truth.Bytes()
}

func TestDeterminism(t *testing.T) {
	for _, tc := range []struct {
		f  Format
		lt layers.LinkType
	}{{FormatPcap, layers.LinkTypeEthernet}, {FormatPcapNanos, layers.LinkTypeLinuxSLL2}, {FormatPcapNG, 0}} {
		opts := Options{Seed: 1, Mix: Profiles["all"], LinkType: tc.lt}
		a, at := writeAll(t, opts, 500, tc.f)
		b, bt := writeAll(t, opts, 500, tc.f)
		if !bytes.Equal(a, b) || !bytes.Equal(at, bt) {
			t.Errorf("%s: same seed, different output", tc.f)
		}
		opts.Seed = 2
		c, ct := writeAll(t, opts, 500, tc.f)
		if bytes.Equal(a, c) || bytes.Equal(at, ct) {
			t.Errorf("%s: different seeds, same output", tc.f)
		}
	}
}

func TestTruthLines(t *testing.T) {
	_, truth := writeAll(t, Options{Seed: 9, Mix: Profiles["all"]}, 300, FormatPcapNG)
	lines := strings.Split(strings.TrimSpace(string(truth)), "\n")
	if len(lines) != 300 {
		t.Fatalf("%d truth lines, want 300", len(lines))
	}
	next := 1
	for i, l := range lines {
		var tr Truth
		if err := json.Unmarshal([]byte(l), &tr); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if tr.Index != i || len(tr.Packets) == 0 || tr.Packets[0] != next {
			t.Fatalf("line %d: index %d packets %v, want index %d from record %d", i, tr.Index, tr.Packets, i, next)
		}
		next += len(tr.Packets)
	}
}

func TestSeed114(t *testing.T) {
	for _, vary := range []bool{false, true} {
		names := map[string]bool{}
		for _, c := range cases(t, Options{Seed: 11, Mix: Profiles["seed114"], VarySeedNames: vary}, 100) {
			d := c.Packets[0].Data
			if c.Reason != "" || len(c.Packets) != 1 || !bytes.Equal(d[114:114+len(c.Frame)], c.Frame) {
				t.Fatalf("case %d: inner frame does not start at byte 114", c.Index)
			}
			if n := len(*c.SrcVN) + len(*c.DstVN); n != 54 {
				t.Fatalf("case %d: VN names %d bytes together", c.Index, n)
			}
			names[*c.SrcVN] = true
		}
		if vary != (len(names) > 1) {
			t.Errorf("vary=%v: %d different source VNs", vary, len(names))
		}
	}
}

func TestPadding(t *testing.T) {
	for _, c := range cases(t, Options{Seed: 12, Mix: Mix{KindPadding: 1}}, 50) {
		w := c.Packets[0]
		if w.WireLen != 60 || len(w.Data) != 60 {
			t.Fatalf("case %d: %d bytes, want 60", c.Index, w.WireLen)
		}
		_, p := udpPayload(t, w)
		if !bytes.Equal(p, append([]byte{0xff, 0}, c.Frame...)) {
			t.Fatalf("case %d: UDP payload %x, want FF 00 %x", c.Index, p, c.Frame)
		}
		if end := 44 + len(c.Frame); !bytes.Equal(w.Data[end:], make([]byte, 60-end)) {
			t.Fatalf("case %d: padding %x not zero", c.Index, w.Data[end:])
		}
	}
}

func TestLegacy(t *testing.T) {
	seen := map[int]int{}
	for _, c := range cases(t, Options{Seed: 13, Mix: Mix{KindLegacy1: 1, KindLegacy2: 1}, MaxFrame: 1000}, 200) {
		_, p := udpPayload(t, c.Packets[0])
		if slices.Contains([]byte{1, 2, 3, 4, 255}, p[0]) {
			t.Fatalf("case %d: legacy payload starts with %d", c.Index, p[0])
		}
		sec, usec := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
		if !time.Unix(int64(sec), int64(usec)*1000).Equal(c.RecordTime) {
			t.Fatalf("case %d: record time %v, header %d.%06d", c.Index, c.RecordTime, sec, usec)
		}
		off, err := walkTLVs(p[16:])
		if err != nil || !bytes.Equal(p[16+off:], c.Frame) {
			t.Fatalf("case %d: TLVs %v, frame mismatch", c.Index, err)
		}
		incl := int(binary.BigEndian.Uint32(p[8:]))
		want := map[int]int{1: len(p) - 16, 2: len(c.Frame)}[c.Legacy]
		if incl != want || binary.BigEndian.Uint32(p[12:]) != uint32(incl) {
			t.Fatalf("case %d: legacy %d incl_len %d, want %d", c.Index, c.Legacy, incl, want)
		}
		seen[c.Legacy]++
	}
	if seen[1] == 0 || seen[2] == 0 {
		t.Errorf("legacy variants seen: %v", seen)
	}
}

// Current-format cases must carry a valid TLV block followed by the frame,
// with the metadata the case expects.
func TestJuniperPayload(t *testing.T) {
	mix := Mix{KindACL: 1, KindPort: 1, KindEndOnly: 1, KindUnknownTLV: 1, KindDPDKIPv6: 1}
	unknown := 0
	for _, c := range cases(t, Options{Seed: 14, Mix: mix, MaxFrame: 1200, Traffic: mirror.Traffic{Ports: []uint16{9000}}}, 500) {
		port, p := udpPayload(t, c.Packets[0])
		if port != 9000 || c.Mode != mirror.ModeJuniper {
			t.Fatalf("case %d: port %d mode %s", c.Index, port, c.Mode)
		}
		off, err := walkTLVs(p)
		if err != nil {
			t.Fatalf("case %d (%s): %v", c.Index, c.Kind, err)
		}
		frame := p[off:]
		if c.Kind == KindDPDKIPv6 {
			if frame[12] != 0x08 || frame[13] != 0 || frame[14]>>4 != 6 || c.Frame[12] != 0x86 || c.Frame[13] != 0xdd {
				t.Fatalf("case %d: DPDK frame ethertype %x, expected %x", c.Index, frame[12:14], c.Frame[12:14])
			}
			frame = append(frame[:12:12], c.Frame[12:]...)
		}
		if !bytes.Equal(frame, c.Frame) || c.FrameLen != len(frame) {
			t.Fatalf("case %d: frame mismatch", c.Index)
		}
		var src, dst *string
		dir := mirror.DirUnknown
		for i := 0; i+1 < off; i += 2 + int(p[i+1]) {
			v := string(p[i+2 : i+2+int(p[i+1])])
			switch p[i] {
			case 3:
				src, dir = &v, mirror.DirIngress
			case 4:
				dst, dir = &v, mirror.DirEgress
			case 1, 2, 255:
			default:
				if i == 0 {
					t.Fatalf("case %d: unknown TLV type first", c.Index)
				}
				unknown++
			}
		}
		switch {
		case c.FlagBits == 32:
			dir = mirror.DirEgress
			if c.Flags&mirror.FlagIngress != 0 {
				dir = mirror.DirIngress
			}
		case src != nil && dst != nil:
			dir = mirror.DirUnknown
		}
		if str(src) != str(c.SrcVN) || str(dst) != str(c.DstVN) || (src == nil) != (c.SrcVN == nil) || dir != c.Direction {
			t.Fatalf("case %d: TLVs say %q %q %s, case %q %q %s", c.Index, str(src), str(dst), dir, str(c.SrcVN), str(c.DstVN), c.Direction)
		}
	}
	if unknown == 0 {
		t.Error("no unknown TLV generated")
	}
}

// fragments returns the reassembled fragmentable part of a case's records,
// from the UDP header on, and whether it is complete.
func fragments(t *testing.T, c *Case, mtu int) ([]byte, bool) {
	t.Helper()
	var buf []byte
	proto := byte(0)
	have := map[int]int{}
	total := -1
	for i, w := range c.Packets {
		off := l3(t, w.LinkType, w.Data)
		in := parseIP(t, w.Data, off)
		if !in.fragment || in.end-off > mtu {
			t.Fatalf("case %d: record is not a fragment within the MTU", c.Index)
		}
		if first := parseIP(t, c.Packets[0].Data, l3(t, w.LinkType, c.Packets[0].Data)); i > 0 && in.fragIdent != first.fragIdent {
			t.Fatalf("case %d: fragments with identifications %#x and %#x", c.Index, first.fragIdent, in.fragIdent)
		}
		n := in.end - in.hdr
		if len(buf) < in.fragOff+n {
			buf = append(buf, make([]byte, in.fragOff+n-len(buf))...)
		}
		copy(buf[in.fragOff:], w.Data[in.hdr:in.end])
		have[in.fragOff] = n
		if in.fragOff == 0 {
			proto = in.proto
		}
		if !in.more {
			total = in.fragOff + n
		}
	}
	for off := 0; off < total; {
		n, ok := have[off]
		if !ok {
			return buf, false
		}
		off += n
	}
	if proto == 60 { // destination options before the UDP header
		buf = buf[8*(1+int(buf[1])):]
	}
	return buf, total > 0
}

func TestFragmented(t *testing.T) {
	for _, mtu := range []int{1500, 576} {
		outOfOrder := 0
		for _, c := range cases(t, Options{Seed: 15, Mix: Mix{KindFragmented: 1, KindFragMissing: 1}, MTU: mtu}, 200) {
			if len(c.Packets) < 2 && c.Kind == KindFragmented {
				t.Fatalf("case %d: %d records", c.Index, len(c.Packets))
			}
			data, complete := fragments(t, c, mtu)
			if complete != (c.Kind == KindFragmented) {
				t.Fatalf("case %d (%s): complete=%v", c.Index, c.Kind, complete)
			}
			if !complete {
				if c.Reason != "fragment-incomplete" || c.Frame != nil {
					t.Fatalf("case %d: reason %q", c.Index, c.Reason)
				}
				continue
			}
			if !bytes.HasSuffix(data, c.Frame) || int(binary.BigEndian.Uint16(data[4:])) != len(data) {
				t.Fatalf("case %d: reassembled datagram does not end with the frame", c.Index)
			}
			if c.Packets[0].Timestamp.After(c.Packets[1].Timestamp) {
				t.Fatalf("case %d: timestamps go back", c.Index)
			}
			in := parseIP(t, c.Packets[0].Data, l3(t, c.Packets[0].LinkType, c.Packets[0].Data))
			if in.fragOff != 0 {
				outOfOrder++
			}
		}
		if outOfOrder == 0 {
			t.Errorf("MTU %d: no fragments out of order", mtu)
		}
	}
}

func TestSnapCut(t *testing.T) {
	for _, c := range cases(t, Options{Seed: 16, Mix: Mix{KindSnapCut: 1}}, 200) {
		w := c.Packets[0]
		if !c.Truncated || len(w.Data) >= w.WireLen || c.FrameLen <= len(c.Frame) || len(c.Frame) < 14 ||
			!bytes.HasSuffix(w.Data, c.Frame) {
			t.Fatalf("case %d: truncated=%v captured %d of %d, frame %d of %d", c.Index, c.Truncated,
				len(w.Data), w.WireLen, len(c.Frame), c.FrameLen)
		}
	}
	// A global snap length cuts every record alike.
	for _, c := range cases(t, Options{Seed: 17, Mix: Profiles["mixed"], Snaplen: 200}, 300) {
		for _, w := range c.Packets {
			if len(w.Data) > 200 {
				t.Fatalf("case %d: %d bytes captured", c.Index, len(w.Data))
			}
		}
		if c.Reason == "" && c.Mode != mirror.ModeOther && len(c.Packets[0].Data) < c.Packets[0].WireLen && !c.Truncated {
			t.Fatalf("case %d: cut record not marked truncated", c.Index)
		}
		if len(c.Packets) > 1 {
			if err := checkCutHead(t, c); err != nil {
				t.Fatalf("case %d (%s): %v", c.Index, c.Kind, err)
			}
		}
	}
}

// headFragment returns the index of the packet holding the first fragment
// (offset 0) of a fragmented case, and its parsed IP header.
func headFragment(t *testing.T, c *Case) (int, ipInfo) {
	t.Helper()
	for i, w := range c.Packets {
		in := parseIP(t, w.Data, l3(t, w.LinkType, w.Data))
		if in.fragment && in.fragOff == 0 {
			return i, in
		}
	}
	t.Fatalf("case %d: no first fragment", c.Index)
	return 0, ipInfo{}
}

// checkCutHead checks the steps of a fragmented datagram whose first
// fragment the snap length cut: the fragments before it are held, it
// completes the result (a truncated frame, or truncated), the ones after it
// are merged.
func checkCutHead(t *testing.T, c *Case) error {
	h, _ := headFragment(t, c)
	if w := c.Packets[h]; len(w.Data) >= w.WireLen {
		return errors.New("first fragment not cut")
	}
	for i, s := range c.Steps {
		want := mirror.Held
		switch {
		case i == h:
			want = status(&c.Expect)
		case i > h:
			want = mirror.Merged
		}
		if s.Status != want || s.Returned || s.Result != 0 {
			return fmt.Errorf("packet %d: step %+v, want %s", i, s, StatusName(want))
		}
	}
	if !c.Truncated && c.Reason != "truncated" || c.Fragments != h+1 {
		return fmt.Errorf("result truncated %v reason %q from %d fragments", c.Truncated, c.Reason, c.Fragments)
	}
	return nil
}

func TestMalformed(t *testing.T) {
	for _, k := range Kinds() {
		if !k.Malformed() {
			continue
		}
		t.Run(k.String(), func(t *testing.T) {
			for _, c := range cases(t, Options{Seed: 18, Mix: Mix{k: 1}}, 200) {
				if c.Reason != k.Reason() || c.Mode != mirror.ModeNone || c.Frame != nil {
					t.Fatalf("case %d: reason %q mode %s", c.Index, c.Reason, c.Mode)
				}
				if err := checkMalformed(t, c); err != nil {
					t.Fatalf("case %d: %v\n%x", c.Index, err, c.Packets[0].Data)
				}
			}
		})
	}
}

// checkMalformed checks that a malformed case has the defect its reason names.
func checkMalformed(t *testing.T, c *Case) error {
	w := c.Packets[0]
	if c.Kind == KindBadLinkType {
		if w.LinkType != layers.LinkTypeIEEE802_11 {
			return fmt.Errorf("link type %s", w.LinkType)
		}
		return nil
	}
	switch c.Kind {
	case KindFragMissing:
		return nil // TestFragmented
	case KindFragSnapTLV:
		h, in := headFragment(t, c)
		p := c.Packets[h].Data[in.hdr:]
		if in.proto == 60 {
			p = p[8*(1+int(p[1])):]
		}
		if len(p) <= 8 {
			return fmt.Errorf("no TLV byte captured")
		}
		if _, err := walkTLVs(p[8:]); err == nil {
			return errors.New("TLVs captured whole")
		}
		return checkCutHead(t, c)
	case KindBadWrapped:
		_, p := udpPayload(t, w)
		if rs, ok := readings(p); len(rs) == 1 || !ok {
			return fmt.Errorf("one consistent reading: %v", rs)
		}
		return nil
	}
	if len(c.Packets) != 1 && c.Kind != KindBadTLV && c.Kind != KindBadVXLAN {
		return fmt.Errorf("%d records", len(c.Packets))
	}
	if c.Kind == KindTruncated {
		if len(w.Data) >= w.WireLen {
			return errors.New("not cut")
		}
		return nil
	}
	d := w.Data
	off := l3(t, w.LinkType, d)
	if c.Kind == KindBadIP {
		v, ihl := d[off]>>4, int(d[off]&0xf)*4
		if v == 4 && ihl >= 20 && int(binary.BigEndian.Uint16(d[off+2:])) >= ihl {
			return errors.New("IPv4 header is fine")
		}
		return nil
	}
	var u []byte
	if len(c.Packets) > 1 {
		data, ok := fragments(t, c, 1500)
		if !ok {
			return errors.New("fragments incomplete")
		}
		u = data
	} else {
		in := parseIP(t, d, off)
		u = d[in.hdr:in.end]
	}
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if c.Kind == KindBadUDP {
		if ulen >= 8 && ulen <= len(u) {
			return fmt.Errorf("UDP length %d of %d is fine", ulen, len(u))
		}
		return nil
	}
	p := u[8:ulen]
	switch c.Kind {
	case KindBadVXLAN:
		if len(p) >= 8 && p[0]&0x08 != 0 {
			return errors.New("VXLAN header is fine")
		}
	case KindBadTLV:
		if _, err := walkTLVs(p); err == nil {
			return errors.New("TLVs are fine")
		}
	case KindBadInner:
		n, err := walkTLVs(p)
		if err != nil || len(p)-n >= 14 {
			return fmt.Errorf("TLVs %v, %d bytes of frame", err, len(p)-n)
		}
	}
	return nil
}

func TestVLANAndVXLAN(t *testing.T) {
	for _, c := range cases(t, Options{Seed: 20, Mix: Mix{KindVLAN: 1, KindVXLAN: 1}, Traffic: mirror.Traffic{MirrorVLAN: 42, VXLANPorts: []uint16{4790}}}, 200) {
		w := c.Packets[len(c.Packets)-1]
		switch c.Mode {
		case mirror.ModeVLAN:
			d := w.Data
			if c.VLAN != 42 || binary.BigEndian.Uint16(d[12:]) != 0x8100 || binary.BigEndian.Uint16(d[14:])&0xfff != 42 ||
				!bytes.Equal(append(d[:12:12], d[16:]...), c.Frame) {
				t.Fatalf("case %d: VLAN record does not hold the frame", c.Index)
			}
		case mirror.ModeVXLAN:
			if len(c.Packets) > 1 {
				continue
			}
			port, p := udpPayload(t, w)
			vni := uint32(p[4])<<16 | uint32(p[5])<<8 | uint32(p[6])
			if port != 4790 || p[0] != 8 || vni != c.VNI || !bytes.Equal(p[8:], c.Frame) {
				t.Fatalf("case %d: VXLAN record does not hold the frame", c.Index)
			}
		default:
			t.Fatalf("case %d: mode %s", c.Index, c.Mode)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{
		{Snaplen: 10}, {MTU: 100}, {MinFrame: 10}, {MaxFrame: 9001}, {MaxVN: 256}, {Malformed: 2},
		{Traffic: mirror.Traffic{Ports: []uint16{4789}}}, {Traffic: mirror.Traffic{MirrorVLAN: 4095}},
		{Traffic: mirror.Traffic{Ports: []uint16{8099, 9000}}}, {Traffic: mirror.Traffic{AutoPorts: true}},
		{Traffic: mirror.Traffic{VXLANPorts: []uint16{4789, 4790}}}, {LinkType: layers.LinkTypeIEEE802_11},
		{Mix: Mix{KindBadLinkType: 1}, LinkType: layers.LinkTypeEthernet},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if m, err := ParseMix("acl=3, vxlan ,bad-tlv=0"); err != nil || m[KindACL] != 3 || m[KindVXLAN] != 1 || m[KindBadTLV] != 0 {
		t.Errorf("ParseMix: %v %v", m, err)
	}
	for _, s := range []string{"", "acl=x", "nope", "acl=-1"} {
		if _, err := ParseMix(s); err == nil {
			t.Errorf("ParseMix(%q) accepted", s)
		}
	}
}

func TestPcapLinkTypeMismatch(t *testing.T) {
	g, err := New(Options{Seed: 1, Mix: Mix{KindBadLinkType: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&bytes.Buffer{}, nil, g, 1, FormatPcap); err == nil {
		t.Error("a link-type 105 record went into an Ethernet pcap file")
	}
}

func TestMalformedFraction(t *testing.T) {
	bad := 0
	for _, c := range cases(t, Options{Seed: 21, Mix: Mix{KindACL: 1}, Malformed: 0.25}, 2000) {
		if c.Kind.Malformed() {
			bad++
		}
	}
	if bad < 400 || bad > 600 {
		t.Errorf("%d of 2000 malformed, want about 500", bad)
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	g, err := New(Options{Seed: 22, Mix: Profiles["all"], VarySeedNames: true, Malformed: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 { // grow the buffers to their largest
		g.Next()
	}
	// One run of many cases: AllocsPerRun rounds the average down. It
	// counts the whole process's allocations, so a goroutine an earlier
	// test left winding down can add one: Next must show none in one of
	// three runs (an allocation of its own shows in all three).
	var n float64
	for range 3 {
		if n = testing.AllocsPerRun(1, func() {
			for range 5000 {
				g.Next()
			}
		}); n == 0 {
			return
		}
	}
	t.Errorf("Next allocates %.0f times in 5000 cases", n)
}

// The benchmark options: sizes in turn, one VN, each case's number in its
// inner source MAC.
func TestBenchOptions(t *testing.T) {
	sizes, err := ParseFrameSizes("64=2, 1514")
	if err != nil || !slices.Equal(sizes, []int{64, 64, 1514}) {
		t.Fatalf("ParseFrameSizes: %v %v", sizes, err)
	}
	for _, bad := range []string{"", "13", "9001", "64=0", "64=x", "x=2"} {
		if _, err := ParseFrameSizes(bad); err == nil {
			t.Errorf("ParseFrameSizes(%q) accepted", bad)
		}
	}
	const vn = "default-domain:admin:vn-left"
	fragmented := 0
	for _, c := range cases(t, Options{Seed: 5, Mix: Mix{KindACL: 1}, FrameSizes: sizes, VNs: []string{vn}, Numbered: true}, 300) {
		f := c.Frame
		if !bytes.Equal(f[6:8], []byte{0x02, 0x4e}) || binary.BigEndian.Uint32(f[8:12]) != uint32(c.Index) {
			t.Fatalf("case %d: source MAC %x", c.Index, f[6:12])
		}
		if c.SrcVN != nil && *c.SrcVN != vn || c.DstVN != nil && *c.DstVN != vn || c.SrcVN == nil && c.DstVN == nil {
			t.Fatalf("case %d: VNs %v %v", c.Index, c.SrcVN, c.DstVN)
		}
		want := sizes[c.Index%3]
		// IPv4 frames are the size asked for; others may need more for
		// their headers, or less (ARP).
		if binary.BigEndian.Uint16(f[12:]) == 0x0800 && len(f) != want {
			t.Fatalf("case %d: an IPv4 frame of %d bytes, want %d", c.Index, len(f), want)
		}
		if len(c.Packets) > 1 {
			fragmented++
			if want != 1514 {
				t.Fatalf("case %d: %d-byte frame fragmented", c.Index, len(f))
			}
		}
	}
	if fragmented < 50 {
		t.Fatalf("%d of 100 full-size cases fragmented", fragmented)
	}
	if _, err := New(Options{FrameSizes: []int{10}}); err == nil {
		t.Error("a 10-byte frame size accepted")
	}
	if _, err := New(Options{VNs: []string{strings.Repeat("x", 256)}}); err == nil {
		t.Error("a 256-byte VN accepted")
	}
}
