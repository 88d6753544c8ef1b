package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// decodeFile runs every packet of a capture file through a default
// Decoder and returns the status of each and the packets decoded, copied.
func decodeFile(t *testing.T, name string) (statuses []mirror.Status, decoded []mirror.Packet, flushed []mirror.Reason) {
	t.Helper()
	d := mirror.NewDecoder(mirror.Config{})
	err := eachPacket(name, func(p *mirror.Packet) {
		st := d.Decode(p)
		statuses = append(statuses, st)
		if st == mirror.Decoded {
			q := *p
			q.Frame = append([]byte(nil), p.Frame...)
			q.Meta.SrcVN = append([]byte(nil), p.Meta.SrcVN...)
			q.Meta.DstVN = append([]byte(nil), p.Meta.DstVN...)
			decoded = append(decoded, q)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Flush(func(p *mirror.Packet) { flushed = append(flushed, p.Err) })
	return statuses, decoded, flushed
}

func TestJunkfragNeverCompletes(t *testing.T) {
	name := filepath.Join(t.TempDir(), "junk.pcap")
	if err := junkfrag([]string{"-n", "50", "-o", name}); err != nil {
		t.Fatal(err)
	}
	statuses, _, flushed := decodeFile(t, name)
	if len(statuses) != 50 {
		t.Fatalf("%d packets, want 50", len(statuses))
	}
	for i, st := range statuses {
		if st != mirror.Held {
			t.Errorf("fragment %d: status %d, want Held", i, st)
		}
	}
	if len(flushed) != 50 {
		t.Fatalf("%d fragments handed back at the end, want 50", len(flushed))
	}
	for _, r := range flushed {
		if r != mirror.ErrFragment {
			t.Errorf("handed back as %v, want %v", r, mirror.ErrFragment)
		}
	}
}

func TestVnpairsAllDistinct(t *testing.T) {
	const n = 400
	name := filepath.Join(t.TempDir(), "pairs.pcap")
	if err := vnpairs([]string{"-n", "400", "-o", name}); err != nil {
		t.Fatal(err)
	}
	_, decoded, _ := decodeFile(t, name)
	if len(decoded) != n {
		t.Fatalf("%d decoded, want %d", len(decoded), n)
	}
	pairs := map[string]bool{}
	for i, p := range decoded {
		src, dst := pairName(i)
		if string(p.Meta.SrcVN) != src || string(p.Meta.DstVN) != dst {
			t.Fatalf("packet %d: pair %q -> %q, want %q -> %q", i, p.Meta.SrcVN, p.Meta.DstVN, src, dst)
		}
		pairs[src+"\x00"+dst] = true
		if _, ok := frameNumber(p.Frame); ok {
			t.Fatalf("packet %d has the legitimate traffic's MAC", i)
		}
	}
	if len(pairs) != n {
		t.Fatalf("%d distinct pairs, want %d", len(pairs), n)
	}
}

// legitFrame is the numbered inner frame of case i, an IPv4 frame size
// bytes long, as vrsniff gen -numbered writes it.
func legitFrame(i uint32, size int) []byte {
	b := make([]byte, size)
	copy(b, []byte{2, 0, 0, 0, 0, 1, 0x02, 0x4e})
	binary.BigEndian.PutUint32(b[8:], i)
	b[12], b[14] = 0x08, 0x45
	binary.BigEndian.PutUint16(b[16:], uint16(size-14))
	return b
}

// spliced is a numbered frame whose IP header says more than it holds, as
// one put together from fragments of two datagrams would.
func spliced(i uint32) []byte {
	b := legitFrame(i, 100)
	binary.BigEndian.PutUint16(b[16:], 1500)
	return b
}

func TestTallyFiles(t *testing.T) {
	dir := t.TempDir()
	w, err := createPcap(filepath.Join(dir, "vrsniff_00001_20261126120000.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range [][]byte{
		legitFrame(0, 64), legitFrame(1, 1514), legitFrame(3, 64),
		legitFrame(3, 64), // again
		legitFrame(9, 64), // past -sent
		spliced(5),        // not as long as its header says
		innerFrame(2),     // attack traffic
	} {
		if err := w.write(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.writeRecord(legitFrame(4, 64)[:60], 64); err != nil { // cut
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	// Frames in the rejects directory and excluded files do not count.
	if err := os.Mkdir(filepath.Join(dir, "rejects"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rejects/r.pcap", "vrsniff_00002_20261126120000_other.pcap"} {
		w, err := createPcap(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		w.write(legitFrame(2, 64))
		if err := w.close(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tallyFiles(6, "*_other.pcap", []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	want := tally{found: 3, dup: 1, cut: 2, outside: 1, other: 1, files: 1}
	if got != want {
		t.Fatalf("tally %+v, want %+v", got, want)
	}
	got, err = tallyFiles(6, "", []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if want.found, want.files = 4, 2; got != want {
		t.Fatalf("without -exclude: tally %+v, want %+v", got, want)
	}
}

func TestRepeat(t *testing.T) {
	seed := testenv.HostileCase(t, "nic-vlan-seed.pcap")
	st, err := os.Stat(seed)
	if err != nil {
		t.Fatal(err)
	}
	body := st.Size() - 24
	out := filepath.Join(t.TempDir(), "r.pcap")
	if err := repeat([]string{"-size", "3M", "-o", out, seed}); err != nil {
		t.Fatal(err)
	}
	copies := (3<<20 - 24 + body - 1) / body
	if st, err := os.Stat(out); err != nil || st.Size() != 24+copies*body {
		t.Fatalf("size %v (%v), want %d", st.Size(), err, 24+copies*body)
	}
	seedStatuses, _, _ := decodeFile(t, seed)
	statuses, _, _ := decodeFile(t, out)
	if int64(len(statuses)) != copies*int64(len(seedStatuses)) {
		t.Fatalf("%d packets, want %d copies of %d", len(statuses), copies, len(seedStatuses))
	}
}

// count finds every case of the legitimate traffic the benchmarks send,
// vrsniff gen -numbered with one full-size frame in ten, once decoded.
func TestTallyGenNumbered(t *testing.T) {
	const n = 300
	sizes, err := gen.ParseFrameSizes("64=9,1514")
	if err != nil {
		t.Fatal(err)
	}
	g, err := gen.New(gen.Options{Seed: 3, Mix: gen.Profiles["acl"], LinkType: layers.LinkTypeEthernet,
		FrameSizes: sizes, VNs: []string{"default-domain:admin:vn-left"}, Numbered: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "legit.pcap")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, err := gen.Write(f, nil, g, n, gen.FormatPcap)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// hostile.sh sends n + n/10 records for n cases: one more for each
	// full-size frame, in two fragments; an ARP frame stays short.
	if st.Packets != n+st.Fragmented || st.Packets > n+n/10 || st.Fragmented < n/20 {
		t.Fatalf("%d packets, %d fragmented datagrams for %d cases", st.Packets, st.Fragmented, n)
	}
	_, decoded, _ := decodeFile(t, raw)
	out := filepath.Join(dir, "captured", "vrsniff_00001_20261126120000.pcap")
	if err := os.Mkdir(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := createPcap(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range decoded {
		if err := w.write(p.Frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	got, err := tallyFiles(n, "", []string{filepath.Dir(out)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (tally{found: n, files: 1}); got != want {
		t.Fatalf("tally %+v, want %+v", got, want)
	}
}
