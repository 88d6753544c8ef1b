package filter

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

func packet(src, dst string, dir mirror.Direction) *mirror.Packet {
	p := &mirror.Packet{Mode: mirror.ModeJuniper}
	if src != "" {
		p.Meta.SrcVN = []byte(src)
	}
	if dst != "" {
		p.Meta.DstVN = []byte(dst)
	}
	p.Meta.Direction = dir
	return p
}

func TestMetadata(t *testing.T) {
	a := packet("default-domain:admin:vn-web", "default-domain:admin:vn-db", mirror.DirIngress)
	b := packet("", "default-domain:demo:vn-web", mirror.DirEgress)
	c := &mirror.Packet{Mode: mirror.ModeVXLAN}
	for _, tc := range []struct {
		o       Options
		a, b, c bool
	}{
		{Options{}, true, true, true},
		{Options{VN: "*:vn-web"}, true, true, false},
		{Options{VN: "*:vn-db"}, true, false, false},
		{Options{SrcVN: "*:vn-web"}, true, false, false},
		{Options{DstVN: "default-domain:*:vn-web"}, false, true, false},
		{Options{Direction: "egress"}, false, true, false},
		{Options{VN: "*:vn-web", Direction: "ingress"}, true, false, false},
	} {
		f, err := New(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if f.Match(a) != tc.a || f.Match(b) != tc.b || f.Match(c) != tc.c {
			t.Errorf("%+v: got %v %v %v", tc.o, f.Match(a), f.Match(b), f.Match(c))
		}
		g, err := FromQuery(tc.o.Query())
		if err != nil || g.Options() != tc.o {
			t.Errorf("%+v: query round trip gives %+v, %v", tc.o, g.Options(), err)
		}
	}
	for _, bad := range []Options{{VN: "[x"}, {Direction: "up"}, {BPF: "tcp and and"}} {
		if _, err := New(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := FromQuery(url.Values{"bpf": {"port 99999"}}); err == nil || !strings.Contains(err.Error(), "port 99999") {
		t.Errorf("bad expression: %v", err)
	}
}

// The expression runs in a pure-Go machine on frames that never were on a
// wire of their own; tcpdump, running the same expression in libpcap on a
// file of those frames, must select the same ones.
func TestBPFAgreesWithTcpdump(t *testing.T) {
	g, err := gen.New(gen.Options{Seed: 9, Mix: gen.Profiles["acl"], LinkType: layers.LinkTypeEthernet})
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var buf bytes.Buffer
	w, err := pcapfile.NewWriter(&buf, pcapfile.Options{Format: pcapfile.FormatPcap})
	if err != nil {
		t.Fatal(err)
	}
	for range 600 {
		c := g.Next()
		p := &mirror.Packet{Timestamp: c.Packets[0].Timestamp, Mode: mirror.ModeJuniper, Frame: c.Frame, FrameLen: c.FrameLen}
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, bytes.Clone(c.Frame))
	}
	w.Flush()
	file := filepath.Join(t.TempDir(), "inner.pcap")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{
		"tcp", "udp", "ip6", "arp", "icmp or icmp6", "vlan", "vlan and tcp", "tcp port 443",
		"udp port 53 or udp port 123", "greater 600", "less 100", "portrange 1-1024",
		"tcp[tcpflags] & tcp-ack != 0", "net 10.0.0.0/8 and not tcp", "ip proto 17", "ip[8] > 63", "ether host 00:00:5e:00:01:00",
	} {
		f, err := New(Options{BPF: expr})
		if !libpcapCompiler && errors.Is(err, ErrUnsupported) && (strings.Contains(expr, "[") || strings.HasPrefix(expr, "ether")) {
			continue // refused by name, as it should be
		}
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		var want [][]byte
		for _, fr := range frames {
			p := &mirror.Packet{Mode: mirror.ModeJuniper, Frame: fr, FrameLen: len(fr)}
			if f.Match(p) {
				want = append(want, fr)
			}
		}
		sel := filepath.Join(filepath.Dir(file), "selected.pcap")
		if out, err := exec.Command("tcpdump", "-n", "-r", file, "-w", sel, expr).CombinedOutput(); err != nil {
			t.Fatalf("tcpdump %q: %v\n%s", expr, err, out)
		}
		got := readFrames(t, sel)
		if len(got) != len(want) || len(want) == 0 || len(want) == len(frames) {
			t.Errorf("%q: vrsniff keeps %d of %d frames, tcpdump %d", expr, len(want), len(frames), len(got))
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%q: frame %d of the selection differs", expr, i)
				break
			}
		}
	}
}

// readFrames reads a capture file's frames.
func readFrames(t *testing.T, name string) [][]byte {
	t.Helper()
	ps, err := pcapfile.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	frames := make([][]byte, len(ps))
	for i, p := range ps {
		frames[i] = p.Data
	}
	return frames
}

func FuzzOptions(f *testing.F) {
	f.Add("*:vn-*", "ingress", "tcp port 80")
	f.Add("[", "", "vlan and ip6")
	f.Add("", "egress", "tcp[tcpflags] & tcp-syn != 0")
	frame := bytes.Repeat([]byte{0x45}, 80)
	f.Fuzz(func(t *testing.T, vn, dir, expr string) {
		fl, err := New(Options{VN: vn, Direction: dir, BPF: expr})
		if err != nil {
			return
		}
		p := packet("a:b:c", "a:b:d", mirror.DirIngress)
		p.Frame, p.FrameLen = frame, len(frame)
		fl.Match(p)
	})
}

// VN patterns as people type them: the network's own name or a glob of it
// without ':', the fully qualified name or a glob of it with ':'. Names are
// bytes: spaces, UTF-8 and '/' are ordinary characters.
func TestVNPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"vn-web", "default-domain:admin:vn-web", true},
		{"vn-web", "default-domain:admin:vn-web2", false},
		{"vn-web", "default-domain:vn-web:vn-db", false},
		{"vn-web", "vn-web", true},
		{"vn-*", "default-domain:admin:vn-web", true},
		{"*-web", "default-domain:admin:vn-web", true},
		{"admin", "default-domain:admin:vn-web", false},
		{"default-domain", "default-domain:admin:vn-web", false},
		{"*:admin:vn-web", "default-domain:admin:vn-web", true},
		{"*:vn-web", "default-domain:admin:vn-web", true},
		{"*:admin", "default-domain:admin:vn-web", false},
		{"default-domain:admin:vn-web", "default-domain:admin:vn-web", true},
		{"default-domain:*", "default-domain:admin:vn-web", true},
		{"vn_web", "default-domain:admin:vn_web", true},
		{"vn_web", "default-domain:admin_vn:web", false},
		{"web tier", "default-domain:admin:web tier", true},
		{"web*", "default-domain:admin:web tier", true},
		{"réseau-*", "default-domain:admin:réseau-prod", true},
		{"r?seau-prod", "default-domain:admin:réseau-prod", true},
		{"r??seau-prod", "default-domain:admin:réseau-prod", false},
		{"r[é]seau-prod", "default-domain:admin:réseau-prod", true},
		{"prod/web", "default-domain:admin:prod/web", true},
		{"*web", "default-domain:admin:prod/web", true},
		{"prod?web", "default-domain:admin:prod/web", true},
		{"*:admin:*", "default-domain:admin:prod/web", true},
		{"*", "default-domain:admin:../../tmp/x", true},
		{"*", "", true},
		{"?", "", false},
		{"[vw]n-web", "a:vn-web", true},
		{"[^v]n-web", "a:vn-web", false},
		{"[a-u]n-web", "a:vn-web", false},
		{`\*`, "a:*", true},
		{`\*`, "a:x", false},
		{`a\:b`, "a:b", true},
		{"*", "a:\xff\x00", true},
		{"?", "\xff", true},
		{"*b*", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	} {
		f, err := New(Options{SrcVN: c.pattern})
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		p := packet(c.name, "", mirror.DirIngress)
		p.Meta.SrcVN = []byte(c.name) // an empty name is sent, not absent
		if got := f.Match(p); got != c.want {
			t.Errorf("pattern %q, name %q: %v, want %v", c.pattern, c.name, got, c.want)
		}
		g, err := FromQuery(url.Values{"vn": {c.pattern}})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Match(p); got != c.want {
			t.Errorf("?vn=%s, name %q: %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
	// An absent name matches nothing, not even "*".
	f, _ := New(Options{DstVN: "*"})
	if f.Match(packet("a:b", "", mirror.DirIngress)) {
		t.Error("* matches an absent name")
	}
	for _, bad := range []string{"[", "[]", "[a-]", "[^]", `a\`, "[a", `[\`, "[-a]", "x[\xff]"} {
		if _, err := New(Options{VN: bad}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	m := packet("default-domain:admin:vn-web", "default-domain:admin:vn-db", mirror.DirIngress)
	f, _ = New(Options{VN: "vn-d*", SrcVN: "*:admin:*"})
	if n := testing.AllocsPerRun(100, func() {
		if !f.Match(m) {
			t.Fatal("no match")
		}
	}); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

// Where path.Match applies (names without '/'), the VN globs agree with it.
func FuzzGlob(f *testing.F) {
	f.Add("*:admin:vn-*", "default-domain:admin:vn-web")
	f.Add("[a-c]?\\*", "bé*")
	f.Add("[^x", "a")
	f.Add("*a*b", "aaab")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		err := checkGlob(pattern)
		_, perr := path.Match(pattern, name)
		if (err == nil) != (perr == nil) && utf8.ValidString(pattern) {
			t.Fatalf("pattern %q: checkGlob %v, path.Match %v", pattern, err, perr)
		}
		if err != nil || strings.Contains(name, "/") || !utf8.ValidString(name) || !utf8.ValidString(pattern) {
			return
		}
		want, _ := path.Match(pattern, name)
		if got := globMatch(pattern, name); got != want {
			t.Fatalf("pattern %q, name %q: %v, path.Match %v", pattern, name, got, want)
		}
	})
}

func TestOptionsString(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, ""},
		{Options{VN: "vn-web"}, "--vn vn-web"},
		{Options{SrcVN: "*:admin:vn-a", Direction: "ingress", BPF: "tcp port 80"},
			`--src-vn '*:admin:vn-a' --direction ingress --bpf 'tcp port 80'`},
		{Options{DstVN: "it's"}, `--dst-vn 'it'\''s'`},
	} {
		if got := c.o.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.o, got, c.want)
		}
	}
}

func TestMayMatchVNs(t *testing.T) {
	const a, b = "default-domain:admin:vn-a", "default-domain:admin:vn-b"
	for _, c := range []struct {
		o        Options
		src, dst string
		want     bool
	}{
		{Options{}, a, b, true},
		{Options{BPF: "tcp"}, a, b, true},
		{Options{VN: "vn-b"}, a, b, true},
		{Options{VN: "vn-b"}, b, a, true},
		{Options{VN: "vn-c"}, a, b, false},
		{Options{SrcVN: "vn-a"}, a, b, true},
		{Options{SrcVN: "vn-b"}, a, b, false},
		{Options{DstVN: "*:admin:vn-b"}, a, b, true},
		{Options{SrcVN: "vn-a", DstVN: "vn-a"}, a, b, false},
		{Options{VN: "*"}, "", "", true}, // "" may be an empty name, which * matches
		{Options{VN: "vn-a"}, "", "", false},
	} {
		f, err := New(c.o)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.MayMatchVNs(c.src, c.dst); got != c.want {
			t.Errorf("%+v MayMatchVNs(%q, %q) = %v, want %v", c.o, c.src, c.dst, got, c.want)
		}
	}
	if !(*Filter)(nil).MayMatchVNs(a, b) {
		t.Error("a nil filter refused a pair")
	}
}
