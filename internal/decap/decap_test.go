package decap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

var defaults = Options{Decoder: mirror.Config{
	Traffic:     mirror.Traffic{Ports: []uint16{mirror.DefaultPort}, VXLANPorts: []uint16{mirror.DefaultVXLANPort}, MirrorVLAN: 999},
	PassThrough: true,
}}

// genCapture writes n generated cases of a profile (with a share of
// malformed ones) as a pcap file and returns its path.
func genCapture(t *testing.T, dir, profile string, n int, malformed float64) string {
	t.Helper()
	g, err := gen.New(gen.Options{Seed: 3, Mix: gen.Profiles[profile], LinkType: layers.LinkTypeEthernet, MTU: 9000, Malformed: malformed})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, profile+".pcap")
	var b bytes.Buffer
	if _, err := gen.Write(&b, nil, g, n, gen.FormatPcap); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// count returns the number of packets in a capture file, which must read
// cleanly to its end.
func count(t *testing.T, path string) int {
	t.Helper()
	ps, err := pcapfile.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(ps)
}

// snapshot maps every file under dir to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			m[path] = "-> " + target
		case !d.IsDir():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			m[path] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%s: files %v, before %v", what, slices.Sorted(mapKeys(after)), slices.Sorted(mapKeys(before)))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s changed (%d bytes, before %d)", what, k, len(after[k]), len(v))
		}
	}
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// An output that is the input, through any name, or another output, is
// refused before anything is written.
func TestSameFile(t *testing.T) {
	dir := t.TempDir()
	in := genCapture(t, dir, "acl", 50, 0)
	must(t, os.Link(in, filepath.Join(dir, "hard.pcap")))
	must(t, os.Symlink("acl.pcap", filepath.Join(dir, "soft.pcap")))
	hostileCase := testenv.HostileCase(t, "split-slug-collision.pcap")
	t.Chdir(dir)
	for _, c := range []Files{
		{In: in, Out: in},
		{In: "acl.pcap", Out: "./acl.pcap"},
		{In: "./acl.pcap", Out: filepath.Join(dir, "x", "..", "acl.pcap")},
		{In: in, Out: "hard.pcap"},
		{In: in, Out: "soft.pcap"},
		{In: "soft.pcap", Out: "hard.pcap"},
		{In: in, Out: "out.pcapng", Rejects: "hard.pcap"},
		{In: in, Out: "out.pcapng", Rejects: "./out.pcapng"},
		{In: in, Out: filepath.Join(dir, "out.pcapng"), Rejects: "out.pcapng"},
	} {
		before := snapshot(t, dir)
		_, err := RunFiles(context.Background(), c, defaults)
		var se *SameFileError
		if !errors.As(err, &se) {
			t.Errorf("%+v: %v, want a SameFileError", c, err)
		}
		sameSnapshot(t, c.Out, before, snapshot(t, dir))
	}

	// A split file whose name is the input's: the input is in the output
	// directory under the name of one of its pairs.
	split := filepath.Join(dir, "by-vn")
	must(t, os.Mkdir(split, 0o755))
	hostile := filepath.Join(split, vnpair.Label([]byte("default-domain:admin:vn_web"), []byte("default-domain:admin:vn-db"), vnpair.Undirected, 255)+".pcapng")
	copyFile(t, hostileCase, hostile)
	before := snapshot(t, dir)
	o := defaults
	o.Split = vnpair.Undirected
	var se *SameFileError
	if _, err := RunFiles(context.Background(), Files{In: hostile, Out: split}, o); !errors.As(err, &se) {
		t.Errorf("split over the input: %v", err)
	}
	sameSnapshot(t, "split over the input", before, snapshot(t, dir))
	in2 := filepath.Join(dir, "in2.pcap")
	copyFile(t, hostile, in2)
	must(t, os.Remove(hostile))
	before = snapshot(t, dir)
	if _, err := RunFiles(context.Background(), Files{In: in2, Out: split, Rejects: hostile}, o); !errors.As(err, &se) {
		t.Errorf("split over the rejects file: %v", err)
	}
	sameSnapshot(t, "split over the rejects file", before, snapshot(t, dir))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, 0o644))
}

// existing puts an output of an earlier run in place: an OUT, a rejects
// file and a split directory holding the file of one pair.
func existing(t *testing.T, dir string) (out, rej, split string) {
	t.Helper()
	out, rej, split = filepath.Join(dir, "out.pcapng"), filepath.Join(dir, "rejects.pcapng"), filepath.Join(dir, "by-vn")
	must(t, os.WriteFile(out, []byte("an earlier output"), 0o600))
	must(t, os.WriteFile(rej, []byte("earlier rejects"), 0o644))
	must(t, os.Mkdir(split, 0o755))
	for _, name := range []string{"~none+~none.pcapng", "old.pcapng"} {
		must(t, os.WriteFile(filepath.Join(split, name), []byte("an earlier split file"), 0o644))
	}
	return out, rej, split
}

// A run that fails writing or is interrupted leaves existing outputs as
// they were and no new or temporary file.
func TestFailedRunKeepsExisting(t *testing.T) {
	src := t.TempDir()
	in := genCapture(t, src, "all", 3000, 0.2)
	for _, c := range []struct {
		name  string
		dir   func(t *testing.T) string
		ctx   func() context.Context
		check func(err error) bool
	}{
		{"full disk", func(t *testing.T) string { return testenv.MountTmpfs(t, "256k") }, context.Background,
			func(err error) bool { return errors.Is(err, syscall.ENOSPC) }},
		{"interrupted", func(t *testing.T) string { return t.TempDir() }, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, func(err error) bool { return errors.Is(err, ErrInterrupted) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			out, rej, split := existing(t, dir)
			before := snapshot(t, dir)
			if _, err := RunFiles(c.ctx(), Files{In: in, Out: out, Rejects: rej}, defaults); !c.check(err) {
				t.Errorf("run: %v", err)
			}
			o := defaults
			o.Split = vnpair.Undirected
			if _, err := RunFiles(c.ctx(), Files{In: in, Out: split, Rejects: rej}, o); !c.check(err) {
				t.Errorf("split run: %v", err)
			}
			o.Split = vnpair.Directed
			if _, err := RunFiles(c.ctx(), Files{In: in, Out: split}, o); !c.check(err) {
				t.Errorf("directed split run: %v", err)
			}
			sameSnapshot(t, c.name, before, snapshot(t, dir))
			must(t, os.Remove(out))
			must(t, os.RemoveAll(split))
			before = snapshot(t, dir)
			if _, err := RunFiles(c.ctx(), Files{In: in, Out: out}, defaults); !c.check(err) {
				t.Errorf("new output: %v", err)
			}
			if c.name == "interrupted" {
				// An interrupted run leaves no output that did not exist.
				sameSnapshot(t, c.name+", new output", before, snapshot(t, dir))
				return
			}
			// A full disk leaves a new output cut after its last complete
			// record: every reader opens it, and it holds a prefix of what
			// a whole run writes.
			got, err := pcapfile.ReadFile(out)
			if err != nil || len(got) == 0 {
				t.Fatalf("new output after a full disk: %d packets, %v", len(got), err)
			}
			testenv.TsharkRows(t, "-r", out, "-T", "fields", "-e", "frame.number")
			whole := filepath.Join(t.TempDir(), "whole.pcapng")
			if _, err := RunFiles(context.Background(), Files{In: in, Out: whole}, defaults); err != nil {
				t.Fatal(err)
			}
			all, err := pcapfile.ReadFile(whole)
			must(t, err)
			if len(got) >= len(all) {
				t.Fatalf("%d packets written to a full disk, %d in all", len(got), len(all))
			}
			for i := range got {
				if !bytes.Equal(got[i].Data, all[i].Data) {
					t.Fatalf("packet %d differs from a whole run's", i)
				}
			}
		})
	}
}

// A damaged input keeps what was decoded before the damage: the outputs
// are put in place (over existing ones) and the error names the offset.
func TestDamagedInputKeepsDecoded(t *testing.T) {
	dir := t.TempDir()
	in := genCapture(t, dir, "acl", 200, 0)
	data, err := os.ReadFile(in)
	must(t, err)
	whole, err := pcapfile.ReadFile(in)
	must(t, err)
	off := 24
	for i := range 120 {
		off += 16 + len(whole[i].Data)
	}
	cut := filepath.Join(dir, "cut.pcap")
	must(t, os.WriteFile(cut, data[:off+16+5], 0o644))
	out, rej, split := existing(t, dir)
	// The file of the first packet's pair exists too.
	first := whole[0]
	if mirror.NewDecoder(defaults.Decoder).Decode(&first) != mirror.Decoded {
		t.Fatal("first packet not decoded")
	}
	firstFile := filepath.Join(split, vnpair.Label(first.Meta.SrcVN, first.Meta.DstVN, vnpair.Undirected, 255)+".pcapng")
	must(t, os.WriteFile(firstFile, []byte("an earlier split file"), 0o644))
	var fe *pcapfile.FormatError
	if _, err := RunFiles(context.Background(), Files{In: cut, Out: out, Rejects: rej}, defaults); !errors.As(err, &fe) || fe.Offset != int64(off) {
		t.Fatalf("run: %v, want a format error at offset %d", err, off)
	}
	st, err := os.Stat(out)
	must(t, err)
	if n := count(t, out); n != 120 || st.Mode().Perm() != 0o600 {
		t.Errorf("output: %d packets, mode %v; want the 120 before the damage, with the mode of the file it replaced", n, st.Mode())
	}
	if n := count(t, rej); n != 0 {
		t.Errorf("rejects: %d packets", n)
	}
	o := defaults
	o.Split = vnpair.Undirected
	if _, err := RunFiles(context.Background(), Files{In: cut, Out: split}, o); !errors.As(err, &fe) {
		t.Fatalf("split run: %v", err)
	}
	total := 0
	es, _ := os.ReadDir(split)
	for _, e := range es {
		path := filepath.Join(split, e.Name())
		if b, _ := os.ReadFile(path); string(b) == "an earlier split file" {
			if path == firstFile {
				t.Errorf("%s not replaced", path)
			}
			continue // the file of a pair not in this input is kept
		}
		total += count(t, path)
	}
	if total != 120 {
		t.Errorf("split: %d packets, want 120", total)
	}
}

// A symbolic link as OUT keeps pointing to the file it names, which gets
// the output; a device (/dev/null) is written, never replaced.
func TestLinksAndDevices(t *testing.T) {
	dir := t.TempDir()
	in := genCapture(t, dir, "acl", 30, 0)
	target, link := filepath.Join(dir, "target.pcapng"), filepath.Join(dir, "link.pcapng")
	must(t, os.WriteFile(target, []byte("old"), 0o644))
	must(t, os.Symlink("target.pcapng", link))
	if _, err := RunFiles(context.Background(), Files{In: in, Out: link}, defaults); err != nil {
		t.Fatal(err)
	}
	if dest, err := os.Readlink(link); err != nil || dest != "target.pcapng" || count(t, target) != 30 {
		t.Errorf("link -> %q (%v), target holds %d packets", dest, err, count(t, target))
	}
	if _, err := RunFiles(context.Background(), Files{In: in, Out: os.DevNull}, defaults); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(os.DevNull); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("%s: %v, %v", os.DevNull, st.Mode(), err)
	}
	if _, err := RunFiles(context.Background(), Files{In: in, Out: dir}, defaults); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("a directory as OUT: %v", err)
	}
}

// splitRun splits a capture and returns the packets per file name.
func splitRun(t *testing.T, in string, s vnpair.Split) (string, map[string]int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "split")
	o := defaults
	o.Split = s
	if _, err := RunFiles(context.Background(), Files{In: in, Out: dir}, o); err != nil {
		t.Fatal(err)
	}
	files := map[string]int{}
	es, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range es {
		files[e.Name()] = count(t, filepath.Join(dir, e.Name()))
	}
	return dir, files
}

// The two pairs that collided under an earlier naming rule get a file each.
func TestSplitCollision(t *testing.T) {
	_, files := splitRun(t, testenv.HostileCase(t, "split-slug-collision.pcap"), vnpair.Undirected)
	want := map[string]int{
		"default-domain.admin.vn-db+default-domain.admin.vn_web.pcapng": 5,
		"default-domain.admin.vn-db+default-domain.admin_vn.web.pcapng": 5,
	}
	if !mapsEqual(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// f13: both directions of one conversation between two VNs with 158- and
// 160-byte names land in one file by default, in one each with
// vn-direction; the names stay within 255 bytes and show both networks.
func TestSplitLongK8sNames(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	_, one := splitRun(t, in, vnpair.Undirected)
	_, two := splitRun(t, in, vnpair.Directed)
	if len(one) != 1 || len(two) != 2 {
		t.Fatalf("undirected %v, directed %v", one, two)
	}
	for name, n := range one {
		if n != 4 {
			t.Errorf("%s: %d packets, want both directions' 4", name, n)
		}
	}
	for name, n := range two {
		if n != 2 {
			t.Errorf("%s: %d packets, want 2", name, n)
		}
	}
	for _, m := range []map[string]int{one, two} {
		for name := range m {
			if len(name) > maxName || !strings.Contains(name, "k8s-payments-settlement") ||
				!strings.Contains(name, "k8s-customer-notification") || strings.Count(name, "pod-network") != 2 {
				t.Errorf("name %q (%d bytes): want both networks recognisable within %d bytes", name, len(name), maxName)
			}
		}
	}
}

// f16: names with a space, UTF-8, '/' and "../" give a file per pair, all
// inside the output directory.
func TestSplitUTF8SpaceNames(t *testing.T) {
	sandbox := t.TempDir()
	dir := filepath.Join(sandbox, "1", "2", "3", "4", "split")
	o := defaults
	o.Split = vnpair.Undirected
	stats, err := RunFiles(context.Background(), Files{In: testenv.FieldCase(t, "f16_utf8_space_names.pcap"), Out: dir}, o)
	if err != nil {
		t.Fatal(err)
	}
	outside(t, sandbox, dir)
	es, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
		if n := count(t, filepath.Join(dir, e.Name())); n != 1 {
			t.Errorf("%s: %d packets", e.Name(), n)
		}
	}
	want := []string{
		"default-domain.admin.prod~2Fweb+~none.pcapng",
		"default-domain.admin.r~C3~A9seau-prod+default-domain.admin.web~20tier.pcapng",
		"default-domain.admin.r~C3~A9seau-prod+~none.pcapng",
		"default-domain.admin.web~20tier+~none.pcapng",
		"default-domain.admin.~2E~2E~2F~2E~2E~2F~2E~2E~2F~2E~2E~2Ftmp~2Fescape-test+~none.pcapng",
	}
	if !slices.Equal(names, want) || stats.Written.Load() != 5 {
		t.Errorf("%d packets written into %q, want all 5 in %q", stats.Written.Load(), names, want)
	}
}

// outside fails if anything but dir's own files was written in sandbox.
func outside(t *testing.T, sandbox, dir string) {
	t.Helper()
	filepath.WalkDir(sandbox, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() && filepath.Dir(path) != dir {
			t.Errorf("%s written outside %s", path, dir)
		}
		return nil
	})
}

// Whatever bytes the names hold (decoded by any decoder), every pair gets
// its own file, inside the directory.
func TestSplitHostileNames(t *testing.T) {
	names := [][]byte{
		nil, {}, []byte("../.."), []byte("/"), []byte("."), []byte(".."), []byte(":"), []byte("a\x00b\n"),
		[]byte("default-domain:admin:vn_web"), []byte("default-domain:admin_vn:web"), []byte("none"), []byte("~none"),
		[]byte(strings.Repeat("x/", 300)), []byte(strings.Repeat("é", 300)),
	}
	sandbox := t.TempDir()
	dir := filepath.Join(sandbox, "1", "2", "split")
	s, err := newSplitSink(dir, vnpair.Undirected, pcapfile.Options{})
	must(t, err)
	frame := bytes.Repeat([]byte{0x45}, 60)
	for _, n := range names {
		p := &mirror.Packet{Mode: mirror.ModeJuniper, Frame: frame, FrameLen: len(frame), Meta: mirror.Meta{SrcVN: n, DstVN: []byte("vn-db")}}
		must(t, s.WritePacket(p))
		p.Meta.SrcVN, p.Meta.DstVN = p.Meta.DstVN, p.Meta.SrcVN
		must(t, s.WritePacket(p))
	}
	must(t, s.flush())
	must(t, s.finish(true))
	outside(t, sandbox, dir)
	es, err := os.ReadDir(dir)
	must(t, err)
	if len(es) != len(names) {
		t.Fatalf("%d files for %d pairs", len(es), len(names))
	}
	for _, e := range es {
		if n := count(t, filepath.Join(dir, e.Name())); n != 2 || len(e.Name()) > maxName {
			t.Errorf("%s: %d packets", e.Name(), n)
		}
	}
}

// decap's output through a stream (Run) is what RunFiles writes.
func TestRunMatchesRunFiles(t *testing.T) {
	dir := t.TempDir()
	in := genCapture(t, dir, "mixed", 300, 0.1)
	out := filepath.Join(dir, "out.pcapng")
	if _, err := RunFiles(context.Background(), Files{In: in, Out: out}, defaults); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	must(t, err)
	defer f.Close()
	var b bytes.Buffer
	o := defaults
	o.Out = &b
	if _, err := Run(context.Background(), io.Reader(f), o); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(out)
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("Run wrote %d bytes, RunFiles %d", b.Len(), len(want))
	}
}

// The decoder keeps copies of the fragments it holds only where a rejects
// file gets them.
func TestFragmentCopiesWithRejects(t *testing.T) {
	r, c, err := pcapfile.Open(genCapture(t, t.TempDir(), "acl", 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, rejects := range []bool{false, true} {
		var rw *pcapfile.Writer
		if rejects {
			if rw, err = pcapfile.NewWriter(io.Discard, pcapfile.Options{Format: pcapfile.FormatRaw}); err != nil {
				t.Fatal(err)
			}
		}
		pl, err := newPipeline(r, defaults, nil, rw, &pipeline.Stats{})
		if err != nil {
			t.Fatal(err)
		}
		if pl.FragmentCopies() != rejects {
			t.Errorf("with a rejects file %v: fragment copies %v", rejects, pl.FragmentCopies())
		}
	}
}

// MaxPackets ends the run once that many packets were written: the output
// holds them, the input is read no further, and the run is not a failure.
func TestMaxPackets(t *testing.T) {
	dir := t.TempDir()
	in := genCapture(t, dir, "acl", 200, 0)
	for _, max := range []int64{1, 17, 1000} {
		out := filepath.Join(dir, fmt.Sprintf("out%d.pcapng", max))
		o := defaults
		o.MaxPackets = max
		st, err := RunFiles(context.Background(), Files{In: in, Out: out}, o)
		if err != nil {
			t.Fatalf("MaxPackets %d: %v", max, err)
		}
		want := min(max, 200)
		if n := count(t, out); int64(n) != want || st.Written.Load() != uint64(want) || st.SinkErrs.Load() != 0 {
			t.Errorf("MaxPackets %d: %d packets in the output, %d written, %d sink errors; want %d", max, n, st.Written.Load(), st.SinkErrs.Load(), want)
		}
		if max < 200 && st.Read.Load() >= 200 {
			t.Errorf("MaxPackets %d: the whole input was read (%d packets)", max, st.Read.Load())
		}
	}
}
