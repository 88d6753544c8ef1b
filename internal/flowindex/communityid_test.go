package flowindex

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// TestCommunityIDSpecExample checks the example of the specification's
// README: TCP 128.232.110.120:34855 -> 66.35.250.204:80, seed 0.
func TestCommunityIDSpecExample(t *testing.T) {
	var tp tuple
	parseFrame(frame(t, "128.232.110.120", "66.35.250.204", l4{kind: "tcp", sport: 34855, dport: 80}), &tp)
	if got, want := communityID(&tp), "1:LQU9qZlK+B5F3KDmev6m5PMibrg="; got != want {
		t.Errorf("community id %s, want %s", got, want)
	}
}

// TestCommunityIDTshark checks the Community ID of every row against
// tshark's communityid post-dissector, the oracle, on IPv4 and IPv6 with
// TCP, UDP, SCTP, ICMP and ICMPv6 (two-way and one-way messages), another
// protocol and both directions of each flow. (tshark 4.0 gives no ID to
// an IPv6 packet of a protocol without ports: that case shares its code
// with IPv4 GRE and with IPv6 TCP, which it checks.)
func TestCommunityIDTshark(t *testing.T) {
	cases := []struct {
		src, dst string
		h        l4
	}{
		{"10.0.1.3", "10.0.2.3", l4{kind: "tcp", sport: 40000, dport: 80, flags: 2}},
		{"10.0.2.3", "10.0.1.3", l4{kind: "tcp", sport: 80, dport: 40000, flags: 18}},
		{"10.0.1.3", "10.0.1.3", l4{kind: "tcp", sport: 5000, dport: 4000, flags: 2}},
		{"192.168.1.52", "8.8.8.8", l4{kind: "udp", sport: 54585, dport: 53}},
		{"8.8.8.8", "192.168.1.52", l4{kind: "udp", sport: 53, dport: 54585}},
		{"fe80::1", "2001:db8::53", l4{kind: "udp", sport: 3000, dport: 53}},
		{"10.0.3.1", "10.0.3.2", l4{kind: "sctp", sport: 7, dport: 3868}},
		{"2001:db8::2", "2001:db8::1", l4{kind: "sctp", sport: 3868, dport: 9}},
		{"10.0.1.3", "10.0.2.3", l4{kind: "icmp", sport: 8}},
		{"10.0.2.3", "10.0.1.3", l4{kind: "icmp", sport: 0}},
		{"10.0.2.3", "10.0.1.3", l4{kind: "icmp", sport: 13}},
		{"10.0.9.1", "10.0.1.3", l4{kind: "icmp", sport: 3, dport: 1}},
		{"10.0.9.1", "10.0.1.3", l4{kind: "icmp", sport: 11, dport: 0}},
		{"fd00::3", "fd00::4", l4{kind: "icmp", sport: 128}},
		{"fd00::4", "fd00::3", l4{kind: "icmp", sport: 129}},
		{"fd00::4", "fd00::3", l4{kind: "icmp", sport: 136}},
		{"fd00::9", "fd00::3", l4{kind: "icmp", sport: 1, dport: 4}},
		{"10.0.1.3", "10.0.9.9", l4{kind: "ip", proto: 47}},
	}
	var ps []*mirror.Packet
	for i, c := range cases {
		ps = append(ps, packet(0, frame(t, c.src, c.dst, c.h), vnWeb, vnDB, mirror.DirIngress, ""))
		ps[i].Timestamp = ps[i].Timestamp.Add(time.Duration(i) * time.Millisecond)
	}
	cp := encode(t, ps)
	name := filepath.Join(t.TempDir(), "cid.pcapng")
	if err := os.WriteFile(name, cp.file, 0o644); err != nil {
		t.Fatal(err)
	}
	want := testenv.TsharkRows(t, "-r", name, "--enable-protocol", "communityid", "-T", "fields", "-e", "communityid")
	if len(want) != len(cases) {
		t.Fatalf("tshark printed %d rows for %d packets", len(want), len(cases))
	}
	data := build(t, Options{}, ps, cp)
	ix, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ix.Lookup(Query{})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range rows {
		for _, off := range r.Offsets {
			i := slices.Index(cp.offs, off)
			seen++
			if want[i][0] == "" || r.CommunityID != want[i][0] {
				t.Errorf("packet %d %+v: community id %q, tshark %q", i, cases[i], r.CommunityID, want[i][0])
			}
		}
	}
	if seen != len(cases) {
		t.Errorf("%d packets in the rows, want %d", seen, len(cases))
	}
}
