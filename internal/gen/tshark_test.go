package gen

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// Wireshark's own dissectors are the independent oracle for the encoder:
// what tshark reads from a generated capture must match the case
// expectations.

// generate writes count cases of the given mix into a pcapng file and
// returns the file name and the cases.
func generate(t *testing.T, opts Options, count int) (string, []*Case) {
	t.Helper()
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, FormatPcapNG, g.opts.Snaplen, g.opts.LinkType)
	if err != nil {
		t.Fatal(err)
	}
	var cases []*Case
	for range count {
		c := g.Next()
		if err := w.WriteCase(c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c.Clone())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "gen.pcapng")
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name, cases
}

// tshark runs tshark on file and returns, per record number, the values of
// the fields (each a comma-separated list when it occurs several times).
func tshark(t *testing.T, file string, extra []string, fields ...string) map[int][]string {
	t.Helper()
	args := append([]string{"-n", "-r", file}, extra...)
	args = append(args, "-T", "fields", "-E", "occurrence=a", "-e", "frame.number")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	rows := map[int][]string{}
	for _, cols := range testenv.TsharkRows(t, args...) {
		n, err := strconv.Atoi(cols[0])
		if err != nil || len(cols) != len(fields)+1 {
			t.Fatalf("tshark line %q: want %d columns", strings.Join(cols, "\t"), len(fields)+1)
		}
		rows[n] = cols[1:]
	}
	return rows
}

// nth returns the inner value of a field listed for the outer and the inner
// Ethernet header, or for the inner one only.
func nth(s string, lt layers.LinkType) string {
	vs := strings.Split(s, ",")
	if lt == layers.LinkTypeEthernet {
		if len(vs) < 2 {
			return ""
		}
		return vs[1]
	}
	return vs[0]
}

func first(s string) string {
	s, _, _ = strings.Cut(s, ",")
	return s
}

func macString(b []byte) string { return net.HardwareAddr(b).String() }

// lastRecord is the record number (from 1) that completes case c: where
// tshark shows the reassembled datagram.
func lastRecord(c *Case) int { return c.Packet + len(c.Packets) }

func TestTsharkJuniper(t *testing.T) {
	// Padding cases are left out: Wireshark 4.0's Juniper dissector raises
	// an exception on a 14-byte inner frame. TestPadding checks them.
	mix := Mix{KindACL: 6, KindPort: 4, KindEndOnly: 1, KindSeed114: 1, KindFragmented: 2, KindSnapCut: 1}
	for _, lt := range []layers.LinkType{0, layers.LinkTypeEthernet} {
		t.Run(fmt.Sprint(lt), func(t *testing.T) {
			file, cases := generate(t, Options{Seed: 7, Mix: mix, LinkType: lt}, 400)
			rows := tshark(t, file, []string{"-d", "udp.port==8099,juniper"},
				"juniper.vn.src", "juniper.vn.dst", "juniper.vn.host_ip", "juniper.vn.flags",
				"eth.src", "frame.len", "frame.cap_len")
			checked := map[Kind]int{}
			for _, c := range cases {
				if c.Reason != "" {
					t.Fatalf("case %d (%s): unexpected reason %s", c.Index, c.Kind, c.Reason)
				}
				row, ok := rows[lastRecord(c)]
				if !ok {
					t.Fatalf("case %d: tshark shows no record %d", c.Index, lastRecord(c))
				}
				want := []string{str(c.SrcVN), str(c.DstVN), "", "", macString(c.Frame[6:12]),
					strconv.Itoa(c.Packets[len(c.Packets)-1].WireLen),
					strconv.Itoa(len(c.Packets[len(c.Packets)-1].Data))}
				if c.Host.IsValid() {
					want[2] = c.Host.String()
				}
				// The inner source MAC follows the outer one; tshark may list
				// more after it when the inner payload looks like a tunnel.
				macs := strings.Split(row[4], ",")
				pos := 0
				if c.Packets[0].LinkType == layers.LinkTypeEthernet {
					pos = 1
				}
				shortCut := c.Truncated && len(c.Frame) < 34
				if shortCut {
					// Wireshark 4.0's Juniper dissector reports "Juniper
					// truncated" and shows nothing when little of the inner
					// frame was captured; only the record lengths are compared.
					want = append([]string{"", "", "", "", ""}, want[5:]...)
					macs = append(macs[:pos], "")
					row[0], row[1], row[2], row[3] = "", "", "", ""
				}
				innerMAC := ""
				if pos < len(macs) {
					innerMAC = macs[pos]
				}
				got := []string{row[0], row[1], row[2], row[3], innerMAC, row[5], row[6]}
				if c.FlagBits != 0 && !shortCut {
					f, err := strconv.ParseUint(row[3], 0, 32)
					if err != nil || uint32(f) != c.Flags {
						t.Errorf("case %d (%s): tshark flags %q, want %#x", c.Index, c.Kind, row[3], c.Flags)
					}
					got[3] = ""
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("case %d (%s) record %d:\ntshark %q\nwant   %q\n%x", c.Index, c.Kind, lastRecord(c), got, want, c.Packets[len(c.Packets)-1].Data)
				}
				checked[c.Kind]++
			}
			for k := range mix {
				if checked[k] == 0 && g0(lt, k) {
					t.Errorf("no %s case was checked", k)
				}
			}
		})
	}
}

// g0 reports whether kind k can occur with link type lt.
func g0(lt layers.LinkType, k Kind) bool {
	g := Generator{opts: Options{LinkType: lt, MaxFrame: 9000, MTU: 1500}}
	return g.possible(k)
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestTsharkVXLAN(t *testing.T) {
	file, cases := generate(t, Options{Seed: 3, Mix: Mix{KindVXLAN: 1}}, 200)
	rows := tshark(t, file, nil, "vxlan.vni", "vxlan.flags", "eth.src")
	frags := 0
	for _, c := range cases {
		row := rows[lastRecord(c)]
		got := []string{row[0], row[1], nth(row[2], c.Packets[0].LinkType)}
		want := []string{strconv.Itoa(int(c.VNI)), "0x0800", macString(c.Frame[6:12])}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("case %d: tshark %q, want %q", c.Index, got, want)
		}
		if len(c.Packets) > 1 {
			frags++
		}
	}
	if frags == 0 {
		t.Error("no fragmented VXLAN datagram was checked")
	}
}

func TestTsharkVLAN(t *testing.T) {
	file, cases := generate(t, Options{Seed: 4, Mix: Mix{KindVLAN: 1}, Traffic: mirror.Traffic{MirrorVLAN: 1234}}, 200)
	rows := tshark(t, file, nil, "vlan.id", "eth.src", "eth.dst", "frame.len")
	for _, c := range cases {
		row := rows[lastRecord(c)]
		got := []string{first(row[0]), row[1], row[2], row[3]}
		want := []string{"1234", macString(c.Frame[6:12]), macString(c.Frame[:6]), strconv.Itoa(c.FrameLen + 4)}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("case %d: tshark %q, want %q", c.Index, got, want)
		}
	}
}

// Non-mirror traffic must reach neither the mirror port nor the VXLAN port.
func TestTsharkOther(t *testing.T) {
	file, cases := generate(t, Options{Seed: 5, Mix: Mix{KindOther: 1}}, 300)
	rows := tshark(t, file, nil, "udp.dstport", "vlan.id", "frame.len")
	for _, c := range cases {
		row := rows[lastRecord(c)]
		for _, p := range strings.Split(row[0], ",") {
			if p == "8099" || p == "4789" {
				t.Errorf("case %d: non-mirror traffic to UDP port %s", c.Index, p)
			}
		}
		if first(row[1]) == "999" {
			t.Errorf("case %d: non-mirror traffic on the mirror VLAN", c.Index)
		}
		if row[2] != strconv.Itoa(c.FrameLen) || !bytes.Equal(c.Frame, c.Packets[0].Data) {
			t.Errorf("case %d: frame is not the whole packet", c.Index)
		}
	}
}

// Timestamps survive each format at its resolution.
func TestTsharkTimestamps(t *testing.T) {
	for _, tc := range []struct {
		f   Format
		res time.Duration
	}{{FormatPcap, time.Microsecond}, {FormatPcapNanos, 1}, {FormatPcapNG, 1}} {
		g, err := New(Options{Seed: 8, Mix: Mix{KindACL: 1}, LinkType: layers.LinkTypeEthernet})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, tc.f, g.opts.Snaplen, layers.LinkTypeEthernet)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for range 50 {
			c := g.Next()
			if err := w.WriteCase(c); err != nil {
				t.Fatal(err)
			}
			for _, p := range c.Packets {
				ts := p.Timestamp.Truncate(tc.res)
				want = append(want, fmt.Sprintf("%d.%09d", ts.Unix(), ts.Nanosecond()))
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(t.TempDir(), "ts")
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		rows := tshark(t, name, nil, "frame.time_epoch")
		for i, ts := range want {
			if got := rows[i+1][0]; got != ts {
				t.Fatalf("%s record %d: tshark time %s, want %s", tc.f, i+1, got, ts)
			}
		}
	}
}
