package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

var (
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	vns = []string{"default-domain:admin:vn-a", "default-domain:admin:vn-b", "default-domain:proj 2:web/db"}
)

// testPacket is packet i of the reference stream: VN pair i%3, 10 ms
// apart, ingress and egress in turn, UDP source port 1000+i.
func testPacket(t testing.TB, i int) *mirror.Packet {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, byte(2 + i%3)}}
	udp := &layers.UDP{SrcPort: layers.UDPPort(1000 + i), DstPort: 5000}
	udp.SetNetworkLayerForChecksum(ip)
	f := testenv.Serialize(t,
		&layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		ip, udp,
		gopacketPayload(bytes.Repeat([]byte{byte(i)}, 20+i%50)))
	k := i % 3
	dir := mirror.DirIngress
	if i%2 == 1 {
		dir = mirror.DirEgress
	}
	var notes [][]byte
	if i%5 == 0 {
		notes = [][]byte{[]byte(fmt.Sprintf("note %d", i))} // a comment of the source's own
	}
	return &mirror.Packet{
		Timestamp: t0.Add(time.Duration(i) * 10 * time.Millisecond),
		Comments:  notes,
		Mode:      mirror.ModeJuniper,
		Frame:     f,
		FrameLen:  len(f),
		Meta: mirror.Meta{
			SrcVN: []byte(vns[k]), DstVN: []byte(vns[(k+1)%3]), Direction: dir,
			Host: netip.AddrFrom4([4]byte{10, 1, 1, byte(k)}), FlagBits: 32, Flags: mirror.FlagPass | mirror.FlagMirror,
		},
	}
}

// writeRing writes packets into a ring in dir, rotated every few hundred
// bytes, and closes it.
func writeRing(t testing.TB, dir string, o ring.Options, ps []*mirror.Packet) {
	t.Helper()
	o.MaxSize = 1500
	r, err := ring.New(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := r.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

var rowFields = []string{"-T", "fields", "-e", "frame.time_epoch", "-e", "udp.srcport", "-e", "frame.len",
	"-e", "frame.comment", "-e", "frame.packet_flags_direction", "-e", "frame.interface_id"}

func tsharkRows(t testing.TB, path string) [][]string {
	t.Helper()
	return testenv.TsharkRows(t, append([]string{"-r", path}, rowFields...)...)
}

// extractFile runs Write over srcs into a file and returns its path.
func extractFile(t testing.TB, srcs []Source, o Options) (string, Stats) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.pcapng")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Write(context.Background(), f, srcs, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out, st
}

func packets(t testing.TB, n int) []*mirror.Packet {
	ps := make([]*mirror.Packet, n)
	for i := range ps {
		ps[i] = testPacket(t, i)
	}
	return ps
}

// TestWriteWindowAndFilter splits a reference stream into rotated files,
// two sets at once (a file per VN pair, so files overlap in time), and
// checks that the merge over a window, with a filter, holds exactly the
// reference's packets that qualify, in time order.
func TestWriteWindowAndFilter(t *testing.T) {
	ps := packets(t, 300)
	dir := t.TempDir()
	writeRing(t, dir, ring.Options{Split: vnpair.Directed}, ps)
	srcs, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) < 10 {
		t.Fatalf("%d files; want a reference split into many", len(srcs))
	}
	since, until := t0.Add(455*time.Millisecond), t0.Add(2500*time.Millisecond)
	for _, tc := range []struct {
		name string
		fo   filter.Options
		keep func(i int) bool
		m    func(*mirror.Packet) bool // Options.Match
	}{
		{"all", filter.Options{}, func(int) bool { return true }, nil},
		{"vn", filter.Options{VN: "vn-a"}, func(i int) bool { return i%3 != 1 }, nil},
		{"dst-vn and direction", filter.Options{DstVN: "*:web/db", Direction: "egress"}, func(i int) bool { return i%3 == 1 && i%2 == 1 }, nil},
		{"bpf", filter.Options{BPF: "udp and dst host 10.0.0.3"}, func(i int) bool { return i%3 == 1 }, nil},
		{"bpf and match", filter.Options{BPF: "udp and dst host 10.0.0.3"}, func(i int) bool { return i%3 == 1 && i%2 == 1 },
			func(p *mirror.Packet) bool { return p.Meta.Direction == mirror.DirEgress }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := filter.New(tc.fo)
			if err != nil {
				t.Fatal(err)
			}
			var want []*mirror.Packet
			for i, p := range ps {
				if !p.Timestamp.Before(since) && p.Timestamp.Before(until) && tc.keep(i) {
					want = append(want, p)
				}
			}
			ref := filepath.Join(t.TempDir(), "ref.pcapng")
			capturetest.WritePcapng(t, ref, want)
			out, st := extractFile(t, srcs, Options{Since: since, Until: until, Filter: f, Match: tc.m})
			got, exp := tsharkRows(t, out), tsharkRows(t, ref)
			if len(exp) == 0 || !slices.EqualFunc(got, exp, slices.Equal) {
				t.Errorf("extract gave %d packets, want %d:\n%q\nwant\n%q", len(got), len(exp), got, exp)
			}
			if !slices.ContainsFunc(got, func(r []string) bool { return strings.Contains(r[3], ",note ") }) {
				t.Errorf("no packet kept its own comment after the metadata: %q", got)
			}
			if st.Written != uint64(len(want)) || st.Skipped == 0 || st.Warnings() != 0 {
				t.Errorf("stats %+v, want %d written, files skipped by time, no warnings", st, len(want))
			}
		})
	}
}

// TestWriteOverlappingSets merges two stores whose files interleave in
// time: the even and the odd packets of the reference.
func TestWriteOverlappingSets(t *testing.T) {
	ps := packets(t, 120)
	var even, odd []*mirror.Packet
	for i, p := range ps {
		if i%2 == 0 {
			even = append(even, p)
		} else {
			odd = append(odd, p)
		}
	}
	a, b := t.TempDir(), t.TempDir()
	writeRing(t, a, ring.Options{}, even)
	writeRing(t, b, ring.Options{Prefix: "other"}, odd)
	sa, err := Dir(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := Dir(b)
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(t.TempDir(), "ref.pcapng")
	capturetest.WritePcapng(t, ref, ps)
	out, st := extractFile(t, append(sb, sa...), Options{})
	if got, exp := tsharkRows(t, out), tsharkRows(t, ref); !slices.EqualFunc(got, exp, slices.Equal) {
		t.Errorf("merge of interleaved sets:\n%q\nwant\n%q", got, exp)
	}
	if st.Files != len(sa)+len(sb) {
		t.Errorf("read %d files, want %d", st.Files, len(sa)+len(sb))
	}
	// One output interface for the one interface description of both.
	if ids := testenv.TsharkRows(t, "-r", out, "-T", "fields", "-e", "frame.interface_id"); len(ids) == 0 ||
		slices.ContainsFunc(ids, func(r []string) bool { return r[0] != "0" }) {
		t.Errorf("interface ids %q, want all 0", ids)
	}
	// With room for one open file only, the merge refuses.
	if _, err := Write(context.Background(), io.Discard, append(sb, sa...), Options{MaxOpen: 1}); !errors.Is(err, ErrTooManyOpen) {
		t.Errorf("MaxOpen 1: %v, want ErrTooManyOpen", err)
	}
}

// TestWriteVanishedAndPartial: a file removed after it was listed is
// skipped with a warning; a file being written is read up to its last
// complete record.
func TestWriteVanishedAndPartial(t *testing.T) {
	ps := packets(t, 90)
	dir := t.TempDir()
	writeRing(t, dir, ring.Options{}, ps)
	srcs, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The last file becomes a file being written, cut inside its last
	// record; the first is removed once listed.
	last := filepath.Join(dir, srcs[len(srcs)-1].Name)
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	// Where the last packet's record starts: whatever follows it (a
	// statistics block) goes too.
	rd, err := pcapfile.NewReaderBytes(slices.Clone(b))
	if err != nil {
		t.Fatal(err)
	}
	var rs []int64
	for p := new(mirror.Packet); rd.Next(p) == nil; {
		rs = append(rs, rd.Offset())
	}
	if len(rs) < 2 {
		t.Fatalf("last file holds %d packets", len(rs))
	}
	if err := os.WriteFile(last+partSuffix, b[:rs[len(rs)-2]+10], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.Remove(last), os.Remove(last+sidecarSuffix)); err != nil {
		t.Fatal(err)
	}
	srcs, err = Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !srcs[len(srcs)-1].Partial {
		t.Fatalf("%s not listed as being written", srcs[len(srcs)-1].Name)
	}
	first, err := pcapfile.ReadFile(filepath.Join(dir, srcs[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, srcs[0].Name)); err != nil {
		t.Fatal(err)
	}
	want := ps[len(first) : len(ps)-1]
	ref := filepath.Join(t.TempDir(), "ref.pcapng")
	capturetest.WritePcapng(t, ref, want)
	out, st := extractFile(t, srcs, Options{})
	if got, exp := tsharkRows(t, out), tsharkRows(t, ref); !slices.EqualFunc(got, exp, slices.Equal) {
		t.Errorf("got\n%q\nwant\n%q", got, exp)
	}
	if st.Vanished != 1 || st.Broken != 0 {
		t.Errorf("stats %+v, want 1 vanished, none broken", st)
	}
	// A closed file cut short is a warning, not an error.
	srcs[len(srcs)-1].Partial = false
	if _, st := extractFile(t, srcs, Options{}); st.Broken != 1 {
		t.Errorf("closed file cut short: stats %+v, want 1 broken", st)
	}
}

// TestDirPartRenamed: a file listed while being written is read under its
// final name once renamed.
func TestDirPartRenamed(t *testing.T) {
	dir := t.TempDir()
	writeRing(t, dir, ring.Options{}, packets(t, 5))
	srcs, err := Dir(dir)
	if err != nil || len(srcs) != 1 {
		t.Fatalf("Dir: %v, %v", srcs, err)
	}
	name := filepath.Join(dir, srcs[0].Name)
	if err := os.Rename(name, name+partSuffix); err != nil {
		t.Fatal(err)
	}
	srcs, err = Dir(dir)
	if err != nil || len(srcs) != 1 || !strings.HasSuffix(srcs[0].Name, partSuffix) {
		t.Fatalf("Dir: %v, %v", srcs, err)
	}
	if err := os.Rename(name+partSuffix, name); err != nil {
		t.Fatal(err)
	}
	_, st := extractFile(t, srcs, Options{})
	if st.Written != 5 || st.Vanished != 0 {
		t.Errorf("stats %+v, want the 5 packets of the renamed file", st)
	}
	if _, err := srcs[0].Open(); err != nil {
		t.Fatal(err)
	}
	os.Remove(name)
	if _, err := srcs[0].Open(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open of a removed file: %v", err)
	}
}

// TestWriteWithoutSidecars: files without times (no sidecar, or being
// written) are opened when the merge reaches their first packet, not all
// at once: consecutive files merge with one open at a time.
func TestWriteWithoutSidecars(t *testing.T) {
	ps := packets(t, 100)
	dir := t.TempDir()
	writeRing(t, dir, ring.Options{}, ps)
	sidecars, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(sidecars) < 3 {
		t.Fatalf("%d sidecars", len(sidecars))
	}
	for _, s := range sidecars {
		os.Remove(s)
	}
	srcs, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		if !s.First.IsZero() {
			t.Fatalf("%s has times without a sidecar", s.Name)
		}
	}
	ref := filepath.Join(t.TempDir(), "ref.pcapng")
	capturetest.WritePcapng(t, ref, ps[20:80])
	out, st := extractFile(t, srcs, Options{MaxOpen: 1, Since: ps[20].Timestamp, Until: ps[80].Timestamp})
	if got, exp := tsharkRows(t, out), tsharkRows(t, ref); !slices.EqualFunc(got, exp, slices.Equal) {
		t.Errorf("got\n%q\nwant\n%q", got, exp)
	}
	if st.Skipped == 0 {
		t.Errorf("stats %+v: no file skipped by its first packet's time", st)
	}
}

// TestWriteCancelled: a merge ends with the context's error, without
// reading on.
func TestWriteCancelled(t *testing.T) {
	dir := t.TempDir()
	writeRing(t, dir, ring.Options{}, packets(t, 50))
	srcs, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err := Write(ctx, io.Discard, srcs, Options{})
	if !errors.Is(err, context.Canceled) || st.Written != 0 {
		t.Errorf("cancelled: %v, stats %+v", err, st)
	}
}

// named describes every input interface by one name.
type named string

func (n named) Interface(int) pcapfile.Interface { return pcapfile.Interface{Name: string(n)} }

// TestWriteInterfaces: files captured on different interfaces give one
// output interface per distinct description, each packet on its own.
func TestWriteInterfaces(t *testing.T) {
	ps := packets(t, 30)
	dir := t.TempDir()
	var srcs []Source
	for k, name := range []string{"eth1", "eth2", "eth1"} {
		path := filepath.Join(dir, fmt.Sprintf("f%d.pcapng", k))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w, err := pcapfile.NewWriter(f, pcapfile.Options{Interfaces: named(name)})
		if err != nil {
			t.Fatal(err)
		}
		for i := k; i < len(ps); i += 3 {
			if err := w.WritePacket(ps[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := errors.Join(w.Flush(), f.Close()); err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Name: path, Open: func() (io.ReadCloser, error) { return os.Open(path) }})
	}
	out, _ := extractFile(t, srcs, Options{})
	rows := testenv.TsharkRows(t, "-r", out, "-T", "fields", "-e", "udp.srcport", "-e", "frame.interface_id", "-e", "frame.interface_name")
	if len(rows) != len(ps) {
		t.Fatalf("%d packets, want %d", len(rows), len(ps))
	}
	for i, r := range rows {
		want := []string{fmt.Sprint(1000 + i), "0", "eth1"}
		if i%3 == 1 {
			want = []string{fmt.Sprint(1000 + i), "1", "eth2"}
		}
		if !slices.Equal(r, want) {
			t.Errorf("packet %d: %q, want %q", i, r, want)
		}
	}
}

// TestWriteStats: the merged capture ends with an interface statistics
// block summing the drop counts of the files that gave it packets, as
// their sidecars record them, and tshark reads it.
func TestWriteStats(t *testing.T) {
	ps := packets(t, 200)
	dir := t.TempDir()
	// Each file sees 10 packets received and 3 dropped by the kernel
	// more than the one before it.
	var n uint64
	o := ring.Options{SourceStats: func() ring.SourceStats {
		n++
		return ring.SourceStats{Received: 10 * n, Dropped: 3 * n}
	}}
	writeRing(t, dir, o, ps)
	srcs, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) < 4 {
		t.Fatalf("%d files; the test wants several", len(srcs))
	}
	// A window from inside the second file to inside the third.
	since, until := srcs[1].First.Add(time.Millisecond), srcs[2].Last
	var recv, drop uint64
	for _, s := range srcs[1:3] {
		if s.Stats.KernelDropped == 0 || s.Stats.Received == 0 {
			t.Fatalf("%s: sidecar without drop counts: %+v", s.Name, s.Stats)
		}
		recv += s.Stats.Received + s.Stats.KernelDropped
		drop += s.Stats.KernelDropped
	}
	out, _ := extractFile(t, srcs, Options{Since: since, Until: until})
	gotRecv, gotDrop, gotOS := testenv.InterfaceStats(t, out)
	if fmt.Sprint(gotRecv, gotDrop, gotOS) != fmt.Sprint([]uint64{recv}, []uint64{drop}, []uint64{0}) {
		t.Errorf("tshark reads the statistics as received %v, dropped %v, by the OS %v; want [%d] [%d] [0]",
			gotRecv, gotDrop, gotOS, recv, drop)
	}

	// Files without counts (no sidecar) give no statistics block.
	for i := range srcs {
		srcs[i].Stats = Drops{}
	}
	out, _ = extractFile(t, srcs, Options{Since: since, Until: until})
	if r, _, _ := testenv.InterfaceStats(t, out); len(r) != 0 {
		t.Errorf("statistics %v without counts", r)
	}
}
