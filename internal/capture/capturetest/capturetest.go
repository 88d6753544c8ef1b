// Package capturetest holds what the tests of the capture service and of
// the vrsniff capture command share: generated mirror cases, the forms in
// which they are sent, and what the capture files must hold for them. Only
// tests import it.
package capturetest

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// Cases returns n generated mirror cases, each with its own copy of the data.
func Cases(t testing.TB, profile string, seed uint64, n, mtu int) []*gen.Case {
	t.Helper()
	g, err := gen.New(gen.Options{Seed: seed, Mix: gen.Profiles[profile], MTU: mtu, LinkType: layers.LinkTypeEthernet,
		MaxFrame: 2000})
	if err != nil {
		t.Fatal(err)
	}
	cs := make([]*gen.Case, n)
	for i := range cs {
		cs[i] = g.Next().Clone()
	}
	return cs
}

// WriteCases writes the cases' outer frames into a pcap file.
func WriteCases(t testing.TB, name string, cs []*gen.Case) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := gen.NewWriter(f, gen.FormatPcap, 65535, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if err := w.WriteCase(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// OuterFrames returns the outer frames of the cases, in order.
func OuterFrames(cs []*gen.Case) [][]byte {
	var fs [][]byte
	for _, c := range cs {
		for _, w := range c.Packets {
			fs = append(fs, w.Data)
		}
	}
	return fs
}

// Comment is the pcapng comment a decoded case must carry.
func Comment(c *gen.Case) string {
	p := mirror.Packet{Mode: c.Mode, Meta: c.Meta()}
	return string(mirror.AppendComment(nil, &p))
}

// UDPPayloads returns the UDP payloads of the cases' outer frames, as a
// vRouter sends them to an analyzer address.
func UDPPayloads(t testing.TB, cs []*gen.Case) [][]byte {
	t.Helper()
	var ps [][]byte
	for _, c := range cs {
		if len(c.Packets) != 1 {
			t.Fatalf("case %d is fragmented", c.Index)
		}
		pkt := gopacket.NewPacket(c.Packets[0].Data, layers.LayerTypeEthernet, gopacket.Default)
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Fatalf("case %d: no UDP layer", c.Index)
		}
		ps = append(ps, udp.Payload)
	}
	return ps
}

// CaptureFiles lists the capture files in dir (no sidecars), in the
// order they were written.
func CaptureFiles(t testing.TB, dir string) (closed []string, parts []string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		switch n := e.Name(); {
		case strings.HasSuffix(n, ".part"):
			parts = append(parts, n)
		case strings.HasSuffix(n, ".pcapng"), strings.HasSuffix(n, ".pcap"):
			closed = append(closed, n)
		}
	}
	slices.Sort(closed)
	return closed, parts
}

// WritePcapng writes packets into the pcapng file path as the capture
// files encode them: decoded frames with their metadata comments.
func WritePcapng(t testing.TB, path string, ps []*mirror.Packet) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapfile.NewWriter(f, pcapfile.Options{Application: "vrsniff"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
}
