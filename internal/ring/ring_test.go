package ring

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

var nameRE = regexp.MustCompile(`^vrsniff_\d{5}_\d{14}(_[A-Za-z0-9_~-][A-Za-z0-9._~-]*[+=][A-Za-z0-9._~-]+)?\.pcapng$`)

// writeN writes packets 0..n-1 and returns the tshark lines they must give.
func writeN(t *testing.T, r *Ring, n, pairs, payload int, each func(i int)) []string {
	t.Helper()
	var want []string
	for i := range n {
		if each != nil {
			each(i)
		}
		p := testPacket(i, pairs, payload)
		if err := r.WritePacket(p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		want = append(want, wantLine(p))
	}
	return want
}

func TestRotateBySize(t *testing.T) {
	dir := t.TempDir()
	const maxSize = 4000
	r := newTestRing(t, dir, Options{MaxSize: maxSize})
	want := writeN(t, r, 200, 2, 100, nil)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, got := checkStore(t, r, dir)
	if !slices.Equal(got, want) {
		t.Fatalf("files hold\n%q\nwant\n%q", got, want)
	}
	if len(infos) < 5 {
		t.Fatalf("only %d files", len(infos))
	}
	var next uint64
	for i, in := range infos {
		if !nameRE.MatchString(in.Name) {
			t.Errorf("bad name %q", in.Name)
		}
		// A file is cut at the first packet that takes it to MaxSize.
		if in.Size > maxSize+300 || (i < len(infos)-1 && in.Size < maxSize) {
			t.Errorf("%s: size %d, limit %d", in.Name, in.Size, maxSize)
		}
		if !in.First.Equal(t0.Add(time.Duration(next)*time.Second)) || !in.Last.Equal(t0.Add(time.Duration(next+in.Packets-1)*time.Second)) {
			t.Errorf("%s: first %v last %v for packets %d..", in.Name, in.First, in.Last, next)
		}
		if len(in.Pairs) != 2 || in.Pairs[0].SrcVN != vns[0] && in.Pairs[0].SrcVN != vns[1] {
			t.Errorf("%s: pairs %+v", in.Name, in.Pairs)
		}
		next += in.Packets
	}
	st := r.Stats()
	if st.Packets != 200 || st.Dropped != 0 || st.Files != len(infos) || st.OpenFiles != 0 || st.DiskFull {
		t.Errorf("stats %+v", st)
	}
	if r.DiskUsage() != st.Bytes {
		t.Errorf("DiskUsage %d, Stats.Bytes %d", r.DiskUsage(), st.Bytes)
	}
	for _, n := range dirFiles(t, dir) {
		if strings.HasSuffix(n, ".part") || strings.HasPrefix(n, ".") {
			t.Errorf("left over: %s", n)
		}
	}
	if err := r.WritePacket(testPacket(0, 1, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
}

func TestRotateByTime(t *testing.T) {
	for _, align := range []bool{false, true} {
		t.Run(map[bool]string{false: "relative", true: "aligned"}[align], func(t *testing.T) {
			dir := t.TempDir()
			clk := &fakeClock{t: t0} // 12:00:03
			r := newTestRing(t, dir, Options{MaxDuration: 10 * time.Second, AlignClock: align, Now: clk.Now})
			want := writeN(t, r, 35, 1, 20, func(i int) { clk.Set(t0.Add(time.Duration(i) * time.Second)) })
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			infos, got := checkStore(t, r, dir)
			if !slices.Equal(got, want) {
				t.Fatalf("files hold\n%q\nwant\n%q", got, want)
			}
			var counts []uint64
			var stamps []string
			for _, in := range infos {
				counts = append(counts, in.Packets)
				stamps = append(stamps, strings.Split(in.Name, "_")[2][8:14])
			}
			wantCounts, wantStamps := []uint64{10, 10, 10, 5}, []string{"120003", "120013", "120023", "120033"}
			if align {
				wantCounts, wantStamps = []uint64{7, 10, 10, 8}, []string{"120003", "120010", "120020", "120030"}
			}
			if !slices.Equal(counts, wantCounts) || !slices.Equal(stamps, wantStamps) {
				t.Errorf("files of %v packets at %v, want %v at %v", counts, stamps, wantCounts, wantStamps)
			}
		})
	}
}

// A quiet capture still closes its file when the time is up.
func TestRotateByTimeWithoutTraffic(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: t0}
	r := newTestRing(t, dir, Options{MaxDuration: time.Minute, Now: clk.Now, FlushEvery: 10 * time.Millisecond})
	writeN(t, r, 3, 1, 20, nil)
	clk.Set(t0.Add(time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().OpenFiles != 0 {
		if time.Now().After(deadline) {
			t.Fatal("file not closed by the flush loop")
		}
		time.Sleep(5 * time.Millisecond)
	}
	infos, got := checkStore(t, r, dir)
	if len(infos) != 1 || len(got) != 3 {
		t.Fatalf("%d files, %d packets", len(infos), len(got))
	}
}

func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"files", Options{MaxSize: 3000, MaxFiles: 3}},
		{"bytes", Options{MaxSize: 3000, MaxBytes: 10000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := newTestRing(t, dir, tc.o)
			want := writeN(t, r, 300, 1, 100, func(i int) {
				if tc.o.MaxBytes > 0 && r.DiskUsage() > tc.o.MaxBytes+3300 {
					t.Fatalf("packet %d: usage %d", i, r.DiskUsage())
				}
			})
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			infos, got := checkStore(t, r, dir)
			if tc.o.MaxFiles > 0 && len(infos) != tc.o.MaxFiles {
				t.Errorf("%d files kept, want %d", len(infos), tc.o.MaxFiles)
			}
			if tc.o.MaxBytes > 0 && r.DiskUsage() > tc.o.MaxBytes {
				t.Errorf("usage %d > %d", r.DiskUsage(), tc.o.MaxBytes)
			}
			// What is left is the newest packets, in order.
			if len(got) == 0 || !slices.Equal(got, want[len(want)-len(got):]) {
				t.Fatalf("kept %d packets, not the newest", len(got))
			}
			// Deleted files take their sidecars with them.
			var names []string
			for _, in := range infos {
				names = append(names, in.Name, in.Name+".json")
			}
			slices.Sort(names)
			if files := dirFiles(t, dir); !slices.Equal(files, names) {
				t.Errorf("directory holds %v, want %v", files, names)
			}
		})
	}
}

func TestSplitByVN(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{Split: vnpair.Directed, MaxSize: 5000})
	var want [3][]string
	for i := range 150 {
		p := testPacket(i, 3, 60)
		if err := r.WritePacket(p); err != nil {
			t.Fatal(err)
		}
		want[i%3] = append(want[i%3], wantLine(p))
	}
	if st := r.Stats(); st.OpenFiles != 3 {
		t.Errorf("%d open files, want 3", st.OpenFiles)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, lines := checkStore(t, r, dir)
	var got [3][]string
	labels := []string{
		"_default-domain.admin.vn-a=default-domain.admin.vn-b.pcapng",
		"_default-domain.admin.vn-b=default-domain.proj~202.web~2Fdb.pcapng",
		"_default-domain.proj~202.web~2Fdb=default-domain.admin.vn-a.pcapng",
	}
	for _, in := range infos {
		if !nameRE.MatchString(in.Name) {
			t.Errorf("bad name %q", in.Name)
		}
		if len(in.Pairs) != 1 {
			t.Fatalf("%s: pairs %+v", in.Name, in.Pairs)
		}
		k := slices.Index(vns, in.Pairs[0].SrcVN)
		if in.Pairs[0].DstVN != vns[(k+1)%3] || in.Pairs[0].Packets != in.Packets {
			t.Errorf("%s: pair %+v", in.Name, in.Pairs[0])
		}
		if !strings.HasSuffix(in.Name, labels[k]) {
			t.Errorf("%s: want label %s", in.Name, labels[k])
		}
		// checkStore matched the counts with capinfos: split the lines by file.
		got[k] = append(got[k], lines[:in.Packets]...)
		lines = lines[in.Packets:]
	}
	for k := range got {
		if !slices.Equal(got[k], want[k]) {
			t.Errorf("pair %d: files hold\n%q\nwant\n%q", k, got[k], want[k])
		}
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{MaxSize: 3000})
	want := writeN(t, r, 100, 2, 100, nil)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := r.List()

	// One file loses its sidecar: it is still listed.
	lost := before[1].Name
	if err := os.Remove(filepath.Join(dir, lost+".json")); err != nil {
		t.Fatal(err)
	}
	r2 := newTestRing(t, dir, Options{MaxSize: 3000})
	after, got := checkStore(t, r2, dir)
	if !slices.Equal(got, want) {
		t.Fatal("packets differ after restart")
	}
	if len(after) != len(before) {
		t.Fatalf("%d files after restart, %d before", len(after), len(before))
	}
	for i := range after {
		b, a := before[i], after[i]
		if a.Name != b.Name || a.Size != b.Size {
			t.Errorf("file %d: %+v after restart, %+v before", i, a, b)
		}
		// A rebuilt file is read through for its packets and times; the
		// VN pairs are known only from the sidecar.
		wantPairs := b.Pairs
		if a.Name == lost {
			wantPairs = nil
		}
		if a.Packets != b.Packets || !a.First.Equal(b.First) || !a.Last.Equal(b.Last) || !slices.Equal(a.Pairs, wantPairs) || a.Open {
			t.Errorf("file %d: %+v after restart, %+v before", i, a, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, lost+".json")); err != nil {
		t.Errorf("sidecar not rebuilt: %v", err)
	}
	// Sequence numbers go on.
	if err := r2.WritePacket(testPacket(0, 1, 10)); err != nil {
		t.Fatal(err)
	}
	r2.Close()
	infos, _ := r2.List()
	last := infos[len(infos)-1].Name
	if want := "vrsniff_" + strings.Split(before[len(before)-1].Name, "_")[1]; last[:13] <= want {
		t.Errorf("new file %s does not follow %s", last, before[len(before)-1].Name)
	}
}

func TestStoreAccess(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newTestRing(t, dir, Options{MaxSize: 2000})
	writeN(t, r, 30, 1, 100, nil)
	infos, _ := r.List()
	open := infos[len(infos)-1]
	closed := infos[0]
	if !open.Open || !strings.HasSuffix(open.Name, ".part") || closed.Open {
		t.Fatalf("list %+v", infos)
	}
	for _, name := range []string{"", ".", "..", "../secret", "/etc/passwd", "a/b", `a\b`, ".hidden",
		closed.Name + ".json", "vrsniff_99999_20260101000000.pcapng", "vrsniff_99999_20260101000000.pcapng.part",
		"./" + closed.Name, closed.Name + "/.."} {
		if _, _, err := r.Open(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q): %v, want not-exist", name, err)
		}
		if err := r.Delete(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Delete(%q): %v, want not-exist", name, err)
		}
	}
	if err := r.Delete(open.Name); !errors.Is(err, ErrBusy) {
		t.Errorf("Delete(open file): %v", err)
	}

	// The open file reads as a valid capture of what was written so far.
	rc, in, err := r.Open(open.Name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	tmp := filepath.Join(t.TempDir(), "open.pcapng")
	os.WriteFile(tmp, b, 0o644)
	if n := len(tsharkLines(t, tmp)); uint64(n) != in.Packets || n == 0 || int64(len(b)) != in.Size {
		t.Errorf("open file: tshark reads %d packets of %d bytes, info %+v", n, len(b), in)
	}

	if err := r.Delete(closed.Name); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Open(closed.Name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Delete: %v", err)
	}
	for _, n := range dirFiles(t, dir) {
		if strings.HasPrefix(n, closed.Name) {
			t.Errorf("%s left after Delete", n)
		}
	}
}

// The store is used by the HTTP server while packets are written.
func TestConcurrentStore(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{MaxSize: 5000, MaxFiles: 6, FlushEvery: time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 3000 {
			if err := r.WritePacket(testPacket(i, 3, 100)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		infos, _ := r.List()
		for _, in := range infos {
			rc, got, err := r.Open(in.Name)
			if err != nil {
				// Retention or rotation got there first.
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
				continue
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || (!got.Open && int64(len(b)) != got.Size) {
				t.Fatalf("%s: read %d bytes (%v), info %+v", in.Name, len(b), err, got)
			}
		}
		if len(infos) > 2 && !infos[0].Open {
			if err := r.Delete(infos[0].Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	checkStore(t, r, dir)
}

func TestRotateNow(t *testing.T) {
	for _, format := range []pcapfile.Format{pcapfile.FormatPcapNG, pcapfile.FormatPcap} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			r := newTestRing(t, dir, Options{Format: format, Prefix: "mirror_x"})
			want := writeN(t, r, 5, 1, 30, nil)
			if err := r.Rotate(); err != nil {
				t.Fatal(err)
			}
			if err := r.Rotate(); err != nil { // nothing open: a no-op
				t.Fatal(err)
			}
			want = append(want, writeN(t, r, 5, 1, 30, nil)...)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			infos, got := checkStore(t, r, dir)
			if format == pcapfile.FormatPcap {
				// classic pcap has no comments
				for i := range want {
					want[i], _, _ = strings.Cut(want[i], "\t")
					want[i] += "\t"
				}
			}
			if len(infos) != 2 || !slices.Equal(got, want) {
				t.Fatalf("%d files holding %q, want 2 holding %q", len(infos), got, want)
			}
			ext := map[pcapfile.Format]string{pcapfile.FormatPcapNG: ".pcapng", pcapfile.FormatPcap: ".pcap"}[format]
			for _, in := range infos {
				if !strings.HasPrefix(in.Name, "mirror_x_0000") || !strings.HasSuffix(in.Name, ext) {
					t.Errorf("name %s", in.Name)
				}
			}
			// A restart finds the files again with the same prefix and format.
			r2 := newTestRing(t, dir, Options{Format: format, Prefix: "mirror_x"})
			if again, _ := r2.List(); len(again) != 2 {
				t.Errorf("after restart: %+v", again)
			}
		})
	}
}

// TestStoreStableName: a file is found under the name it was listed with,
// with or without ".part", before and after it is closed and renamed.
func TestStoreStableName(t *testing.T) {
	r := newTestRing(t, t.TempDir(), Options{})
	writeN(t, r, 5, 1, 100, nil)
	infos, _ := r.List()
	part := infos[len(infos)-1].Name
	base := strings.TrimSuffix(part, ".part")
	if base == part {
		t.Fatalf("open file listed as %s", part)
	}
	count := func(name string) uint64 {
		t.Helper()
		rc, in, err := r.Open(name)
		if err != nil {
			t.Fatalf("Open(%q): %v", name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil || len(b) == 0 {
			t.Fatalf("read %s: %d bytes, %v", name, len(b), err)
		}
		return in.Packets
	}
	if n := count(base); n != 5 {
		t.Errorf("open file by its final name: %d packets, want 5", n)
	}
	if err := r.Delete(base); !errors.Is(err, ErrBusy) {
		t.Errorf("Delete(%q) of the open file: %v, want ErrBusy", base, err)
	}
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if n := count(part); n != 5 {
		t.Errorf("closed file by its .part name: %d packets, want 5", n)
	}
	if n := count(base); n != 5 {
		t.Errorf("closed file: %d packets, want 5", n)
	}
}
