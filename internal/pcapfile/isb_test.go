package pcapfile

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// isbFile encodes a pcapng file of the live capture interface described
// as capture, with ps and an ISB for interface 0 at the end.
func isbFile(t *testing.T, capture Interface, ps []*mirror.Packet, s InterfaceStats) []byte {
	t.Helper()
	e, err := NewEncoder(Options{Format: FormatPcapNG, Capture: capture})
	if err != nil {
		t.Fatal(err)
	}
	b := e.AppendHeader(nil)
	for _, p := range ps {
		if b, err = e.Append(b, p); err != nil {
			t.Fatal(err)
		}
	}
	return e.AppendISB(b, 0, s)
}

func TestAppendISBBytes(t *testing.T) {
	start := time.Unix(1700000000, 5)
	end := start.Add(90 * time.Second)
	e, err := NewEncoder(Options{Format: FormatPcapNG})
	if err != nil {
		t.Fatal(err)
	}
	head := e.AppendHeader(nil)
	b := e.AppendISB(nil, 0, InterfaceStats{Time: end, Start: start, End: end, Received: 1000, IfDropped: 480, OSDropped: 7, HasReceived: true, HasIfDropped: true, HasOSDropped: true})
	want := []byte{
		5, 0, 0, 0, 88, 0, 0, 0, // block type, length
		0, 0, 0, 0, // interface id
	}
	ts := func(t time.Time) []byte {
		n := uint64(t.UnixNano())
		return le.AppendUint32(le.AppendUint32(nil, uint32(n>>32)), uint32(n))
	}
	opt := func(code uint16, v []byte) []byte {
		return append(le.AppendUint16(le.AppendUint16(nil, code), uint16(len(v))), v...)
	}
	want = append(want, ts(end)...)
	want = append(want, opt(2, ts(start))...)
	want = append(want, opt(3, ts(end))...)
	want = append(want, opt(4, le.AppendUint64(nil, 1000))...)
	want = append(want, opt(5, le.AppendUint64(nil, 480))...)
	want = append(want, opt(7, le.AppendUint64(nil, 7))...)
	want = append(want, 0, 0, 0, 0, 88, 0, 0, 0)
	if !bytes.Equal(b, want) {
		t.Fatalf("ISB\n got %x\nwant %x", b, want)
	}
	// A Reader skips the block: the file still reads as one without it.
	if got := readAll(t, append(head, b...)); len(got) != 0 {
		t.Fatalf("read %d packets from a file without any", len(got))
	}

	// Only the times without counts; nothing for an interface not
	// described, nor in classic pcap.
	if b := e.AppendISB(nil, 0, InterfaceStats{Time: end}); len(b) != 24 {
		t.Errorf("ISB without counts or span is %d bytes, want 24", len(b))
	}
	if b := e.AppendISB(nil, 1, InterfaceStats{HasReceived: true}); len(b) != 0 {
		t.Errorf("ISB for an undescribed interface: %x", b)
	}
	p, _ := NewEncoder(Options{Format: FormatPcap})
	p.AppendHeader(nil)
	if b := p.AppendISB(nil, 0, InterfaceStats{HasReceived: true}); len(b) != 0 {
		t.Errorf("ISB in classic pcap: %x", b)
	}
}

// TestISBAndIDBOptionsTshark checks, with tshark and capinfos, that the
// interface options and the statistics read back as written.
func TestISBAndIDBOptionsTshark(t *testing.T) {
	ps := testPackets(t)[:3]
	capture := Interface{Name: "eth1", Description: "vrsniff decoded mirror traffic from eth1, ports 8099",
		Filter: "src vn default-domain:admin:vn-a"}
	start, end := ps[0].Timestamp.Add(-time.Second), ps[2].Timestamp.Add(time.Second)
	path := writeTemp(t, "isb.pcapng", isbFile(t, capture, ps,
		InterfaceStats{Time: end, Start: start, End: end, Received: 1000, IfDropped: 480, OSDropped: 7, HasReceived: true, HasIfDropped: true, HasOSDropped: true}))

	rows := testenv.TsharkRows(t, "-r", path, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.interface_description")
	if len(rows) != 3 || rows[0][0] != capture.Name || rows[0][1] != capture.Description {
		t.Fatalf("tshark interface fields %q, want %q", rows, []string{capture.Name, capture.Description})
	}
	recv, ifDrop, osDrop := testenv.InterfaceStats(t, path)
	if fmt.Sprint(recv, ifDrop, osDrop) != "[1000] [480] [7]" {
		t.Errorf("tshark reads the ISB as received %v, dropped %v, dropped by OS %v; want 1000, 480, 7", recv, ifDrop, osDrop)
	}
	out := run(t, "capinfos", "-I", path)
	for _, w := range []string{"Capture length = ", "Number of stat entries = 1", "Interface #0 info:", "Name = eth1",
		"Description = " + capture.Description, "Filter string = " + capture.Filter} {
		if !bytes.Contains([]byte(out), []byte(w)) {
			t.Errorf("capinfos -I lacks %q:\n%s", w, out)
		}
	}
}
