package ring

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// A record over 262144 bytes made Wireshark refuse the whole file. The
// ring cuts it to MaxRecord and counts it; the file reads, the record's
// original length is kept.
func TestRecordCut(t *testing.T) {
	const huge = 1 << 20
	for _, format := range []pcapfile.Format{pcapfile.FormatPcapNG, pcapfile.FormatPcap, pcapfile.FormatRaw} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			r := newTestRing(t, dir, Options{Format: format})
			ps := []*mirror.Packet{testPacket(0, 1, 100), testPacket(1, 1, huge), testPacket(2, 1, 100)}
			for _, p := range ps {
				if format == pcapfile.FormatRaw {
					// As captured: the mirror datagram around the frame.
					p.Data, p.WireLen, p.LinkType = append(make([]byte, 50), p.Frame...), 50+len(p.Frame), layers.LinkTypeEthernet
				}
				if err := r.WritePacket(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if st := r.Stats(); st.Truncated != 1 || st.Packets != 3 {
				t.Fatalf("%+v", st)
			}
			infos, _ := r.List()
			if len(infos) != 1 {
				t.Fatalf("%d files", len(infos))
			}
			got := string(testenv.Tshark{}.Output(t, "-n", "-r", filepath.Join(dir, infos[0].Name), "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len"))
			extra := 0
			if format == pcapfile.FormatRaw {
				extra = 50
			}
			want := strings.Join([]string{
				lens(len(ps[0].Frame)+extra, len(ps[0].Frame)+extra),
				lens(DefaultMaxRecord, len(ps[1].Frame)+extra),
				lens(len(ps[2].Frame)+extra, len(ps[2].Frame)+extra),
			}, "\n") + "\n"
			if got != want {
				t.Fatalf("tshark reads\n%swant\n%s", got, want)
			}
		})
	}
}

func lens(caplen, wire int) string { return fmt.Sprintf("%d\t%d", caplen, wire) }

// Packets passed through as captured carry link types of their own, and
// pcapng describes each as an interface of the file that holds them. The
// encoder shared by the open files must not take one file's interfaces to
// another: every packet keeps its link type, whatever the order.
func TestInterfacesPerFile(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{Split: vnpair.Undirected})
	ipv4 := testPacket(0, 1, 20).Frame[14:]
	raw := func(link layers.LinkType) *mirror.Packet {
		data := ipv4
		if link == layers.LinkTypeLinuxSLL {
			data = append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00}, ipv4...)
		}
		return &mirror.Packet{Timestamp: t0, Mode: mirror.ModeOther, LinkType: link, Data: data, WireLen: len(data)}
	}
	a, b := testPacket(1, 1, 20), testPacket(2, 2, 20)
	b.Meta.SrcVN, b.Meta.DstVN = []byte("default-domain:admin:vn-x"), []byte("default-domain:admin:vn-y")
	for _, p := range []*mirror.Packet{
		a, raw(layers.LinkTypeLinuxSLL), b, raw(layers.LinkTypeLinuxSLL), raw(layers.LinkTypeRaw), a, raw(layers.LinkTypeRaw), b,
	} {
		if err := r.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, _ := r.List()
	got := map[string]string{}
	for _, in := range infos {
		label := in.Name[len("vrsniff_00001_20261126120003_") : len(in.Name)-len(".pcapng")]
		out := string(testenv.Tshark{}.Output(t, "-n", "-r", filepath.Join(dir, in.Name), "-T", "fields", "-e", "frame.encap_type"))
		got[label] = strings.ReplaceAll(strings.TrimSpace(out), "\n", " ")
	}
	// Wireshark's encapsulations: 1 Ethernet, 25 Linux SLL, 7 raw IP.
	want := map[string]string{
		"default-domain.admin.vn-a+default-domain.admin.vn-b": "1 1",
		"default-domain.admin.vn-x+default-domain.admin.vn-y": "1 1",
		"~none+~none": "25 25 7 7",
	}
	if len(got) != len(want) {
		t.Fatalf("files: %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: encapsulations %q, want %q", k, got[k], v)
		}
	}
}
