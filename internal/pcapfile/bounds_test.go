package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// pcap-1mib-record.pcap has a 210-byte mirror datagram and a 1 MiB record
// (snaplen 16 MiB), longer than Wireshark reads. The Reader cuts it to
// MaxRecord, keeping its length, and every file written from it opens in
// tshark.
func TestMaxRecord(t *testing.T) {
	name := testenv.HostileCase(t, "pcap-1mib-record.pcap")
	ps, err := ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || len(ps[0].Data) != 210 || len(ps[1].Data) != MaxRecord || ps[1].WireLen != 1048590 {
		t.Fatalf("read %d packets: %+v", len(ps), ps)
	}

	// The same in a pcapng block; the Writer cuts a longer frame from any
	// source, too.
	n := &ngBuilder{order: binary.BigEndian}
	n.shb()
	n.idb(1, 0, nil)
	big := bytes.Repeat([]byte{0x5a}, 1<<20)
	n.epb(0, 1, big, 1<<20+5)
	got := readAll(t, n.b)
	if len(got) != 1 || len(got[0].Data) != MaxRecord || got[0].WireLen != 1<<20+5 {
		t.Fatalf("pcapng: %d packets", len(got))
	}

	long := &mirror.Packet{Timestamp: time.Unix(1, 0), LinkType: layers.LinkTypeEthernet, Data: big, WireLen: len(big), Mode: mirror.ModeOther}
	dec := &mirror.Packet{Timestamp: time.Unix(2, 0), LinkType: layers.LinkTypeEthernet, Data: big, WireLen: len(big),
		Mode: mirror.ModeJuniper, Frame: big[100:], FrameLen: len(big) - 100}
	in := []*mirror.Packet{&ps[0], &ps[1], long, dec}
	for i := range ps {
		ps[i].Mode = mirror.ModeOther
	}
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN, FormatRaw} {
		path := writeTemp(t, "out", writeAll(t, Options{Format: f}, in))
		rows := testenv.TsharkRows(t, "-r", path, "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len")
		want := [][2]int{{210, 210}, {MaxRecord, 1048590}, {MaxRecord, 1 << 20}, {MaxRecord, 1<<20 - 100}}
		if f == FormatJuniperVN {
			want[3][1] += 2 // the empty TLV list in front
		}
		if f == FormatRaw {
			want[3][1] = 1 << 20 // as captured
		}
		for i, w := range want {
			if i >= len(rows) || rows[i][0] != strconv.Itoa(w[0]) || rows[i][1] != strconv.Itoa(w[1]) {
				t.Errorf("%v: tshark %q, want %v", f, rows, want)
				break
			}
		}
	}
}

// shrinkFile writes a classic pcap file of about size bytes and returns
// its path, its bytes and where each record starts.
func shrinkFile(t *testing.T, size int) (string, []byte, []int) {
	t.Helper()
	ps := testPackets(t)[:20]
	for _, p := range ps {
		p.Mode = mirror.ModeOther
	}
	var all []*mirror.Packet
	for n := 0; n < size; {
		for _, p := range ps {
			all = append(all, p)
			n += 16 + len(p.Data)
		}
	}
	file := writeAll(t, Options{Format: FormatPcap}, all)
	var starts []int
	for off := 24; off < len(file); off += 16 + int(binary.LittleEndian.Uint32(file[off+8:])) {
		starts = append(starts, off)
	}
	return writeTemp(t, "in.pcap", file), file, starts
}

// readShrunk reads r to its end and returns the packets and the error.
func readShrunk(r *Reader) (n int, err error) {
	var p mirror.Packet
	err = r.Guard(func() error {
		for {
			if err := r.Next(&p); err != nil {
				return err
			}
			n++
		}
	})
	return n, err
}

// A mapped file that shrinks while it is read ends the packets with
// ErrShrunk at the first record not wholly within its new size: never a
// SIGBUS, never a packet read from beyond the end, never a quiet end.
func TestShrinkingInput(t *testing.T) {
	const page = 4096
	for _, c := range []struct {
		name   string
		size   int // of the file
		first  int // packets read before the file shrinks
		cutRec int // the record the file is cut in
		at     int // bytes into that record; 0: at its start
		page   bool
	}{
		{name: "after opening, inside a record", size: 300 << 10, cutRec: 700, at: 33},
		{name: "after opening, at a record boundary", size: 300 << 10, cutRec: 700},
		{name: "while reading", size: 3 << 20, first: 5, cutRec: 0, at: 10},
		{name: "while reading, at a page boundary", size: 300 << 10, first: 5, page: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, file, starts := shrinkFile(t, c.size)
			cut := starts[c.cutRec] + c.at
			if c.cutRec == 0 {
				cut = len(file) * 5 / 6
			}
			if c.page {
				cut = 50 * page
			}
			r, cl, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if r.Mapped() == nil {
				t.Fatal("not mapped")
			}
			var p mirror.Packet
			for range c.first {
				if err := r.Next(&p); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Truncate(path, int64(cut)); err != nil {
				t.Fatal(err)
			}
			n, err := readShrunk(r)
			// Every record wholly within the new size is read.
			whole := 0
			for i, s := range starts {
				end := len(file)
				if i+1 < len(starts) {
					end = starts[i+1]
				}
				if s >= 0 && end <= cut {
					whole++
				}
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrShrunk) {
				t.Fatalf("after %d packets: %v, want ErrShrunk", c.first+n, err)
			}
			if c.first+n != whole {
				t.Errorf("%d packets read, %d lie wholly within %d bytes", c.first+n, whole, cut)
			}
			if fe.Offset != int64(starts[whole]) {
				t.Errorf("error at offset %d, want %d, where the first record cut off starts", fe.Offset, starts[whole])
			}
		})
	}
}

// Bytes lost after the Reader handed them out fault when touched; Guard
// turns that into ErrShrunk instead of a SIGBUS.
func TestGuardCatchesFault(t *testing.T) {
	path, _, _ := shrinkFile(t, 300<<10)
	r, cl, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var p mirror.Packet
	for r.Offset() < 50000 {
		if err := r.Next(&p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	var sum byte
	err = r.Guard(func() error {
		for _, c := range p.Data {
			sum += c
		}
		return nil
	})
	var fe *FormatError
	if !errors.As(err, &fe) || !errors.Is(err, ErrShrunk) || fe.Offset < 45000 || fe.Offset >= 50000 {
		t.Fatalf("%v, want ErrShrunk at the packet's bytes", err)
	}
	// A panic that is not a fault on the input passes through.
	defer func() {
		if v := recover(); v != "boom" {
			t.Errorf("recovered %v", v)
		}
	}()
	r.Guard(func() error { panic("boom") })
}

// A packet whose bytes are lost while it is being written: the Writer
// drops the block it had begun, and what it flushes is a valid file of the
// packets before.
func TestWriterDropsFaultedBlock(t *testing.T) {
	path, _, _ := shrinkFile(t, 300<<10)
	r, cl, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m := r.Mapped()
	if err := os.Truncate(path, 8192); err != nil {
		t.Fatal(err)
	}
	good := testPackets(t)[0]
	lost := &mirror.Packet{Timestamp: time.Unix(3, 0), LinkType: layers.LinkTypeEthernet, Data: m[100000:101000], WireLen: 1000,
		Mode: mirror.ModeOther, Interface: 0}
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatRaw} {
		var out bytes.Buffer
		w, err := NewWriter(&out, Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		err = r.Guard(func() error {
			if err := w.WritePacket(good); err != nil {
				return err
			}
			return w.WritePacket(lost)
		})
		if !errors.Is(err, ErrShrunk) {
			t.Fatalf("%v: %v, want ErrShrunk", f, err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, out.Bytes())
		if len(got) != 1 {
			t.Errorf("%v: %d packets, want 1", f, len(got))
		}
		if f == FormatPcapNG {
			path := writeTemp(t, "out", out.Bytes())
			if rows := testenv.TsharkRows(t, "-r", path, "-T", "fields", "-e", "frame.number"); len(rows) != 1 {
				t.Errorf("%v: tshark reads %d packets", f, len(rows))
			}
		}
	}
}

// A stream, or memory, has no size to watch; Guard just runs the function.
func TestGuardStream(t *testing.T) {
	r, err := NewReader(bytes.NewReader(writeAll(t, Options{Format: FormatPcap}, testPackets(t)[:3])))
	if err != nil {
		t.Fatal(err)
	}
	n, err := readShrunk(r)
	if n != 3 || err != io.EOF {
		t.Errorf("%d packets, %v", n, err)
	}
}

// Watching a mapped file for shrinking costs no allocation per packet.
func TestMappedReadNoAlloc(t *testing.T) {
	path, _, starts := shrinkFile(t, 2<<20)
	r, cl, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := readShrunk(r)
	runtime.ReadMemStats(&after)
	if err != io.EOF || n != len(starts) {
		t.Fatalf("%d packets of %d: %v", n, len(starts), err)
	}
	if m := after.Mallocs - before.Mallocs; m > 10 {
		t.Errorf("%d allocations for %d packets", m, n)
	}
}

// A packet whose bytes are lost after the Encoder described its interface:
// that description is dropped with the record, so the next packet of the
// interface describes it again, in the Writer and in the RefWriter alike.
func TestFaultedInterfaceDescribedAgain(t *testing.T) {
	path, _, _ := shrinkFile(t, 300<<10)
	r, cl, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m := r.Mapped()
	if err := os.Truncate(path, 8192); err != nil {
		t.Fatal(err)
	}
	good := testPackets(t)[0]
	// Too short to be referred to: the RefWriter copies it too.
	lost := &mirror.Packet{Timestamp: time.Unix(3, 0), LinkType: layers.LinkTypeRaw, Data: m[100000:100100], WireLen: 100,
		Mode: mirror.ModeOther}
	// The same interface and link type, with bytes that are there.
	again := *lost
	again.Data = bytes.Repeat([]byte{1}, 100)
	for _, ref := range []bool{false, true} {
		var out vecSink
		var write func(*mirror.Packet) error
		var flush func() error
		if ref {
			w, err := NewRefWriter(&out, Options{Format: FormatPcapNG})
			if err != nil {
				t.Fatal(err)
			}
			w.Refer(m)
			write, flush = w.WritePacket, w.Flush
		} else {
			w, err := NewWriter(&out, Options{Format: FormatPcapNG})
			if err != nil {
				t.Fatal(err)
			}
			write, flush = w.WritePacket, w.Flush
		}
		err = r.Guard(func() error {
			if err := write(good); err != nil {
				return err
			}
			return write(lost)
		})
		if !errors.Is(err, ErrShrunk) {
			t.Fatalf("ref=%v: %v, want ErrShrunk", ref, err)
		}
		if err := write(&again); err != nil {
			t.Fatal(err)
		}
		if err := flush(); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, out.Bytes())
		if len(got) != 2 || got[1].LinkType != layers.LinkTypeRaw || !bytes.Equal(got[1].Data, again.Data) {
			t.Fatalf("ref=%v: %d packets, want the good one and the one after the fault", ref, len(got))
		}
	}
}
