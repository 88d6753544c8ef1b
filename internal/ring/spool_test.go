package ring

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// record is what the fake index keeps of a packet: which one it was (the
// UDP source port of testPacket) and where its record lies.
type record struct {
	Port   int   `json:"port"`
	Off    int64 `json:"off"`
	Length int   `json:"length"`
}

// fakeIndex writes its records as JSON.
type fakeIndex struct {
	recs []record
	max  int // Full at this many records; 0 never
}

func (x *fakeIndex) Full() bool { return x.max > 0 && len(x.recs) >= x.max }

func (x *fakeIndex) Add(p *mirror.Packet, off int64, length int) {
	b := p.Frame
	if b == nil {
		b = p.Data
	}
	x.recs = append(x.recs, record{int(binary.BigEndian.Uint16(b[34:])), off, length})
}

func (x *fakeIndex) WriteTo(w io.Writer) (int64, error) {
	b, err := json.Marshal(x.recs)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (x *fakeIndex) Reset() { x.recs = x.recs[:0] }

func newFakeIndex() Indexer { return &fakeIndex{} }

func readIndex(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestIndexOffsets checks that every record the index names can be read
// on its own, after the file's first HeaderLen bytes, as the packet the
// index says it is: in pcapng (split into files by VN pair, which
// describes interfaces as they come) and classic pcap, with records cut
// to MaxRecord and a flush threshold crossed.
func TestIndexOffsets(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		raw  bool // packets as captured: the interface is described with the first
	}{
		{"pcapng", Options{MaxSize: 100 << 10}, false},
		{"raw", Options{Format: pcapfile.FormatRaw, MaxSize: 100 << 10}, true},
		{"pcapng-split", Options{Split: vnpair.Directed}, false},
		{"pcap", Options{Format: pcapfile.FormatPcap, MaxSize: 100 << 10}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := tc.o
			o.Index, o.MaxRecord, o.FlushEvery = newFakeIndex, 1000, time.Hour
			r := newTestRing(t, dir, o)
			const n = 300
			for i := range n {
				// Every seventh packet is cut to MaxRecord.
				payload := 50 + i%40
				if i%7 == 0 {
					payload = 1500
				}
				p := testPacket(i, 3, payload)
				if tc.raw {
					p.Mode, p.Data, p.Frame, p.LinkType = mirror.ModeOther, p.Frame, nil, layers.LinkTypeEthernet
				}
				if err := r.WritePacket(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if st := r.Stats(); st.Truncated == 0 || st.Packets != n {
				t.Fatalf("stats %+v", st)
			}
			infos, err := r.List()
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, in := range infos {
				data, err := os.ReadFile(filepath.Join(dir, in.Name))
				if err != nil {
					t.Fatal(err)
				}
				idx := filepath.Join(dir, IndexName(in.Name))
				st, err := os.Stat(idx)
				if err != nil {
					t.Fatal(err)
				}
				if in.IndexSize != st.Size() || in.Seq == 0 || !strings.Contains(in.Name, fmt.Sprintf("_%05d_", in.Seq)) {
					t.Errorf("%s: index size %d (file %d), seq %d", in.Name, in.IndexSize, st.Size(), in.Seq)
				}
				recs := readIndex(t, idx)
				if uint64(len(recs)) != in.Packets {
					t.Fatalf("%s: %d index records, %d packets", in.Name, len(recs), in.Packets)
				}
				if hl, err := headerLen(filepath.Join(dir, in.Name)); recs[0].Off != in.HeaderLen || hl != in.HeaderLen || err != nil {
					t.Errorf("%s: first record at %d, HeaderLen %d, the file's %d (%v)", in.Name, recs[0].Off, in.HeaderLen, hl, err)
				}
				for _, rec := range recs {
					one := slices.Concat(data[:in.HeaderLen], data[rec.Off:rec.Off+int64(rec.Length)])
					rd, err := pcapfile.NewReaderBytes(one)
					if err != nil {
						t.Fatal(err)
					}
					var p mirror.Packet
					if err := rd.Next(&p); err != nil {
						t.Fatalf("%s: record at %d: %v", in.Name, rec.Off, err)
					}
					if port := int(binary.BigEndian.Uint16(p.Data[34:])); port != rec.Port {
						t.Errorf("%s: record at %d holds packet %d, index says %d", in.Name, rec.Off, port, rec.Port)
					}
					if err := rd.Next(&p); err != io.EOF {
						t.Errorf("%s: record at %d, length %d: more than one record (%v)", in.Name, rec.Off, rec.Length, err)
					}
					seen++
				}
			}
			if seen != n {
				t.Errorf("index names %d packets, %d written", seen, n)
			}
			// The sidecars keep what the index needs across a restart.
			r2 := newTestRing(t, dir, o)
			again, err := r2.List()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(infos, again, func(a, b Info) bool {
				return a.Name == b.Name && a.Seq == b.Seq && a.HeaderLen == b.HeaderLen && a.IndexSize == b.IndexSize
			}) {
				t.Errorf("after restart\n%+v\nwant\n%+v", again, infos)
			}
		})
	}
}

// TestHeaderLenRebuilt checks that a file without its sidecar gets its
// HeaderLen from its content.
func TestHeaderLenRebuilt(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{})
	writeN(t, r, 5, 2, 10, nil)
	r.Close()
	infos, _ := r.List()
	if len(infos) != 1 || infos[0].HeaderLen == 0 {
		t.Fatalf("infos %+v", infos)
	}
	if err := os.Remove(filepath.Join(dir, infos[0].Name+sidecarSuffix)); err != nil {
		t.Fatal(err)
	}
	r2 := newTestRing(t, dir, Options{})
	again, _ := r2.List()
	if len(again) != 1 || again[0].HeaderLen != infos[0].HeaderLen || again[0].Seq != 1 {
		t.Fatalf("rebuilt %+v, want header length %d", again, infos[0].HeaderLen)
	}
}

// dirBytes sums the sizes of the files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range dirFiles(t, dir) {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().IsRegular() {
			n += st.Size()
		}
	}
	return n
}

// TestSpool checks that a spool never deletes a closed file, drops and
// counts packets once full, says so in Healthy, and takes packets again
// once Uploaded made room, with its byte count matching the disk.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	o := Options{Spool: true, MaxSize: 3000, MaxBytes: 20000, MaxFiles: 2, Index: newFakeIndex, FlushEvery: time.Hour}
	r := newTestRing(t, dir, o)
	const n = 400
	writeN(t, r, n, 2, 100, nil)
	st := r.Stats()
	if !st.SpoolFull || st.DroppedSpoolFull == 0 || st.Dropped != st.DroppedSpoolFull || st.Packets+st.Dropped != n {
		t.Fatalf("stats %+v", st)
	}
	if st.RemovedMaxBytes != 0 || st.RemovedMaxFiles != 0 {
		t.Fatalf("a spool deleted files: %+v", st)
	}
	if err := r.Healthy(); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("Healthy: %v", err)
	}
	// The open file was closed when the spool filled, to be uploaded.
	if st.OpenFiles != 0 {
		t.Fatalf("%d files open while the spool is full", st.OpenFiles)
	}
	spooled := r.Spooled()
	var packets uint64
	for _, in := range spooled {
		packets += in.Packets
		for _, name := range []string{in.Name, in.Name + sidecarSuffix, IndexName(in.Name)} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("spooled file: %v", err)
			}
		}
	}
	if packets != st.Packets || len(spooled) <= o.MaxFiles {
		t.Fatalf("%d spooled files hold %d packets, %d written", len(spooled), packets, st.Packets)
	}
	if got := dirBytes(t, dir); got != r.DiskUsage() {
		t.Fatalf("DiskUsage %d, files on disk %d", r.DiskUsage(), got)
	}

	if err := r.Uploaded("vrsniff_99999_20260101000000.pcapng"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Uploaded of an unknown file: %v", err)
	}
	// The oldest files are uploaded until the spool has room.
	for i, in := range spooled[:2] {
		if err := r.Uploaded(in.Name); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{in.Name, in.Name + sidecarSuffix, IndexName(in.Name)} {
			if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left after Uploaded: %v", name, err)
			}
		}
		if got := dirBytes(t, dir); got != r.DiskUsage() {
			t.Fatalf("after %d uploads: DiskUsage %d, files on disk %d", i+1, r.DiskUsage(), got)
		}
	}
	st = r.Stats()
	if st.SpoolFull || st.Uploaded != 2 || r.Healthy() != nil {
		t.Fatalf("after uploads: stats %+v, Healthy %v", st, r.Healthy())
	}
	before := st.Packets
	if err := r.WritePacket(testPacket(n, 2, 100)); err != nil {
		t.Fatal(err)
	}
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Packets != before+1 || st.Dropped != st.DroppedSpoolFull {
		t.Fatalf("after room was made: %+v", st)
	}
	// The file being written cannot be uploaded.
	r.WritePacket(testPacket(n+1, 2, 100))
	open, _ := r.List()
	if last := open[len(open)-1]; !last.Open {
		t.Fatalf("no open file: %+v", last)
	} else if err := r.Uploaded(last.Name); !errors.Is(err, ErrBusy) {
		t.Errorf("Uploaded of the open file: %v", err)
	}
}

// TestSpoolReady checks that closing a file is signalled, and that files
// left by an earlier run are offered at start.
func TestSpoolReady(t *testing.T) {
	dir := t.TempDir()
	o := Options{Spool: true, Index: newFakeIndex}
	r := newTestRing(t, dir, o)
	select {
	case <-r.Ready():
		t.Fatal("ready with an empty directory")
	default:
	}
	writeN(t, r, 10, 2, 10, nil)
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	<-r.Ready() // a closed file is signalled; blocks otherwise
	if got := r.Spooled(); len(got) != 1 || got[0].Packets != 10 {
		t.Fatalf("spooled %+v", got)
	}
	writeN(t, r, 10, 2, 10, nil)
	r.Close()

	r2 := newTestRing(t, dir, o)
	<-r2.Ready()
	got := r2.Spooled()
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 || got[0].IndexSize == 0 {
		t.Fatalf("offered at start: %+v", got)
	}
	ix, err := r2.OpenIndex(got[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
}

// TestMaxSpan checks that no file covers MaxSpan or more of packet time.
func TestMaxSpan(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{MaxSpan: 10 * time.Second})
	writeN(t, r, 35, 1, 10, nil) // one second apart
	r.Close()
	infos, _ := r.List()
	if len(infos) != 4 {
		t.Fatalf("%d files, want 4", len(infos))
	}
	for _, in := range infos {
		if in.Last.Sub(in.First) >= 10*time.Second {
			t.Errorf("%s spans %v..%v", in.Name, in.First, in.Last)
		}
	}
}

// TestIndexAfterCrash checks that a .part file recovered at start keeps
// no index it may not match, and that one cut keeps none.
func TestIndexAfterCrash(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{Index: newFakeIndex})
	writeN(t, r, 5, 1, 10, nil)
	r.Close()
	infos, _ := r.List()
	name := infos[0].Name
	// As if the crash came after the index was written and before the
	// rename, and cut the last record.
	if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+partSuffix)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, name+sidecarSuffix))
	st, _ := os.Stat(filepath.Join(dir, name+partSuffix))
	if err := os.Truncate(filepath.Join(dir, name+partSuffix), st.Size()-8); err != nil {
		t.Fatal(err)
	}
	r2 := newTestRing(t, dir, Options{Index: newFakeIndex})
	got := r2.Spooled()
	if len(got) != 1 || got[0].IndexSize != 0 || got[0].Packets == 0 {
		t.Fatalf("recovered %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, IndexName(name))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("index of a cut file kept: %v", err)
	}
}

// TestIndexDiskFull checks that the records a failed write lost are in no
// index: every index names exactly its file's packets, at offsets within
// the file, and the file whose write failed keeps none.
func TestIndexDiskFull(t *testing.T) {
	// The second file's first write (at flushAt) fits, its last does
	// not: the file is kept with the packets of its first.
	dir := testenv.MountTmpfs(t, "200k")
	clk := &fakeClock{t: t0}
	r := newTestRing(t, dir, Options{MaxSize: 100 << 10, Index: newFakeIndex, Now: clk.Now})
	for i := range 300 {
		clk.Set(t0.Add(time.Duration(i) * 10 * time.Millisecond))
		if err := r.WritePacket(testPacket(i, 2, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.Stats(); st.DroppedDiskFull == 0 {
		t.Fatalf("stats %+v", st)
	}
	r.Close()
	infos, _ := r.List()
	without := 0
	for _, in := range infos {
		if in.IndexSize == 0 {
			without++
			continue
		}
		recs := readIndex(t, filepath.Join(dir, IndexName(in.Name)))
		if uint64(len(recs)) != in.Packets {
			t.Errorf("%s: %d index records, %d packets", in.Name, len(recs), in.Packets)
		}
		for _, rec := range recs {
			if rec.Off+int64(rec.Length) > in.Size {
				t.Errorf("%s: record at %d+%d past the end, %d", in.Name, rec.Off, rec.Length, in.Size)
			}
		}
	}
	if without == 0 {
		t.Errorf("every file has an index: %+v", infos)
	}
}

// TestIndexFull: a file whose index is full is closed, as at its size
// limit, so that no packet of it lies outside its index's flows.
func TestIndexFull(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{Index: func() Indexer { return &fakeIndex{max: 40} }, FlushEvery: time.Hour})
	const n = 100
	for i := range n {
		if err := r.WritePacket(testPacket(i, 3, 60)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, in := range infos {
		got = append(got, in.Packets)
		if recs := readIndex(t, filepath.Join(dir, IndexName(in.Name))); uint64(len(recs)) != in.Packets {
			t.Errorf("%s: %d packets, %d in its index", in.Name, in.Packets, len(recs))
		}
	}
	if fmt.Sprint(got) != "[40 40 20]" {
		t.Errorf("files of %v packets, want [40 40 20]", got)
	}
}
