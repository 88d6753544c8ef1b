package decap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// decapFile decodes the capture in with o (Out and Rejects are set to
// files in a temporary directory) and returns the output paths.
func decapFile(t *testing.T, in string, o Options) (out, rejects string, err error) {
	t.Helper()
	dir := t.TempDir()
	out, rejects = filepath.Join(dir, "out.pcapng"), filepath.Join(dir, "rejects.pcapng")
	fo, ferr := os.Create(out)
	if ferr != nil {
		t.Fatal(ferr)
	}
	defer fo.Close()
	fr, ferr := os.Create(rejects)
	if ferr != nil {
		t.Fatal(ferr)
	}
	defer fr.Close()
	o.Out, o.Rejects = fo, fr
	if o.Decoder.Traffic.Ports == nil {
		o.Decoder = mirror.Config{PassThrough: true}
	}
	r, c, ferr := pcapfile.Open(in)
	if ferr != nil {
		t.Fatal(ferr)
	}
	defer c.Close()
	_, err = RunReader(context.Background(), r, o)
	return out, rejects, err
}

func lines(rows [][]string) string {
	var s []string
	for _, r := range rows {
		s = append(s, strings.Join(r, "|"))
	}
	return strings.Join(s, "\n")
}

// f09 comes from three interfaces: the decoded frames keep theirs, with
// their nanosecond times, and the frame cut by eth2's snap length is marked
// truncated.
func TestDecapKeepsInterfaces(t *testing.T) {
	in := testenv.FieldCase(t, "f09_three_interfaces_ns.pcapng")
	for _, f := range []pcapfile.Format{pcapfile.FormatPcapNG, pcapfile.FormatJuniperVN} {
		out, _, err := decapFile(t, in, Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		got := lines(testenv.TsharkRows(t, "-r", out, "-T", "fields", "-E", "separator=|", "-e", "frame.interface_name",
			"-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.comment"))
		extra := 0
		if f == pcapfile.FormatJuniperVN {
			extra = 71 // the TLVs in front of each frame
		}
		meta := "src_vn=default-domain:admin:vn-web dst_vn=default-domain:admin:vn-db dir=ingress host=192.0.2.11 action=pass,mirror"
		want := strings.Join([]string{
			fmt.Sprintf("eth1|1700000000.123456789|%d|%d|%s", 98+extra, 98+extra, meta),
			fmt.Sprintf("eth2|1700000000.223456000|%d|%d|%s truncated=242", 242+extra, 15+extra, meta),
			fmt.Sprintf("any|1700000000.323456000|%d|%d|%s", 98+extra, 98+extra, meta),
			fmt.Sprintf("eth1|1700000000.423456001|%d|%d|%s", 98+extra, 98+extra, meta),
		}, "\n")
		if got != want {
			t.Errorf("%v: tshark\n%s\nwant\n%s", f, got, want)
		}
	}

	// Classic pcap has one interface: the frames are all there, times in
	// nanoseconds with Nanosecond.
	out, _, err := decapFile(t, in, Options{Format: pcapfile.FormatPcap, Nanosecond: true})
	if err != nil {
		t.Fatal(err)
	}
	got := lines(testenv.TsharkRows(t, "-r", out, "-T", "fields", "-E", "separator=|", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"))
	want := "1700000000.123456789|98|98\n1700000000.223456000|242|15\n1700000000.323456000|98|98\n1700000000.423456001|98|98"
	if got != want {
		t.Errorf("pcap: tshark\n%s\nwant\n%s", got, want)
	}
}

// Comments on the input's packets stay beside the metadata comment, in the
// output and in the rejects.
func TestDecapKeepsComments(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pcapng")
	src := testenv.FieldCase(t, "f09_three_interfaces_ns.pcapng")
	if out, err := exec.Command("editcap", "-a", "1:seen on the left tap", "-a", "3:after the reboot", src, in).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v\n%s", err, out)
	}
	ps, err := pcapfile.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 4 || len(ps[0].Comments) != 1 {
		t.Fatalf("editcap's file: %d packets, comments %q", len(ps), ps[0].Comments)
	}
	out, _, err := decapFile(t, in, Options{Format: pcapfile.FormatPcapNG, Decoder: mirror.Config{Traffic: mirror.Traffic{Ports: []uint16{8099}}}})
	if err != nil {
		t.Fatal(err)
	}
	meta := "src_vn=default-domain:admin:vn-web dst_vn=default-domain:admin:vn-db dir=ingress host=192.0.2.11 action=pass,mirror"
	got := lines(testenv.TsharkRows(t, "-r", out, "-T", "fields", "-E", "separator=|", "-E", "aggregator=;", "-e", "frame.comment"))
	want := strings.Join([]string{meta + ";seen on the left tap", meta + " truncated=242", meta + ";after the reboot", meta}, "\n")
	if got != want {
		t.Errorf("tshark\n%s\nwant\n%s", got, want)
	}

	// Not mirror traffic on another port, dropped: the rejects keep the
	// comments too.
	_, rejects, err := decapFile(t, in, Options{Format: pcapfile.FormatPcapNG, Decoder: mirror.Config{Traffic: mirror.Traffic{Ports: []uint16{9999}, VXLANPorts: []uint16{9998}}}})
	if err != nil {
		t.Fatal(err)
	}
	got = lines(testenv.TsharkRows(t, "-r", rejects, "-T", "fields", "-E", "separator=|", "-E", "aggregator=;", "-e", "frame.comment", "-e", "frame.interface_name"))
	want = strings.Join([]string{
		"malformed: not-mirror at offset 0;seen on the left tap|eth1",
		"malformed: not-mirror at offset 0|eth2",
		"malformed: not-mirror at offset 0;after the reboot|any",
		"malformed: not-mirror at offset 0|eth1",
	}, "\n")
	if got != want {
		t.Errorf("rejects: tshark\n%s\nwant\n%s", got, want)
	}
}

// pcap-1mib-record.pcap: a mirror datagram, then a 1 MiB record. Every file
// written opens in tshark; the big record is cut to 262144 bytes and
// counted as truncated, or rejected with its reason.
func TestDecapHugeRecord(t *testing.T) {
	in := testenv.HostileCase(t, "pcap-1mib-record.pcap")
	for _, c := range []struct {
		name   string
		format pcapfile.Format
		drop   bool
	}{
		{"pcapng", pcapfile.FormatPcapNG, false},
		{"pcap", pcapfile.FormatPcap, false},
		{"juniper-vn", pcapfile.FormatJuniperVN, false},
		{"drop-other", pcapfile.FormatPcapNG, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fo, _ := os.Create(filepath.Join(dir, "out"))
			fr, _ := os.Create(filepath.Join(dir, "rejects"))
			defer fo.Close()
			defer fr.Close()
			r, cl, err := pcapfile.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			stats, err := RunReader(context.Background(), r, Options{Format: c.format, Out: fo, Rejects: fr,
				Decoder: mirror.Config{PassThrough: !c.drop}})
			if err != nil {
				t.Fatal(err)
			}
			s := stats.Summary()
			outRows := testenv.TsharkRows(t, "-r", fo.Name(), "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len")
			rejRows := testenv.TsharkRows(t, "-r", fr.Name(), "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len", "-e", "frame.comment")
			big := [][]string{{"262144", "1048590"}}
			if c.drop {
				if len(outRows) != 1 || lines(rejRows) != "262144|1048590|malformed: not-mirror at offset 0" || s.Malformed["not-mirror"] != 1 {
					t.Errorf("out %q rejects %q summary %+v", outRows, rejRows, s)
				}
				return
			}
			if len(outRows) != 2 || lines(outRows[1:]) != lines(big) || len(rejRows) != 0 || s.Truncated != 1 {
				t.Errorf("out %q rejects %q summary %+v", outRows, rejRows, s)
			}
		})
	}
}

// mirrorCapture writes a pcap of n copies of f03's mirror datagrams and
// returns its path and where each record ends.
func mirrorCapture(t *testing.T, n int) (string, []int) {
	t.Helper()
	ps, err := pcapfile.ReadFile(testenv.FieldCase(t, "f03_port_8159_acl.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := pcapfile.NewWriter(&buf, pcapfile.Options{Format: pcapfile.FormatPcap, Nanosecond: true})
	if err != nil {
		t.Fatal(err)
	}
	var ends []int
	for i := range n {
		p := ps[i%len(ps)]
		p.Mode = mirror.ModeOther
		if err := w.WritePacket(&p); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "in.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ends
}

// An input file truncated while decap has it open: the run ends with
// ErrShrunk, and the output is a valid file of every packet wholly before
// the cut.
func TestDecapShrinkingInput(t *testing.T) {
	in, ends := mirrorCapture(t, 3000)
	cut := ends[2000] + 50
	dir := t.TempDir()
	fo, err := os.Create(filepath.Join(dir, "out.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer fo.Close()
	r, cl, err := pcapfile.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := os.Truncate(in, int64(cut)); err != nil {
		t.Fatal(err)
	}
	stats, err := RunReader(context.Background(), r, Options{Out: fo, Decoder: mirror.Config{Traffic: mirror.Traffic{Ports: []uint16{8159}}}})
	var fe *pcapfile.FormatError
	if !errors.As(err, &fe) || !errors.Is(err, pcapfile.ErrShrunk) || fe.Offset != int64(ends[2000]) {
		t.Fatalf("%v, want ErrShrunk at offset %d", err, ends[2000])
	}
	if n := stats.Written.Load(); n != 2001 {
		t.Errorf("%d written, want 2001", n)
	}
	rows := testenv.TsharkRows(t, "-r", fo.Name(), "-T", "fields", "-e", "frame.comment")
	if len(rows) != 2001 || !strings.HasPrefix(rows[2000][0], "src_vn=") {
		t.Errorf("tshark reads %d packets", len(rows))
	}
}

// A pcapng input describing more interfaces than allowed stops with the
// limit's error; a higher limit reads it.
func TestDecapInterfaceLimit(t *testing.T) {
	var b []byte
	le := binary.LittleEndian
	block := func(typ uint32, body []byte) {
		b = le.AppendUint32(b, typ)
		b = le.AppendUint32(b, uint32(12+len(body)))
		b = append(b, body...)
		b = le.AppendUint32(b, uint32(12+len(body)))
	}
	block(0x0a0d0d0a, []byte{0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	for range 1500 {
		block(1, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
	in := filepath.Join(t.TempDir(), "many.pcapng")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := decapFile(t, in, Options{})
	if !errors.Is(err, pcapfile.ErrInterfaceLimit) || !strings.Contains(err.Error(), "more than "+strconv.Itoa(pcapfile.DefaultMaxInterfaces)) {
		t.Fatalf("%v, want the interface limit", err)
	}
	if _, _, err := decapFile(t, in, Options{MaxInterfaces: 2000}); err != nil {
		t.Fatalf("with a limit of 2000: %v", err)
	}
}

// A frame referred to in a mapped input that shrank can no longer be
// written: the output file is cut back to where that buffer began, so it
// still ends on a whole block, and the error says why. Without a file
// behind it, the fault becomes the same error instead of a SIGBUS.
func TestAsyncWriterLostFrame(t *testing.T) {
	page := os.Getpagesize()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, bytes.Repeat([]byte{7}, 4*page), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, 4*page, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	if err := os.Truncate(src, int64(page)); err != nil {
		t.Fatal(err)
	}
	lost := m[2*page : 3*page]

	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	a := newAsyncWriter(out)
	a.region = m
	if _, err := a.Write([]byte("whole blocks ")); err != nil {
		t.Fatal(err)
	}
	a.WriteVector(nil, [][]byte{[]byte("header "), m[:10], lost, []byte("trailer")})
	err = a.Close()
	var fe *pcapfile.FormatError
	if !errors.As(err, &fe) || !errors.Is(err, pcapfile.ErrShrunk) || fe.Offset != int64(2*page) {
		t.Fatalf("Close: %v, want ErrShrunk at offset %d", err, 2*page)
	}
	if got, _ := os.ReadFile(out.Name()); string(got) != "whole blocks " {
		t.Errorf("output %q, want the first buffer only", got)
	}

	var mem bytes.Buffer
	a = newAsyncWriter(struct{ io.Writer }{&mem})
	a.region = m
	a.WriteVector(nil, [][]byte{[]byte("header "), lost})
	// The copy faults somewhere in the lost page.
	if err := a.Close(); !errors.As(err, &fe) || !errors.Is(err, pcapfile.ErrShrunk) || fe.Offset < int64(2*page) || fe.Offset >= int64(3*page) {
		t.Fatalf("Close: %v, want ErrShrunk in the third page", err)
	}
}
