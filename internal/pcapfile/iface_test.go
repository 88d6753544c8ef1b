package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// f09 holds three interfaces: eth1 (Ethernet, ns), eth2 (Ethernet, snaplen
// 128, µs) and any (Linux cooked, µs); its packets come from eth1, eth2,
// any, eth1.
func TestReaderInterfacesF09(t *testing.T) {
	name := testenv.FieldCase(t, "f09_three_interfaces_ns.pcapng")
	r, c, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	for {
		var p mirror.Packet
		err := r.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %d.%09d %d/%d", p.Interface, p.Timestamp.Unix(), p.Timestamp.Nanosecond(), len(p.Data), p.WireLen))
	}
	want := []string{
		"0 1700000000.123456789 211/211",
		"1 1700000000.223456000 128/355",
		"2 1700000000.323456000 213/213",
		"0 1700000000.423456001 211/211",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("packets:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantIf := []Interface{
		{Name: "eth1", LinkType: layers.LinkTypeEthernet, SnapLen: 262144, TSResol: 9, Units: 1e9},
		{Name: "eth2", LinkType: layers.LinkTypeEthernet, SnapLen: 128, TSResol: 6, Units: 1e6},
		{Name: "any", LinkType: layers.LinkTypeLinuxSLL, SnapLen: 262144, TSResol: 6, Units: 1e6},
	}
	if ifs := r.Interfaces(); fmt.Sprint(ifs) != fmt.Sprint(wantIf) {
		t.Errorf("interfaces %+v\nwant %+v", ifs, wantIf)
	}
}

// describe is a Describer over a fixed list.
type describe []Interface

func (d describe) Interface(i int) Interface {
	if i < 0 || i >= len(d) {
		return Interface{}
	}
	return d[i]
}

// The output has one interface per input interface and link type written,
// named like the input's, described as its first packet comes: a decoded
// frame and a packet passed through from one Linux cooked interface need
// two.
func TestWriterInterfacePerInput(t *testing.T) {
	ifs := describe{
		{Name: "eth1", Description: "first port", LinkType: layers.LinkTypeEthernet, SnapLen: 0, TSResol: 9, Units: 1e9},
		{Name: "any", LinkType: layers.LinkTypeLinuxSLL, SnapLen: 1000, TSResol: 6, Units: 1e6},
		{Name: "eth2", LinkType: layers.LinkTypeEthernet, SnapLen: 128, TSResol: 6, Units: 1e6},
	}
	ps := testPackets(t)
	dec := func(i, in int) *mirror.Packet {
		q := *ps[i]
		q.Interface = in
		return &q
	}
	other := &mirror.Packet{Timestamp: time.Unix(1700000100, 5), LinkType: layers.LinkTypeLinuxSLL, Interface: 1,
		Data: make([]byte, 40), WireLen: 40, Mode: mirror.ModeOther}
	in := []*mirror.Packet{dec(0, 2), dec(1, 1), other, dec(2, 0), dec(3, 2)}
	for _, f := range []Format{FormatPcapNG, FormatJuniperVN, FormatRaw} {
		t.Run(f.String(), func(t *testing.T) {
			path := writeTemp(t, "out.pcapng", writeAll(t, Options{Format: f, Interfaces: ifs}, in))
			rows := testenv.TsharkRows(t, "-r", path, "-T", "fields", "-e", "frame.interface_id", "-e", "frame.interface_name",
				"-e", "frame.interface_description", "-e", "frame.encap_type")
			var got []string
			for _, r := range rows {
				got = append(got, strings.Join(r, " "))
			}
			var want []string
			switch f {
			case FormatPcapNG:
				want = []string{"0 eth2  1", "1 any  1", "2 any  25", "3 eth1 first port 1", "0 eth2  1"}
			case FormatJuniperVN:
				want = []string{"0 eth2  181", "1 any  181", "2 any  25", "3 eth1 first port 181", "0 eth2  181"}
			case FormatRaw:
				// As captured, each with its own link type (Ethernet for
				// the test packets, cooked for the other one).
				want = []string{"0 eth2  1", "1 any  1", "2 any  25", "3 eth1 first port 1", "0 eth2  1"}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("tshark:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// Raw packets keep the input's snap length in their interface.
			info := run(t, "capinfos", path)
			if f == FormatRaw && !strings.Contains(info, "Capture length = 128") {
				t.Errorf("eth2's snap length is not kept:\n%s", info)
			}
		})
	}
}

// ngComments builds a pcapng file whose packets carry comments.
func ngComments(t testing.TB, order binary.AppendByteOrder) []byte {
	n := &ngBuilder{order: order}
	n.shb()
	n.idb(1, 0, append(n.opt(2, []byte("tap0")), n.opt(0, nil)...))
	frame := udpFrame(t, 1, 30)
	epb := func(data []byte, opts ...[]byte) {
		body := n.order.AppendUint32(nil, 0)
		body = n.order.AppendUint32(body, 0)
		body = n.order.AppendUint32(body, 1700000000)
		body = n.order.AppendUint32(body, uint32(len(data)))
		body = n.order.AppendUint32(body, uint32(len(data)))
		body = append(body, data...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		for _, o := range opts {
			body = append(body, o...)
		}
		n.block(blockEPB, body)
	}
	epb(frame, n.opt(1, []byte("first comment")), n.opt(2, n.order.AppendUint32(nil, 1)),
		n.opt(1, []byte("zweiter Kommentar, ü")), n.opt(0, nil))
	epb(frame[:33]) // no options
	epb(frame, n.opt(1, []byte("only one")))
	return n.b
}

// Comments of the input's packets are kept beside vrsniff's own.
func TestCommentsCarriedOver(t *testing.T) {
	for _, order := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		in := ngComments(t, order)
		got := readAll(t, in)
		var cs []string
		for _, p := range got {
			cs = append(cs, fmt.Sprintf("%q", p.Comments))
		}
		want := `["first comment" "zweiter Kommentar, ü"];[];["only one"]`
		if strings.Join(cs, ";") != want {
			t.Fatalf("%v: comments %s, want %s", order, strings.Join(cs, ";"), want)
		}
	}

	for _, f := range []Format{FormatPcapNG, FormatRaw} {
		r, err := NewReader(bytes.NewReader(ngComments(t, binary.LittleEndian)))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		w, err := NewWriter(&out, Options{Format: f, Interfaces: r})
		if err != nil {
			t.Fatal(err)
		}
		for {
			var p mirror.Packet
			if err := r.Next(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			p.Mode = mirror.ModeOther
			if err := w.WritePacket(&p); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		path := writeTemp(t, "c.pcapng", out.Bytes())
		rows := testenv.TsharkRows(t, "-r", path, "-T", "fields", "-E", "separator=|", "-E", "aggregator=;",
			"-e", "frame.comment", "-e", "frame.interface_name")
		var got []string
		for _, r := range rows {
			got = append(got, strings.Join(r, "|"))
		}
		want := []string{"mode=other;first comment;zweiter Kommentar, ü|tap0", "mode=other|tap0", "mode=other;only one|tap0"}
		if f == FormatRaw {
			want = []string{"first comment;zweiter Kommentar, ü|tap0", "|tap0", "only one|tap0"}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%v: tshark\n%s\nwant\n%s", f, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// ng-ts-extreme.pcapng: six interfaces whose resolution and offset put the
// packet times at -1 s (2^64-1 one-second units), 2^62 s before 1970,
// 2^64-1 units of 2^-63 s and of 10^-19 s, 2^62 s after 1970, and a normal
// one. Out of range times are clamped to 1970 or 2262 and counted, never
// wrapped; the others are exact.
func TestTimeExtremes(t *testing.T) {
	name := testenv.HostileCase(t, "ng-ts-extreme.pcapng")
	ps, err := ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		sec, ns int64
		clamped bool
	}
	wants := []want{
		{9223372036, 854775807, true},
		{0, 0, true},
		{1, 999999999, false},
		{1, 844674407, false},
		{9223372036, 854775807, true},
		{1700000000, 0, false},
	}
	if len(ps) != len(wants) {
		t.Fatalf("%d packets", len(ps))
	}
	for i, w := range wants {
		p := ps[i]
		if p.Timestamp.Unix() != w.sec || int64(p.Timestamp.Nanosecond()) != w.ns || p.TimeClamped != w.clamped {
			t.Errorf("packet %d: %d.%09d clamped %v, want %d.%09d %v", i, p.Timestamp.Unix(), p.Timestamp.Nanosecond(),
				p.TimeClamped, w.sec, w.ns, w.clamped)
		}
	}
	// Written out, tshark reads the same times.
	var pp []*mirror.Packet
	for i := range ps {
		ps[i].Mode = mirror.ModeOther
		pp = append(pp, &ps[i])
	}
	path := writeTemp(t, "out.pcapng", writeAll(t, Options{Format: FormatRaw}, pp))
	rows := testenv.TsharkRows(t, "-r", path, "-T", "fields", "-e", "frame.time_epoch")
	for i, w := range wants {
		if exp := fmt.Sprintf("%d.%09d", w.sec, w.ns); rows[i][0] != exp {
			t.Errorf("tshark packet %d: %s, want %s", i, rows[i][0], exp)
		}
	}
}

// A writer given times no reader gives (from another source) clamps them
// to what the format holds rather than wrapping.
func TestWriterClampsTimes(t *testing.T) {
	frame := udpFrame(t, 1, 10)
	at := func(ts time.Time) *mirror.Packet {
		return &mirror.Packet{Timestamp: ts, LinkType: layers.LinkTypeEthernet, Data: frame, WireLen: len(frame), Mode: mirror.ModeOther}
	}
	ps := []*mirror.Packet{at(time.Unix(-5, 0)), at(time.Unix(1<<32+5, 0)), at(time.Unix(1<<40, 7))}
	ng := readAll(t, writeAll(t, Options{Format: FormatRaw}, ps))
	pc := readAll(t, writeAll(t, Options{Format: FormatPcap, Nanosecond: true}, ps))
	for i, w := range []struct{ ng, pc string }{
		{"0.000000000", "0.000000000"},
		{"4294967301.000000000", "4294967295.999999999"},
		// 2^64-1 ns, clamped again by the Reader to 2262.
		{"9223372036.854775807", "4294967295.999999999"},
	} {
		g := fmt.Sprintf("%d.%09d", ng[i].Timestamp.Unix(), ng[i].Timestamp.Nanosecond())
		h := fmt.Sprintf("%d.%09d", pc[i].Timestamp.Unix(), pc[i].Timestamp.Nanosecond())
		if g != w.ng || h != w.pc {
			t.Errorf("packet %d: pcapng %s pcap %s, want %s %s", i, g, h, w.ng, w.pc)
		}
	}
}

// idbStream is an endless pcapng stream, generated as it is read: one
// section header, then interface blocks (and a packet after each when
// packets is set); with sections set every interface block starts a new
// section. Names vary with distinct.
type idbStream struct {
	n, max             int
	sections, distinct bool
	packets            bool
	pending            []byte
	nb                 ngBuilder
}

func (s *idbStream) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if s.n == s.max {
			return 0, io.EOF
		}
		s.nb = ngBuilder{order: binary.LittleEndian, b: s.nb.b[:0]}
		if s.n == 0 || s.sections {
			s.nb.shb()
		}
		name := "eth0"
		if s.distinct {
			name = fmt.Sprintf("eth%d", s.n)
		}
		s.nb.idb(1, 0, append(s.nb.opt(2, []byte(name)), s.nb.opt(0, nil)...))
		if s.packets {
			s.nb.epb(0, uint64(s.n), []byte{1, 2, 3, 4}, 4)
		}
		s.pending = s.nb.b
		s.n++
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// An endless run of interface blocks does not grow memory without limit:
// past MaxInterfaces distinct interfaces the Reader stops with an error,
// and an interface described again in each new section counts once.
func TestInterfaceLimit(t *testing.T) {
	const blocks = 100000
	measure := func(s *idbStream, max int) (packets int, grew uint64, err error) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := NewReader(s)
		if err != nil {
			t.Fatal(err)
		}
		r.MaxInterfaces = max
		var p mirror.Packet
		for {
			if err = r.Next(&p); err != nil {
				break
			}
			packets++
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(r)
		return packets, after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc), err
	}
	for _, c := range []struct {
		name    string
		s       *idbStream
		max     int
		packets int
		limit   bool
	}{
		{"one section", &idbStream{max: blocks}, 0, 0, true},
		{"one section, distinct", &idbStream{max: blocks, distinct: true}, 0, 0, true},
		{"one section, limit 10", &idbStream{max: blocks, packets: true}, 10, 10, true},
		{"sections, same interface", &idbStream{max: blocks, sections: true, packets: true}, 0, blocks, false},
		{"sections, distinct", &idbStream{max: blocks, sections: true, distinct: true, packets: true}, 0, DefaultMaxInterfaces, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, grew, err := measure(c.s, c.max)
			if c.limit {
				limit := c.max
				if limit == 0 {
					limit = DefaultMaxInterfaces
				}
				var fe *FormatError
				if !errors.As(err, &fe) || !errors.Is(err, ErrInterfaceLimit) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d", limit)) {
					t.Fatalf("after %d packets: %v, want the interface limit", n, err)
				}
			} else if err != io.EOF {
				t.Fatalf("after %d packets: %v", n, err)
			}
			if n != c.packets {
				t.Errorf("%d packets, want %d", n, c.packets)
			}
			// The read buffer (1 MiB) and at most 1024 descriptions.
			if grew > 4<<20 {
				t.Errorf("heap grew by %d bytes", grew)
			}
		})
	}
}

// Packets in the same interface described again in later sections share
// one Interface index; a different one gets its own.
func TestInterfaceAcrossSections(t *testing.T) {
	n := &ngBuilder{order: binary.LittleEndian}
	name := func(s string) []byte { return append(n.opt(2, []byte(s)), n.opt(0, nil)...) }
	n.shb()
	n.idb(1, 0, name("eth0"))
	n.idb(1, 0, name("eth0")) // a second, identical interface: distinct
	n.epb(1, 1, []byte{1}, 1)
	n.shb()
	n.idb(1, 0, name("eth1"))
	n.idb(1, 0, name("eth0"))
	n.idb(1, 0, name("eth0"))
	n.idb(1, 0, name("eth0"))
	for id := range 4 {
		n.epb(uint32(id), 1, []byte{1}, 1)
	}
	var got []int
	for _, p := range readAll(t, n.b) {
		got = append(got, p.Interface)
	}
	if fmt.Sprint(got) != "[1 2 0 1 3]" {
		t.Errorf("interfaces %v, want [1 2 0 1 3]", got)
	}
}

// A name longer than maxIfaceText is cut at a character boundary.
func TestCutText(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	if got := string(cutText([]byte(long))); got != strings.Repeat("é", 128) {
		t.Errorf("cut to %d bytes", len(got))
	}
	odd := "x" + long
	if got := string(cutText([]byte(odd))); got != "x"+strings.Repeat("é", 127) {
		t.Errorf("cut to %d bytes", len(got))
	}
}

// Reading packets with comments and writing them with their interfaces
// does not allocate per packet.
func TestCommentsNoAlloc(t *testing.T) {
	file := ngComments(t, binary.LittleEndian)
	off := 0
	for range 2 { // section header, interface
		off += int(binary.LittleEndian.Uint32(file[off+4:]))
	}
	r, err := NewReader(&loopReader{head: file[:off], body: file[off:]})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(discard{}, Options{Format: FormatPcapNG, Interfaces: r})
	if err != nil {
		t.Fatal(err)
	}
	var p mirror.Packet
	allocs := testing.AllocsPerRun(100, func() {
		for range 30 {
			if err := r.Next(&p); err != nil {
				t.Fatal(err)
			}
			p.Mode = mirror.ModeOther
			if err := w.WritePacket(&p); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per 30 packets", allocs)
	}
}
