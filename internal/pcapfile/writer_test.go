package pcapfile

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// testPackets is a mix of what a decap run writes: Juniper-mode packets in
// both directions, a truncated one, a VXLAN one without metadata and a
// pass-through packet of another link type.
func testPackets(t testing.TB) []*mirror.Packet {
	t.Helper()
	base := time.Unix(1700000000, 0)
	var ps []*mirror.Packet
	for i := range 20 {
		dir := mirror.DirIngress
		if i%2 == 1 {
			dir = mirror.DirEgress
		}
		ps = append(ps, juniperPacket(t, i, base.Add(time.Duration(i)*1234567891), dir))
	}
	tr := juniperPacket(t, 20, base.Add(30*time.Second+7), mirror.DirUnknown)
	tr.Frame = tr.Frame[:30]
	tr.Data = tr.Data[:len(tr.Data)-len(tr.Frame)+30]
	tr.Truncated = true
	ps = append(ps, tr)

	inner := udpFrame(t, 21, 100)
	vx := udpFrameWith(t, 1021, 4789, append([]byte{8, 0, 0, 0, 0, 0x10, 0x92, 0}, inner...))
	p := &mirror.Packet{Timestamp: base.Add(31 * time.Second), LinkType: layers.LinkTypeEthernet,
		Data: vx, WireLen: len(vx), Mode: mirror.ModeVXLAN, Frame: vx[len(vx)-len(inner):], FrameLen: len(inner)}
	p.Meta.VNI, p.Meta.HasVNI = 4242, true
	ps = append(ps, p)

	// Raw IPv4 (link type 101) passed through.
	other := udpFrame(t, 22, 10)[14:]
	ps = append(ps, &mirror.Packet{Timestamp: base.Add(32 * time.Second), LinkType: layers.LinkTypeRaw,
		Data: other, WireLen: len(other), Mode: mirror.ModeOther})
	return ps
}

// expected returns what a Reader must give back for p written in format f.
func expected(p *mirror.Packet, f Format) (data []byte, wire int, link layers.LinkType) {
	switch {
	case p.Mode == mirror.ModeOther || f == FormatRaw:
		return p.Data, max(p.WireLen, len(p.Data)), p.LinkType
	case f == FormatJuniperVN:
		tlv := p.Meta.TLVs
		if p.Mode != mirror.ModeJuniper || len(tlv) == 0 {
			tlv = []byte{0xff, 0}
		}
		return append(append([]byte{}, tlv...), p.Frame...), len(tlv) + max(p.FrameLen, len(p.Frame)), mirror.LinkTypeJuniperVN
	}
	return p.Frame, max(p.FrameLen, len(p.Frame)), layers.LinkTypeEthernet
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN, FormatRaw} {
		for _, nanos := range []bool{false, true} {
			if nanos && f != FormatPcap {
				continue
			}
			t.Run(fmt.Sprintf("%v/ns=%v", f, nanos), func(t *testing.T) {
				in := testPackets(t)
				if f == FormatPcap {
					in = in[:len(in)-1] // the raw IPv4 one is refused, tested apart
				}
				out := readAll(t, writeAll(t, Options{Format: f, Nanosecond: nanos}, in))
				if len(out) != len(in) {
					t.Fatalf("read %d packets, wrote %d", len(out), len(in))
				}
				for i, p := range in {
					data, wire, link := expected(p, f)
					got := out[i]
					want := p.Timestamp
					if f == FormatPcap && !nanos {
						want = want.Truncate(time.Microsecond)
					}
					if !got.Timestamp.Equal(want) {
						t.Errorf("packet %d: time %v, want %v", i, got.Timestamp, want)
					}
					if !bytes.Equal(got.Data, data) {
						t.Errorf("packet %d: data differs\n got %x\nwant %x", i, got.Data, data)
					}
					if got.WireLen != wire || got.LinkType != link {
						t.Errorf("packet %d: wire %d link %v, want %d %v", i, got.WireLen, got.LinkType, wire, link)
					}
				}
			})
		}
	}
}

func TestPcapRefusesOtherLinkType(t *testing.T) {
	ps := testPackets(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{Format: FormatPcap})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(ps[len(ps)-1]); !errors.Is(err, ErrLinkType) {
		t.Fatalf("raw IPv4 into pcap: %v, want ErrLinkType", err)
	}
	// The Writer carries on.
	if err := w.WritePacket(ps[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, buf.Bytes()); len(got) != 1 {
		t.Fatalf("%d packets, want 1", len(got))
	}
}

// TestTsharkOracle checks every field of what was written against tshark's
// reading of the file.
func TestTsharkOracle(t *testing.T) {
	in := testPackets(t)
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN, FormatRaw} {
		t.Run(f.String(), func(t *testing.T) {
			ps := in
			if f == FormatPcap {
				ps = in[:len(in)-1]
			}
			path := writeTemp(t, "out", writeAll(t, Options{Format: f, Nanosecond: true, Application: "vrsniff-test"}, ps))
			info := run(t, "capinfos", path)
			if f != FormatPcap && !strings.Contains(info, "Capture application: vrsniff-test") {
				t.Errorf("capinfos does not show the application:\n%s", info)
			}
			lines := testenv.Tshark{}.Lines(t, "-r", path, "-T", "fields", "-E", "separator=|", "-e", "frame.len", "-e", "frame.cap_len",
				"-e", "frame.time_epoch", "-e", "frame.comment", "-e", "eth.src", "-e", "ip.src",
				"-e", "frame.packet_flags_direction", "-e", "juniper.vn.src", "-e", "juniper.vn.dst")
			if len(lines) != len(ps) {
				t.Fatalf("tshark shows %d packets, wrote %d", len(lines), len(ps))
			}
			for i, p := range ps {
				data, wire, _ := expected(p, f)
				comment := ""
				if f == FormatRaw {
					if p.Err != mirror.OK {
						comment = fmt.Sprintf("malformed: %v at offset %d", p.Err, p.ErrOffset)
					}
				} else if f != FormatPcap {
					comment = string(mirror.AppendComment(nil, p))
				}
				ts := p.Timestamp
				want := []string{strconv.Itoa(wire), strconv.Itoa(len(data)),
					fmt.Sprintf("%d.%09d", ts.Unix(), ts.Nanosecond()), comment}
				frame := p.Frame
				if p.Mode == mirror.ModeOther {
					frame = nil
				} else if f == FormatRaw {
					frame = p.Data
				}
				if len(frame) >= 14 {
					want = append(want, fmt.Sprintf("%x:%x:%x:%x:%x:%x", frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]))
				} else {
					want = append(want, "")
				}
				ipsrc := ""
				if len(frame) >= 30 {
					ipsrc = fmt.Sprintf("%d.%d.%d.%d", frame[26], frame[27], frame[28], frame[29])
				} else if p.Mode == mirror.ModeOther {
					ipsrc = fmt.Sprintf("%d.%d.%d.%d", p.Data[12], p.Data[13], p.Data[14], p.Data[15])
				}
				want = append(want, ipsrc)
				dir := ""
				if f == FormatPcapNG || f == FormatJuniperVN {
					switch p.Meta.Direction {
					case mirror.DirIngress:
						dir = "0x00000001"
					case mirror.DirEgress:
						dir = "0x00000002"
					}
				}
				want = append(want, dir)
				vsrc, vdst := "", ""
				if f == FormatJuniperVN && p.Mode == mirror.ModeJuniper {
					vsrc, vdst = string(p.Meta.SrcVN), string(p.Meta.DstVN)
				}
				want = append(want, vsrc, vdst)
				// tshark prints MAC bytes with two digits.
				want[4] = normMAC(want[4])
				got := strings.Split(lines[i], "|")
				for j := 4; j < len(got); j++ {
					// Tunnelled frames list the outer address first.
					got[j], _, _ = strings.Cut(got[j], ",")
				}
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("packet %d:\n got %q\nwant %q", i, got, want)
				}
			}
			if f == FormatJuniperVN {
				n := testenv.Tshark{}.Lines(t, "-r", path, "-Y", "juniper.vn.src == \"default-domain:admin:vn-a\"")
				if len(n) != 21 {
					t.Errorf("display filter on juniper.vn.src matched %d packets, want 21", len(n))
				}
			}
		})
	}
}

func normMAC(s string) string {
	if s == "" {
		return s
	}
	parts := strings.Split(s, ":")
	for i, p := range parts {
		if len(p) == 1 {
			parts[i] = "0" + p
		}
	}
	return strings.Join(parts, ":")
}

func TestRawComment(t *testing.T) {
	p := &mirror.Packet{Timestamp: time.Unix(1, 0), LinkType: layers.LinkTypeEthernet,
		Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 8, 0, 0x45}, WireLen: 1500,
		Err: mirror.ErrIP, ErrOffset: 14}
	ok := &mirror.Packet{Timestamp: time.Unix(2, 0), LinkType: layers.LinkType(113), Data: []byte{9, 9}}
	path := writeTemp(t, "rejects.pcapng", writeAll(t, Options{Format: FormatRaw}, []*mirror.Packet{p, ok}))
	lines := testenv.Tshark{}.Lines(t, "-r", path, "-T", "fields", "-E", "separator=|", "-e", "frame.comment", "-e", "frame.len",
		"-e", "frame.cap_len", "-e", "frame.interface_id")
	want := []string{"malformed: bad-ip at offset 14|1500|15|0", "|2|2|1"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("tshark: %q, want %q", lines, want)
	}
}

func TestSnapLen(t *testing.T) {
	in := testPackets(t)[:3]
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN} {
		out := readAll(t, writeAll(t, Options{Format: f, SnapLen: 50}, in))
		for i, p := range out {
			data, wire, _ := expected(in[i], f)
			if !bytes.Equal(p.Data, data[:50]) || p.WireLen != wire {
				t.Errorf("%v packet %d: %d bytes of %d, want 50 of %d", f, i, len(p.Data), p.WireLen, wire)
			}
		}
	}
}

// TestFlushWholeBlocks checks that what reaches the underlying writer, both
// on Flush and when the buffer fills, is always a readable file.
func TestFlushWholeBlocks(t *testing.T) {
	var chunks []int
	rec := &recorder{onWrite: func(n int) { chunks = append(chunks, n) }}
	w, err := NewWriter(rec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := juniperPacket(t, 1, time.Unix(5, 0), mirror.DirIngress)
	big := udpFrame(t, 1, 60000)
	p.Frame, p.FrameLen = big, len(big)
	n := 0
	for len(chunks) < 3 {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for i := range chunks {
		file := rec.buf.Bytes()[:sum(chunks[:i+1])]
		if got := readAll(t, file); len(got) == 0 {
			t.Errorf("after write %d: no packets", i)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rec.buf.Bytes()); len(got) != n {
		t.Errorf("%d packets, wrote %d", len(got), n)
	}
}

type recorder struct {
	buf     bytes.Buffer
	onWrite func(int)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.onWrite(len(b))
	return r.buf.Write(b)
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorSticky(t *testing.T) {
	w, err := NewWriter(failWriter{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush: %v", err)
	}
	if err := w.WritePacket(testPackets(t)[0]); err == nil {
		t.Fatal("WritePacket after failed Flush succeeded")
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN, FormatRaw} {
		g, err := ParseFormat(f.String())
		if err != nil || g != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), g, err)
		}
	}
	if _, err := ParseFormat("pcapx"); err == nil {
		t.Error("ParseFormat accepted pcapx")
	}
	if _, err := NewWriter(&bytes.Buffer{}, Options{Format: 9}); err == nil {
		t.Error("NewWriter accepted format 9")
	}
}

func TestWriterNoAlloc(t *testing.T) {
	ps := testPackets(t)
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN, FormatRaw} {
		w, err := NewWriter(discard{}, Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(200, func() {
			for _, p := range ps[:len(ps)-1] {
				if err := w.WritePacket(p); err != nil {
					t.Fatal(err)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per run", f, allocs)
		}
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// TestPcapMatchesEditcap cuts the outer headers off mirror datagrams and
// checks the result byte for byte against `editcap -C`, which does the same
// to a file but keeps each record's original length, as the test does here.
func TestPcapMatchesEditcap(t *testing.T) {
	ps := testPackets(t)[:20]
	for _, p := range ps {
		p.Mode = mirror.ModeOther
	}
	for _, nanos := range []bool{false, true} {
		in := writeTemp(t, "in.pcap", writeAll(t, Options{Format: FormatPcap, Nanosecond: nanos}, ps))
		want := filepath.Join(t.TempDir(), "want.pcap")
		ft := "pcap"
		if nanos {
			ft = "nsecpcap"
		}
		run(t, "editcap", "-F", ft, "-C", "98", in, want)

		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		var cut []*mirror.Packet
		for _, p := range readAll(t, src) {
			p.Mode, p.Frame, p.FrameLen = mirror.ModeJuniper, p.Data[98:], p.WireLen
			cut = append(cut, &p)
		}
		got := writeAll(t, Options{Format: FormatPcap, Nanosecond: nanos}, cut)
		wantb, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wantb) {
			t.Errorf("ns=%v: output differs from editcap's (%d vs %d bytes)", nanos, len(got), len(wantb))
		}
	}
}

// FuzzWriterRoundTrip writes a packet built from arbitrary bytes in every
// format and checks that the Reader gives back exactly what was written.
func FuzzWriterRoundTrip(f *testing.F) {
	f.Add([]byte{0xff, 0}, udpFrame(f, 1, 10), "default-domain:a:b", uint8(1), int64(1700000000123456789), uint16(0))
	f.Add([]byte{}, []byte{}, "", uint8(0), int64(0), uint16(3))
	f.Add([]byte{3, 1, 'x', 0xff, 0}, []byte{1, 2, 3}, "x\x00y", uint8(2), int64(-5), uint16(2))
	f.Fuzz(func(t *testing.T, tlv, frame []byte, vn string, dir uint8, ns int64, snap uint16) {
		data := append(append([]byte{}, tlv...), frame...)
		// Classic pcap holds unsigned 32-bit seconds: up to 2106.
		ns = ns & math.MaxInt64 % (1 << 32 * 1e9)
		p := &mirror.Packet{Timestamp: time.Unix(0, ns), LinkType: layers.LinkTypeEthernet, Data: data, WireLen: len(data),
			Mode: mirror.ModeJuniper, Frame: data[len(tlv):], FrameLen: len(frame) + int(dir), Err: mirror.Reason(dir % 12)}
		p.Meta.TLVs = data[:len(tlv)]
		p.Meta.SrcVN = []byte(vn)
		p.Meta.Direction = mirror.Direction(dir % 3)
		for _, fm := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN, FormatRaw} {
			o := Options{Format: fm, Nanosecond: true, SnapLen: int(snap)}
			file := writeAll(t, o, []*mirror.Packet{p})
			// Frames referred to in place give the same bytes.
			var sink vecSink
			rw, err := NewRefWriter(&sink, o)
			if err != nil {
				t.Fatal(err)
			}
			rw.Refer(data)
			if err := rw.WritePacket(p); err != nil {
				t.Fatal(err)
			}
			if err := rw.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sink.Bytes(), file) {
				t.Fatalf("%v: RefWriter wrote %x, Writer %x", fm, sink.Bytes(), file)
			}
			got := readAll(t, file)
			if len(got) != 1 {
				t.Fatalf("%v: %d packets", fm, len(got))
			}
			wdata, wire, link := expected(p, fm)
			if snap > 0 && len(wdata) > int(snap) {
				wdata = wdata[:snap]
			}
			g := got[0]
			if !bytes.Equal(g.Data, wdata) || g.WireLen != wire || g.LinkType != link || !g.Timestamp.Equal(p.Timestamp) {
				t.Fatalf("%v: got %x wire %d link %v at %v; want %x %d %v %v", fm, g.Data, g.WireLen, g.LinkType, g.Timestamp,
					wdata, wire, link, p.Timestamp)
			}
		}
	})
}

// TestAppendHeaderStartsOver checks that an Encoder reused for a new file
// describes that file's interfaces from scratch.
func TestAppendHeaderStartsOver(t *testing.T) {
	ps := testPackets(t)
	e, err := NewEncoder(Options{Format: FormatRaw})
	if err != nil {
		t.Fatal(err)
	}
	a := e.AppendHeader(nil)
	for _, p := range ps {
		if a, err = e.Append(a, p); err != nil {
			t.Fatal(err)
		}
	}
	b := e.AppendHeader(nil)
	if b, err = e.Append(b, ps[len(ps)-1]); err != nil {
		t.Fatal(err)
	}
	// The second file describes its own interfaces from scratch.
	got := readAll(t, b)
	if len(got) != 1 || got[0].LinkType != layers.LinkTypeRaw || got[0].Interface != 0 {
		t.Fatalf("second file: %+v", got)
	}
	if n := len(readAll(t, a)); n != len(ps) {
		t.Fatalf("first file: %d packets, want %d", n, len(ps))
	}
}

// RecordLen is the length of the record Append writes, read back; SizeHint
// covers what Append adds for a packet with a comment of usual length.
func TestEncoderLengths(t *testing.T) {
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN, FormatRaw} {
		e, err := NewEncoder(Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		head := e.AppendHeader(nil)
		for i, p := range testPackets(t) {
			rec, err := e.Append(nil, p)
			if err == ErrLinkType {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, append(append([]byte{}, head...), rec...))
			if len(got) != 1 || len(got[0].Data) != e.RecordLen(p) {
				t.Fatalf("%v packet %d: %d packets read back, RecordLen %d", f, i, len(got), e.RecordLen(p))
			}
			if n := e.SizeHint(p); len(rec)-recordIDBs(rec) > n {
				t.Errorf("%v packet %d: %d bytes appended, SizeHint %d", f, i, len(rec), n)
			}
			head = append(head, rec...) // with the interfaces rec described
			head = head[:len(head)-len(rec)+recordIDBs(rec)]
		}
	}
}

// recordIDBs is the length of the interface descriptions that begin rec.
func recordIDBs(rec []byte) int {
	n := 0
	for len(rec) >= 12 && le.Uint32(rec) == blockIDB {
		l := int(le.Uint32(rec[4:]))
		n, rec = n+l, rec[l:]
	}
	return n
}
