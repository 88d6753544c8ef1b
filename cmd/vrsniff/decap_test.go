package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// Wireshark's own Juniper dissector is the oracle: on the raw capture it
// must report the metadata decap writes into its comments, and it must see
// the same inner frames in decap's output as in the raw capture.
func TestDecapAgreesWithTshark(t *testing.T) {
	dir := t.TempDir()
	raw, out, vn := filepath.Join(dir, "raw.pcap"), filepath.Join(dir, "out.pcapng"), filepath.Join(dir, "vn.pcapng")
	mustRun(t, "gen", "--profile", "acl", "--count", "400", "--seed", "7", raw)
	mustRun(t, "decap", "--quiet", raw, out)
	mustRun(t, "decap", "--quiet", "--format", "juniper-vn", raw, vn)

	meta := []string{"juniper.vn.src", "juniper.vn.dst", "juniper.vn.host_ip", "juniper.vn.flags"}
	inner := []string{"eth.src", "eth.dst", "ip.src", "ip.dst", "ipv6.src", "tcp.srcport", "udp.dstport"}
	decodeAs := []string{"-d", "udp.port==8099,juniper", "-Y", "juniper.vn.flags"}
	want := tshark(t, raw, decodeAs, append(meta, inner...)...)
	if len(want) < 350 {
		t.Fatalf("tshark decoded only %d packets of the raw capture", len(want))
	}
	got := tshark(t, out, nil, append([]string{"frame.comment"}, inner...)...)
	gotVN := tshark(t, vn, nil, append(meta, inner...)...)
	if len(got) != len(want) || len(gotVN) != len(want) {
		t.Fatalf("tshark sees %d packets in the raw capture, %d in decap's pcapng, %d in its juniper-vn", len(want), len(got), len(gotVN))
	}
	for i, w := range want {
		flags, err := strconv.ParseUint(strings.TrimPrefix(w[3], "0x"), 16, 32)
		if err != nil {
			t.Fatalf("packet %d: flags %q", i, w[3])
		}
		dir := "egress"
		if flags&mirror.FlagIngress != 0 {
			dir = "ingress"
		}
		comment := "src_vn=" + w[0] + " dst_vn=" + w[1] + " dir=" + dir + " host=" + w[2] + " action=" + string(mirror.AppendActions(nil, uint32(flags)))
		if got[i][0] != comment {
			t.Errorf("packet %d: comment %q, tshark says %q", i, got[i][0], comment)
		}
		if !innerOf(got[i][1:], w[4:]) {
			t.Errorf("packet %d: inner %v, tshark on the raw capture %v", i, got[i][1:], w[4:])
		}
		if strings.Join(gotVN[i][:4], "|") != strings.Join(w[:4], "|") || !innerOf(gotVN[i][4:], w[4:]) {
			t.Errorf("packet %d: juniper-vn output %v, raw %v", i, gotVN[i], w)
		}
	}
}

// innerOf reports whether the field values seen in a decoded frame are the
// inner ones of the raw packet: tshark lists a field of the outer headers
// first, so the inner values are the trailing ones.
func innerOf(decoded, raw []string) bool {
	for i, d := range decoded {
		r := raw[i]
		if d == "" {
			if i < 2 { // the inner Ethernet addresses are always there
				return false
			}
			continue
		}
		if r != d && !strings.HasSuffix(r, ","+d) {
			return false
		}
	}
	return true
}

// The seed's case: with VN names 54 bytes long together the inner frame is
// at byte 114 and `editcap -C 114` gets it right; with any other names it
// does not, and decap still does.
func TestDecapVersusEditcap(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		profile   string
		editcapOK bool
	}{{"seed114", true}, {"acl", false}} {
		raw, out, ed := filepath.Join(dir, c.profile+".pcap"), filepath.Join(dir, c.profile+"-decap.pcap"), filepath.Join(dir, c.profile+"-editcap.pcap")
		mustRun(t, "gen", "--profile", c.profile, "--count", "300", "--seed", "3", "--mtu", "9000", raw)
		mustRun(t, "decap", "--quiet", "--format", "pcap", "--nanos", raw, out)
		if b, err := execOut("editcap", "-F", "pcap", "-C", "114", raw, ed); err != nil {
			t.Fatalf("editcap: %v\n%s", err, b)
		}
		d, e := readAll(t, out), readAll(t, ed)
		if len(d) != len(e) {
			t.Fatalf("%s: decap wrote %d packets, editcap %d", c.profile, len(d), len(e))
		}
		same := 0
		for i := range d {
			if bytes.Equal(d[i].Data, e[i].Data) && d[i].Timestamp.Equal(e[i].Timestamp) {
				same++
			}
		}
		if c.editcapOK && same != len(d) {
			t.Errorf("%s: only %d of %d packets are byte-identical to editcap -C 114", c.profile, same, len(d))
		}
		if !c.editcapOK && same > len(d)/10 {
			t.Errorf("%s: %d of %d packets identical to editcap -C 114; the names should move the frame", c.profile, same, len(d))
		}
		// Either way decap's frames are the ones the generator mirrored.
		g, err := gen.New(gen.Options{Seed: 3, Mix: gen.Profiles[c.profile], MTU: 9000, LinkType: layers.LinkTypeEthernet})
		if err != nil {
			t.Fatal(err)
		}
		for i := range d {
			if want := g.Next().Frame; !bytes.Equal(d[i].Data, want) {
				t.Fatalf("%s: packet %d is not the mirrored frame", c.profile, i)
			}
		}
	}
}

func TestDecapFiltersSplitAndRejects(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--profile", "all", "--count", "1500", "--seed", "11", "--truth", filepath.Join(dir, "truth.json"), raw)

	// Everything is accounted for: decoded + not decoded + merged fragments = read.
	rej, out := filepath.Join(dir, "rejects.pcapng"), filepath.Join(dir, "all.pcapng")
	stdout, stderr, code := run(t, nil, "decap", "--json", "--mirror-vlan", "999", "--rejects", rej, raw, out)
	if code != exitPartial {
		t.Fatalf("exit %d with malformed input, want %d\n%s", code, exitPartial, stderr)
	}
	var sum struct {
		Read      uint64            `json:"packets_read"`
		Merged    uint64            `json:"fragments_merged"`
		Decoded   map[string]uint64 `json:"decoded"`
		Malformed map[string]uint64 `json:"malformed"`
		Written   uint64            `json:"written"`
		Dups      uint64            `json:"fragments_duplicate"`
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	var dec, bad uint64
	for _, n := range sum.Decoded {
		dec += n
	}
	for _, n := range sum.Malformed {
		bad += n
	}
	if dec+bad+sum.Merged+sum.Dups != sum.Read || sum.Written != dec || bad == 0 {
		t.Fatalf("summary does not add up: %+v", sum)
	}
	if n := len(readAll(t, rej)); uint64(n) != bad {
		t.Fatalf("rejects file holds %d packets, %d were not decoded", n, bad)
	}
	if n := len(readAll(t, out)); uint64(n) != dec {
		t.Fatalf("output holds %d packets, %d were decoded", n, dec)
	}
	reasons := tshark(t, rej, nil, "frame.comment")
	for _, r := range reasons {
		if !strings.HasPrefix(r[0], "malformed: ") {
			t.Fatalf("reject comment %q", r[0])
		}
	}

	// Filters: direction, VN glob and an inner BPF expression.
	acl := filepath.Join(dir, "acl.pcap")
	mustRun(t, "gen", "--profile", "acl", "--count", "500", "--seed", "5", "--mtu", "9000", acl)
	g, _ := gen.New(gen.Options{Seed: 5, Mix: gen.Profiles["acl"], MTU: 9000, LinkType: layers.LinkTypeEthernet})
	var cases []*gen.Case
	for range 500 {
		cases = append(cases, g.Next().Clone())
	}
	vnGlob := "*" + *cases[0].SrcVN
	check := func(name string, keep func(c *gen.Case) bool, args ...string) {
		t.Helper()
		f := filepath.Join(dir, name+".pcapng")
		mustRun(t, append(append([]string{"decap", "--quiet"}, args[:len(args)-1]...), acl, f, args[len(args)-1])...)
		var want [][]byte
		for _, c := range cases {
			if keep(c) {
				want = append(want, c.Frame)
			}
		}
		got := readAll(t, f)
		if len(got) != len(want) || len(want) == 0 || len(want) == len(cases) {
			t.Fatalf("%s: %d packets, want %d of %d", name, len(got), len(want), len(cases))
		}
		for i := range got {
			if !bytes.Equal(got[i].Data, want[i]) {
				t.Fatalf("%s: packet %d differs", name, i)
			}
		}
	}
	check("ingress", func(c *gen.Case) bool { return c.Direction == mirror.DirIngress }, "--direction", "ingress", "")
	check("vn", func(c *gen.Case) bool {
		return (c.SrcVN != nil && strings.HasSuffix(*c.SrcVN, *cases[0].SrcVN)) || (c.DstVN != nil && strings.HasSuffix(*c.DstVN, *cases[0].SrcVN))
	}, "--vn", vnGlob, "")
	check("bpf", func(c *gen.Case) bool { return isTCP(c.Frame) }, "tcp")

	// One file per VN pair, together holding every decoded packet.
	split := filepath.Join(dir, "split")
	mustRun(t, "decap", "--quiet", "--split-by", "vn", acl, split)
	files, _ := filepath.Glob(filepath.Join(split, "*.pcapng"))
	total := 0
	for i, f := range files {
		ps := readAll(t, f)
		total += len(ps)
		if i >= 5 {
			continue // tshark starts slowly; a few files show the pairs are kept apart
		}
		rows := tshark(t, f, nil, "frame.comment")
		first := vnPair(rows[0][0])
		for _, r := range rows {
			if vnPair(r[0]) != first {
				t.Fatalf("%s mixes VN pairs %q and %q", f, first, vnPair(r[0]))
			}
		}
	}
	if total != len(cases) || len(files) < 10 {
		t.Fatalf("split into %d files holding %d packets, want %d", len(files), total, len(cases))
	}
}

func isTCP(f []byte) bool {
	if len(f) < 34 {
		return false
	}
	// As in libpcap, "tcp" does not look behind a VLAN tag.
	et, off := uint16(f[12])<<8|uint16(f[13]), 14
	switch layers.EthernetType(et) {
	case layers.EthernetTypeIPv4:
		return f[off+9] == 6
	case layers.EthernetTypeIPv6:
		return f[off+6] == 6
	}
	return false
}

func vnPair(comment string) string {
	var src, dst string
	for _, f := range strings.Fields(comment) {
		if v, ok := strings.CutPrefix(f, "src_vn="); ok {
			src = v
		}
		if v, ok := strings.CutPrefix(f, "dst_vn="); ok {
			dst = v
		}
	}
	return src + " -> " + dst
}

// A damaged file ends with an error naming the offset, and everything
// before the damage is in a valid output file.
func TestDecapCorruptInput(t *testing.T) {
	dir := t.TempDir()
	raw, cut, out := filepath.Join(dir, "raw.pcap"), filepath.Join(dir, "cut.pcap"), filepath.Join(dir, "out.pcapng")
	mustRun(t, "gen", "--profile", "acl", "--count", "100", "--seed", "2", "--mtu", "9000", raw)
	data, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	whole := readAll(t, raw)
	// Cut inside the 51st record: 24-byte file header, 16 bytes a record header.
	off := 24
	for i := range 50 {
		off += 16 + len(whole[i].Data)
	}
	if err := os.WriteFile(cut, data[:off+16+5], 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, nil, "decap", "--quiet", cut, out)
	if code != exitFailure || !strings.Contains(stderr, "offset "+strconv.Itoa(off)) {
		t.Fatalf("exit %d, stderr %q; want 1 and the offset %d", code, stderr, off)
	}
	if got := tshark(t, out, nil, "frame.number"); len(got) != 50 {
		t.Fatalf("output holds %d packets, want the 50 before the damage", len(got))
	}

	_, stderr, code = run(t, strings.NewReader("this is not a capture"), "decap", "-", filepath.Join(dir, "x.pcapng"))
	if code != exitFailure || !strings.Contains(stderr, "not a pcap or pcapng file") {
		t.Fatalf("garbage: exit %d, %q", code, stderr)
	}
	if _, _, code = run(t, nil, "decap", "--format", "nope", raw, out); code != exitUsage {
		t.Fatalf("bad flag: exit %d", code)
	}
}

// decap reads standard input and writes standard output.
func TestDecapPipes(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--profile", "mixed", "--count", "200", "--seed", "4", raw)
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdout, stderr, code := run(t, f, "decap", "--quiet", "-", "-")
	if code != 0 && code != exitPartial {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "out.pcapng")
	os.WriteFile(out, []byte(stdout), 0o644)
	ref := filepath.Join(dir, "ref.pcapng")
	run(t, nil, "decap", "--quiet", raw, ref)
	a, _ := os.ReadFile(ref)
	if !bytes.Equal(a, []byte(stdout)) {
		t.Fatalf("piped output (%d bytes) differs from the file output (%d bytes)", len(stdout), len(a))
	}
}

// Each decoded frame of f09 stays on the interface it was captured on, with
// its nanosecond time; classic pcap output has one interface.
func TestDecapInterfaces(t *testing.T) {
	dir := t.TempDir()
	in := testenv.FieldCase(t, "f09_three_interfaces_ns.pcapng")
	out := filepath.Join(dir, "out.pcapng")
	if _, stderr, code := run(t, nil, "decap", "--quiet", in, out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []string
	for _, r := range tshark(t, out, nil, "frame.interface_name", "frame.time_epoch", "frame.cap_len", "frame.len") {
		got = append(got, strings.Join(r, " "))
	}
	want := "eth1 1700000000.123456789 98 98,eth2 1700000000.223456000 15 242,any 1700000000.323456000 98 98,eth1 1700000000.423456001 98 98"
	if strings.Join(got, ",") != want {
		t.Errorf("got %q\nwant %q", strings.Join(got, ","), want)
	}

	pc := filepath.Join(dir, "out.pcap")
	if _, stderr, code := run(t, nil, "decap", "--quiet", "--format", "pcap", "--nanos", in, pc); code != exitOK {
		t.Fatalf("pcap: exit %d: %s", code, stderr)
	}
	if rows := tshark(t, pc, nil, "frame.time_epoch"); len(rows) != 4 || rows[3][0] != "1700000000.423456001" {
		t.Errorf("pcap: %q", rows)
	}

	if _, stderr, code := run(t, nil, "decap", "--max-interfaces", "2", in, filepath.Join(dir, "x.pcapng")); code != exitFailure ||
		!strings.Contains(stderr, "more than 2 distinct interfaces") || !strings.Contains(stderr, "--max-interfaces") {
		t.Errorf("--max-interfaces 2: exit %d, %q", code, stderr)
	}
}

// Mirror traffic to a port not configured is named, with the flag that
// decodes it, and the run is not called a success (f02).
func TestDecapTellsCandidatePort(t *testing.T) {
	in := testenv.FieldCase(t, "f02_port_8888.pcap")
	out := filepath.Join(t.TempDir(), "out.pcapng")
	_, stderr, code := run(t, nil, "decap", in, out)
	if code != exitPartial || !strings.Contains(stderr, "UDP port 8888 carries mirror traffic (6 datagrams): decode it with --port 8888") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, port := range []string{"8888", "auto"} {
		_, stderr, code = run(t, nil, "decap", "--port", port, in, out)
		if code != exitOK || !strings.Contains(stderr, "6 decoded (6 juniper)") || strings.Contains(stderr, "carries mirror traffic") {
			t.Fatalf("--port %s: exit %d:\n%s", port, code, stderr)
		}
	}
}
