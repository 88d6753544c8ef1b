package pcapfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

func TestReaderPcapVariants(t *testing.T) {
	f1, f2 := udpFrame(t, 1, 20), udpFrame(t, 2, 300)
	for _, order := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, nanos := range []bool{false, true} {
			frac := uint32(654321)
			wantNs := 654321000
			if nanos {
				frac, wantNs = 987654321, 987654321
			}
			file := buildPcap(order, nanos, 100, 1, []pcapRecord{
				{sec: 1700000000, frac: frac, data: f1},
				// Cut by the snaplen: 100 of the 342 bytes.
				{sec: 1700000001, frac: 0, data: f2[:100], orig: uint32(len(f2))},
			})
			name := order.String() + map[bool]string{false: "/us", true: "/ns"}[nanos]
			t.Run(name, func(t *testing.T) {
				got := readAll(t, file)
				if len(got) != 2 {
					t.Fatalf("%d packets", len(got))
				}
				if want := time.Unix(1700000000, int64(wantNs)); !got[0].Timestamp.Equal(want) {
					t.Errorf("time %v, want %v", got[0].Timestamp, want)
				}
				if !bytes.Equal(got[0].Data, f1) || got[0].WireLen != len(f1) || got[0].LinkType != layers.LinkTypeEthernet {
					t.Errorf("packet 0: %d bytes wire %d link %v", len(got[0].Data), got[0].WireLen, got[0].LinkType)
				}
				if !bytes.Equal(got[1].Data, f2[:100]) || got[1].WireLen != len(f2) {
					t.Errorf("packet 1: %d bytes wire %d", len(got[1].Data), got[1].WireLen)
				}
				// tshark agrees that the hand-built file is what we think.
				path := writeTemp(t, "in.pcap", file)
				lines := testenv.Tshark{}.Lines(t, "-r", path, "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len")
				if strings.Join(lines, ";") != "62\t62;100\t342" {
					t.Errorf("tshark: %q", lines)
				}
			})
		}
	}
}

// ngBuilder builds pcapng files by hand in either byte order.
type ngBuilder struct {
	order binary.AppendByteOrder
	b     []byte
}

func (n *ngBuilder) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	l := uint32(12 + len(body))
	n.b = n.order.AppendUint32(n.b, typ)
	n.b = n.order.AppendUint32(n.b, l)
	n.b = append(n.b, body...)
	n.b = n.order.AppendUint32(n.b, l)
}

func (n *ngBuilder) shb() {
	body := n.order.AppendUint32(nil, byteOrderMagic)
	body = n.order.AppendUint16(body, 1)
	body = n.order.AppendUint16(body, 0)
	body = n.order.AppendUint64(body, ^uint64(0))
	n.block(blockSHB, body)
}

// idb adds an interface; opts are raw option bytes (already in order).
func (n *ngBuilder) idb(link uint16, snap uint32, opts []byte) {
	body := n.order.AppendUint16(nil, link)
	body = n.order.AppendUint16(body, 0)
	body = n.order.AppendUint32(body, snap)
	n.block(blockIDB, append(body, opts...))
}

func (n *ngBuilder) opt(code uint16, v []byte) []byte {
	b := n.order.AppendUint16(nil, code)
	b = n.order.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (n *ngBuilder) epb(id uint32, ts uint64, data []byte, orig uint32) {
	body := n.order.AppendUint32(nil, id)
	body = n.order.AppendUint32(body, uint32(ts>>32))
	body = n.order.AppendUint32(body, uint32(ts))
	body = n.order.AppendUint32(body, uint32(len(data)))
	body = n.order.AppendUint32(body, orig)
	n.block(blockEPB, append(body, data...))
}

func TestReaderPcapNGHandBuilt(t *testing.T) {
	f1, f2, f3, f4 := udpFrame(t, 1, 10), udpFrame(t, 2, 30), udpFrame(t, 3, 30), udpFrame(t, 4, 40)
	ip := udpFrame(t, 5, 5)[14:]

	n := &ngBuilder{order: binary.LittleEndian}
	n.shb()
	n.idb(1, 0, nil)                        // default resolution: microseconds
	n.block(0x00000004, []byte{0, 0, 0, 0}) // name resolution block: skipped
	n.idb(101, 0, append(n.opt(9, []byte{9}), n.opt(0, nil)...))
	n.epb(0, 1700000000_123456, f1, uint32(len(f1)))
	n.epb(1, 1700000001_000000007, ip, uint32(len(ip)))
	n.block(0x40000bad, []byte("custom")) // unknown block: skipped

	// Second section, big-endian, binary resolution 2^-20 and an offset of
	// 100 s; a simple packet block and an obsolete packet block.
	b := &ngBuilder{order: binary.BigEndian}
	b.shb()
	off := b.order.AppendUint64(nil, 100)
	b.idb(1, 64, append(append(b.opt(9, []byte{0x80 | 20}), b.opt(14, off)...), b.opt(0, nil)...))
	spb := b.order.AppendUint32(nil, uint32(len(f2)))
	b.block(blockSPB, append(spb, f2[:64]...)) // cut to the interface's snaplen
	ts := uint64(1700000002)<<20 | 1<<19       // .5 s
	pb := b.order.AppendUint16(nil, 0)
	pb = b.order.AppendUint16(pb, 0)
	pb = b.order.AppendUint32(pb, uint32(ts>>32))
	pb = b.order.AppendUint32(pb, uint32(ts))
	pb = b.order.AppendUint32(pb, uint32(len(f3)))
	pb = b.order.AppendUint32(pb, uint32(len(f3)))
	b.block(blockPB, append(pb, f3...))
	b.epb(0, 1700000003<<20, f4[:50], uint32(len(f4)))

	file := append(n.b, b.b...)
	got := readAll(t, file)
	type want struct {
		data  []byte
		wire  int
		link  layers.LinkType
		iface int
		ts    time.Time
	}
	wants := []want{
		{f1, len(f1), 1, 0, time.Unix(1700000000, 123456000)},
		{ip, len(ip), 101, 1, time.Unix(1700000001, 7)},
		// The second section's interface differs from the first's, so it
		// is the input's third.
		{f2[:64], len(f2), 1, 2, time.Time{}},
		{f3, len(f3), 1, 2, time.Unix(1700000102, 500000000)},
		{f4[:50], len(f4), 1, 2, time.Unix(1700000103, 0)},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d packets, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if !bytes.Equal(g.Data, w.data) || g.WireLen != w.wire || g.LinkType != w.link || g.Interface != w.iface || !g.Timestamp.Equal(w.ts) {
			t.Errorf("packet %d: %d bytes wire %d link %v if %d at %v; want %d %d %v %d %v", i,
				len(g.Data), g.WireLen, g.LinkType, g.Interface, g.Timestamp, len(w.data), w.wire, w.link, w.iface, w.ts)
		}
	}
	// tshark reads the same five packets from the hand-built file (and
	// shows the unknown block as a record without encapsulation).
	path := writeTemp(t, "hand.pcapng", file)
	lines := testenv.Tshark{}.Lines(t, "-r", path, "-Y", "frame.encap_type", "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len")
	var exp []string
	for _, w := range wants {
		exp = append(exp, fmt.Sprintf("%d\t%d", len(w.data), w.wire))
	}
	if strings.Join(lines, ";") != strings.Join(exp, ";") {
		t.Errorf("tshark: %q, want %q", lines, exp)
	}
}

// TestReaderToolFiles reads files made by editcap, mergecap and tcpdump.
func TestReaderToolFiles(t *testing.T) {
	dir := t.TempDir()
	var recs []pcapRecord
	for i := range 50 {
		recs = append(recs, pcapRecord{sec: 1700000000 + uint32(i), frac: uint32(i * 1000), data: udpFrame(t, i, i*7)})
	}
	eth := filepath.Join(dir, "eth.pcap")
	os.WriteFile(eth, buildPcap(binary.LittleEndian, false, 65535, 1, recs), 0o644)
	var raw []pcapRecord
	for i := range 30 {
		raw = append(raw, pcapRecord{sec: 1700000000 + uint32(i), frac: 500000, data: udpFrame(t, 100+i, 3)[14:]})
	}
	rawp := filepath.Join(dir, "raw.pcap")
	os.WriteFile(rawp, buildPcap(binary.BigEndian, false, 65535, 101, raw), 0o644)

	ng := filepath.Join(dir, "eth.pcapng")
	run(t, "editcap", "-F", "pcapng", eth, ng)
	merged := filepath.Join(dir, "merged.pcapng")
	run(t, "mergecap", "-F", "pcapng", "-w", merged, eth, rawp)
	cut := filepath.Join(dir, "cut.pcap")
	run(t, "editcap", "-s", "40", eth, cut)
	td := filepath.Join(dir, "tcpdump.pcap")
	if out, err := exec.Command("tcpdump", "-r", eth, "-w", td).CombinedOutput(); err != nil {
		t.Fatalf("tcpdump: %v\n%s", err, out)
	}

	check := func(name string, n int, f func(i int, p mirror.Packet) bool) {
		t.Helper()
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, b)
		if len(got) != n {
			t.Errorf("%s: %d packets, want %d", filepath.Base(name), len(got), n)
		}
		for i, p := range got {
			if !f(i, p) {
				t.Errorf("%s: packet %d wrong: %d bytes wire %d link %v at %v", filepath.Base(name), i, len(p.Data), p.WireLen, p.LinkType, p.Timestamp)
			}
		}
	}
	same := func(cut int) func(int, mirror.Packet) bool {
		return func(i int, p mirror.Packet) bool {
			d := recs[i].data
			return bytes.Equal(p.Data, d[:min(cut, len(d))]) && p.WireLen == len(d) &&
				p.Timestamp.Equal(time.Unix(int64(recs[i].sec), int64(recs[i].frac)*1000)) && p.LinkType == 1
		}
	}
	check(ng, 50, same(1<<20))
	check(cut, 50, same(40))
	check(td, 50, same(1<<20))
	seen := map[layers.LinkType]int{}
	check(merged, 80, func(i int, p mirror.Packet) bool {
		seen[p.LinkType]++
		return (p.LinkType == 1 && p.Interface == 0) || (p.LinkType == 101 && p.Interface == 1)
	})
	if seen[1] != 50 || seen[101] != 30 {
		t.Errorf("merged link types %v", seen)
	}
}

func TestReaderTruncated(t *testing.T) {
	ps := testPackets(t)[:5]
	for _, f := range []Format{FormatPcap, FormatPcapNG} {
		file := writeAll(t, Options{Format: f}, ps)
		// Find where the last record starts by reading the whole file.
		r, err := NewReader(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		var p mirror.Packet
		var lastStart int64
		for range 5 {
			lastStart = r.Offset()
			if err := r.Next(&p); err != nil {
				t.Fatal(err)
			}
		}
		for _, cutAt := range []int64{lastStart + 3, lastStart + 20, int64(len(file)) - 1} {
			r, err := NewReader(bytes.NewReader(file[:cutAt]))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 4 {
				if err := r.Next(&p); err != nil {
					t.Fatalf("%v cut at %d: packet %d: %v", f, cutAt, i, err)
				}
			}
			err = r.Next(&p)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Offset != lastStart || !errors.Is(err, errTruncated) {
				t.Errorf("%v cut at %d: %v, want truncated FormatError at %d", f, cutAt, err, lastStart)
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Errorf("error %q does not say where", err)
			}
		}
	}
}

func TestReaderErrors(t *testing.T) {
	good := writeAll(t, Options{Format: FormatPcap}, testPackets(t)[:2])
	huge := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(huge[24+8:], 400000)
	ng := writeAll(t, Options{}, testPackets(t)[:2])
	badTrail := append([]byte{}, ng...)
	badTrail[len(badTrail)-1] ^= 0xff
	noIDB := (&ngBuilder{order: binary.LittleEndian})
	noIDB.shb()
	noIDB.epb(0, 0, []byte{1, 2, 3}, 3)

	for _, c := range []struct {
		name string
		in   []byte
		want string // in the error
		new  bool   // NewReader fails
	}{
		{"empty", nil, "empty input", true},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "not a pcap or pcapng file", true},
		{"short header", good[:10], "pcap file header at offset 0: truncated", true},
		{"bad version", append(append([]byte{}, good[:4]...), append([]byte{9, 0}, good[6:]...)...), "unsupported version 9.4", true},
		{"huge record", huge, "pcap record at offset 24: incl_len 400000 exceeds limit 262144 (snaplen 262144)", false},
		{"bad trailer", badTrail, "trailing length", false},
		{"no interface", noIDB.b, "interface 0 not described", false},
		{"bad byte order", append([]byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4}, make([]byte, 16)...), "bad byte-order magic", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(c.in))
			if c.new {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("NewReader: %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var p mirror.Packet
			for {
				err = r.Next(&p)
				if err != nil {
					break
				}
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Next: %v, want FormatError with %q", err, c.want)
			}
		})
	}
}

// TestReaderIOError checks that a failing source is reported as such, not
// as corrupt input.
func TestReaderIOError(t *testing.T) {
	good := writeAll(t, Options{Format: FormatPcap}, testPackets(t)[:2])
	boom := errors.New("boom")
	r, err := NewReader(io.MultiReader(bytes.NewReader(good[:60]), iotestErr{boom}))
	if err != nil {
		t.Fatal(err)
	}
	var p mirror.Packet
	err = r.Next(&p)
	var fe *FormatError
	if !errors.Is(err, boom) || errors.As(err, &fe) {
		t.Fatalf("Next: %v, want the I/O error", err)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// streamReader is NewReader with a small buffer. NewReader's 1 MiB buffer,
// allocated and cleared for every input, made each fuzz input cost about a
// millisecond: the fuzzer spent its whole budget minimising the inputs it
// found and never tried new ones. A small buffer also sends every record
// larger than it through the copying path.
func streamReader(in []byte) (*Reader, error) {
	return newReader(bufio.NewReaderSize(bytes.NewReader(in), 256))
}

// FuzzReader feeds arbitrary bytes to the Reader: it must neither panic nor
// loop, every packet must lie within the input, and every error must be
// io.EOF or a *FormatError.
func FuzzReader(f *testing.F) {
	ps := testPackets(f)
	for _, fm := range []Format{FormatPcapNG, FormatPcap, FormatRaw} {
		b := writeAll(f, Options{Format: fm}, ps[:3])
		f.Add(b)
		f.Add(b[:len(b)-7])
	}
	f.Add(buildPcap(binary.BigEndian, true, 10, 1, []pcapRecord{{data: []byte{1, 2, 3}}}))
	n := &ngBuilder{order: binary.BigEndian}
	n.shb()
	n.idb(1, 4, n.opt(9, []byte{0x85}))
	n.block(blockSPB, []byte{0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(n.b)
	f.Add(ngComments(f, binary.BigEndian))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := streamReader(in)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("NewReader: unclassified error %v", err)
			}
			return
		}
		var p mirror.Packet
		for i := 0; ; i++ {
			before := r.Offset()
			err := r.Next(&p)
			if err == io.EOF {
				return
			}
			if err != nil {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("Next: unclassified error %v", err)
				}
				if fe.Offset < before || fe.Offset > int64(len(in)) {
					t.Fatalf("error offset %d outside [%d, %d]", fe.Offset, before, len(in))
				}
				return
			}
			if r.Offset() <= before || r.Offset() > int64(len(in)) {
				t.Fatalf("offset went from %d to %d of %d", before, r.Offset(), len(in))
			}
			if len(p.Data) > len(in) || p.WireLen < len(p.Data) || len(p.Data) > MaxRecord {
				t.Fatalf("packet of %d bytes (wire %d) from %d bytes of input", len(p.Data), p.WireLen, len(in))
			}
			if p.Interface < 0 || p.Interface >= len(r.Interfaces()) || r.Interface(p.Interface).LinkType != p.LinkType {
				t.Fatalf("packet of interface %d of %d", p.Interface, len(r.Interfaces()))
			}
			if t0 := p.Timestamp; !t0.IsZero() && (t0.Before(minTime) || t0.After(maxTime)) {
				t.Fatalf("time %v out of range", t0)
			}
		}
	})
}

// FuzzReaderBytes reads the same input from a stream and from memory: the
// two must agree on every packet and on the error that ends them.
func FuzzReaderBytes(f *testing.F) {
	ps := testPackets(f)
	for _, fm := range []Format{FormatPcapNG, FormatPcap, FormatRaw} {
		b := writeAll(f, Options{Format: fm}, ps[:3])
		f.Add(b)
		f.Add(b[:len(b)-7])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rs, errS := streamReader(in)
		rb, errB := NewReaderBytes(bytes.Clone(in))
		if fmt.Sprint(errS) != fmt.Sprint(errB) {
			t.Fatalf("NewReader: stream %v, memory %v", errS, errB)
		}
		if errS != nil {
			return
		}
		for {
			var ps, pb mirror.Packet
			errS, errB := rs.Next(&ps), rb.Next(&pb)
			if fmt.Sprint(errS) != fmt.Sprint(errB) {
				t.Fatalf("Next: stream %v, memory %v", errS, errB)
			}
			if errS != nil {
				return
			}
			if !bytes.Equal(ps.Data, pb.Data) || !ps.Timestamp.Equal(pb.Timestamp) || ps.WireLen != pb.WireLen ||
				ps.LinkType != pb.LinkType || ps.Interface != pb.Interface || rs.Offset() != rb.Offset() {
				t.Fatalf("packets differ")
			}
		}
	})
}
