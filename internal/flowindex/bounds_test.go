package flowindex

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// hostFlows returns n packets of flows 10.1.x.y -> 10.2.0.1:80, packet i
// in flow i%flows.
func hostFlows(t testing.TB, n, flows int) []*mirror.Packet {
	frames := make([][]byte, flows)
	for i := range frames {
		frames[i] = frame(t, hostAddr(i), "10.2.0.1", l4{kind: "tcp", sport: 1024, dport: 80, flags: 16})
	}
	ps := make([]*mirror.Packet, n)
	for i := range ps {
		ps[i] = packet(time.Duration(i)*time.Microsecond, frames[i%flows], vnWeb, vnDB, mirror.DirIngress, "10.10.0.11")
	}
	return ps
}

func hostAddr(i int) string { return fmt.Sprintf("10.1.%d.%d", i/250, i%250+1) }

// covered says whether the record off+n lies whole in one of the overflow
// row's ranges.
func covered(r Row, off int64, n int) bool {
	for i, o := range r.Offsets {
		if off >= o && off+int64(n) <= o+int64(r.Lengths[i]) {
			return true
		}
	}
	return false
}

// findable checks that a lookup of each packet's source host finds it:
// in a row of its flow, or in the overflow row's ranges.
func findable(t *testing.T, ix *Index, ps []*mirror.Packet, c capture, flows int) (inRows, inOverflow int) {
	t.Helper()
	for f := range flows {
		rows, err := ix.Lookup(Query{Addrs: []netip.Prefix{netip.MustParsePrefix(hostAddr(f) + "/32")}})
		if err != nil {
			t.Fatal(err)
		}
		for i := f; i < len(ps); i += flows {
			found := false
			for _, r := range rows {
				if r.Overflow && covered(r, c.offs[i], c.lens[i]) {
					found = true
					inOverflow++
					break
				}
				if !r.Overflow && slices.Contains(r.Offsets, c.offs[i]) {
					if r.SrcAddr != hostAddr(f) {
						t.Fatalf("packet %d in the row of %s", i, r.SrcAddr)
					}
					found = true
					inRows++
					break
				}
			}
			if !found {
				t.Fatalf("packet %d of %s not found in %d rows", i, hostAddr(f), len(rows))
			}
		}
	}
	return inRows, inOverflow
}

// TestMaxFlows: the packets of flows past MaxFlows go to the overflow
// row, which every lookup returns and whose ranges hold their records.
func TestMaxFlows(t *testing.T) {
	const flows, max = 6, 3
	ps := hostFlows(t, 30, flows)
	c := encode(t, ps)
	data := build(t, Options{MaxFlows: max}, ps, c)
	ix, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	all, err := ix.Lookup(Query{Ports: []uint16{9}})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || !all[0].Overflow {
		t.Fatalf("a lookup that matches no flow returned %+v, want the overflow row", all)
	}
	ov := all[0]
	if ov.Packets != 15 || ov.First != t0.Add(3*time.Microsecond) || ov.Last != t0.Add(29*time.Microsecond) || ov.SrcAddr != "" {
		t.Errorf("overflow row %+v: want the 15 packets of 3 flows, 3µs..29µs", ov)
	}
	if in, over := findable(t, ix, ps, c, flows); in != 15 || over != 15 {
		t.Errorf("%d packets in flow rows, %d in the overflow, want 15 and 15", in, over)
	}
}

// TestMaxRecords: past MaxRecords a flow still counts its packets, and
// their records lie in the overflow row's ranges.
func TestMaxRecords(t *testing.T) {
	const flows = 4
	ps := hostFlows(t, 20, flows)
	c := encode(t, ps)
	data := build(t, Options{MaxRecords: 10}, ps, c)
	ix, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ix.Lookup(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != flows+1 {
		t.Fatalf("%d rows, want %d and the overflow row", len(rows), flows)
	}
	for _, r := range rows[1:] {
		if r.Packets != 5 || len(r.Offsets) > 3 {
			t.Errorf("%s: %d packets, %d offsets: want 5 packets and at most 3 offsets", r.SrcAddr, r.Packets, len(r.Offsets))
		}
	}
	// The records past the tenth are adjacent: one range holds them.
	if ov := rows[0]; !ov.Overflow || ov.Packets != 0 || len(ov.Offsets) != 1 {
		t.Errorf("overflow row %+v: want no packets of its own and one range", ov)
	}
	if in, over := findable(t, ix, ps, c, flows); in != 10 || over != 10 {
		t.Errorf("%d packets in flow rows, %d in the overflow, want 10 and 10", in, over)
	}
}

// TestOverflowRangesBounded: scattered overflow records are held in at
// most maxSpans ranges that still cover every one of them.
func TestOverflowRangesBounded(t *testing.T) {
	b := NewBuilder(Options{})
	var offs []int64
	for i := range 3 * maxSpans {
		off := int64(i) * 1000
		offs = append(offs, off)
		b.overflow(int64(i), 100, off, 100)
	}
	if len(b.spans) > maxSpans {
		t.Fatalf("%d ranges, want at most %d", len(b.spans), maxSpans)
	}
	r := b.Rows()[0]
	for _, off := range offs {
		if !covered(r, off, 100) {
			t.Fatalf("record at %d not covered", off)
		}
	}
	if !slices.IsSorted(r.Offsets) {
		t.Error("ranges not ascending")
	}
}

// TestPruning: an index of thousands of flows has several row groups; a
// one-host lookup reads the footer, a few bloom filter blocks and the
// pages of the one group that holds the host, a small part of the index.
func TestPruning(t *testing.T) {
	const flows = 5000
	ps := hostFlows(t, 2*flows, flows)
	c := encode(t, ps)
	data := build(t, Options{}, ps, c)
	cr := &countingReaderAt{r: bytes.NewReader(data)}
	ix, err := Open(cr, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	footer := int64(binary.LittleEndian.Uint32(data[len(data)-8:]))
	if ix.RowGroups() < 4 {
		t.Errorf("%d row groups for %d flows, want several", ix.RowGroups(), flows)
	}
	if cr.n > footer+8+8+4 {
		t.Errorf("Open read %d bytes; the footer is %d", cr.n, footer)
	}
	opened := cr.n
	host := hostAddr(4321)
	rows, err := ix.Lookup(Query{Addrs: []netip.Prefix{netip.MustParsePrefix(host + "/32")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].SrcAddr != host || !slices.Equal(rows[0].Offsets, []int64{c.offs[4321], c.offs[4321+flows]}) {
		t.Fatalf("lookup of %s: %+v", host, rows)
	}
	read := cr.n - opened
	t.Logf("index %d bytes (%d row groups, footer %d): Open read %d, a one-host Lookup %d (%.1f %%)",
		len(data), ix.RowGroups(), footer, opened, read, 100*float64(read)/float64(len(data)))
	if read > int64(len(data))/3 {
		t.Errorf("a one-host lookup read %d of %d bytes", read, len(data))
	}
}

// TestFull: Full says so once the next packet may not have a flow of its
// own, and not before; a writer starting a new file then keeps every
// packet in a flow row.
func TestFull(t *testing.T) {
	const max = 3
	ps := hostFlows(t, 30, 6)
	c := encode(t, ps)
	b := NewBuilder(Options{MaxFlows: max})
	for i, p := range ps {
		if b.Full() {
			if b.Flows() != max {
				t.Fatalf("full at %d flows, want %d", b.Flows(), max)
			}
			return
		}
		b.Add(p, c.offs[i], c.lens[i])
		if b.Flows() > max {
			t.Fatalf("%d flows past MaxFlows %d without Full", b.Flows(), max)
		}
	}
	t.Fatal("never full")
}
