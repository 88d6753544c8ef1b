package query

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/flowindex"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// TestOpenFlowIndex: the flow index a sniffer uploads, asked as a query
// asks it: a host finds its IP flows and its ARP packets (which tcpdump's
// host matches) but not the frames without addresses, port ranges narrow
// to the flows of the ports, and the overflow row always comes back.
func TestOpenFlowIndex(t *testing.T) {
	eth := func(et uint16, body ...byte) []byte {
		return append([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, byte(et >> 8), byte(et)}, body...)
	}
	arp := eth(0x0806, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 9)
	udp := eth(0x0800, 0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0x13, 0x88, 0, 53, 0, 8, 0, 0)
	lldp := eth(0x88cc, 2, 7, 4, 0, 0, 0, 0, 0, 1)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := flowindex.NewBuilder(flowindex.Options{})
	for i, f := range [][]byte{arp, udp, lldp} {
		p := &mirror.Packet{Timestamp: t0.Add(time.Duration(i) * time.Second), Mode: mirror.ModeJuniper, Frame: f,
			FrameLen: len(f), Data: f, Meta: mirror.Meta{SrcVN: []byte("vn-a"), DstVN: []byte("vn-b")}}
		b.Add(p, int64(100+i*100), 100)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenFlowIndex(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	offsets := func(q IndexQuery) []int64 {
		t.Helper()
		q.Since, q.Until = t0, t0.Add(time.Minute)
		rows, err := ix.Lookup(q)
		if err != nil {
			t.Fatal(err)
		}
		var offs []int64
		for _, r := range rows {
			offs = append(offs, r.Offsets...)
		}
		slices.Sort(offs)
		return offs
	}
	host := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}
	for _, tc := range []struct {
		name string
		q    IndexQuery
		want []int64
	}{
		{"host, ARP may match", IndexQuery{Prefixes: host, NoAddr: true}, []int64{100, 200}},
		{"ip host", IndexQuery{Prefixes: host}, []int64{100, 200}},
		{"target of an ARP", IndexQuery{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.9/32")}, NoAddr: true}, []int64{100}},
		{"port range", IndexQuery{Ports: []filter.PortRange{{Lo: 50, Hi: 60}}}, []int64{200}},
		{"host and another port", IndexQuery{Prefixes: host, Ports: []filter.PortRange{{Lo: 80, Hi: 80}}}, nil},
		{"window only", IndexQuery{}, []int64{100, 200, 300}},
	} {
		if got := offsets(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: records at %v, want %v", tc.name, got, tc.want)
		}
	}
}
