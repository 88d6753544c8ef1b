package ring

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// decodeFile decodes a capture of mirror traffic with the default settings
// and returns its decoded packets.
func decodeFile(t *testing.T, path string) []*mirror.Packet {
	t.Helper()
	raw, err := pcapfile.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := mirror.NewDecoder(mirror.Config{Traffic: mirror.Traffic{Ports: []uint16{mirror.DefaultPort}, VXLANPorts: []uint16{mirror.DefaultVXLANPort}}})
	var ps []*mirror.Packet
	for i := range raw {
		p := &raw[i]
		if d.Decode(p) == mirror.Decoded {
			ps = append(ps, p)
		}
	}
	return ps
}

// splitStore writes ps into a new ring split by s, closes it and returns
// the files as a restarted ring lists them, checking that the restart
// finds exactly what was written.
func splitStore(t *testing.T, dir string, s vnpair.Split, ps []*mirror.Packet) []Info {
	t.Helper()
	r := newTestRing(t, dir, Options{Split: s})
	for _, p := range ps {
		if err := r.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := r.List()
	again := newTestRing(t, dir, Options{Split: s})
	after, _ := again.List()
	if len(after) != len(before) {
		t.Fatalf("restart lists %d files, %d were written", len(after), len(before))
	}
	for i := range after {
		if after[i].Name != before[i].Name || after[i].Packets != before[i].Packets {
			t.Errorf("restart lists %+v, written %+v", after[i], before[i])
		}
	}
	// Nothing but the files and their sidecars, all inside dir.
	var want []string
	for _, in := range after {
		want = append(want, in.Name, in.Name+sidecarSuffix)
		if n := len("." + in.Name + sidecarSuffix + ".tmp"); n > maxName {
			t.Errorf("%s: its longest form has %d bytes", in.Name, n)
		}
	}
	slices.Sort(want)
	if got := dirFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
	return after
}

// Both directions of a conversation share a file set by default; with
// vnpair.Directed each direction has its own.
func TestSplitBothDirections(t *testing.T) {
	var ps []*mirror.Packet
	for i := range 40 {
		p := testPacket(i, 1, 60)
		if i%2 == 1 {
			p.Meta.SrcVN, p.Meta.DstVN = p.Meta.DstVN, p.Meta.SrcVN
		}
		ps = append(ps, p)
	}
	one := splitStore(t, t.TempDir(), vnpair.Undirected, ps)
	if len(one) != 1 || one[0].Packets != 40 || len(one[0].Pairs) != 2 ||
		!strings.HasSuffix(one[0].Name, "_default-domain.admin.vn-a+default-domain.admin.vn-b.pcapng") {
		t.Fatalf("undirected: %+v", one)
	}
	two := splitStore(t, t.TempDir(), vnpair.Directed, ps)
	if len(two) != 2 || two[0].Packets != 20 || two[1].Packets != 20 ||
		!strings.HasSuffix(two[0].Name, "_default-domain.admin.vn-a=default-domain.admin.vn-b.pcapng") ||
		!strings.HasSuffix(two[1].Name, "_default-domain.admin.vn-b=default-domain.admin.vn-a.pcapng") {
		t.Fatalf("directed: %+v", two)
	}
}

// f13: Kubernetes VN names of 158 and 160 bytes give names within 255
// bytes, distinct per pair and showing both networks.
func TestSplitLongK8sNames(t *testing.T) {
	ps := decodeFile(t, testenv.FieldCase(t, "f13_long_k8s_names.pcap"))
	if len(ps) != 4 {
		t.Fatalf("%d packets decoded, want 4", len(ps))
	}
	one := splitStore(t, t.TempDir(), vnpair.Undirected, ps)
	if len(one) != 1 || one[0].Packets != 4 {
		t.Fatalf("undirected: %+v", one)
	}
	two := splitStore(t, t.TempDir(), vnpair.Directed, ps)
	if len(two) != 2 || two[0].Packets != 2 || two[1].Packets != 2 || two[0].Name[29:] == two[1].Name[29:] {
		t.Fatalf("directed: %+v", two)
	}
	for _, in := range append(one, two...) {
		if len(in.Name) > maxName || !strings.Contains(in.Name, "k8s-payments-settlement") ||
			!strings.Contains(in.Name, "k8s-customer-notification") || strings.Count(in.Name, "pod-network") != 2 {
			t.Errorf("name %q (%d bytes): want both networks recognisable within %d bytes", in.Name, len(in.Name), maxName)
		}
	}
}

// Names with spaces, UTF-8, '/', "../", control bytes, absent and empty
// names, and two pairs that collided under an earlier naming rule: each
// pair gets its own files, all inside the directory.
func TestSplitHostileNames(t *testing.T) {
	names := [][]byte{
		nil, {},
		[]byte("default-domain:admin:web tier"),
		[]byte("default-domain:admin:réseau-prod"),
		[]byte("default-domain:admin:../../../../tmp/escape-test"),
		[]byte("default-domain:admin:prod/web"),
		[]byte("../.."), []byte("/"), []byte("."), []byte(":"), []byte("a\x00b\n"),
		[]byte("default-domain:admin:vn_web"), []byte("default-domain:admin_vn:web"),
		[]byte("none"), []byte("~none"),
	}
	var ps []*mirror.Packet
	for i, n := range names {
		p := testPacket(i, 1, 20)
		p.Meta.SrcVN, p.Meta.DstVN = n, []byte("default-domain:admin:vn-db")
		ps = append(ps, p)
	}
	sandbox := t.TempDir()
	dir := filepath.Join(sandbox, "1", "2", "3", "4", "split")
	infos := splitStore(t, dir, vnpair.Undirected, ps)
	if len(infos) != len(names) {
		t.Fatalf("%d files for %d pairs", len(infos), len(names))
	}
	for i, in := range infos {
		if in.Packets != 1 || len(in.Pairs) != 1 || in.Pairs[0].SrcVN != string(names[i]) {
			t.Errorf("%s: %+v, want the pair of %q", in.Name, in, names[i])
		}
	}
	// Nothing was written outside dir.
	filepath.WalkDir(sandbox, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() && filepath.Dir(path) != dir {
			t.Errorf("%s written outside %s", path, dir)
		}
		return nil
	})

	// The hostile capture: two pairs, five packets each.
	coll := splitStore(t, t.TempDir(), vnpair.Undirected, decodeFile(t, testenv.HostileCase(t, "split-slug-collision.pcap")))
	if len(coll) != 2 || coll[0].Packets != 5 || coll[1].Packets != 5 {
		t.Fatalf("split-slug-collision: %+v", coll)
	}
}
